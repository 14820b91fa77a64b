//! Reading a job's results: top words, every count, dead letters.

use crate::{CoordError, JobKeys, Store};
use std::collections::HashMap;

/// A word and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCount {
    /// The word's bytes (not necessarily UTF-8).
    pub word: Vec<u8>,
    /// How often it occurred.
    pub count: u64,
}

/// The order of results everywhere: count descending, then word bytes
/// ascending, so that output is deterministic whatever Redis's tie order.
pub fn sort_words(words: &mut [WordCount]) {
    words.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
}

fn to_words(raw: Vec<(Vec<u8>, f64)>) -> Vec<WordCount> {
    // Counts are integers below 2^53, so the double Redis stores is exact.
    raw.into_iter()
        .map(|(word, s)| WordCount {
            word,
            count: s as u64,
        })
        .collect()
}

/// The `k` most frequent words; ties at the k-th place are broken by word
/// bytes, ascending. Correct at every instant of a job: while tallies wait
/// to be folded, every count is read and merged with them ([`all`]).
pub async fn top(
    store: &mut Store,
    keys: &JobKeys,
    k: usize,
) -> Result<Vec<WordCount>, CoordError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    if tallies_waiting(store, keys).await? > 0 {
        let mut words = all(store, keys).await?;
        words.truncate(k);
        return Ok(words);
    }
    let head: Vec<(Vec<u8>, f64)> = store
        .call(
            "read the top words",
            redis::cmd("ZRANGE")
                .arg(&keys.counts)
                .arg(0)
                .arg(k - 1)
                .arg("REV")
                .arg("WITHSCORES"),
        )
        .await?;
    let Some(&(_, kth)) = head.last() else {
        return Ok(Vec::new());
    };
    // Every word with the k-th count, so the cut is by word order, not Redis's.
    let ties: Vec<(Vec<u8>, f64)> = store
        .call(
            "read the top words",
            redis::cmd("ZRANGE")
                .arg(&keys.counts)
                .arg(kth)
                .arg("+inf")
                .arg("BYSCORE")
                .arg("WITHSCORES"),
        )
        .await?;
    let mut words = to_words(ties);
    sort_words(&mut words);
    words.truncate(k);
    if tallies_waiting(store, keys).await? > 0 {
        // A commit landed meanwhile: read everything.
        let mut words = all(store, keys).await?;
        words.truncate(k);
        return Ok(words);
    }
    Ok(words)
}

async fn tallies_waiting(store: &mut Store, keys: &JobKeys) -> Result<u64, CoordError> {
    store
        .call("count the tallies", redis::cmd("XLEN").arg(&keys.tallies))
        .await
}

async fn folds(store: &mut Store, keys: &JobKeys) -> Result<Option<String>, CoordError> {
    store
        .call(
            "read the job's folds",
            redis::cmd("HGET").arg(&keys.job).arg("folds"),
        )
        .await
}

/// Every word with its count (`counts` plus the tallies not folded yet),
/// sorted by [`sort_words`]. Without a transaction (a Raft cluster has
/// none), a consistent reading: the tallies first, then `counts`, and
/// again if a fold ran meanwhile (the job's `folds` changed). Commits in
/// between only append tallies, and leave `counts` alone.
pub async fn all(store: &mut Store, keys: &JobKeys) -> Result<Vec<WordCount>, CoordError> {
    loop {
        let before = folds(store, keys).await?;
        let tallies = crate::fold::read_tallies(store, keys, None).await?;
        let folded = folded_counts(store, keys).await?;
        if folds(store, keys).await? != before {
            continue;
        }
        let mut merged: HashMap<Vec<u8>, u64> = folded;
        for (id, text) in &tallies {
            for (word, n) in crate::fold::parse(store, id, text)? {
                *merged.entry(word.to_vec()).or_default() += n;
            }
        }
        let mut words: Vec<WordCount> = merged
            .into_iter()
            .map(|(word, count)| WordCount { word, count })
            .collect();
        sort_words(&mut words);
        return Ok(words);
    }
}

/// The `counts` sorted set alone.
async fn folded_counts(
    store: &mut Store,
    keys: &JobKeys,
) -> Result<HashMap<Vec<u8>, u64>, CoordError> {
    const PAGE: i64 = 100_000;
    let mut words = HashMap::new();
    let mut start = 0i64;
    loop {
        let page: Vec<(Vec<u8>, f64)> = store
            .call(
                "read the counts",
                redis::cmd("ZRANGE")
                    .arg(&keys.counts)
                    .arg(start)
                    .arg(start + PAGE - 1)
                    .arg("WITHSCORES"),
            )
            .await?;
        let n = page.len() as i64;
        words.extend(to_words(page).into_iter().map(|w| (w.word, w.count)));
        if n < PAGE {
            break;
        }
        start += PAGE;
    }
    Ok(words)
}

