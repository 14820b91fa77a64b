//! The Raft type configuration: what goes into the log and what comes out.

use crate::resp::Frame;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's ID in the cluster.
pub type NodeId = u64;

/// A node's address: its sidecar's RESP `host:port` (clients and peers
/// both talk to it).
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// wclab's Raft: the log holds Redis commands, the results are RESP replies.
    pub TypeConfig:
        D = Request,
        R = Frame,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = Vec<u8>,
);

/// The Raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig>;

/// One replicated write: a Redis command exactly as every replica runs it
/// (time arguments already filled in by the leader).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The command and its arguments.
    pub args: Vec<Vec<u8>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A commit carries every word of a task: show its shape only.
        let name = |i: usize| {
            self.args
                .get(i)
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned())
                .unwrap_or_default()
        };
        write!(
            f,
            "{} {} (+{} args)",
            name(0),
            name(1),
            self.args.len().saturating_sub(2)
        )
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
