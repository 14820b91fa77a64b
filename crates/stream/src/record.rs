//! Latency records and fault events, and their CSV files.
//!
//! All times are milliseconds since the Unix epoch on the Redis server's
//! clock: `injected_at` is the `injected` field `wclab_submit` wrote in the
//! task, `committed_at` the `committed` field `wclab_commit` wrote in the
//! completion record, and an event's `at` is Redis `TIME` read right after
//! the supervisor acted. One clock, so differences are meaningful.

use crate::StreamError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One committed file: a row of `latency.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyRecord {
    /// The file, relative to its input root.
    pub file: String,
    /// Injection time (ms, server clock).
    pub injected_at: u64,
    /// Commit time (ms, server clock).
    pub committed_at: u64,
    /// `committed_at - injected_at`; signed, so that a clock that went back
    /// would show instead of being hidden.
    pub latency_ms: i64,
    /// Consumer name of the worker whose commit counted.
    pub worker: String,
    /// How many times the task had been delivered when it was committed.
    pub attempts: u64,
    /// When the task was last handed out to a worker (ms, server clock:
    /// `claimed:<id>` written by `wclab_claim`); empty in files written
    /// before stages were recorded.
    #[serde(default)]
    pub handed_out_at: Option<u64>,
    /// Stage 1, `handed_out_at - injected_at`: waiting in the stream for a
    /// free worker (the micro-batch's own queue, and the workers' poll).
    #[serde(default)]
    pub queue_wait_ms: Option<i64>,
    /// Stage 2, `committed_at - handed_out_at`: the worker's read and
    /// count, its commit's wait and round trip, and the commit's Redis
    /// time. The two stages add up to `latency_ms`.
    #[serde(default)]
    pub service_ms: Option<i64>,
}

impl LatencyRecord {
    /// A record, with the latency computed from the two timestamps.
    pub fn new(
        file: impl Into<String>,
        injected_at: u64,
        committed_at: u64,
        worker: impl Into<String>,
        attempts: u64,
    ) -> Self {
        LatencyRecord {
            file: file.into(),
            injected_at,
            committed_at,
            latency_ms: committed_at as i64 - injected_at as i64,
            worker: worker.into(),
            attempts,
            handed_out_at: None,
            queue_wait_ms: None,
            service_ms: None,
        }
    }

    /// The record with its stages, split at the moment the task was handed
    /// out (`wclab_claim`'s time, on the same server clock as the two ends,
    /// so the stages add up to the latency exactly).
    pub fn with_handed_out(mut self, at: u64) -> Self {
        self.handed_out_at = Some(at);
        self.queue_wait_ms = Some(at as i64 - self.injected_at as i64);
        self.service_ms = Some(self.committed_at as i64 - at as i64);
        self
    }
}

/// What happened to the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A worker was killed with SIGKILL (and replaced).
    Crash,
    /// Stragglers started being held to a fraction of a CPU.
    StraggleStart,
    /// Stragglers were released and run at full speed again.
    StraggleEnd,
}

impl EventKind {
    /// True for the events after which latency is expected to rise.
    pub fn is_failure(self) -> bool {
        matches!(self, EventKind::Crash | EventKind::StraggleStart)
    }

    /// How the event is named in legends.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Crash => "worker crash (kill -9)",
            EventKind::StraggleStart => "stragglers slowed",
            EventKind::StraggleEnd => "stragglers released",
        }
    }
}

/// A fault injected by the supervisor: a row of `events.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When (ms, server clock).
    pub at: u64,
    /// What.
    pub kind: EventKind,
    /// Which workers, for the reader (PIDs).
    pub detail: String,
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), StreamError> {
    let err = |source| StreamError::Csv {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(|source| StreamError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(|source| StreamError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, StreamError> {
    let err = |source| StreamError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    r.deserialize().collect::<Result<Vec<T>, _>>().map_err(err)
}

const LATENCY_HEADER: &str =
    "file,injected_at,committed_at,latency_ms,worker,attempts,handed_out_at,queue_wait_ms,service_ms\n";
const EVENTS_HEADER: &str = "at,kind,detail\n";

/// Writes `latency.csv`: a header, then one row per record.
pub fn write_latency_csv(path: &Path, records: &[LatencyRecord]) -> Result<(), StreamError> {
    write_with_header(path, records, LATENCY_HEADER)
}

/// Reads a `latency.csv`.
pub fn read_latency_csv(path: &Path) -> Result<Vec<LatencyRecord>, StreamError> {
    read_csv(path)
}

/// Writes `events.csv`: a header, then one row per event.
pub fn write_events_csv(path: &Path, events: &[Event]) -> Result<(), StreamError> {
    write_with_header(path, events, EVENTS_HEADER)
}

/// Reads an `events.csv`.
pub fn read_events_csv(path: &Path) -> Result<Vec<Event>, StreamError> {
    read_csv(path)
}

fn write_with_header<T: Serialize>(
    path: &Path,
    rows: &[T],
    header: &str,
) -> Result<(), StreamError> {
    // serde writes the header with the first row only; an empty file must
    // still say what it is.
    if rows.is_empty() {
        return std::fs::write(path, header).map_err(|source| StreamError::Io {
            path: path.to_owned(),
            source,
        });
    }
    write_csv(path, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stages_add_up_to_the_latency() {
        let r = LatencyRecord::new("a.csv", 1000, 1075, "h-1-aa", 1).with_handed_out(1031);
        assert_eq!(r.queue_wait_ms, Some(31));
        assert_eq!(r.service_ms, Some(44));
        assert_eq!(
            r.queue_wait_ms.unwrap() + r.service_ms.unwrap(),
            r.latency_ms
        );
    }

    #[test]
    fn records_and_events_round_trip_through_csv() {
        let d = tempfile::tempdir().unwrap();
        let recs = vec![
            LatencyRecord::new("a,b.csv", 1000, 1012, "h-1-aa", 1),
            LatencyRecord::new("c.csv", 1001, 6100, "h-2-bb", 2).with_handed_out(1040),
        ];
        assert_eq!(recs[1].latency_ms, 5099);
        let p = d.path().join("latency.csv");
        write_latency_csv(&p, &recs).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(LATENCY_HEADER), "{text}");
        assert_eq!(read_latency_csv(&p).unwrap(), recs);

        let evs = vec![Event {
            at: 1005,
            kind: EventKind::StraggleStart,
            detail: "pids 12 13".into(),
        }];
        let p = d.path().join("events.csv");
        write_events_csv(&p, &evs).unwrap();
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains("straggle_start"));
        assert_eq!(read_events_csv(&p).unwrap(), evs);

        // A latency.csv written before the stages still reads.
        let old = d.path().join("old.csv");
        std::fs::write(
            &old,
            "file,injected_at,committed_at,latency_ms,worker,attempts\nc.csv,1001,6100,5099,h-2-bb,2\n",
        )
        .unwrap();
        assert_eq!(
            read_latency_csv(&old).unwrap(),
            vec![LatencyRecord::new("c.csv", 1001, 6100, "h-2-bb", 2)]
        );

        write_events_csv(&p, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), EVENTS_HEADER);
        assert!(read_events_csv(&p).unwrap().is_empty());
    }
}
