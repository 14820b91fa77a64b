//! Group commit: the leader's writes go into the log in batches.
//!
//! openraft 0.9 appends each `client_write` as its own entry and waits for
//! that entry's fsync before it looks at the next request, so one entry per
//! write costs one fsync per write on the leader and caps a node at about
//! one write per fsync. Here the sessions hand their writes to one
//! proposer task instead. It keeps at most [`IN_FLIGHT`] entries between
//! openraft's front door and their commit; while those are on their way
//! the writes that arrive queue up, and the next entry takes all of them
//! (up to [`MAX_WRITES`] writes, [`MAX_BYTES`] of arguments): they share
//! the leader's fsync, the followers' fsyncs, the replication round and
//! one round trip to each node's Redis. A lone client's write finds the
//! queue empty and goes at once, alone.
//!
//! A batch's writes are applied one after the other, each with its own
//! reply; they are not a transaction. They enter the log together or not
//! at all, so what the log store knows of each nonce (see
//! [`crate::log::LogStore::appended`]) holds for the whole batch.

use crate::resp::Frame;
use crate::types::{Node, NodeId, Raft, Request, Write};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Entries proposed and not yet committed, at most: two, so that one
/// batch can be appended while the one before it is being replicated.
pub const IN_FLIGHT: usize = 2;

/// Writes in one entry, at most.
pub const MAX_WRITES: usize = 256;

/// Bytes of arguments in one entry, at most (a bigger write goes alone).
pub const MAX_BYTES: usize = 4 << 20;

/// How long a proposal whose leader was deposed still waits for
/// openraft's answer, once it has given its slot back.
///
/// openraft (0.9) answers an entry's writes when it is applied, or with
/// "forward to leader" when a new leader's log truncates it. A deposed
/// leader's entry that the new leader's snapshot overtook (the node's log
/// ends before the snapshot, so it is purged, never truncated) is answered
/// never. Holding the slot until the answer kept both slots of a node that
/// had been cut off with two entries in flight, for good: once it led
/// again, every write it took timed out as UNKNOWN. So a proposal gives its
/// slot back as soon as its node stops leading the term it was proposed
/// in, and gives up waiting after this long (its clients' sessions have
/// answered UNKNOWN by their own deadline).
const DEPOSED_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What openraft answered for a write: its reply, or why the entry
/// holding it failed.
pub type Outcome = Result<Frame, RaftError<NodeId, ClientWriteError<NodeId, Node>>>;

type Queued = (Write, oneshot::Sender<Outcome>);

/// The front door of the leader's log; clones share the one task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Proposer {
    /// Starts the proposer task of the node whose Raft handle is `raft`.
    pub fn start(raft: Raft) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Proposer { tx }
    }

    /// Queues `write` for the log. The answer comes once the entry holding
    /// it is applied (or failed); `None` if the proposer is gone (the node
    /// is stopping), in which case the write was never handed to openraft.
    pub fn propose(&self, write: Write) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        // A send error drops `tx`: the receiver then reports it closed.
        let _ = self.tx.send((write, tx));
        rx
    }
}

fn size(w: &Write) -> usize {
    w.args.iter().map(Vec::len).sum()
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot is what lets the next batch fill up.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = size(&first.0);
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(q) => {
                    bytes += size(&q.0);
                    batch.push(q);
                }
                Err(_) => break,
            }
        }
        let (writes, waiters): (Vec<Write>, Vec<oneshot::Sender<Outcome>>) =
            batch.into_iter().unzip();
        let raft = raft.clone();
        if crate::trace::on() {
            let nonces: Vec<u64> = writes.iter().map(|w| w.nonce).collect();
            crate::trace::mark_all(&nonces, crate::trace::Mark::Proposed);
        }
        let term = raft.metrics().borrow().current_term;
        tokio::spawn(async move {
            let write = raft.client_write(Request { writes });
            tokio::pin!(write);
            let mut metrics = raft.metrics();
            let deposed = async move {
                // The watch's guard is dropped here: it may not cross an await.
                let _ = metrics
                    .wait_for(|m| m.current_term != term || m.state != ServerState::Leader)
                    .await
                    .is_ok();
            };
            let result = tokio::select! {
                r = &mut write => {
                    drop(slot);
                    r
                }
                _ = deposed => {
                    // See [`DEPOSED_WAIT`]: the slot is for a leader's
                    // entries on their way to commit, and this one may be
                    // answered never.
                    drop(slot);
                    match tokio::time::timeout(DEPOSED_WAIT, write).await {
                        Ok(r) => r,
                        // The waiters' sessions answered UNKNOWN long ago.
                        Err(_) => return,
                    }
                }
            };
            match result {
                Ok(resp) => {
                    let mut replies = resp.data.into_iter();
                    for w in waiters {
                        let reply = replies.next().unwrap_or_else(|| {
                            Frame::err("ERR wclab-raft: no reply for a write of the batch")
                        });
                        let _ = w.send(Ok(reply));
                    }
                }
                Err(e) => {
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}
