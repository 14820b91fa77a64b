//! The history of a run: every operation's invocation and completion, as
//! Jepsen records them.
//!
//! A *process* is a logical client that does one operation at a time. Each
//! operation is two [`Event`]s: `invoke`, then `ok` (it took effect, with
//! its result), `fail` (it certainly did not take effect) or `unknown` (it
//! may have taken effect, at any time after its invocation, or never). A
//! process whose operation ended `unknown` never invokes again: the client
//! goes on as a fresh process, so that the checkers can treat the unknown
//! operation as concurrent with everything after it.
//!
//! Times are nanoseconds of one monotonic clock (the harness's), counted
//! from the start of the run. A history is written as JSON lines
//! ([`write_jsonl`]), one event per line, so that a run can be checked
//! again offline ([`read_jsonl`]).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What an event says about its operation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    /// The operation was sent.
    Invoke,
    /// It took effect; the event holds its result.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// It may or may not have taken effect (a timeout, a lost connection,
    /// an error that does not say).
    Unknown,
}

/// The operation's function.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum F {
    /// Register write: `SET key value` of a value unique in the run.
    Write,
    /// Read of a register (`GET`), a counter (`GET`) or a list (`LRANGE key 0 -1`).
    Read,
    /// Counter increment: `INCRBY key value`.
    Add,
    /// List append: `RPUSH key value` of an element unique in the run.
    Append,
    /// One whole word-count job (`wclab run`); key is the job's name.
    Job,
}

/// A value carried by an event: written, added, appended or read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(untagged)]
pub enum Value {
    /// An integer (register value, counter delta or reading, list element).
    Int(i64),
    /// A list as read.
    List(Vec<i64>),
}

/// One line of a history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Invoke, or how the operation ended.
    #[serde(rename = "type")]
    pub kind: Type,
    /// The logical client.
    pub process: u64,
    /// Nanoseconds since the start of the run (monotonic).
    pub time: u64,
    /// The operation.
    pub f: F,
    /// The key it works on.
    pub key: String,
    /// Invoke: the argument (`None` for reads); ok: the result (a read's
    /// value, `None` for a missing key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The node the client sent it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// Why it failed or is unknown, as the client saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How an operation ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Took effect, with a result.
    Ok,
    /// Certainly did not take effect.
    Fail,
    /// May have taken effect at any time after the invocation, or never.
    Unknown,
}

/// An operation: an invocation paired with its completion.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The logical client.
    pub process: u64,
    /// The operation.
    pub f: F,
    /// Its key.
    pub key: String,
    /// The argument given at invocation.
    pub arg: Option<Value>,
    /// The result of an `ok` operation.
    pub result: Option<Value>,
    /// How it ended.
    pub outcome: Outcome,
    /// Invocation time (ns).
    pub invoke: u64,
    /// Completion time (ns); `None` for an unknown outcome, which may take
    /// effect at any later time.
    pub complete: Option<u64>,
    /// Node it was sent to.
    pub node: Option<u64>,
    /// Error text of a failed or unknown operation.
    pub error: Option<String>,
}

