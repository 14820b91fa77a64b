//! `summary.json`: latency percentiles, throughput, and recovery after
//! each event.
//!
//! # Percentiles
//!
//! Nearest rank: the p-th percentile of n sorted latencies is the value at
//! rank ⌈p/100 · n⌉ (from 1). No interpolation, so every figure is the
//! latency of a real file.
//!
//! # Recovery
//!
//! * **Baseline**: the files injected *and committed* before the first
//!   event (the whole run when there are no events, or fewer than
//!   [`MIN_BASELINE`] such files). Only files committed before the first
//!   fault are known to be unaffected by it: the file a crashed worker held
//!   was injected before the crash but is committed a lease later, and
//!   counting it in would make the nearest-rank p95 of a short baseline
//!   (fewer than 20 files: their maximum) that one delayed file.
//! * **Late**: a file is late when its latency exceeds the threshold
//!   `max(2 × baseline p95, baseline p50 + 100 ms)` — twice the normal
//!   spread, and never less than a tenth of a second above normal, so that
//!   scheduling noise on a busy machine is not taken for a fault.
//! * **Affected by an event at E** (charged to it): the files committed at
//!   or after E that would have turned late (injection time + threshold) at
//!   or after E and before the next event. A fault can only make a file
//!   late if it happens before the file turns late; the latest such event
//!   is blamed. So the file a crashed worker held (injected just before the
//!   crash) belongs to that crash, and files already late belong to an
//!   earlier event.
//! * **Recovery time** of the event: from E to the commit of the last late
//!   file it affected; 0 when it affected no late file. The event is
//!   `recovered` if no affected file was late, or if a file injected after
//!   the last late one it affected (a file charged to it, or injected after
//!   E) was on time: on the timeline, latency was seen back under the
//!   threshold. Files of other, earlier events do not count. A run whose
//!   last injected files are late reports `recovered: false`.
//! * **After the release** (stragglers): for a `straggle_start` followed by
//!   its `straggle_end`, `after_release_ms` is the time from the release to
//!   the commit of the last late file charged to either (0 if the last one
//!   was committed before the release): how long the slowdown outlived it.
//!
//! On the timeline the recovery time is the time from the event's marker
//! until the last point above the threshold that it caused (that point
//! sits at its injection time, plus its latency, on the commit clock).

use crate::{Event, EventKind, LatencyRecord, StreamError};
use serde::Serialize;
use std::path::Path;

/// Fewest files before the first event for them to be the baseline.
pub const MIN_BASELINE: usize = 5;

/// Latency percentiles of a set of files, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: i64,
    /// 95th percentile.
    pub p95: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Largest.
    pub max: i64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Percentiles {
    /// Percentiles of `latencies` (any order); all zero when empty.
    pub fn of(latencies: impl IntoIterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = latencies.into_iter().collect();
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        Percentiles {
            p50: percentile(&v, 50.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            max: *v.last().unwrap_or(&0),
            mean: v.iter().sum::<i64>() as f64 / v.len() as f64,
        }
    }
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending, non-empty).
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// What "normal" was, and the threshold above which a file is late.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    /// Files the baseline is made of.
    pub files: usize,
    /// True when too few files were committed before the first event and
    /// the whole run (faults included) had to serve as the baseline.
    pub whole_run: bool,
    /// Their median latency.
    pub p50_ms: i64,
    /// Their 95th percentile.
    pub p95_ms: i64,
    /// `max(2 × p95, p50 + 100 ms)`.
    pub late_threshold_ms: i64,
}

/// How the run coped with one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// Seconds after the first injection.
    pub at_s: f64,
    /// Server time, ms.
    pub at: u64,
    /// What happened.
    pub kind: EventKind,
    /// Which workers.
    pub detail: String,
    /// Files affected (see the module doc).
    pub affected_files: usize,
    /// Of which late.
    pub late_files: usize,
    /// Largest latency among the affected files, ms.
    pub peak_latency_ms: i64,
    /// From the event to the commit of the last late file it affected, ms.
    pub recovery_ms: i64,
    /// Latency was seen back under the threshold before the run ended.
    pub recovered: bool,
    /// Stragglers slowed: from their release to the commit of the last late
    /// file charged to the slowdown or the release, ms (0 if none was late
    /// after the release). Absent for other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_release_ms: Option<i64>,
}

