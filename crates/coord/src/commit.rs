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

/// Commits `tasks` with the merged `words` of all of them, atomically:
/// the words travel as one tally (docs/protocol.md), which Redis checks
/// with one pattern match and stores as one string, whatever the commit's
/// size, on a single Redis and on a Raft cluster alike.
pub async fn commit<'w>(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: impl IntoIterator<Item = (&'w [u8], u64)>,
) -> Result<CommitOutcome, CoordError> {
    let (tally, total) = tally(words);
    let cmd = call(keys, consumer, tasks, total, &tally);
    let reply: Value = store.call("commit counts", &cmd).await?;
    let outcome = outcome(store, reply)?;
    Ok(settle(store, tasks, outcome))
}

/// The tally of `words`: a line `count word\n` per word, and the sum of
/// the counts. A word holds no ASCII whitespace (the counter splits on
/// it), so the text parses one way.
pub fn tally<'w>(words: impl IntoIterator<Item = (&'w [u8], u64)>) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut digits = itoa::Buffer::new();
    for (word, n) in words {
        out.extend_from_slice(digits.format(n).as_bytes());
        out.push(b' ');
        out.extend_from_slice(word);
        out.push(b'\n');
        total += n;
    }
    (out, total)
}

/// A commit whose try was retried after an unknown outcome (`-UNKNOWN`
/// from a Raft cluster, a connection lost after sending) and then found
/// every one of its tasks already committed: the unknown try committed
/// them, and the commit counts as applied. (The function is all or
/// nothing: had the unknown try not applied, some other commit would have
/// to have taken every task in between, which only a thief past the lease
/// of all of them could; the counts are exact either way, only this
/// worker's report would be off.) With some tasks still pending, the
/// unknown try did not apply, and the outcome stands.
fn settle(store: &Store, tasks: &[Committed<'_>], outcome: CommitOutcome) -> CommitOutcome {
    match outcome {
        CommitOutcome::NotPending(gone)
            if store.last_call_uncertain()
                && tasks.iter().all(|t| gone.iter().any(|g| g == t.id)) =>
        {
            tracing::info!(tasks = ?gone, "commit retried after an unknown outcome found its tasks committed: by that try");
            CommitOutcome::Applied
        }
        other => other,
    }
}

/// The FCALL of `wclab_commit`.
pub(crate) fn call(
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: u64,
    tally: &[u8],
) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_commit", &keys.commit_keys());
    cmd.arg(consumer).arg(tasks.len());
    for t in tasks {
        cmd.arg(t.id).arg(t.bytes);
    }
    cmd.arg(words).arg(tally);
    cmd
}

fn outcome(store: &Store, reply: Value) -> Result<CommitOutcome, CoordError> {
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