impl Op {
    /// The argument or result as an integer.
    pub fn int(v: &Option<Value>) -> Option<i64> {
        match v {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// The time after which nothing of this operation can happen
    /// (`u64::MAX` when its outcome is unknown).
    pub fn end(&self) -> u64 {
        match self.outcome {
            Outcome::Unknown => u64::MAX,
            _ => self.complete.unwrap_or(u64::MAX),
        }
    }

    /// Did this operation finish before `other` began (real-time order)?
    pub fn precedes(&self, other: &Op) -> bool {
        self.end() < other.invoke
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |v: &Option<Value>| match v {
            None => "nil".to_owned(),
            Some(Value::Int(i)) => i.to_string(),
            Some(Value::List(l)) if l.len() > 12 => format!(
                "[{} ... {}] ({} elements)",
                l[..6]
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                l[l.len() - 6..]
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                l.len()
            ),
            Some(Value::List(l)) => format!(
                "[{}]",
                l.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
            ),
        };
        let ms = |t: u64| format!("{:.3}", t as f64 / 1e6);
        write!(
            f,
            "p{} {:?} {} {} -> {:?}",
            self.process,
            self.f,
            self.key,
            match self.f {
                F::Read => String::new(),
                _ => v(&self.arg),
            },
            self.outcome
        )?;
        if self.outcome == Outcome::Ok && self.f == F::Read {
            write!(f, " {}", v(&self.result))?;
        }
        write!(
            f,
            " [{} .. {} ms]",
            ms(self.invoke),
            self.complete.map(ms).unwrap_or_else(|| "?".into())
        )?;
        if let Some(n) = self.node {
            write!(f, " via node {n}")?;
        }
        if let Some(e) = &self.error {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// One fault the nemesis injected, as recorded in `nemesis.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The nemesis (`kill-leader`, `partition-follower`, ...).
    pub fault: String,
    /// When it began (ns, the history's clock).
    pub start: u64,
    /// When it was healed (ns), if it was.
    pub end: Option<u64>,
    /// The nodes it hit.
    pub nodes: Vec<u64>,
    /// What exactly was done.
    pub detail: String,
}

/// A history that breaks the rules of recording (not a finding about the
/// system under test: a bug of whoever wrote the history).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistoryError {
    /// A process invoked while its previous operation was in flight.
    #[error("process {process} invoked at {time} ns with an operation already in flight")]
    Overlap {
        /// The process.
        process: u64,
        /// When.
        time: u64,
    },
    /// A completion without an invocation.
    #[error("process {process} completed at {time} ns without an operation in flight")]
    Orphan {
        /// The process.
        process: u64,
        /// When.
        time: u64,
    },
    /// A process went on after an unknown outcome.
    #[error("process {process} invoked at {time} ns after an operation of unknown outcome (it must be replaced by a fresh process)")]
    AfterUnknown {
        /// The process.
        process: u64,
        /// When.
        time: u64,
    },
    /// A completion that does not match its invocation.
    #[error("process {process} completed a {got:?} at {time} ns while a {want:?} was in flight")]
    Mismatch {
        /// The process.
        process: u64,
        /// When.
        time: u64,
        /// In flight.
        want: F,
        /// Completed.
        got: F,
    },
    /// Times go backwards in the file.
    #[error("event at {time} ns follows one at {before} ns")]
    Unordered {
        /// This event's time.
        time: u64,
        /// The previous one's.
        before: u64,
    },
}

/// Pairs invocations with completions. An invocation never completed (the
/// run ended first) is an unknown outcome.
pub fn pair(events: &[Event]) -> Result<Vec<Op>, HistoryError> {
    let mut ops: Vec<Op> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut ended_unknown: std::collections::HashSet<u64> = Default::default();
    let mut last = 0u64;
    for e in events {
        if e.time < last {
            return Err(HistoryError::Unordered {
                time: e.time,
                before: last,
            });
        }
        last = e.time;
        match e.kind {
            Type::Invoke => {
                if open.contains_key(&e.process) {
                    return Err(HistoryError::Overlap {
                        process: e.process,
                        time: e.time,
                    });
                }
                if ended_unknown.contains(&e.process) {
                    return Err(HistoryError::AfterUnknown {
                        process: e.process,
                        time: e.time,
                    });
                }
                open.insert(e.process, ops.len());
                ops.push(Op {
                    process: e.process,
                    f: e.f,
                    key: e.key.clone(),
                    arg: e.value.clone(),
                    result: None,
                    outcome: Outcome::Unknown,
                    invoke: e.time,
                    complete: None,
                    node: e.node,
                    error: None,
                });
            }
            done => {
                let Some(i) = open.remove(&e.process) else {
                    return Err(HistoryError::Orphan {
                        process: e.process,
                        time: e.time,
                    });
                };
                let op = &mut ops[i];
                if op.f != e.f {
                    return Err(HistoryError::Mismatch {
                        process: e.process,
                        time: e.time,
                        want: op.f,
                        got: e.f,
                    });
                }
                op.error = e.error.clone();
                if e.node.is_some() {
                    op.node = e.node;
                }
                match done {
                    Type::Ok => {
                        op.outcome = Outcome::Ok;
                        op.complete = Some(e.time);
                        op.result = e.value.clone();
                    }
                    Type::Fail => {
                        op.outcome = Outcome::Fail;
                        op.complete = Some(e.time);
                    }
                    _ => {
                        // Unknown: it may take effect at any later time, so
                        // it has no completion time.
                        op.outcome = Outcome::Unknown;
                        ended_unknown.insert(e.process);
                    }
                }
            }
        }
    }
    Ok(ops)
}

/// Writes events as JSON lines.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in items {
        serde_json::to_writer(&mut w, e)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads JSON lines written by [`write_jsonl`].
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Vec<T>> {
    let r = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for (n, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} line {}: {e}", path.display(), n + 1),
            )
        })?);
    }
    Ok(out)
}

