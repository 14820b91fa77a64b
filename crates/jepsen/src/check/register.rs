//! Linearizability of registers: `SET key v` (every `v` unique in the run)
//! and `GET key`.
//!
//! The search is Wing and Gong's, with Lowe's memoisation as Porcupine
//! does it: walk the history's invocations and completions in time order;
//! at an invocation, try to linearize that operation now (the register
//! model allows it, and the pair (set of linearized operations, register
//! value) was not seen before); at a completion whose operation is not
//! linearized yet, undo the last choice. The history is linearizable when
//! every operation could be placed. Registers are independent, so the
//! history is split by key first (P-compositionality), which keeps each
//! search small.
//!
//! Outcomes: an `ok` operation takes effect between its invocation and
//! its completion; a failed write never takes effect (it is left out); a
//! write of unknown outcome may take effect at any time after its
//! invocation, or never, which is the same as placing it after everything
//! else, so it gets a completion at the end of time. An unknown write whose
//! value nobody read is left out: with unique values, it cannot help or
//! hurt any linearization. Failed and unknown reads say nothing.
//!
//! Stateright's `LinearizabilityTester` does handle operations that never
//! returned (in flight at the end of their thread), but its search has no
//! memoisation and copies the remaining history at every step, so it is
//! exponential on exactly the histories a nemesis makes (many concurrent
//! unknown writes). It is used in this module's tests as an independent
//! second opinion on small random histories.
//!
//! Besides the verdict, each read is checked against two cheap rules that
//! name the classic anomalies: a value never written (`invented-value`), a
//! value of a write that failed (`failed-write-visible`: an error hid a
//! commit), and a value overwritten before the read began (`stale-read`;
//! `lost-write` when the read found nothing after an acknowledged write).

use super::{by_key, fold, Anomaly, Check};
use crate::history::{Op, Outcome, F};
use std::collections::{HashMap, HashSet};

/// Limits of the search, per key.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Memoised configurations at most (each costs a bitset of the key's
    /// operations); over it the key's verdict is unknown.
    pub max_bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { max_bytes: 1 << 30 }
    }
}

/// What a register operation does, for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Call {
    Write(i64),
    Read(Option<i64>),
}

/// The register's value: `None` until written.
type State = Option<i64>;

fn step(state: State, call: Call) -> Option<State> {
    match call {
        Call::Write(v) => Some(Some(v)),
        Call::Read(r) if r == state => Some(state),
        Call::Read(_) => None,
    }
}

/// One operation as the search sees it.
struct LinOp<'a> {
    call: Call,
    invoke: u64,
    /// `u64::MAX` for an unknown write.
    end: u64,
    op: &'a Op,
}