/// A task that could not be counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadTask {
    /// Stream entry ID of the task.
    pub task: String,
    /// The file.
    pub path: String,
    /// Why it was given up.
    pub reason: String,
    /// How many times it had been delivered.
    pub attempts: u64,
}

/// Every dead-lettered task of the job.
pub async fn dead(store: &mut Store, keys: &JobKeys) -> Result<Vec<DeadTask>, CoordError> {
    type Entry = (String, HashMap<String, String>);
    let entries: Vec<Entry> = store
        .call(
            "read the dead letters",
            redis::cmd("XRANGE").arg(&keys.dead).arg("-").arg("+"),
        )
        .await?;
    Ok(entries
        .into_iter()
        .map(|(_, f)| DeadTask {
            task: f.get("task").cloned().unwrap_or_default(),
            path: f.get("path").cloned().unwrap_or_default(),
            reason: f.get("reason").cloned().unwrap_or_default(),
            attempts: f.get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
        })
        .collect())
}

/// One committed task's completion record (for latency timelines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneRecord {
    /// Stream entry ID of the task.
    pub task: String,
    /// Consumer name of the worker that committed it.
    pub worker: String,
    /// Injection time, ms (server clock).
    pub injected_ms: u64,
    /// Commit time, ms (server clock).
    pub committed_ms: u64,
    /// Deliveries before the commit.
    pub attempts: u64,
    /// Bytes of the task.
    pub bytes: u64,
}

/// Every completion record of the job, in commit order.
pub async fn done(store: &mut Store, keys: &JobKeys) -> Result<Vec<DoneRecord>, CoordError> {
    type Entry = (String, HashMap<String, String>);
    let entries: Vec<Entry> = store
        .call(
            "read the completion records",
            redis::cmd("XRANGE").arg(&keys.done).arg("-").arg("+"),
        )
        .await?;
    let num =
        |f: &HashMap<String, String>, k: &str| f.get(k).and_then(|a| a.parse().ok()).unwrap_or(0);
    Ok(entries
        .into_iter()
        .map(|(_, f)| DoneRecord {
            task: f.get("task").cloned().unwrap_or_default(),
            worker: f.get("worker").cloned().unwrap_or_default(),
            injected_ms: num(&f, "injected"),
            committed_ms: num(&f, "committed"),
            attempts: num(&f, "attempts"),
            bytes: num(&f, "bytes"),
        })
        .collect())
}

/// When each task was last handed out to a worker (ms, server clock), by
/// task ID: the `claimed:<id>` fields `wclab_claim` writes into the job's
/// description. A task stolen after a crash shows its steal, the hand-out
/// whose worker may commit it; a backup copy (`wclab_speculate`) does not
/// move it.
pub async fn handed_out(
    store: &mut Store,
    keys: &JobKeys,
) -> Result<HashMap<String, u64>, CoordError> {
    let spec: HashMap<String, String> = store
        .call(
            "read the hand-out times",
            redis::cmd("HGETALL").arg(&keys.spec),
        )
        .await?;
    Ok(spec
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("claimed:")?.to_owned(), v.parse().ok()?)))
        .collect())
}

/// What the Redis server itself spent: the cost side of the design.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerWork {
    /// CPU seconds used by the server process (user + system).
    pub cpu_seconds: f64,
    /// FCALL calls executed.
    pub fcall_calls: u64,
}

/// Reads the server's cumulative CPU time and command counts (INFO). For a
/// private per-run Redis these are the job's own; for a shared one they
/// include everything since it started.
pub async fn server_work(store: &mut Store) -> Result<ServerWork, CoordError> {
    let info: String = store
        .call(
            "read INFO",
            redis::cmd("INFO").arg("cpu").arg("commandstats"),
        )
        .await?;
    let mut work = ServerWork::default();
    for line in info.lines() {
        let calls = |l: &str| -> u64 {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            work.cpu_seconds += v.trim().parse::<f64>().unwrap_or(0.0);
        } else if line.starts_with("cmdstat_fcall:") {
            work.fcall_calls = calls(line);
        }
    }
    Ok(work)
}
