//! `wclab_release`: a worker told to stop gives back the task it holds.

use crate::{CoordError, JobKeys, Store};
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
    let mut cmd = crate::function_call(store, "wclab_release", &[&keys.tasks, &keys.leases]);
    cmd.arg(consumer).arg(lease.as_millis() as u64).arg(id);
    Ok(store.call::<i64>("release a task", &cmd).await? == 1)
}
