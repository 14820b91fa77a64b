//! The state machine checks each log entry again before it reaches Redis
//! (issue 17's review: entries used to be applied unchecked, so one that
//! got into the log past the client path, through a forged append, ran on
//! every replica). Against a real redis-server.

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use wclab_raft::resp::{Conn, Frame};
use wclab_raft::sm::StateMachine;
use wclab_raft::types::{Request, TypeConfig, Write};
use wclab_server::{RedisServer, ServerOptions};

fn entry(index: u64, commands: &[&[&str]]) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request {
            writes: commands
                .iter()
                .enumerate()
                .map(|(i, c)| Write {
                    nonce: i as u64,
                    args: c.iter().map(|a| a.as_bytes().to_vec()).collect(),
                })
                .collect(),
        }),
    }
}

#[tokio::test]
async fn an_entry_the_client_path_would_refuse_is_answered_with_the_refusal_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let addr = format!("127.0.0.1:{}", server.port());
    let mut sm = StateMachine::open(dir.path(), &addr, server.password())
        .await
        .unwrap();
    // Writes around each refused command, in one entry and one batch.
    let replies = sm
        .apply([entry(
            1,
            &[
                &["SET", "before", "1"],
                &["EVAL", "redis.call('SET', 'evil', 'x')", "0"],
                &["CONFIG", "SET", "appendonly", "yes"],
                &["SET", "middle", "2"],
                &["RAFT.JOIN", "9", "127.0.0.1:1"],
                &["SPOP", "s"],
                &["SETEX", "k", "10", "v"],
                &["NOSUCHCOMMAND"],
                &["SET", "after", "3"],
            ],
        )])
        .await
        .unwrap();
    let replies = &replies[0];
    assert_eq!(replies.len(), 9, "one reply per write: {replies:?}");
    let ok = |i: usize| matches!(&replies[i], Frame::Simple(s) if s == "OK");
    assert!(ok(0) && ok(3) && ok(8), "the writes ran: {replies:?}");
    for i in [1, 2, 4, 5, 6, 7] {
        assert!(
            matches!(&replies[i], Frame::Error(_)),
            "write {i} was not refused: {replies:?}"
        );
    }
    let mut redis = Conn::connect(&addr, Some(server.password())).await.unwrap();
    let get = |f: Frame| match f {
        Frame::Bulk(b) => b.map(|b| String::from_utf8(b).unwrap()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        get(redis.call(&["GET", "evil"]).await.unwrap()),
        None,
        "EVAL ran"
    );
    for (k, v) in [("before", "1"), ("middle", "2"), ("after", "3")] {
        assert_eq!(
            get(redis.call(&["GET", k]).await.unwrap()).as_deref(),
            Some(v)
        );
    }
    let aof = match redis.call(&["CONFIG", "GET", "appendonly"]).await.unwrap() {
        Frame::Array(Some(kv)) => get(kv[1].clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(aof.as_deref(), Some("no"), "CONFIG SET ran");
}
