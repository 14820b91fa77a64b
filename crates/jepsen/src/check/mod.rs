//! Checkers: pure functions from a history to a verdict.
//!
//! Each checker returns a [`Check`]: valid, invalid (with every
//! [`Anomaly`] found and the operations that show it), or unknown (the
//! checker could not decide: no final read, a search over its budget).
//! Unknown is never reported as valid.
//!
//! * [`register`]: linearizability of SET/GET registers (a Wing–Gong
//!   search with Lowe's memoisation, key by key).
//! * [`counter`]: INCRBY counters, reads within bounds.
//! * [`list`]: RPUSH/LRANGE lists: acknowledged elements exactly once,
//!   nothing invented, reads prefixes of one another, real-time order.
//! * [`wordcount`]: a word-count job's result against the oracle.
//! * [`windows`]: unavailability after each fault (a measurement, not a
//!   verdict).

pub mod counter;
pub mod list;
pub mod register;
pub mod windows;
pub mod wordcount;

use crate::history::Op;
use serde::{Deserialize, Serialize};

/// The verdict of one checker.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// No anomaly.
    Valid,
    /// At least one anomaly.
    Invalid,
    /// Could not decide (and found no anomaly).
    Unknown,
}

/// One thing that should not have happened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// A short code: `lost-write`, `stale-read`, `failed-write-visible`, ...
    pub kind: String,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The operations that show it.
    pub ops: Vec<Op>,
}

impl Anomaly {
    /// An anomaly of `kind`.
    pub fn new(kind: &str, message: impl Into<String>, ops: Vec<Op>) -> Self {
        Anomaly {
            kind: kind.into(),
            message: message.into(),
            ops,
        }
    }
}

/// What one checker found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which checker.
    pub checker: String,
    /// Its verdict.
    pub validity: Validity,
    /// Every anomaly found (empty unless invalid).
    pub anomalies: Vec<Anomaly>,
    /// Why the verdict is unknown, or other remarks.
    pub notes: Vec<String>,
}

impl Check {
    /// A verdict from the anomalies found, and `undecided` reasons.
    pub fn new(checker: &str, anomalies: Vec<Anomaly>, undecided: Vec<String>) -> Self {
        let validity = if !anomalies.is_empty() {
            Validity::Invalid
        } else if !undecided.is_empty() {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        Check {
            checker: checker.into(),
            validity,
            anomalies,
            notes: undecided,
        }
    }

    /// True when the checker found no anomaly and decided.
    pub fn is_valid(&self) -> bool {
        self.validity == Validity::Valid
    }

    /// The anomaly kinds found, sorted and without repeats.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.anomalies.iter().map(|a| a.kind.clone()).collect();
        k.sort();
        k.dedup();
        k
    }
}

/// Groups operations by key, keeping their order.
pub(crate) fn by_key<'a>(
    ops: impl IntoIterator<Item = &'a Op>,
) -> std::collections::BTreeMap<String, Vec<&'a Op>> {
    let mut m: std::collections::BTreeMap<String, Vec<&'a Op>> = Default::default();
    for op in ops {
        m.entry(op.key.clone()).or_default().push(op);
    }
    m
}

/// Folds repeated anomalies of one kind (on one key: call it per key) into
/// one: the first, with the number of others like it and the last
/// operation of the next few, so that a report names each problem once.
pub(crate) fn fold(anomalies: Vec<Anomaly>) -> Vec<Anomaly> {
    let mut out: Vec<(Anomaly, usize)> = Vec::new();
    for a in anomalies {
        match out.iter_mut().find(|(f, _)| f.kind == a.kind) {
            Some((first, n)) => {
                *n += 1;
                if *n <= 3 {
                    first.ops.extend(a.ops.last().cloned());
                }
            }
            None => out.push((a, 0)),
        }
    }
    out.into_iter()
        .map(|(mut a, n)| {
            if n > 0 {
                a.message = format!(
                    "{} (and {n} more like it, the first ones' last operations shown after)",
                    a.message
                );
            }
            a
        })
        .collect()
}
