//! Counters: `INCRBY key d` with d > 0, and `GET key`.
//!
//! A read must lie between what had certainly been added when it began
//! (the acknowledged increments completed before its invocation) and what
//! could have been added when it ended (acknowledged and unknown
//! increments invoked before its completion). Failed increments count in
//! neither bound: a read above the upper bound means an increment reported
//! as failed took effect (or a value was invented). The final read (after
//! every acknowledged increment completed) gives the classic
//! acknowledged ≤ final ≤ acknowledged + unknown; without one, nothing
//! proves that no acknowledged increment was lost, and the verdict is
//! unknown.

use super::{by_key, fold, Anomaly, Check};
use crate::history::{Op, Outcome, F};

/// Checks every counter in `ops` (adds and reads).
pub fn check(ops: &[Op]) -> Check {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let counters = ops.iter().filter(|o| matches!(o.f, F::Add | F::Read));
    for (key, kops) in by_key(counters) {
        let adds: Vec<&Op> = kops.iter().copied().filter(|o| o.f == F::Add).collect();
        let delta = |o: &Op| Op::int(&o.arg).unwrap_or(0);
        if let Some(bad) = adds.iter().find(|o| delta(o) <= 0) {
            undecided.push(format!(
                "counter {key}: increment {} is not positive; the bounds assume positive ones",
                delta(bad)
            ));
            continue;
        }
        // Lower bound: acknowledged adds by completion time.
        let mut done: Vec<(u64, i64)> = adds
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .map(|o| (o.end(), delta(o)))
            .collect();
        done.sort();
        let mut done_sum = vec![0i64];
        for d in &done {
            done_sum.push(done_sum.last().unwrap() + d.1);
        }
        // Upper bound: acknowledged or unknown adds by invocation time.
        let mut maybe: Vec<(u64, i64)> = adds
            .iter()
            .filter(|o| o.outcome != Outcome::Fail)
            .map(|o| (o.invoke, delta(o)))
            .collect();
        maybe.sort();
        let mut maybe_sum = vec![0i64];
        for d in &maybe {
            maybe_sum.push(maybe_sum.last().unwrap() + d.1);
        }
        let last_ack = done.last().map(|d| d.0).unwrap_or(0);
        let mut final_read = false;
        let mut found = Vec::new();
        for r in kops
            .iter()
            .filter(|o| o.f == F::Read && o.outcome == Outcome::Ok)
        {
            let v = Op::int(&r.result).unwrap_or(0);
            let lo = done_sum[done.partition_point(|d| d.0 < r.invoke)];
            let hi = maybe_sum[maybe.partition_point(|d| d.0 < r.end())];
            if r.invoke > last_ack {
                final_read = true;
            }
            if v < lo {
                let lost = adds
                    .iter()
                    .filter(|a| a.outcome == Outcome::Ok && a.end() < r.invoke)
                    .count();
                found.push(Anomaly::new(
                    "lost-write",
                    format!(
                        "counter {key}: read {v}, but {lo} had been acknowledged (by {lost} increments) before the read began"
                    ),
                    vec![(*r).clone()],
                ));
            } else if v > hi {
                let failed: Vec<Op> = adds
                    .iter()
                    .filter(|a| a.outcome == Outcome::Fail && a.invoke < r.end())
                    .map(|a| (*a).clone())
                    .collect();
                let mut shown = failed.iter().take(10).cloned().collect::<Vec<_>>();
                shown.push((*r).clone());
                found.push(Anomaly::new(
                    if failed.is_empty() {
                        "invented-value"
                    } else {
                        "failed-write-visible"
                    },
                    format!(
                        "counter {key}: read {v}, above the {hi} that acknowledged and unknown increments invoked before it could add ({} failed increments sum to {}: some took effect)",
                        failed.len(),
                        failed.iter().map(delta).sum::<i64>()
                    ),
                    shown,
                ));
            }
        }
        anomalies.extend(fold(found));
        if !final_read && !adds.is_empty() {
            undecided.push(format!(
                "counter {key}: no read after the last acknowledged increment: nothing shows that none was lost"
            ));
        }
    }
    Check::new("counter-bounds", anomalies, undecided)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Validity;
    use crate::history::build::*;
    use crate::history::{pair, Type};

    const ADD: F = F::Add;
    const R: F = F::Read;
    const OK: Type = Type::Ok;

    fn verdict(ops: &[Spec]) -> Check {
        check(&pair(&history(ops)).unwrap())
    }

    #[test]
    fn reads_within_bounds_and_a_final_read_pass() {
        let c = verdict(&[
            (1, 0, Some(10), OK, ADD, "c", int(2), None),
            (2, 5, Some(50), OK, ADD, "c", int(3), None),
            (3, 20, Some(30), OK, R, "c", None, int(2)), // 3 may or may not be in
            (4, 25, Some(60), Type::Unknown, ADD, "c", int(4), None),
            (3, 35, Some(40), OK, R, "c", None, int(9)), // the unknown 4 took effect
            (5, 45, Some(55), Type::Fail, ADD, "c", int(100), None),
            (3, 100, Some(110), OK, R, "c", None, int(9)), // final
        ]);
        assert_eq!(c.validity, Validity::Valid, "{c:#?}");
    }

    #[test]
    fn a_lost_increment_is_refused() {
        let c = verdict(&[
            (1, 0, Some(10), OK, ADD, "c", int(2), None),
            (1, 20, Some(30), OK, ADD, "c", int(3), None),
            (3, 40, Some(50), OK, R, "c", None, int(2)),
        ]);
        assert_eq!(c.validity, Validity::Invalid);
        assert_eq!(c.kinds(), vec!["lost-write"]);
    }

    #[test]
    fn a_stale_read_is_refused() {
        // The final read is fine; an earlier one went back in time.
        let c = verdict(&[
            (1, 0, Some(10), OK, ADD, "c", int(1), None),
            (2, 20, Some(30), OK, R, "c", None, int(0)),
            (2, 40, Some(50), OK, R, "c", None, int(1)),
        ]);
        assert_eq!(c.kinds(), vec!["lost-write"]);
    }

    #[test]
    fn a_failed_increment_that_took_effect_is_named() {
        let c = verdict(&[
            (1, 0, Some(10), OK, ADD, "c", int(1), None),
            (2, 20, Some(30), Type::Fail, ADD, "c", int(5), None),
            (3, 40, Some(50), OK, R, "c", None, int(6)),
        ]);
        assert_eq!(c.kinds(), vec!["failed-write-visible"]);
        // Above anything invoked, with no failure to explain it.
        let c = verdict(&[
            (1, 0, Some(10), OK, ADD, "c", int(1), None),
            (3, 40, Some(50), OK, R, "c", None, int(2)),
        ]);
        assert_eq!(c.kinds(), vec!["invented-value"]);
        // An increment invoked after the read ended cannot be in it.
        let c = verdict(&[
            (3, 0, Some(10), OK, R, "c", None, int(1)),
            (1, 20, Some(30), OK, ADD, "c", int(1), None),
            (3, 40, Some(50), OK, R, "c", None, int(1)),
        ]);
        assert_eq!(c.kinds(), vec!["invented-value"]);
    }

    #[test]
    fn without_a_final_read_the_verdict_is_unknown() {
        let c = verdict(&[
            (3, 0, Some(10), OK, R, "c", None, None),
            (1, 20, Some(30), OK, ADD, "c", int(1), None),
        ]);
        assert_eq!(c.validity, Validity::Unknown);
    }
}
