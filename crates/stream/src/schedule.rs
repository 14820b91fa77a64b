//! The injection schedule: R files per second, one micro-batch a second.
//!
//! Batch k (from 0) is injected k seconds after the start and holds the
//! next R files of the input, in input order. Injection stops when the
//! input is used up or, with a duration D, after the last batch that starts
//! before D (a 3 s run injects at 0, 1 and 2 s; a 3.5 s run also at 3 s).

use std::ops::Range;
use std::time::Duration;

/// One micro-batch: the files injected together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroBatch {
    /// When, counted from the start of the injection.
    pub at: Duration,
    /// Indices of the files in the input list.
    pub files: Range<usize>,
}

/// The micro-batches for `available` input files at `rate` files per
/// second, for at most `duration` (`None`: until the input is used up).
/// A rate of 0 injects nothing.
pub fn micro_batches(available: usize, rate: usize, duration: Option<Duration>) -> Vec<MicroBatch> {
    if rate == 0 {
        return Vec::new();
    }
    let by_input = available.div_ceil(rate);
    let batches = match duration {
        Some(d) => by_input.min(d.as_millis().div_ceil(1000) as usize),
        None => by_input,
    };
    (0..batches)
        .map(|k| MicroBatch {
            at: Duration::from_secs(k as u64),
            files: k * rate..((k + 1) * rate).min(available),
        })
        .collect()
}

/// The same files, injected evenly over each second instead of all at its
/// start (`wclab stream --spread`): the j-th of a second's n files at j/n
/// of it, one file per batch. Without the micro-batch's own queue (R files
/// arriving at once for two workers), a file's latency is its service.
pub fn spread(batches: &[MicroBatch]) -> Vec<MicroBatch> {
    batches
        .iter()
        .flat_map(|b| {
            let n = b.files.len() as u32;
            b.files.clone().enumerate().map(move |(j, f)| MicroBatch {
                at: b.at + Duration::from_secs(1) * j as u32 / n,
                files: f..f + 1,
            })
        })
        .collect()
}

/// How many files the batches inject in all.
pub fn total_files(batches: &[MicroBatch]) -> usize {
    batches.iter().map(|b| b.files.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_runs_out_before_the_duration() {
        let b = micro_batches(25, 10, Some(Duration::from_secs(60)));
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].files, 20..25);
        assert_eq!(b[2].at, Duration::from_secs(2));
        assert_eq!(total_files(&b), 25);
    }

    #[test]
    fn the_duration_runs_out_before_the_input() {
        let b = micro_batches(1000, 10, Some(Duration::from_secs(3)));
        assert_eq!(b.len(), 3);
        assert_eq!(total_files(&b), 30);
        let b = micro_batches(1000, 10, Some(Duration::from_millis(3500)));
        assert_eq!(b.len(), 4);
        assert_eq!(b[3].files, 30..40);
    }

    #[test]
    fn spread_files_are_evenly_apart_within_their_second() {
        let b = spread(&micro_batches(10, 4, None));
        assert_eq!(total_files(&b), 10);
        let at: Vec<u64> = b.iter().map(|b| b.at.as_millis() as u64).collect();
        assert_eq!(at, [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500]);
        assert!(b.iter().enumerate().all(|(i, b)| b.files == (i..i + 1)));
    }

    #[test]
    fn without_a_duration_or_a_rate() {
        assert_eq!(total_files(&micro_batches(7, 2, None)), 7);
        assert!(micro_batches(7, 0, None).is_empty());
        assert!(micro_batches(0, 5, None).is_empty());
    }
}
