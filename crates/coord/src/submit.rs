//! `wclab_submit`: put a job's tasks on its stream.

use crate::{CoordError, JobKeys, Store};

/// One unit of work: a file, or the byte range of a file that it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The stream entry ID, chosen by the submitter: `0-<n>`, n from 1.
    /// Deterministic, so that submitting again is idempotent.
    pub id: String,
    /// Canonical path of the file.
    pub path: String,
    /// First byte owned by the task.
    pub start: u64,
    /// One past the last byte owned by the task.
    pub end: u64,
}

impl TaskSpec {
    /// The deterministic ID of the task at position `index` (from 0).
    pub fn id_for(index: usize) -> String {
        format!("0-{}", index + 1)
    }
}

/// Tasks per FCALL: big enough to be fast, small enough not to stall Redis.
const BATCH: usize = 1000;

/// Adds the tasks that are not on the stream yet; returns how many were
/// added. Calling it again with the same tasks adds nothing.
pub async fn submit(
    store: &mut Store,
    keys: &JobKeys,
    tasks: &[TaskSpec],
) -> Result<u64, CoordError> {
    let mut added = 0;
    for chunk in tasks.chunks(BATCH) {
        added += store
            .call::<u64>("submit tasks", &call(keys, chunk))
            .await?;
    }
    Ok(added)
}

/// Creates the job's consumer group (a submission of no task), so that
/// workers can join before the first task arrives (lab 3's streams).
pub async fn open(store: &mut Store, keys: &JobKeys) -> Result<(), CoordError> {
    store
        .call::<u64>("create the consumer group", &call(keys, &[]))
        .await
        .map(|_| ())
}

/// The FCALL of `wclab_submit` with `tasks` (IDs increasing).
pub(crate) fn call(keys: &JobKeys, tasks: &[TaskSpec]) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_submit", &[&keys.tasks, &keys.job, &keys.submitted]);
    for t in tasks {
        cmd.arg(&t.id).arg(&t.path).arg(t.start).arg(t.end);
    }
    cmd
}
