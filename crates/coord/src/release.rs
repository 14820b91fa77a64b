//! `wclab_release`: a worker told to stop gives back the task it holds.

use crate::{CoordError, JobKeys, Store, GROUP};
use std::time::Duration;

/// Makes task `id`, held by `consumer`, claimable by any worker at once
/// (instead of after `lease`). Returns `false` if it was not ours any more.
pub async fn release(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    lease: Duration,
    id: &str,
) -> Result<bool, CoordError> {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wclab_release")
        .arg(2)
        .arg(&keys.tasks)
        .arg(&keys.leases)
        .arg(store.now_arg())
        .arg(GROUP)
        .arg(consumer)
        .arg(lease.as_millis() as u64)
        .arg(id);
    Ok(store.call::<i64>("release a task", &cmd).await? == 1)
}