/// The whole of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// How the run was set up (rate, workers...), filled by the caller.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Files committed (with a latency record).
    pub files_committed: usize,
    /// Latency of every committed file, ms.
    pub latency_ms: Percentiles,
    /// Median latency, ms (also in `latency_ms`).
    pub p50_ms: i64,
    /// 95th percentile, ms.
    pub p95_ms: i64,
    /// 99th percentile, ms.
    pub p99_ms: i64,
    /// Largest latency, ms.
    pub max_ms: i64,
    /// Files committed per second over the injection window (from the
    /// first micro-batch to one interval after the last), or until the
    /// last commit if that came later. Measured from the first injection
    /// to the last commit alone, a run's last micro-batch counted a whole
    /// batch in only its latency, and a 5 s run at 10 files/s read 11.9;
    /// over the window, a run that keeps up reads its injection rate, and
    /// one whose last files are held up (a crash) reads less.
    pub throughput_files_per_s: f64,
    /// The window [`Summary::throughput_files_per_s`] divides by, s.
    pub throughput_window_s: f64,
    /// From the first injection to the last commit, s.
    pub span_s: f64,
    /// Normal latency and the late threshold.
    pub baseline: Baseline,
    /// Every event, in time order, with its recovery.
    pub events: Vec<EventReport>,
    /// Recovery time after each failure event (crash, stragglers slowed),
    /// ms, in time order: the figure the lab is about.
    pub recovery_ms: Vec<i64>,
    /// Where the latency goes: each stage's percentiles over the records
    /// that have stages (absent when none has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_ms: Option<Stages>,
}

/// The latency split into its stages (see [`LatencyRecord`]), each with its
/// own percentiles. Percentiles do not add up (the p99 file of one stage is
/// rarely the p99 file of another); the means do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stages {
    /// Records with stages.
    pub files: usize,
    /// Injected → handed out to a worker.
    pub queue_wait: Percentiles,
    /// Handed out → committed.
    pub service: Percentiles,
}

impl Stages {
    /// The stages of the records that have them; `None` if none has.
    pub fn of(records: &[LatencyRecord]) -> Option<Self> {
        let split: Vec<(i64, i64)> = records
            .iter()
            .filter_map(|r| Some((r.queue_wait_ms?, r.service_ms?)))
            .collect();
        (!split.is_empty()).then(|| Stages {
            files: split.len(),
            queue_wait: Percentiles::of(split.iter().map(|s| s.0)),
            service: Percentiles::of(split.iter().map(|s| s.1)),
        })
    }
}

