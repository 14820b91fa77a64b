//! openraft's own test suite for storage (`openraft::testing::Suite`), run
//! against the sidecar's log store and state machine, the latter in front
//! of a real redis-server: an independent check of what openraft expects
//! of them (initial state, membership from log and state machine, purge
//! and truncation, votes, apply, snapshot transfer), rather than our own
//! reading of its documentation.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use wclab_raft::log::LogStore;
use wclab_raft::sm::StateMachine;
use wclab_raft::types::{NodeId, TypeConfig};
use wclab_server::{RedisServer, ServerOptions};

/// A fresh directory and redis-server per store: kept alive (the guard)
/// as long as the test that uses them.
struct Fresh;

fn io_error(e: std::io::Error) -> StorageError<NodeId> {
    openraft::StorageIOError::read(&e).into()
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, (tempfile::TempDir, RedisServer)> for Fresh {
    async fn build(
        &self,
    ) -> Result<((tempfile::TempDir, RedisServer), LogStore, StateMachine), StorageError<NodeId>>
    {
        let dir = tempfile::tempdir().map_err(io_error)?;
        let server = RedisServer::start(ServerOptions::default())
            .map_err(|e| io_error(std::io::Error::other(e.to_string())))?;
        let addr = format!("127.0.0.1:{}", server.port());
        let log = LogStore::open(&dir.path().join("raft")).map_err(io_error)?;
        let sm = StateMachine::open(&dir.path().join("raft"), &addr, server.password())
            .await
            .map_err(io_error)?;
        Ok(((dir, server), log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Fresh).unwrap();
}
