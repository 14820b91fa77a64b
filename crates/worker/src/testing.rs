//! Pause hooks for tests that must kill a worker at a precise point.
//!
//! `WCLAB_TEST_PAUSE=<point>:<ms>` makes every worker of that process sleep
//! `ms` milliseconds at `<point>` (one of `after_claim`, `while_counting`,
//! `before_commit`). A test then has a window to `kill -9` the worker
//! between its claim and its commit, or to check that a slow worker keeps
//! its lease. Unset, the hooks cost one environment lookup, once.

use std::sync::OnceLock;
use std::time::Duration;

/// A point in the handling of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Right after the claim (XREADGROUP / XAUTOCLAIM) returned the task.
    AfterClaim,
    /// On the counting thread, before counting (renewals continue).
    WhileCounting,
    /// After counting, before the commit FCALL (no renewals).
    BeforeCommit,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::AfterClaim => "after_claim",
            Point::WhileCounting => "while_counting",
            Point::BeforeCommit => "before_commit",
        }
    }
}

fn configured() -> Option<&'static (String, Duration)> {
    static PAUSE: OnceLock<Option<(String, Duration)>> = OnceLock::new();
    PAUSE
        .get_or_init(|| {
            let v = std::env::var("WCLAB_TEST_PAUSE").ok()?;
            let (point, ms) = v.split_once(':')?;
            Some((point.to_owned(), Duration::from_millis(ms.parse().ok()?)))
        })
        .as_ref()
}

/// Sleeps if `WCLAB_TEST_PAUSE` names this point.
pub fn pause_at(point: Point) {
    if let Some((name, d)) = configured() {
        if name == point.name() {
            tracing::info!(point = name, ms = d.as_millis() as u64, "test pause");
            std::thread::sleep(*d);
        }
    }
}
