//! `wclab_speculate`: a backup copy of a straggling task for an idle worker.
//!
//! Speculative execution, as MapReduce does it for stragglers: when a task
//! has been running much longer than tasks usually take (the time since it
//! was handed out, which `wclab_claim` records in the [`spec_key`] hash,
//! against the median run time of the recent commits), an idle worker
//! counts it too, without taking it from its owner. Time spent queued does
//! not count: a task that waited behind a burst is not a straggler. Whichever commit lands first
//! counts; the commit gate turns the other into
//! [`CommitOutcome::NotPending`](crate::commit::CommitOutcome::NotPending).
//! The rule ("much longer") and the bookkeeping are in `docs/protocol.md`.

use crate::claim::{Claim, Task};
use crate::{CoordError, JobKeys, Store};
use redis::Value;
use std::time::Duration;

/// When a held task deserves a backup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeculationRules {
    /// Never back up a task handed out less than this long ago.
    pub min_age: Duration,
    /// Back up a task whose run time so far is `factor` times the median
    /// run time (hand-out to commit) of the recent commits (if that is more
    /// than `min_age`).
    pub factor: f64,
    /// How many recent commits the median is taken over.
    pub sample: u32,
}

impl Default for SpeculationRules {
    /// 100 ms at least, 3 times the median of the last 20 commits.
    fn default() -> Self {
        SpeculationRules {
            min_age: Duration::from_millis(100),
            factor: 3.0,
            sample: 20,
        }
    }
}

/// The hash in which `wclab_claim` records when each task was handed out
/// and `wclab_speculate` keeps its bookkeeping: [`JobKeys::spec`].
pub fn spec_key(keys: &JobKeys) -> String {
    keys.spec.clone()
}

/// Asks for a backup copy of a straggling task, for `consumer` (which
/// should be idle). `None`: no task deserves one.
pub async fn speculate(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    rules: SpeculationRules,
) -> Result<Option<Task>, CoordError> {
    let cmd = call(keys, consumer, rules);
    let reply: Value = store.call("ask for a speculative task", &cmd).await?;
    match crate::claim::parse(reply) {
        Some(Claim::Idle) => Ok(None),
        Some(Claim::Task(t)) => Ok(Some(t)),
        _ => Err(CoordError::Protocol {
            target: store.target().clone(),
            op: "wclab_speculate",
            detail: "reply is not nil or ['task', ...]".into(),
        }),
    }
}

/// The FCALL of `wclab_speculate`.
pub(crate) fn call(keys: &JobKeys, consumer: &str, rules: SpeculationRules) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_speculate", &[&keys.tasks, &keys.done, &keys.spec]);
    cmd.arg(consumer)
        .arg(rules.min_age.as_millis() as u64)
        .arg(rules.factor)
        .arg(rules.sample);
    cmd
}

/// How many backup copies have been handed out in the job.
pub async fn backups(store: &mut Store, keys: &JobKeys) -> Result<u64, CoordError> {
    let n: Option<u64> = store
        .call(
            "count the speculative copies",
            redis::cmd("HGET").arg(spec_key(keys)).arg("backups"),
        )
        .await?;
    Ok(n.unwrap_or(0))
}
