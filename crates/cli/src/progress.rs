//! Waiting for a job to finish, with a progress bar on stderr.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;
use wclab_coord::job::{self, JobPlan, JobStatus};
use wclab_coord::{JobKeys, Store};

/// A progress bar of bytes done, with files done in its message. Hidden
/// when stderr is not a terminal.
pub fn bar(total_bytes: u64) -> ProgressBar {
    let pb = ProgressBar::new(total_bytes);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Prints a line above the bar, or on stderr when the bar is hidden (not a
/// terminal), so that logs of a lab show what was done.
pub fn say(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}

/// Shows `status` on the bar.
pub fn show(pb: &ProgressBar, status: &JobStatus) {
    pb.set_length(status.total_bytes.max(1));
    pb.set_position(status.bytes_done);
    let dead = if status.files_dead > 0 {
        format!(", {} failed", status.files_dead)
    } else {
        String::new()
    };
    pb.set_message(format!(
        "{}/{} tasks{dead}",
        status.files_done, status.total_tasks
    ));
}

/// Polls the job until it is finished, re-submitting what a restored Redis
/// lost, and returns the final status.
pub async fn wait(
    store: &mut Store,
    keys: &JobKeys,
    plan: &JobPlan,
    pb: &ProgressBar,
) -> Result<JobStatus> {
    loop {
        let status = job::status(store, keys).await?;
        if plan.repair(store, keys, &status).await? > 0 {
            continue;
        }
        show(pb, &status);
        if status.is_finished() {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
