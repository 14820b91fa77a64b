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

/// Commits with at least this many distinct words are staged: a native
/// ZADD and `wclab_commit_staged` in one MULTI/EXEC. Smaller ones travel
/// as FCALL arguments and are added with ZINCRBY, which is cheapest when
/// few words are new.
const STAGED_MIN_WORDS: usize = 1000;

/// Members per staging ZADD (one command stays well inside Redis's limits
/// on arguments and query buffers).
const ZADD_MEMBERS: usize = 100_000;

/// Commits `tasks` with the merged `words` of all of them, atomically.
/// Every word must appear once.
///
/// A big batch's words are staged with a native ZADD in the same
/// transaction as the commit's function: Redis then parses them once, into
/// its own strings, instead of handing Lua hundreds of thousands of
/// arguments (on a 2-core machine, with 83 k words, 38 ms of Redis time
/// against 85 ms; see bench/). On a Raft cluster, which has no MULTI, they
/// are FCALL arguments.
pub async fn commit<'w>(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: impl IntoIterator<Item = (&'w [u8], u64)>,
) -> Result<CommitOutcome, CoordError> {
    let mut words: Vec<(&[u8], u64)> = words.into_iter().collect();
    if words.len() >= STAGED_MIN_WORDS && store.transactions() {
        sort_for_insertion(&mut words);
        match staged(store, keys, consumer, tasks, &words).await {
            Err(e) if refuses_transactions(&e) => store.no_transactions(),
            outcome => return outcome.map(|o| settle(store, tasks, o)),
        }
    }
    let outcome = as_arguments(store, keys, consumer, tasks, &words).await?;
    Ok(settle(store, tasks, outcome))
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

/// Sorts words into the reverse of the sorted set's order (count, then
/// word, descending), the order in which Redis inserts them fastest: each
/// new member is the smallest so far, so the skip list's search for its
/// place ends at the head at once. Measured with the bench corpus's 83 k
/// words: ZADD 30 ms against 96 ms in hash order and 44 ms ascending.
///
/// Only speed depends on the order, so it need not be exact: a radix sort
/// on the count and the word's first eight bytes, 2 ms for those words
/// against 6 ms for a comparison sort of whole words (it is on the
/// worker's critical path too).
fn sort_for_insertion(words: &mut Vec<(&[u8], u64)>) {
    fn prefix(word: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        let n = word.len().min(8);
        b[..n].copy_from_slice(&word[..n]);
        u64::from_be_bytes(b)
    }
    // Descending: complements sort in reverse.
    let mut keyed: Vec<(u32, u64, u32)> = words
        .iter()
        .enumerate()
        .map(|(i, (w, n))| (!((*n).min(u32::MAX as u64) as u32), !prefix(w), i as u32))
        .collect();
    radsort::sort_by_key(&mut keyed, |k| (k.0, k.1));
    *words = keyed.iter().map(|k| words[k.2 as usize]).collect();
}

/// The FCALL head of either commit function: keys, consumer, tasks, total.
fn commit_call(
    function: &str,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: &[(&[u8], u64)],
) -> redis::Cmd {
    let mut cmd = crate::function_call(function, &keys.commit_keys());
    cmd.arg(consumer).arg(tasks.len());
    for t in tasks {
        cmd.arg(t.id).arg(t.bytes);
    }
    cmd.arg(words.iter().map(|w| w.1).sum::<u64>());
    cmd
}

/// The FCALL of `wclab_commit`: the words as (count, word) arguments.
pub(crate) fn plain_call(
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: &[(&[u8], u64)],
) -> redis::Cmd {
    let mut cmd = commit_call("wclab_commit", keys, consumer, tasks, words);
    for (word, n) in words {
        cmd.arg(*n).arg(*word);
    }
    cmd
}

/// The FCALL of `wclab_commit_staged`, for `words` ZADDed into `merging`
/// in the same transaction.
pub(crate) fn staged_call(
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: &[(&[u8], u64)],
) -> redis::Cmd {
    let mut cmd = commit_call("wclab_commit_staged", keys, consumer, tasks, words);
    cmd.arg(words.len());
    cmd
}

async fn as_arguments(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: &[(&[u8], u64)],
) -> Result<CommitOutcome, CoordError> {
    let cmd = plain_call(keys, consumer, tasks, words);
    let reply: Value = store.call("commit counts", &cmd).await?;
    outcome(store, "commit counts", reply)
}

async fn staged(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    tasks: &[Committed<'_>],
    words: &[(&[u8], u64)],
) -> Result<CommitOutcome, CoordError> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    // Empty already, unless an earlier transaction failed half-way.
    pipe.cmd("UNLINK").arg(&keys.merging).ignore();
    for chunk in words.chunks(ZADD_MEMBERS) {
        let zadd = pipe.cmd("ZADD").arg(&keys.merging);
        for (word, n) in chunk {
            zadd.arg(*n).arg(*word);
        }
        zadd.ignore();
    }
    pipe.add_command(staged_call(keys, consumer, tasks, words));
    let (reply,): (Value,) = store.call_pipe("commit counts (staged)", &pipe).await?;
    outcome(store, "commit counts (staged)", reply)
}

/// A server that takes no MULTI (a Raft node's sidecar): it refuses the
/// commands of a transaction with the code `WCLABNOMULTI`, and EXEC aborts.
fn refuses_transactions(e: &CoordError) -> bool {
    let CoordError::Redis { source, .. } = e else {
        return false;
    };
    crate::store::error_codes(source)
        .iter()
        .any(|(code, _)| code == crate::codes::NO_MULTI)
}

fn outcome(store: &Store, op: &'static str, reply: Value) -> Result<CommitOutcome, CoordError> {
    match reply {
        // The function's error inside EXEC's reply (a refusal, say).
        Value::ServerError(e) => Err(store.failed(op, e.into())),
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
