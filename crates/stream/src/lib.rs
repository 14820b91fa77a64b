//! Lab 3, stream processing: the parts of `wclab stream` and `wclab plot`
//! that need no Redis and no processes.
//!
//! A client injects R files per second into the job's task stream (one
//! micro-batch a second); workers count and commit them; each file's
//! latency is the time from its injection to its commit, both read from the
//! one clock that matters, the Redis server's (`injected` is written by
//! `wclab_submit`, `committed` by `wclab_commit`). Worker clocks never enter.
//!
//! # Layout
//!
//! * [`schedule`]: which files are injected when (R per second, until the
//!   input is used up or the duration has passed).
//! * [`record`]: one [`LatencyRecord`] per committed file and one [`Event`]
//!   per fault (a crash, a straggler slowing down or recovering), and their
//!   CSV files (`latency.csv`, `events.csv`).
//! * [`summary`]: percentiles, throughput, and the time to recover after
//!   each event (the rule is documented there), as `summary.json`.
//! * [`plot`]: the latency timeline (`timeline.png`): each file's latency
//!   against its injection time, events marked, one or several runs on one
//!   figure. Drawn with `plotters` and a font bundled in this crate
//!   (DejaVu Sans, `assets/`), so that it renders on a machine with no
//!   system fonts at all.

mod error;
mod glyphs;
pub mod plot;
pub mod record;
pub mod schedule;
pub mod summary;

pub use error::StreamError;
pub use record::{Event, EventKind, LatencyRecord};
pub use schedule::MicroBatch;
pub use summary::Summary;
