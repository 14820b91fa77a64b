//! A Jepsen-style harness for wclab's Raft cluster (lab 4b, issue 21).
//!
//! Real `wclab raft node` processes on loopback; clients run a workload
//! against them while a nemesis kills, stops, partitions, wipes and grows
//! the cluster at seeded random moments; every operation's invocation and
//! completion is recorded; checkers decide, from the history alone,
//! whether anything impossible happened. A checker that cannot fail is a
//! defect, so every checker is tested against hand-written bad histories.
//!
//! # Layout
//!
//! * [`history`]: events, operations, the recorder, JSON lines.
//! * [`check`]: the checkers (register linearizability, counter, list,
//!   word count) and unavailability windows. Pure functions.
//! * [`workload`]: what clients send and how replies become outcomes
//!   (`TRYAGAIN` fails; `UNKNOWN`, timeouts and lost connections are
//!   unknown).
//! * [`jobs`]: the word-count workload (`wclab run` jobs).
//! * [`cluster`]: the nodes as real processes and the blows dealt to them.
//! * [`partition`]: the [`partition::Partitioner`] trait and its
//!   `RAFT.PARTITION` implementation (a netns one can follow).
//! * [`nemesis`]: the faults and their seeded schedule.
//! * [`runner`]: one run, end to end; [`report`]: Markdown.

pub mod check;
pub mod cluster;
pub mod history;
pub mod jobs;
pub mod nemesis;
pub mod partition;
pub mod report;
pub mod runner;
pub mod workload;

use std::path::PathBuf;

/// The `wclab` binary to test: `explicit`, else `$WCLAB_BIN`, else the one
/// next to this executable (cargo puts `target/<profile>/wclab` beside
/// `target/<profile>/wclab-jepsen`, and a test's `deps/` one level
/// below), else `wclab` on the `PATH`.
pub fn find_wclab(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit.or_else(|| std::env::var_os("WCLAB_BIN").map(PathBuf::from)) {
        return p;
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("wclab");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("wclab")
}
