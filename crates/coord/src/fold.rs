//! `wclab_fold`: moves the commits' tallies into the `counts` sorted set.
//!
//! A commit appends its counts as one tally (docs/protocol.md); the job's
//! counts are `counts` plus the tallies not folded yet. Folding reads the
//! tallies, merges them here (the client's CPU, not Redis's) and has Redis
//! add the merged words to `counts` once: per fold one sorted-set update
//! per distinct word, instead of one per word of every commit.

use crate::{CoordError, JobKeys, Store};
use redis::Value;
use std::collections::HashMap;

/// How much one fold call takes on: the rest is folded by the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldLimits {
    /// Tallies merged per call: bounds what the client holds and what one
    /// function call costs Redis.
    pub tallies: usize,
    /// Bytes of tally text merged per call (one tally at least, whatever
    /// its size: it fitted in its commit). The merged tally is at most
    /// this long, so it stays below what Redis takes in one argument
    /// (`proto-max-bulk-len`, 512 MB by default): a vocabulary of tens of
    /// millions of words (unique tokens, IDs) made 256 tallies of a few
    /// MB each merge into more than that, which Redis refuses, and the
    /// fold could never finish. It also bounds the time one call keeps
    /// Redis busy.
    pub bytes: usize,
}

impl Default for FoldLimits {
    fn default() -> Self {
        FoldLimits {
            tallies: 256,
            bytes: 64 << 20,
        }
    }
}

/// A tally as Redis keeps it: the entry ID in `tallies` and its text.
pub(crate) type Tally = (String, Vec<u8>);

/// What [`fold`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Tallies folded into `counts`.
    pub tallies: u64,
    /// Words (the sum of their counts) they held.
    pub words: u64,
    /// Sorted-set updates: distinct words per fold call.
    pub updates: u64,
    /// Calls that found another fold had taken their tallies first.
    pub raced: u64,
}

/// Folds every tally there is into `counts`. Safe to run from several
/// clients at once and alongside commits: a call whose tallies another
/// fold took first changes nothing and is repeated with what is left.
pub async fn fold(store: &mut Store, keys: &JobKeys) -> Result<Folded, CoordError> {
    fold_with(store, keys, FoldLimits::default()).await
}

/// [`fold`], each call within `limits`.
pub async fn fold_with(
    store: &mut Store,
    keys: &JobKeys,
    limits: FoldLimits,
) -> Result<Folded, CoordError> {
    let mut done = Folded::default();
    loop {
        let mut batch = read_tallies(store, keys, Some(limits.tallies.max(1))).await?;
        let mut bytes = 0;
        let within = batch
            .iter()
            .take_while(|(_, text)| {
                bytes += text.len();
                bytes <= limits.bytes
            })
            .count();
        batch.truncate(within.max(1));
        let (Some((first, _)), Some((last, _))) = (batch.first(), batch.last()) else {
            return Ok(done);
        };
        let (first, last) = (first.clone(), last.clone());
        let mut merged: HashMap<&[u8], u64> = HashMap::new();
        for (id, text) in &batch {
            for (word, n) in parse(store, id, text)? {
                *merged.entry(word).or_default() += n;
            }
        }
        let mut words: Vec<(&[u8], u64)> = merged.into_iter().collect();
        sort_for_insertion(&mut words);
        let (tally, total) = crate::commit::tally(words.iter().copied());
        let cmd = call(keys, &first, &last, batch.len(), total, &tally);
        let reply: Value = store.call("fold the tallies", &cmd).await?;
        match reply {
            Value::Array(items) if matches!(items.first(), Some(Value::Int(1))) => {
                done.tallies += batch.len() as u64;
                done.words += total;
                done.updates += words.len() as u64;
            }
            // Another fold took some of them first: read again.
            Value::Array(items) if matches!(items.first(), Some(Value::Int(0))) => {
                done.raced += 1;
            }
            other => {
                return Err(CoordError::Protocol {
                    target: store.target().clone(),
                    op: "wclab_fold",
                    detail: format!("{other:?}"),
                })
            }
        }
    }
}

/// The FCALL of `wclab_fold`.
pub(crate) fn call(
    keys: &JobKeys,
    first: &str,
    last: &str,
    n: usize,
    words: u64,
    tally: &[u8],
) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_fold", &keys.fold_keys());
    cmd.arg(first).arg(last).arg(n).arg(words).arg(tally);
    cmd
}

/// The oldest tallies, up to `limit` of them (all without one).
pub(crate) async fn read_tallies(
    store: &mut Store,
    keys: &JobKeys,
    limit: Option<usize>,
) -> Result<Vec<Tally>, CoordError> {
    type Entry = (String, HashMap<String, Vec<u8>>);
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(&keys.tallies).arg("-").arg("+");
    if let Some(n) = limit {
        cmd.arg("COUNT").arg(n);
    }
    let entries: Vec<Entry> = store.call("read the tallies", &cmd).await?;
    Ok(entries
        .into_iter()
        .map(|(id, mut f)| {
            let text = f.remove("tally").unwrap_or_default();
            (id, text)
        })
        .collect())
}

/// The (word, count) lines of a tally that Redis accepted (so well formed;
/// checked again, since a hand-edited key would otherwise be misread).
pub(crate) fn parse<'t>(
    store: &Store,
    id: &str,
    text: &'t [u8],
) -> Result<Vec<(&'t [u8], u64)>, CoordError> {
    let bad = |line: &[u8]| CoordError::Protocol {
        target: store.target().clone(),
        op: "read the tallies",
        detail: format!(
            "tally {id}: line {:?} is not `count word`",
            String::from_utf8_lossy(line)
        ),
    };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|b| *b == b'\n')
        .map(|line| {
            let space = line
                .iter()
                .position(|b| *b == b' ')
                .ok_or_else(|| bad(line))?;
            let n = std::str::from_utf8(&line[..space])
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or_else(|| bad(line))?;
            let word = &line[space + 1..];
            if word.is_empty() {
                return Err(bad(line));
            }
            Ok((word, n))
        })
        .collect()
}

/// Sorts words into the reverse of the sorted set's order (count, then
/// word, descending), the order in which Redis inserts them fastest: each
/// new member is the smallest so far, so the skip list's search for its
/// place ends at the head at once. Measured with the bench corpus's 83 k
/// words: ZADD 30 ms against 96 ms in hash order and 44 ms ascending.
///
/// Only speed depends on the order, so it need not be exact: a radix sort
/// on the count and the word's first eight bytes, 2 ms for those words
/// against 6 ms for a comparison sort of whole words.
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
