//! `wclab_commit`: acknowledge tasks and add their counts, atomically.

use crate::{CoordError, JobKeys, Store};
use redis::Value;

/// A task being committed: its ID and the bytes it covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<'a> {
    /// Stream entry ID.
    pub id: &'a str,
    /// Bytes the task owned (for the progress totals).
    pub bytes: u64,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// All tasks were acknowledged and their counts added.
    Applied,
    /// Nothing changed: these tasks were no longer pending. Either they had
    /// been committed already (by a thief that finished first, or by an
    /// earlier try of this very commit whose reply was lost), or Redis was
    /// restored from a snapshot that predates their delivery, and they will
    /// be delivered again.
    NotPending(Vec<String>),
}

/// Commits `tasks` with the merged `words` of all of them, in one FCALL.
/// Every word must appear once.
pub async fn commit<'w>(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: impl IntoIterator<Item = (&'w [u8], u64)>,
) -> Result<CommitOutcome, CoordError> {
    let words: Vec<(&[u8], u64)> = words.into_iter().collect();
    let total: u64 = words.iter().map(|w| w.1).sum();
    let mut cmd = crate::function_call(
        store,
        "wclab_commit",
        &[
            &keys.tasks,
            &keys.counts,
            &keys.done,
            &keys.job,
            &keys.leases,
            &keys.merging,
        ],
    );
    cmd.arg(consumer).arg(tasks.len());
    for t in tasks {
        cmd.arg(t.id).arg(t.bytes);
    }
    cmd.arg(total);
    for (word, n) in words {
        cmd.arg(n).arg(word);
    }
    let reply: Value = store.call("commit counts", &cmd).await?;
    match reply {
        Value::Array(items) if matches!(items.first(), Some(Value::Int(1))) => {
            Ok(CommitOutcome::Applied)
        }
        Value::Array(items) if matches!(items.first(), Some(Value::Int(0))) => {
            Ok(CommitOutcome::NotPending(
                items[1..]
                    .iter()
                    .filter_map(|v| match v {
                        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    })
                    .collect(),
            ))
        }
        other => Err(CoordError::Protocol {
            target: store.target().clone(),
            op: "wclab_commit",
            detail: format!("{other:?}"),
        }),
    }
}
