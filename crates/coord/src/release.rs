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
    let cmd = call(keys, consumer, lease, id);
    Ok(store.call::<i64>("release a task", &cmd).await? == 1)
}

/// The FCALL of `wclab_release`.
pub(crate) fn call(keys: &JobKeys, consumer: &str, lease: Duration, id: &str) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_release", &[&keys.tasks, &keys.leases]);
    cmd.arg(consumer).arg(lease.as_millis() as u64).arg(id);
    cmd
}
