//! Waking an idle worker when a task arrives, instead of polling.
//!
//! `wclab_claim` cannot block (a function never waits), so an idle worker
//! used to sleep and claim again, up to `idle_poll` (20 ms) later: the first
//! file of every micro-batch waited for that sleep (0–22 ms measured at 10
//! files/s, issue 19). Instead, after a claim that found nothing, the worker
//! blocks in `XREAD BLOCK t STREAMS tasks $`, which returns as soon as a
//! task is appended. XREAD reads: it moves nothing into the consumer group,
//! so the claim that follows stays the only hand-out, and the protocol is
//! unchanged. A task appended between the idle claim and the XREAD is not
//! seen by it: it waits at most `t`, as long as the poll did.
//!
//! A Raft cluster refuses blocking commands (one would hold its log), and
//! an ACL made before workers could XREAD refuses it too: there the answer
//! is [`Wake::Unsupported`] and the worker polls.

use crate::{CoordError, JobKeys, Store};
use std::time::Duration;

/// Why [`wait_for_task`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A task was appended to the stream (maybe taken by another worker
    /// already: claim to find out).
    Appended,
    /// Nothing was appended within the wait.
    TimedOut,
    /// The server refused the blocking read (a Raft cluster): poll instead.
    Unsupported,
}

/// Blocks until a task is appended to the job's stream, or `wait` passes.
pub async fn wait_for_task(
    store: &mut Store,
    keys: &JobKeys,
    wait: Duration,
) -> Result<Wake, CoordError> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(wait.as_millis().max(1) as u64)
        .arg("STREAMS")
        .arg(&keys.tasks)
        .arg("$");
    match store.call::<redis::Value>("wait for a task", &cmd).await {
        Ok(redis::Value::Nil) => Ok(Wake::TimedOut),
        Ok(_) => Ok(Wake::Appended),
        // Refused: a Raft cluster (no blocking commands), or an operator's
        // ACL made before workers could XREAD. Polling still works.
        Err(CoordError::Redis { .. } | CoordError::Forbidden { .. }) => Ok(Wake::Unsupported),
        Err(e) => Err(e),
    }
}