/// Records events from many clients at once, stamped with one monotonic
/// clock. Clones share the history.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
    next_process: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    /// A recorder whose clock starts at `start`.
    pub fn new(start: Instant) -> Self {
        Recorder {
            start,
            events: Arc::default(),
            next_process: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// A process ID never used before in this run.
    pub fn fresh_process(&self) -> u64 {
        self.next_process
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// Appends an event, stamping it now. The stamp is taken under the
    /// lock, so that the history is in time order.
    pub fn record(&self, mut e: Event) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        e.time = self.now();
        events.push(e);
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Builds events tersely, for hand-written histories in tests.
pub mod build {
    use super::*;

    /// An event of `process` at `time` ns.
    pub fn ev(kind: Type, process: u64, time: u64, f: F, key: &str, value: Option<Value>) -> Event {
        Event {
            kind,
            process,
            time,
            f,
            key: key.into(),
            value,
            node: None,
            error: None,
        }
    }

    /// An integer value.
    pub fn int(i: i64) -> Option<Value> {
        Some(Value::Int(i))
    }

    /// A list value.
    pub fn list(l: &[i64]) -> Option<Value> {
        Some(Value::List(l.to_vec()))
    }

    /// One operation: `(process, invoke, complete, type, f, key, arg,
    /// result)`, complete `None` for an invocation never completed.
    pub type Spec<'a> = (
        u64,
        u64,
        Option<u64>,
        Type,
        F,
        &'a str,
        Option<Value>,
        Option<Value>,
    );

    /// Events of `ops`, sorted by time into one history.
    pub fn history(ops: &[Spec]) -> Vec<Event> {
        let mut events = Vec::new();
        for (p, inv, done, kind, f, key, arg, res) in ops {
            events.push(ev(Type::Invoke, *p, *inv, *f, key, arg.clone()));
            if let Some(t) = done {
                let value = match kind {
                    Type::Ok if *f == F::Read => res.clone(),
                    _ => arg.clone(),
                };
                events.push(ev(*kind, *p, *t, *f, key, value));
            }
        }
        events.sort_by_key(|e| (e.time, e.kind != Type::Invoke));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn pairs_invocations_and_completions_and_keeps_unknowns_open_ended() {
        let h = history(&[
            (1, 10, Some(20), Type::Ok, F::Write, "k", int(1), None),
            (2, 15, Some(30), Type::Unknown, F::Write, "k", int(2), None),
            (3, 25, Some(35), Type::Ok, F::Read, "k", None, int(2)),
            (4, 40, None, Type::Ok, F::Write, "k", int(3), None),
        ]);
        let ops = pair(&h).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].outcome, Outcome::Ok);
        assert_eq!(ops[0].complete, Some(20));
        assert_eq!(ops[1].outcome, Outcome::Unknown);
        assert_eq!(ops[1].end(), u64::MAX, "an unknown op never ends");
        assert_eq!(ops[2].result, int(2));
        assert_eq!(ops[3].outcome, Outcome::Unknown, "never completed");
        assert!(ops[0].precedes(&ops[2]));
        assert!(!ops[1].precedes(&ops[2]));
    }

    #[test]
    fn a_process_that_went_on_after_an_unknown_outcome_is_refused() {
        let h = history(&[
            (1, 10, Some(20), Type::Unknown, F::Write, "k", int(1), None),
            (1, 30, Some(40), Type::Ok, F::Write, "k", int(2), None),
        ]);
        assert_eq!(
            pair(&h),
            Err(HistoryError::AfterUnknown {
                process: 1,
                time: 30
            })
        );
        let overlap = vec![
            ev(Type::Invoke, 1, 1, F::Write, "k", int(1)),
            ev(Type::Invoke, 1, 2, F::Write, "k", int(2)),
        ];
        assert!(matches!(pair(&overlap), Err(HistoryError::Overlap { .. })));
        let orphan = vec![ev(Type::Ok, 1, 1, F::Write, "k", int(1))];
        assert!(matches!(pair(&orphan), Err(HistoryError::Orphan { .. })));
    }

    #[test]
    fn a_history_survives_a_round_trip_through_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut h = history(&[
            (1, 10, Some(20), Type::Ok, F::Append, "l", int(7), None),
            (2, 12, Some(25), Type::Ok, F::Read, "l", None, list(&[7])),
            (3, 13, Some(26), Type::Ok, F::Read, "r", None, None),
            (4, 14, Some(27), Type::Fail, F::Add, "c", int(3), None),
        ]);
        h[1].error = Some("x".into());
        h[1].node = Some(2);
        write_jsonl(&path, &h).unwrap();
        let back: Vec<Event> = read_jsonl(&path).unwrap();
        assert_eq!(back, h);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().next().unwrap().contains(r#""type":"invoke""#));
    }
}
