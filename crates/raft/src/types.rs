//! The Raft type configuration: what goes into the log and what comes out.

use crate::resp::Frame;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's ID in the cluster.
pub type NodeId = u64;

/// A member of the cluster as its configuration records it: where it is,
/// and which incarnation of its data directory the configuration means.
///
/// The incarnation is what keeps a node that lost its directory from
/// voting (or being counted) as if it still held what it had acknowledged:
/// see [`crate::incarnation`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's sidecar, `host:port` (clients and peers both talk to it).
    pub addr: String,
    /// The incarnation of the node's data directory.
    pub incarnation: u64,
}

impl Member {
    /// The member at `addr`, in incarnation `incarnation`.
    pub fn new(addr: impl Into<String>, incarnation: u64) -> Self {
        Member {
            addr: addr.into(),
            incarnation,
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:016x}", self.addr, self.incarnation)
    }
}

/// openraft's name for a member.
pub type Node = Member;

openraft::declare_raft_types!(
    /// wclab's Raft: the log holds batches of Redis commands, the results
    /// are their RESP replies (one per command, none for openraft's own
    /// entries).
    pub TypeConfig:
        D = Request,
        R = Vec<Frame>,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = Vec<u8>,
);

/// The Raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig>;

/// The membership as openraft stores it.
pub type Membership = openraft::Membership<NodeId, Node>;

/// One log entry's writes: the writes that reached the leader while the
/// previous entries were being appended, proposed together so that they
/// share one fsync and one replication round (group commit, see
/// [`crate::propose`]). Applied in order, each on its own: a batch is not a
/// transaction.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The writes, in the order they are applied.
    pub writes: Vec<Write>,
}

/// One replicated write: a Redis command exactly as every replica runs it
/// (time arguments already filled in by the leader).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Unique among the writes a leader submits (random per process, then
    /// counting): after openraft answers "not the leader", the log store
    /// says whether this write reached the log (outcome unknown) or not
    /// (safe to send elsewhere). Not applied: Redis never sees it.
    pub nonce: u64,
    /// The command and its arguments.
    pub args: Vec<Vec<u8>>,
}

impl fmt::Debug for Write {
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

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.writes.as_slice() {
            [one] => fmt::Debug::fmt(one, f),
            [first, ..] => write!(f, "{} writes: {first:?}, ...", self.writes.len()),
            [] => write!(f, "no writes"),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
