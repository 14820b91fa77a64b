//! Nodes removed from the cluster: their RPCs are refused, as etcd refuses
//! messages from removed members.
//!
//! With mutual TLS a node's certificate is its credential, and certificates
//! are not revoked: a removed node still holds one naming its ID. Refusing
//! RPCs only from IDs outside the current configuration would be wrong the
//! other way: a node that was down while a new node joined and then led
//! would refuse its new leader and never catch up. So a node remembers the
//! IDs it has seen leave the configuration (in `removed` in its directory,
//! kept across restarts) and refuses their RPCs until an ID is added again.
//!
//! What this does not cover (docs/security.md): a node that has not yet
//! seen the removal accepts the removed node's RPCs, and an ID that is
//! added again gives its old certificate back its rights. A removed node's
//! certificate is revoked for good only by a new cluster CA.

use crate::types::{NodeId, Raft};
use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

const FILE: &str = "removed";

/// The IDs this node has seen removed, and not added again since.
#[derive(Debug)]
pub struct Removed {
    ids: RwLock<BTreeSet<NodeId>>,
    dir: PathBuf,
}

impl Removed {
    /// Reads the set kept in `dir` (none yet: empty).
    pub fn load(dir: PathBuf) -> io::Result<Removed> {
        let ids = match std::fs::read_to_string(dir.join(FILE)) {
            Ok(text) => text
                .split_whitespace()
                .map(|id| {
                    id.parse().map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: {id:?} is not a node id", dir.join(FILE).display()),
                        )
                    })
                })
                .collect::<io::Result<_>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        Ok(Removed {
            ids: RwLock::new(ids),
            dir,
        })
    }

    /// Whether `id` was removed and not added again.
    pub fn contains(&self, id: NodeId) -> bool {
        self.ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// The configuration went from `before` to `after`: who left is
    /// removed, who is in it is not. Kept on disk before it is used.
    fn observe(&self, before: &BTreeSet<NodeId>, after: &BTreeSet<NodeId>) -> io::Result<()> {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        let mut next = ids.clone();
        next.extend(before.difference(after));
        next.retain(|id| !after.contains(id));
        if next != *ids {
            let text: String = next.iter().map(|id| format!("{id}\n")).collect();
            crate::log::write_atomic(&self.dir, FILE, text.as_bytes())?;
            tracing::info!(removed = ?next, "nodes removed from the configuration");
            *ids = next;
        }
        Ok(())
    }

    /// Follows the configuration this node knows for the life of `raft`.
    pub async fn watch(self: Arc<Self>, raft: Raft) {
        let mut metrics = raft.metrics();
        let nodes = |m: &openraft::RaftMetrics<NodeId, crate::types::Node>| -> BTreeSet<NodeId> {
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect()
        };
        let mut before = nodes(&metrics.borrow());
        while metrics.changed().await.is_ok() {
            let after = nodes(&metrics.borrow());
            if after != before {
                if let Err(e) = self.observe(&before, &after) {
                    tracing::error!(error = %e, "cannot keep the set of removed nodes on disk");
                }
                before = after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_node_that_leaves_is_removed_until_it_is_added_again_and_it_is_kept_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let r = Removed::load(dir.path().to_owned()).unwrap();
        r.observe(&set(&[1, 2, 3]), &set(&[1, 2, 3, 4])).unwrap();
        assert!(!r.contains(4));
        r.observe(&set(&[1, 2, 3, 4]), &set(&[1, 2, 4])).unwrap();
        assert!(r.contains(3));
        let again = Removed::load(dir.path().to_owned()).unwrap();
        assert!(
            again.contains(3) && !again.contains(4),
            "kept across restarts"
        );
        r.observe(&set(&[1, 2, 4]), &set(&[1, 2, 3, 4])).unwrap();
        assert!(!r.contains(3), "added again");
        assert!(!Removed::load(dir.path().to_owned()).unwrap().contains(3));
        std::fs::write(dir.path().join(FILE), "3\nx\n").unwrap();
        assert!(
            Removed::load(dir.path().to_owned()).is_err(),
            "a damaged file is an error, not an empty set"
        );
    }
}
