//! Unavailability after each fault: from the fault to the first operation
//! invoked after it that succeeded, as a client sees it. A measurement,
//! not a verdict.

use crate::history::{Fault, Op, Outcome, F};
use serde::{Deserialize, Serialize};

/// One fault and how long clients waited after it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Window {
    /// The nemesis.
    pub fault: String,
    /// The nodes it hit.
    pub nodes: Vec<u64>,
    /// Start, ms since the start of the run.
    pub start_ms: f64,
    /// How long the fault lasted (to its heal), ms.
    pub held_ms: Option<f64>,
    /// From the fault to the completion of the first `ok` operation invoked
    /// after it, ms; `None` if none succeeded afterwards.
    pub to_first_ok_ms: Option<f64>,
    /// The same for writes (write, add, append) only.
    pub to_first_ok_write_ms: Option<f64>,
    /// The longest time without any `ok` completion from the fault to
    /// 5 s after its heal, ms (operations already in flight at the fault
    /// can succeed just after it and hide the outage from the first
    /// figure; this one shows it).
    pub longest_gap_ms: Option<f64>,
}

/// The unavailability window of every fault.
pub fn windows(ops: &[Op], faults: &[Fault]) -> Vec<Window> {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut ok: Vec<&Op> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.f != F::Job)
        .collect();
    ok.sort_by_key(|o| o.invoke);
    faults
        .iter()
        .map(|f| {
            let after = &ok[ok.partition_point(|o| o.invoke < f.start)..];
            let first = |write: bool| {
                after
                    .iter()
                    .filter(|o| !write || o.f != F::Read)
                    .filter_map(|o| o.complete)
                    .min()
                    .map(|c| ms(c - f.start))
            };
            let until = f.end.unwrap_or(f.start).saturating_add(5_000_000_000);
            let mut done: Vec<u64> = ok
                .iter()
                .filter_map(|o| o.complete)
                .filter(|&c| c >= f.start && c <= until)
                .collect();
            done.sort_unstable();
            let longest_gap_ms = (!done.is_empty()).then(|| {
                let mut prev = f.start;
                let mut gap = 0;
                for c in done {
                    gap = gap.max(c - prev);
                    prev = c;
                }
                ms(gap)
            });
            Window {
                longest_gap_ms,
                fault: f.fault.clone(),
                nodes: f.nodes.clone(),
                start_ms: ms(f.start),
                held_ms: f.end.map(|e| ms(e.saturating_sub(f.start))),
                to_first_ok_ms: first(false),
                to_first_ok_write_ms: first(true),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::build::*;
    use crate::history::{pair, Type};

    #[test]
    fn the_window_ends_at_the_first_success_invoked_after_the_fault() {
        let ops = pair(&history(&[
            (1, 0, Some(2_000_000), Type::Ok, F::Write, "x", int(1), None),
            // In flight across the fault: does not count.
            (
                2,
                9_000_000,
                Some(11_000_000),
                Type::Ok,
                F::Write,
                "x",
                int(2),
                None,
            ),
            (
                3,
                10_500_000,
                Some(12_000_000),
                Type::Fail,
                F::Write,
                "x",
                int(3),
                None,
            ),
            (
                3,
                13_000_000,
                Some(15_000_000),
                Type::Ok,
                F::Read,
                "x",
                None,
                int(2),
            ),
            (
                3,
                16_000_000,
                Some(40_000_000),
                Type::Ok,
                F::Write,
                "x",
                int(4),
                None,
            ),
        ]))
        .unwrap();
        let faults = [Fault {
            fault: "kill-leader".into(),
            start: 10_000_000,
            end: Some(30_000_000),
            nodes: vec![1],
            detail: String::new(),
        }];
        let w = windows(&ops, &faults);
        assert_eq!(w[0].to_first_ok_ms, Some(5.0));
        assert_eq!(w[0].to_first_ok_write_ms, Some(30.0));
        assert_eq!(w[0].held_ms, Some(20.0));
        assert_eq!(w[0].longest_gap_ms, Some(25.0), "15 -> 40 ms");
    }
}
