//! `wclab_claim`: take a new task, or steal one whose lease has expired.

use crate::{CoordError, JobKeys, Store};
use redis::Value;
use std::time::Duration;

/// A task handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Stream entry ID.
    pub id: String,
    /// Path of the file, as the stream entry says (checked before use).
    pub path: String,
    /// First byte owned.
    pub start: u64,
    /// One past the last byte owned.
    pub end: u64,
    /// Injection time (ms, server clock).
    pub injected_ms: u64,
    /// How many times the task has been handed out, this time included.
    pub deliveries: u64,
    /// Changes whenever the job is submitted (again), so that a worker can
    /// keep the job's description until then; `None`: read it anew.
    pub job_stamp: Option<String>,
}

/// What a claim gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nothing waiting and nothing to steal.
    Idle,
    /// A task to count.
    Task(Task),
    /// A task was delivered too often and has been dead-lettered; ask again.
    Buried(String),
}

/// Lease and poison settings of a claim.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules {
    /// A task whose owner has been silent this long may be stolen.
    pub lease: Duration,
    /// A task delivered more often than this is dead-lettered.
    pub max_deliveries: u32,
}

/// Claims one task for `consumer`.
pub async fn claim(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    rules: ClaimRules,
) -> Result<Claim, CoordError> {
    let reply: Value = store
        .call("claim a task", &call(keys, consumer, rules))
        .await?;
    parse(reply).ok_or_else(|| CoordError::Protocol {
        target: store.target().clone(),
        op: "wclab_claim",
        detail: "reply is not nil, ['task', ...] or ['dead', id]".into(),
    })
}

/// The FCALL of `wclab_claim`.
pub(crate) fn call(keys: &JobKeys, consumer: &str, rules: ClaimRules) -> redis::Cmd {
    let mut cmd = crate::function_call(
        "wclab_claim",
        &[
            &keys.tasks,
            &keys.dead,
            &keys.job,
            &keys.leases,
            &keys.submitted,
            // Where the hand-out time goes, for speculation's run times.
            &keys.spec,
        ],
    );
    cmd.arg(consumer)
        .arg(rules.lease.as_millis() as u64)
        .arg(rules.max_deliveries);
    cmd
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Parses a claim-shaped reply (also `wclab_speculate`'s).
pub(crate) fn parse(reply: Value) -> Option<Claim> {
    let items = match reply {
        Value::Nil => return Some(Claim::Idle),
        Value::Array(items) => items,
        _ => return None,
    };
    match text(items.first()?)?.as_str() {
        "dead" => Some(Claim::Buried(text(items.get(1)?)?)),
        // wclab_claim adds the job's stamp; wclab_speculate does not.
        "task" if matches!(items.len(), 7 | 8) => Some(Claim::Task(Task {
            id: text(&items[1])?,
            path: text(&items[2])?,
            start: text(&items[3])?.parse().ok()?,
            end: text(&items[4])?.parse().ok()?,
            injected_ms: text(&items[5])?.parse().ok()?,
            deliveries: text(&items[6])?.parse().ok()?,
            job_stamp: items.get(7).and_then(text),
        })),
        _ => None,
    }
}