impl Summary {
    /// Summarises a run from its records and events.
    pub fn new(records: &[LatencyRecord], events: &[Event]) -> Self {
        let mut events = events.to_vec();
        events.sort_by_key(|e| e.at);
        let all = Percentiles::of(records.iter().map(|r| r.latency_ms));
        let start = records
            .iter()
            .map(|r| r.injected_at)
            .chain(events.first().map(|e| e.at))
            .min()
            .unwrap_or(0);
        let end = records
            .iter()
            .map(|r| r.committed_at)
            .max()
            .unwrap_or(start);
        let span_s = end.saturating_sub(start) as f64 / 1000.0;
        let window_s =
            injection_window_ms(records).map_or(span_s, |w| (w as f64 / 1000.0).max(span_s));
        let baseline = baseline(records, events.first().map(|e| e.at));
        let threshold = baseline.late_threshold_ms;
        let charged: Vec<Charged> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let next = events.get(i + 1).map_or(i64::MAX, |n| n.at as i64);
                charge(e, next, records, threshold)
            })
            .collect();
        let reports: Vec<EventReport> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut r = report(e, start, records, threshold, &charged[i]);
                if e.kind == EventKind::StraggleStart {
                    r.after_release_ms = events[i + 1..]
                        .iter()
                        .position(|n| n.kind == EventKind::StraggleEnd)
                        .map(|j| {
                            let end = &events[i + 1 + j];
                            let last = charged[i]
                                .last_late_commit()
                                .max(charged[i + 1 + j].last_late_commit());
                            last.map_or(0, |t| (t as i64 - end.at as i64).max(0))
                        });
                }
                r
            })
            .collect();
        Summary {
            settings: serde_json::Map::new(),
            files_committed: records.len(),
            latency_ms: all,
            p50_ms: all.p50,
            p95_ms: all.p95,
            p99_ms: all.p99,
            max_ms: all.max,
            throughput_files_per_s: if window_s > 0.0 {
                records.len() as f64 / window_s
            } else {
                0.0
            },
            throughput_window_s: window_s,
            span_s,
            baseline,
            recovery_ms: reports
                .iter()
                .filter(|r| r.kind.is_failure())
                .map(|r| r.recovery_ms)
                .collect(),
            events: reports,
            stages_ms: Stages::of(records),
        }
    }

    /// Writes the summary as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), StreamError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| StreamError::Json {
            path: path.to_owned(),
            source,
        })?;
        std::fs::write(path, text + "\n").map_err(|source| StreamError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

fn baseline(records: &[LatencyRecord], first_event: Option<u64>) -> Baseline {
    let before: Vec<i64> = match first_event {
        Some(at) => records
            .iter()
            .filter(|r| r.committed_at < at)
            .map(|r| r.latency_ms)
            .collect(),
        None => Vec::new(),
    };
    let whole_run = first_event.is_some() && before.len() < MIN_BASELINE;
    let lat = if before.len() >= MIN_BASELINE {
        before
    } else {
        records.iter().map(|r| r.latency_ms).collect()
    };
    let p = Percentiles::of(lat.iter().copied());
    Baseline {
        files: lat.len(),
        whole_run,
        p50_ms: p.p50,
        p95_ms: p.p95,
        late_threshold_ms: (2 * p.p95).max(p.p50 + 100),
    }
}

/// The files charged to one event, and which of them were late.
struct Charged<'a> {
    affected: Vec<&'a LatencyRecord>,
    late: Vec<&'a LatencyRecord>,
}

impl Charged<'_> {
    fn last_late_commit(&self) -> Option<u64> {
        self.late.iter().map(|r| r.committed_at).max()
    }
}

/// The injection window: from the first micro-batch (files injected by one
/// call share their injection time) to one mean interval after the last;
/// None with fewer than two micro-batches.
fn injection_window_ms(records: &[LatencyRecord]) -> Option<u64> {
    let mut batches: Vec<u64> = records.iter().map(|r| r.injected_at).collect();
    batches.sort_unstable();
    batches.dedup();
    let (first, last) = (*batches.first()?, *batches.last()?);
    let k = batches.len() as u64;
    (k >= 2).then(|| (last - first) + (last - first) / (k - 1))
}

fn charge<'a>(e: &Event, next: i64, records: &'a [LatencyRecord], threshold: i64) -> Charged<'a> {
    let affected: Vec<&LatencyRecord> = records
        .iter()
        .filter(|r| {
            let turns_late = r.injected_at as i64 + threshold;
            r.committed_at >= e.at && turns_late >= e.at as i64 && turns_late < next
        })
        .collect();
    let late = affected
        .iter()
        .copied()
        .filter(|r| r.latency_ms > threshold)
        .collect();
    Charged { affected, late }
}