#[derive(Debug)]
enum Search {
    Linearizable,
    /// No linearization: `prefix` is the longest sequence of operations
    /// placed, `stuck` the operation whose completion came before it
    /// could be placed after that prefix.
    Violation {
        prefix: Vec<usize>,
        stuck: usize,
    },
    Exhausted,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

fn search(ops: &[LinOp], budget: Budget) -> Search {
    let m = ops.len();
    // Entries: (time, is completion, op). At equal times an invocation
    // sorts first: the two operations count as concurrent, never as
    // ordered, so ties can only make a history easier to linearize.
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * m);
    for (i, o) in ops.iter().enumerate() {
        entries.push((o.invoke, false, i));
        entries.push((o.end, true, i));
    }
    entries.sort_unstable();
    let n = entries.len();
    let (head, tail) = (n, n + 1);
    // A doubly linked list over the entries, with head and tail sentinels:
    // placing an operation unlinks its two entries, undoing relinks them
    // (dancing links), in stack order.
    let mut next: Vec<usize> = vec![0; n + 2];
    let mut prev: Vec<usize> = vec![0; n + 2];
    for i in 0..n {
        prev[i] = if i == 0 { head } else { i - 1 };
        next[i] = if i + 1 == n { tail } else { i + 1 };
    }
    next[head] = if n == 0 { tail } else { 0 };
    prev[tail] = if n == 0 { head } else { n - 1 };
    let (mut call_at, mut ret_at) = (vec![0; m], vec![0; m]);
    for (pos, &(_, is_ret, i)) in entries.iter().enumerate() {
        if is_ret {
            ret_at[i] = pos;
        } else {
            call_at[i] = pos;
        }
    }
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = nx;
        prev[nx] = p;
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = x;
        prev[nx] = x;
    };

    let entry_bytes = m.div_ceil(64) * 8 + 48;
    let mut linearized = BitSet::new(m);
    let mut seen: HashSet<(BitSet, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut best: (Vec<usize>, usize) = (Vec::new(), 0);
    let mut cur = next[head];
    while next[head] != tail {
        debug_assert_ne!(cur, tail, "a completion always comes before the tail");
        let (_, is_ret, i) = entries[cur];
        if !is_ret {
            if let Some(after) = step(state, ops[i].call) {
                linearized.set(i);
                if seen.insert((linearized.clone(), after)) {
                    if seen.len().saturating_mul(entry_bytes) > budget.max_bytes {
                        return Search::Exhausted;
                    }
                    stack.push((i, state));
                    state = after;
                    lift(&mut next, &mut prev, call_at[i]);
                    lift(&mut next, &mut prev, ret_at[i]);
                    cur = next[head];
                    continue;
                }
                linearized.clear(i);
            }
            cur = next[cur];
        } else {
            // Operation i completes here and was not placed: undo.
            if stack.len() > best.0.len() || best.0.is_empty() {
                best = (stack.iter().map(|s| s.0).collect(), i);
            }
            let Some((j, before)) = stack.pop() else {
                return Search::Violation {
                    prefix: best.0,
                    stuck: best.1,
                };
            };
            state = before;
            linearized.clear(j);
            unlift(&mut next, &mut prev, ret_at[j]);
            unlift(&mut next, &mut prev, call_at[j]);
            cur = next[call_at[j]];
        }
    }
    Search::Linearizable
}

/// Builds the search's operations for one key. `failed_as_unknown` turns
/// failed writes into unknown ones (to tell whether misreported failures
/// are the whole story).
fn lin_ops<'a>(ops: &[&'a Op], failed_as_unknown: bool) -> Vec<LinOp<'a>> {
    let read_values: HashSet<i64> = ops
        .iter()
        .filter(|o| o.f == F::Read && o.outcome == Outcome::Ok)
        .filter_map(|o| Op::int(&o.result))
        .collect();
    let mut out = Vec::new();
    for o in ops {
        let (call, end) = match (o.f, o.outcome) {
            (F::Write, Outcome::Ok) => (Call::Write(Op::int(&o.arg).unwrap_or(0)), o.end()),
            (F::Write, Outcome::Fail) if !failed_as_unknown => continue,
            (F::Write, _) => {
                let v = Op::int(&o.arg).unwrap_or(0);
                if !read_values.contains(&v) {
                    continue;
                }
                (Call::Write(v), u64::MAX)
            }
            (F::Read, Outcome::Ok) => (Call::Read(Op::int(&o.result)), o.end()),
            _ => continue,
        };
        out.push(LinOp {
            call,
            invoke: o.invoke,
            end,
            op: o,
        });
    }
    out
}

/// Checks every register in `ops` (writes and reads; other operations are
/// ignored) for linearizability.
pub fn check(ops: &[Op]) -> Check {
    check_with(ops, Budget::default())
}

