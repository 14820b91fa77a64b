//! Lists: `RPUSH key e` (every `e` unique in the run) and `LRANGE key 0 -1`.
//!
//! Rules, for each key:
//!
//! * a read holds each element at most once (`duplicate`), only elements
//!   whose append was invoked before the read ended (`invented-value`),
//!   none whose append failed (`failed-write-visible`);
//! * every append acknowledged before a read began is in that read
//!   (`lost-write`; the final read, after every acknowledged append, holds
//!   them all, or the verdict is unknown);
//! * all reads are prefixes of the longest one (`order`): elements are
//!   never reordered or removed, and an element seen once is seen by
//!   every later read;
//! * appends ordered in real time appear in that order (`order`).

use super::{by_key, fold, Anomaly, Check};
use crate::history::{Op, Outcome, Value, F};
use std::collections::{HashMap, HashSet};

fn elements(o: &Op) -> &[i64] {
    match &o.result {
        Some(Value::List(l)) => l,
        _ => &[],
    }
}

/// Checks every list in `ops` (appends and reads).
pub fn check(ops: &[Op]) -> Check {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let lists = ops.iter().filter(|o| matches!(o.f, F::Append | F::Read));
    for (key, kops) in by_key(lists) {
        let mut found = Vec::new();
        let appends: HashMap<i64, &Op> = kops
            .iter()
            .filter(|o| o.f == F::Append)
            .filter_map(|o| Op::int(&o.arg).map(|e| (e, *o)))
            .collect();
        let reads: Vec<&Op> = kops
            .iter()
            .copied()
            .filter(|o| o.f == F::Read && o.outcome == Outcome::Ok)
            .collect();
        let mut acked: Vec<&Op> = appends
            .values()
            .copied()
            .filter(|o| o.outcome == Outcome::Ok)
            .collect();
        acked.sort_by_key(|o| o.end());

        for r in &reads {
            let els = elements(r);
            let mut seen = HashSet::new();
            for &e in els {
                if !seen.insert(e) {
                    found.push(Anomaly::new(
                        "duplicate",
                        format!("list {key}: element {e} appears twice in one read"),
                        vec![(*r).clone()],
                    ));
                    continue;
                }
                match appends.get(&e) {
                    None => found.push(Anomaly::new(
                        "invented-value",
                        format!("list {key}: element {e} was never appended"),
                        vec![(*r).clone()],
                    )),
                    Some(a) if a.outcome == Outcome::Fail => found.push(Anomaly::new(
                        "failed-write-visible",
                        format!(
                            "list {key}: element {e} is present, but its append was reported as failed ({})",
                            a.error.as_deref().unwrap_or("no error text")
                        ),
                        vec![(*a).clone(), (*r).clone()],
                    )),
                    Some(a) if a.invoke > r.end() => found.push(Anomaly::new(
                        "invented-value",
                        format!("list {key}: element {e} read before its append was invoked"),
                        vec![(*a).clone(), (*r).clone()],
                    )),
                    _ => {}
                }
            }
            let missing: Vec<Op> = acked
                .iter()
                .take_while(|a| a.end() < r.invoke)
                .filter(|a| !Op::int(&a.arg).is_some_and(|e| seen.contains(&e)))
                .map(|a| (*a).clone())
                .collect();
            if !missing.is_empty() {
                let n = missing.len();
                let mut shown: Vec<Op> = missing.into_iter().take(10).collect();
                shown.push((*r).clone());
                found.push(Anomaly::new(
                    "lost-write",
                    format!(
                        "list {key}: {n} acknowledged append(s) completed before a read began are missing from it"
                    ),
                    shown,
                ));
            }
        }

        // Prefixes of the longest read.
        if let Some(longest) = reads.iter().max_by_key(|r| elements(r).len()) {
            let full = elements(longest);
            for r in &reads {
                let els = elements(r);
                if full[..els.len()] != *els {
                    let at = els.iter().zip(full).position(|(a, b)| a != b).unwrap_or(0);
                    found.push(Anomaly::new(
                        "order",
                        format!(
                            "list {key}: a read of {} elements is not a prefix of the longest read ({} elements); first difference at position {at}",
                            els.len(),
                            full.len()
                        ),
                        vec![(*r).clone(), (*longest).clone()],
                    ));
                }
            }
            // Appends ordered in real time keep that order.
            let pos: HashMap<i64, usize> = full.iter().enumerate().map(|(i, &e)| (e, i)).collect();
            let mut present: Vec<(&Op, usize)> = full
                .iter()
                .filter_map(|e| appends.get(e).map(|a| (*a, pos[e])))
                .collect();
            present.sort_by_key(|(a, _)| a.end());
            let mut best: Vec<(u64, usize, &Op)> = Vec::new(); // running max position by end time
            for &(a, p) in &present {
                let prev = best.last().map(|b| (b.1, b.2));
                match prev {
                    Some((bp, bo)) if bp >= p => best.push((a.end(), bp, bo)),
                    _ => best.push((a.end(), p, a)),
                }
            }
            for &(b, p) in &present {
                let n = best.partition_point(|x| x.0 < b.invoke);
                if n > 0 {
                    let (_, ap, a) = best[n - 1];
                    if ap > p {
                        found.push(Anomaly::new(
                            "order",
                            format!(
                                "list {key}: element {} (appended later) stands before element {} (appended earlier)",
                                Op::int(&b.arg).unwrap_or(0),
                                Op::int(&a.arg).unwrap_or(0)
                            ),
                            vec![a.clone(), b.clone()],
                        ));
                    }
                }
            }
        }

        anomalies.extend(fold(found));
        let last_ack = acked.last().map(|a| a.end()).unwrap_or(0);
        if !acked.is_empty() && !reads.iter().any(|r| r.invoke > last_ack) {
            undecided.push(format!(
                "list {key}: no read after the last acknowledged append: nothing shows that none was lost"
            ));
        }
    }
    Check::new("list-append", anomalies, undecided)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Validity;
    use crate::history::build::*;
    use crate::history::{pair, Type};

    const A: F = F::Append;
    const R: F = F::Read;
    const OK: Type = Type::Ok;

    fn verdict(ops: &[Spec]) -> Check {
        check(&pair(&history(ops)).unwrap())
    }

    #[test]
    fn concurrent_appends_in_either_order_and_prefix_reads_pass() {
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (2, 20, Some(60), OK, A, "l", int(3), None),
            (1, 25, Some(50), OK, A, "l", int(2), None), // concurrent with 3
            (3, 30, Some(40), OK, R, "l", None, list(&[1, 2])),
            (4, 70, Some(80), Type::Unknown, A, "l", int(4), None),
            (5, 75, Some(85), Type::Fail, A, "l", int(5), None),
            (3, 100, Some(110), OK, R, "l", None, list(&[1, 2, 3, 4])),
        ]);
        assert_eq!(c.validity, Validity::Valid, "{c:#?}");
    }

    #[test]
    fn a_lost_append_is_refused() {
        // The scenario: ten appends acknowledged, then an empty list.
        let mut ops: Vec<_> = (0..10)
            .map(|i| {
                (
                    1,
                    i * 10,
                    Some(i * 10 + 5),
                    OK,
                    A,
                    "lw",
                    int(i as i64),
                    None,
                )
            })
            .collect();
        ops.push((2, 200, Some(210), OK, R, "lw", None, list(&[])));
        let c = verdict(&ops);
        assert_eq!(c.kinds(), vec!["lost-write"]);
        assert_eq!(c.anomalies[0].ops.len(), 11);
    }

    #[test]
    fn a_stale_read_is_refused() {
        // The final read is complete, but a read that began after 2 was
        // acknowledged did not see it.
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (1, 20, Some(30), OK, A, "l", int(2), None),
            (2, 40, Some(50), OK, R, "l", None, list(&[1])),
            (2, 60, Some(70), OK, R, "l", None, list(&[1, 2])),
        ]);
        assert_eq!(c.kinds(), vec!["lost-write"]);
    }

    #[test]
    fn duplicates_inventions_failures_and_reorderings_are_refused() {
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (2, 20, Some(30), OK, R, "l", None, list(&[1, 1])),
        ]);
        assert!(c.kinds().contains(&"duplicate".to_owned()), "{c:#?}");
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (2, 20, Some(30), OK, R, "l", None, list(&[1, 7])),
        ]);
        assert_eq!(c.kinds(), vec!["invented-value"]);
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (1, 15, Some(18), Type::Fail, A, "l", int(2), None),
            (2, 20, Some(30), OK, R, "l", None, list(&[1, 2])),
        ]);
        assert_eq!(c.kinds(), vec!["failed-write-visible"]);
        // 1 acknowledged before 2 was invoked, but 2 stands first.
        let c = verdict(&[
            (1, 0, Some(10), OK, A, "l", int(1), None),
            (1, 15, Some(18), OK, A, "l", int(2), None),
            (2, 20, Some(30), OK, R, "l", None, list(&[2, 1])),
        ]);
        assert_eq!(c.kinds(), vec!["order"]);
        // Two reads that diverge: neither is a prefix of the other.
        let c = verdict(&[
            (1, 0, Some(100), OK, A, "l", int(1), None),
            (2, 0, Some(100), OK, A, "l", int(2), None),
            (3, 20, Some(30), OK, R, "l", None, list(&[1])),
            (4, 40, Some(50), OK, R, "l", None, list(&[2])),
            (4, 140, Some(150), OK, R, "l", None, list(&[2, 1])),
        ]);
        assert_eq!(c.kinds(), vec!["order"]);
    }

    #[test]
    fn without_a_final_read_the_verdict_is_unknown() {
        let c = verdict(&[
            (2, 0, Some(5), OK, R, "l", None, list(&[])),
            (1, 10, Some(20), OK, A, "l", int(1), None),
        ]);
        assert_eq!(c.validity, Validity::Unknown);
    }
}