fn report(
    e: &Event,
    start: u64,
    records: &[LatencyRecord],
    threshold: i64,
    charged: &Charged,
) -> EventReport {
    let (recovery_ms, recovered) = match charged.last_late_commit() {
        None => (0, true),
        Some(t) => {
            // The last late file on the timeline (by injection time), and
            // whether a file after it, charged to this event or injected
            // after it, was on time.
            let key = |r: &LatencyRecord| (r.injected_at, r.committed_at);
            let last = charged.late.iter().map(|r| key(r)).max();
            let on_time_after = |r: &LatencyRecord| {
                r.latency_ms <= threshold
                    && Some(key(r)) > last
                    && (r.injected_at > e.at
                        || charged.affected.iter().any(|a| std::ptr::eq(*a, r)))
            };
            (t as i64 - e.at as i64, records.iter().any(on_time_after))
        }
    };
    EventReport {
        at_s: e.at.saturating_sub(start) as f64 / 1000.0,
        at: e.at,
        kind: e.kind,
        detail: e.detail.clone(),
        affected_files: charged.affected.len(),
        late_files: charged.late.len(),
        peak_latency_ms: charged
            .affected
            .iter()
            .map(|r| r.latency_ms)
            .max()
            .unwrap_or(0),
        recovery_ms,
        recovered,
        after_release_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(injected: u64, latency: u64) -> LatencyRecord {
        LatencyRecord::new("f", injected, injected + latency, "w", 1)
    }

    #[test]
    fn the_stages_are_summarised_over_the_records_that_have_them() {
        let mut records: Vec<LatencyRecord> = (0..100u64)
            .map(|i| rec(1000 * i, 100 + i).with_handed_out(1000 * i + i))
            .collect();
        records.push(rec(200_000, 7)); // no stages (an old file)
        let s = Summary::new(&records, &[]).stages_ms.unwrap();
        assert_eq!(s.files, 100);
        assert_eq!((s.queue_wait.p50, s.queue_wait.p99), (49, 98));
        assert_eq!(
            (s.service.p50, s.service.p99, s.service.max),
            (100, 100, 100)
        );
        assert_eq!(s.queue_wait.mean + s.service.mean, 100.0 + 49.5);
        assert_eq!(Summary::new(&[rec(0, 5)], &[]).stages_ms, None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).rev());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50, 95, 99, 100));
        assert_eq!(p.mean, 50.5);
        let p = Percentiles::of([7]);
        assert_eq!((p.p50, p.p99), (7, 7));
        assert_eq!(Percentiles::of([]), Percentiles::default());
    }

    #[test]
    fn a_crash_delays_one_file_until_its_lease_runs_out() {
        // 10 files a second, 10 ms each; a crash at 3.05 s holds the file
        // injected at 3.0 s for 5 s (the lease), then all is normal.
        let mut recs: Vec<_> = (0..60).map(|i| rec(i * 100, 10)).collect();
        recs[30] = rec(3000, 5100);
        let crash = Event {
            at: 3050,
            kind: EventKind::Crash,
            detail: "pid 1".into(),
        };
        let s = Summary::new(&recs, &[crash]);
        assert_eq!(
            s.baseline.files, 30,
            "injected and committed before the crash: the delayed one is not"
        );
        assert!(!s.baseline.whole_run);
        assert_eq!(s.baseline.late_threshold_ms, 110);
        let e = &s.events[0];
        assert_eq!(e.late_files, 1);
        assert_eq!(e.peak_latency_ms, 5100);
        assert_eq!(e.recovery_ms, 8100 - 3050);
        assert!(
            e.recovered,
            "the files injected after the late one were on time, though committed before it"
        );
        assert_eq!(s.recovery_ms, vec![5050]);
        assert_eq!(s.max_ms, 5100);
        assert_eq!(s.files_committed, 60);
    }

    #[test]
    fn recovery_ends_at_the_last_late_commit_before_the_next_event() {
        let mut recs: Vec<_> = (0..100).map(|i| rec(i * 100, 10)).collect();
        // Stragglers slowed at 2 s: files at 2.0..4.0 s take 500 ms.
        for r in recs.iter_mut().skip(20).take(20) {
            *r = rec(r.injected_at, 500);
        }
        let events = [
            Event {
                at: 6000,
                kind: EventKind::StraggleEnd,
                detail: String::new(),
            },
            Event {
                at: 2000,
                kind: EventKind::StraggleStart,
                detail: String::new(),
            },
        ];
        let s = Summary::new(&recs, &events);
        assert_eq!(s.events[0].kind, EventKind::StraggleStart);
        assert_eq!(s.events[0].late_files, 20);
        assert_eq!(s.events[0].recovery_ms, 3900 + 500 - 2000);
        assert!(s.events[0].recovered);
        assert_eq!(s.events[1].recovery_ms, 0);
        assert!(s.events[1].recovered);
        assert_eq!(s.events[0].after_release_ms, Some(0));
        assert_eq!(s.recovery_ms, vec![2400]);
    }

    #[test]
    fn the_file_a_crash_held_does_not_poison_a_short_baseline() {
        // 15 normal files (20-34 ms), then a crash at 1.55 s catches the
        // file injected at 1.5 s: it waits 5.1 s for its lease. With it in
        // the baseline, the nearest-rank p95 of 16 files would be its 5.1 s,
        // the threshold 10 s, and the crash would look harmless.
        let mut recs: Vec<_> = (0..40).map(|i| rec(i * 100, 20 + i % 15)).collect();
        recs[15] = rec(1500, 5100);
        let crash = Event {
            at: 1550,
            kind: EventKind::Crash,
            detail: "pid 9".into(),
        };
        let s = Summary::new(&recs, &[crash]);
        assert_eq!(s.baseline.files, 15);
        assert_eq!(s.baseline.p95_ms, 34);
        assert_eq!(s.baseline.late_threshold_ms, 27 + 100);
        let e = &s.events[0];
        assert_eq!((e.late_files, e.peak_latency_ms), (1, 5100));
        assert_eq!(e.recovery_ms, 6600 - 1550);
        assert!(e.recovered);
        assert_eq!(s.recovery_ms, vec![5050]);
    }

    #[test]
    fn recovery_is_seen_only_after_the_last_late_file_on_the_timeline() {
        let crash = |at| Event {
            at,
            kind: EventKind::Crash,
            detail: String::new(),
        };
        // The crash catches a file of the last micro-batch: nothing is
        // injected after it, so recovery is never seen, although its
        // batch-mates were on time.
        let mut recs: Vec<_> = (0..30).map(|i| rec(i / 10 * 1000, 10 + i % 10)).collect();
        recs[25] = rec(2000, 5000);
        let s = Summary::new(&recs, &[crash(2005)]);
        assert_eq!(s.events[0].late_files, 1);
        assert!(!s.events[0].recovered);
        // The same crash one batch earlier: the next batch shows recovery.
        let mut recs: Vec<_> = (0..30).map(|i| rec(i / 10 * 1000, 10 + i % 10)).collect();
        recs[15] = rec(1000, 5000);
        let s = Summary::new(&recs, &[crash(1005)]);
        assert_eq!(s.events[0].recovery_ms, 6000 - 1005);
        assert!(s.events[0].recovered);
    }

    #[test]
    fn straggler_recovery_is_also_measured_from_the_release() {
        let mut recs: Vec<_> = (0..100).map(|i| rec(i * 100, 10)).collect();
        // Slowed from 2 s to 3 s, but files injected until 3.9 s (queued
        // behind the straggler) take 500 ms.
        for r in recs.iter_mut().skip(20).take(20) {
            *r = rec(r.injected_at, 500);
        }
        let ev = |at, kind| Event {
            at,
            kind,
            detail: String::new(),
        };
        let s = Summary::new(
            &recs,
            &[
                ev(2000, EventKind::StraggleStart),
                ev(3000, EventKind::StraggleEnd),
            ],
        );
        let (start, end) = (&s.events[0], &s.events[1]);
        assert_eq!(start.late_files + end.late_files, 20);
        assert_eq!(end.late_files, 11, "turned late after the release");
        assert_eq!(start.after_release_ms, Some(3900 + 500 - 3000));
        assert_eq!(end.after_release_ms, None);
        assert!(start.recovered && end.recovered);
    }

    #[test]
    fn no_events_no_recoveries() {
        let recs: Vec<_> = (0..10).map(|i| rec(i * 100, 10 + i)).collect();
        let s = Summary::new(&recs, &[]);
        assert!(s.events.is_empty());
        assert_eq!(s.baseline.files, 10);
        // Ten batches 100 ms apart: a window of 1 s, 10 files/s, not the
        // 10 / 0.919 s of first injection to last commit.
        assert!((s.throughput_files_per_s - 10.0).abs() < 1e-9);
        assert_eq!(s.throughput_window_s, 1.0);
    }

    #[test]
    fn throughput_over_a_short_run_is_the_rate_and_less_when_the_last_files_wait() {
        // 5 s at 10 files/s: 5 batches of 10, each committed 200 ms later.
        let mut recs: Vec<_> = (0..50).map(|i| rec((i / 10) * 1000, 200)).collect();
        let s = Summary::new(&recs, &[]);
        assert!(
            (s.throughput_files_per_s - 10.0).abs() < 1e-9,
            "{}",
            s.throughput_files_per_s
        );
        // The last file held 5 s by a crash: the window runs to its commit.
        recs[49] = rec(4000, 5000);
        let s = Summary::new(&recs, &[]);
        assert!(
            (s.throughput_files_per_s - 50.0 / 9.0).abs() < 1e-9,
            "{}",
            s.throughput_files_per_s
        );
    }
}