/// [`check`] with a search budget.
pub fn check_with(ops: &[Op], budget: Budget) -> Check {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let regs = ops.iter().filter(|o| matches!(o.f, F::Write | F::Read));
    for (key, kops) in by_key(regs) {
        let found = fold(read_rules(&kops));
        let hidden_commit = found.iter().any(|a| a.kind == "failed-write-visible");
        anomalies.extend(found);
        let lin = lin_ops(&kops, false);
        match search(&lin, budget) {
            Search::Linearizable => {}
            Search::Exhausted => undecided.push(format!(
                "register {key}: search over its budget ({} operations)",
                lin.len()
            )),
            Search::Violation { prefix, stuck } => {
                // Would the history be linearizable if the writes reported
                // as failed had been reported unknown? Then the misreported
                // failures are the whole anomaly, already named above.
                if hidden_commit
                    && matches!(search(&lin_ops(&kops, true), budget), Search::Linearizable)
                {
                    continue;
                }
                let stuck_op = lin[stuck].op;
                let mut shown: Vec<Op> = prefix
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .map(|&i| lin[i].op.clone())
                    .collect();
                shown.push(stuck_op.clone());
                shown.extend(
                    lin.iter()
                        .filter(|l| {
                            !std::ptr::eq(l.op, stuck_op)
                                && l.invoke < stuck_op.end()
                                && stuck_op.invoke < l.end
                                && !prefix.iter().any(|&p| std::ptr::eq(lin[p].op, l.op))
                        })
                        .take(8)
                        .map(|l| l.op.clone()),
                );
                anomalies.push(Anomaly::new(
                    "not-linearizable",
                    format!(
                        "register {key}: no linearization of its {} operations; the longest linearizable prefix has {} (its last ones shown first), then {} cannot be placed (the operations concurrent with it follow)",
                        lin.len(),
                        prefix.len(),
                        stuck_op
                    ),
                    shown,
                ));
            }
        }
    }
    Check::new("register-linearizable", anomalies, undecided)
}

/// The per-read rules: a value never written, a value of a failed write,
/// a value overwritten (or nothing, after an acknowledged write) before
/// the read began.
fn read_rules(kops: &[&Op]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let writes: HashMap<i64, &Op> = kops
        .iter()
        .filter(|o| o.f == F::Write)
        .filter_map(|o| Op::int(&o.arg).map(|v| (v, *o)))
        .collect();
    // Acknowledged writes by completion time, with the latest invocation
    // among those completed so far: a write W2 with W.end < W2.invoke and
    // W2.end < R.invoke was certainly placed between W and R.
    let mut acked: Vec<(u64, u64, &Op)> = kops
        .iter()
        .filter(|o| o.f == F::Write && o.outcome == Outcome::Ok)
        .map(|o| (o.end(), o.invoke, *o))
        .collect();
    acked.sort_by_key(|a| a.0);
    let mut latest: Vec<usize> = Vec::with_capacity(acked.len());
    for (i, a) in acked.iter().enumerate() {
        let best = latest.last().copied();
        latest.push(match best {
            Some(b) if acked[b].1 >= a.1 => b,
            _ => i,
        });
    }
    for r in kops
        .iter()
        .filter(|o| o.f == F::Read && o.outcome == Outcome::Ok)
    {
        let v = Op::int(&r.result);
        let writer = v.and_then(|v| writes.get(&v).copied());
        if let Some(v) = v {
            match writer {
                None => {
                    out.push(Anomaly::new(
                        "invented-value",
                        format!("register {}: read {v}, which no write wrote", r.key),
                        vec![(*r).clone()],
                    ));
                    continue;
                }
                Some(w) if w.outcome == Outcome::Fail => {
                    out.push(Anomaly::new(
                        "failed-write-visible",
                        format!(
                            "register {}: read {v}, written by a write reported as failed ({})",
                            r.key,
                            w.error.as_deref().unwrap_or("no error text")
                        ),
                        vec![(*w).clone(), (*r).clone()],
                    ));
                    continue;
                }
                Some(w) if w.invoke > r.end() => {
                    out.push(Anomaly::new(
                        "read-from-the-future",
                        format!("register {}: read {v} before its write was invoked", r.key),
                        vec![(*w).clone(), (*r).clone()],
                    ));
                    continue;
                }
                _ => {}
            }
        }
        // The latest-invoked acknowledged write completed before r began.
        let n = acked.partition_point(|a| a.0 < r.invoke);
        if n == 0 {
            continue;
        }
        let (_, w2_invoke, w2) = acked[latest[n - 1]];
        let overwritten = match writer {
            None => true, // nothing read, after an acknowledged write
            Some(w) => !std::ptr::eq(w, w2) && w.end() < w2_invoke,
        };
        if overwritten {
            let (kind, what) = match v {
                None => ("lost-write", "nothing".to_owned()),
                Some(v) => ("stale-read", v.to_string()),
            };
            let mut shown: Vec<Op> = writer.map(|w| vec![w.clone()]).unwrap_or_default();
            shown.push(w2.clone());
            shown.push((*r).clone());
            out.push(Anomaly::new(
                kind,
                format!(
                    "register {}: read {what} although a later write was acknowledged before the read began",
                    r.key
                ),
                shown,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Validity;
    use crate::history::build::*;
    use crate::history::{pair, Type};

    fn verdict(ops: &[Spec]) -> Check {
        check(&pair(&history(ops)).unwrap())
    }

    const W: F = F::Write;
    const R: F = F::Read;
    const OK: Type = Type::Ok;

    #[test]
    fn sequential_and_overlapping_histories_that_are_linearizable_pass() {
        // Empty read, write, read, overlapping write/read that sees either.
        let c = verdict(&[
            (1, 0, Some(5), OK, R, "x", None, None),
            (1, 10, Some(20), OK, W, "x", int(1), None),
            (2, 25, Some(30), OK, R, "x", None, int(1)),
            (1, 40, Some(60), OK, W, "x", int(2), None),
            (2, 45, Some(50), OK, R, "x", None, int(1)), // before the write took effect
            (3, 46, Some(55), OK, R, "x", None, int(2)), // after
            (2, 70, Some(80), OK, R, "x", None, int(2)),
        ]);
        assert_eq!(c.validity, Validity::Valid, "{c:#?}");
    }

    #[test]
    fn a_stale_read_is_refused() {
        // w1 then w2 acknowledged, then a read sees 1.
        let c = verdict(&[
            (1, 0, Some(10), OK, W, "x", int(1), None),
            (1, 20, Some(30), OK, W, "x", int(2), None),
            (2, 40, Some(50), OK, R, "x", None, int(1)),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert_eq!(c.kinds(), vec!["not-linearizable", "stale-read"]);
    }

    #[test]
    fn a_lost_write_is_refused() {
        // Acknowledged, then a read finds nothing (as after a wiped majority).
        let c = verdict(&[
            (1, 0, Some(10), OK, W, "x", int(1), None),
            (2, 20, Some(30), OK, R, "x", None, None),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert_eq!(c.kinds(), vec!["lost-write", "not-linearizable"]);
    }

    #[test]
    fn concurrent_writes_seen_in_two_orders_are_refused() {
        // w1 and w2 overlap: either order is fine, but once one reader saw
        // 1 then 2, nobody may later see 1 again. No read is stale by the
        // pairwise rule (the writes are concurrent): only the search finds it.
        let c = verdict(&[
            (1, 0, Some(100), OK, W, "x", int(1), None),
            (2, 0, Some(100), OK, W, "x", int(2), None),
            (3, 10, Some(20), OK, R, "x", None, int(1)),
            (3, 30, Some(40), OK, R, "x", None, int(2)),
            (4, 50, Some(60), OK, R, "x", None, int(1)),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert_eq!(c.kinds(), vec!["not-linearizable"]);
        // The same with the last read seeing 2: fine.
        let c = verdict(&[
            (1, 0, Some(100), OK, W, "x", int(1), None),
            (2, 0, Some(100), OK, W, "x", int(2), None),
            (3, 10, Some(20), OK, R, "x", None, int(1)),
            (3, 30, Some(40), OK, R, "x", None, int(2)),
            (4, 50, Some(60), OK, R, "x", None, int(2)),
        ]);
        assert_eq!(c.validity, Validity::Valid, "{c:#?}");
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        // Unknown write of 2 at t=10; reads after it see 1, then 2, and
        // a read much later still sees 2: all fine.
        let c = verdict(&[
            (1, 0, Some(5), OK, W, "x", int(1), None),
            (2, 10, Some(15), Type::Unknown, W, "x", int(2), None),
            (3, 20, Some(25), OK, R, "x", None, int(1)),
            (3, 1000, Some(1010), OK, R, "x", None, int(2)),
        ]);
        assert_eq!(c.validity, Validity::Valid, "{c:#?}");
        // Never read: never needed.
        let c = verdict(&[
            (1, 0, Some(5), OK, W, "x", int(1), None),
            (2, 10, None, Type::Unknown, W, "x", int(2), None),
            (3, 20, Some(25), OK, R, "x", None, int(1)),
        ]);
        assert_eq!(c.validity, Validity::Valid);
        // But it cannot take effect before it was invoked.
        let c = verdict(&[
            (3, 0, Some(5), OK, R, "x", None, int(2)),
            (2, 10, Some(15), Type::Unknown, W, "x", int(2), None),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert!(c.kinds().contains(&"read-from-the-future".to_owned()));
    }

    #[test]
    fn a_failed_write_that_took_effect_is_named() {
        // TRYAGAIN for a write that was applied: its value is read.
        let c = verdict(&[
            (1, 0, Some(10), OK, W, "x", int(1), None),
            (2, 20, Some(30), Type::Fail, W, "x", int(2), None),
            (3, 40, Some(50), OK, R, "x", None, int(2)),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert_eq!(
            c.kinds(),
            vec!["failed-write-visible"],
            "the search does not add a second anomaly when the failure report is the only problem"
        );
        // A read of a value no one wrote.
        let c = verdict(&[(3, 40, Some(50), OK, R, "x", None, int(9))]);
        assert_eq!(c.kinds(), vec!["invented-value", "not-linearizable"]);
    }

    #[test]
    fn keys_are_independent() {
        let c = verdict(&[
            (1, 0, Some(10), OK, W, "x", int(1), None),
            (2, 20, Some(30), OK, R, "y", None, None),
            (2, 40, Some(50), OK, R, "x", None, int(1)),
        ]);
        assert_eq!(c.validity, Validity::Valid);
    }

    #[test]
    fn a_search_over_its_budget_is_unknown_not_valid() {
        let c = check_with(
            &pair(&history(&[
                (1, 0, Some(10), OK, W, "x", int(1), None),
                (2, 5, Some(30), OK, R, "x", None, int(1)),
            ]))
            .unwrap(),
            Budget { max_bytes: 1 },
        );
        assert_eq!(c.validity, Validity::Unknown);
    }

    #[test]
    fn long_histories_with_many_unknown_writes_are_checked_quickly() {
        // 4 processes, 6000 operations on one key, a tenth of the writes
        // unknown and read later: the memoised search stays near linear.
        let mut ops = Vec::new();
        let (mut t, mut value, mut last) = (0u64, 0i64, None);
        let mut process = 10;
        let mut pending_unknown = None;
        for i in 0..6000u64 {
            t += 10;
            let p = i % 4;
            if i % 3 == 0 {
                value += 1;
                if i % 30 == 0 {
                    process += 1;
                    ops.push((
                        process,
                        t,
                        Some(t + 5),
                        Type::Unknown,
                        W,
                        "x",
                        int(value),
                        None,
                    ));
                    pending_unknown = Some(value);
                } else {
                    ops.push((p, t, Some(t + 15), OK, W, "x", int(value), None));
                    last = Some(value);
                    pending_unknown = None;
                }
            } else {
                let seen = pending_unknown.or(last);
                ops.push((
                    p + 4,
                    t,
                    Some(t + 5),
                    OK,
                    R,
                    "x",
                    None,
                    seen.map(crate::history::Value::Int),
                ));
                if pending_unknown.is_some() {
                    last = pending_unknown;
                }
            }
        }
        let started = std::time::Instant::now();
        let c = verdict(&ops);
        assert_eq!(c.validity, Validity::Valid, "{:#?}", c.anomalies.first());
        eprintln!("6000 operations checked in {:?}", started.elapsed());
    }

    /// Random small histories of 3 processes, checked by our search and by
    /// stateright's brute-force tester: the verdicts must agree.
    #[test]
    fn agrees_with_stateright_on_random_small_histories() {
        use rand::{Rng, SeedableRng};
        use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
        use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..3000 {
            // Each process does a few operations one after another; times
            // are distinct; the last operation of a process may be unknown.
            let mut events: Vec<(u64, bool, u64, Call, bool)> = Vec::new(); // (time, is_completion, process, call, unknown)
            let mut times: Vec<u64> = (0..200).collect();
            let mut value = 0;
            let nprocs = 3;
            let mut per_proc: Vec<Vec<(Call, bool)>> = vec![Vec::new(); nprocs];
            for ops in per_proc.iter_mut() {
                let n = rng.random_range(1..=3);
                for k in 0..n {
                    let call = if rng.random_bool(0.5) {
                        value += 1;
                        Call::Write(value)
                    } else {
                        Call::Read(None) // filled below
                    };
                    let unknown =
                        k == n - 1 && matches!(call, Call::Write(_)) && rng.random_bool(0.3);
                    ops.push((call, unknown));
                }
            }
            // Reads return a random value among those written, or nothing.
            for ops in per_proc.iter_mut() {
                for (call, _) in ops.iter_mut() {
                    if let Call::Read(r) = call {
                        *r = match rng.random_range(0..=value) {
                            0 => None,
                            v => Some(v),
                        };
                    }
                }
            }
            // Lay each process's operations out in time, interleaved at random.
            use rand::seq::SliceRandom;
            times.shuffle(&mut rng);
            let mut slots = times.into_iter();
            for (p, ops) in per_proc.iter().enumerate() {
                let mut ts: Vec<u64> = (0..ops.len() * 2).map(|_| slots.next().unwrap()).collect();
                ts.sort();
                for (k, (call, unknown)) in ops.iter().enumerate() {
                    events.push((ts[2 * k], false, p as u64, *call, *unknown));
                    if !unknown {
                        events.push((ts[2 * k + 1], true, p as u64, *call, false));
                    }
                }
            }
            events.sort_by_key(|e| e.0);
            // Ours.
            let mut hist = Vec::new();
            for &(t, done, p, call, unknown) in &events {
                let (f, arg, res) = match call {
                    Call::Write(v) => (F::Write, int(v), None),
                    Call::Read(r) => (F::Read, None, r.map(crate::history::Value::Int)),
                };
                if !done {
                    hist.push(ev(Type::Invoke, p, t, f, "x", arg.clone()));
                    if unknown {
                        // Completed unknown at once; effect open-ended.
                        hist.push(ev(Type::Unknown, p, t, f, "x", arg));
                    }
                } else {
                    let v = if f == F::Read { res } else { arg };
                    hist.push(ev(Type::Ok, p, t, f, "x", v));
                }
            }
            let ours = check(&pair(&hist).unwrap());
            // Stateright's.
            let mut tester = LinearizabilityTester::new(Register(None::<i64>));
            for &(_, done, p, call, _) in &events {
                let op = match call {
                    Call::Write(v) => RegisterOp::Write(Some(v)),
                    Call::Read(_) => RegisterOp::Read,
                };
                if !done {
                    tester.on_invoke(p, op).unwrap();
                } else {
                    let ret = match call {
                        Call::Write(_) => RegisterRet::WriteOk,
                        Call::Read(r) => RegisterRet::ReadOk(r),
                    };
                    tester.on_return(p, ret).unwrap();
                }
            }
            let theirs = tester.serialized_history().is_some();
            assert_eq!(
                ours.validity == Validity::Valid,
                theirs,
                "verdicts differ on {events:?}: ours {ours:#?}"
            );
            if theirs {
                valid += 1
            } else {
                invalid += 1
            }
        }
        assert!(
            valid > 300 && invalid > 300,
            "{valid} valid, {invalid} invalid: not a useful mix"
        );
    }
}
