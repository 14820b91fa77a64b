//! `wclab_renew`: a live worker keeps its lease on the task it counts.

use crate::{CoordError, JobKeys, Store};

/// Renews `consumer`'s lease on task `id`. Returns `false` if the task is
/// no longer ours (stolen while we were paused, or finished): the worker
/// may still commit, and the commit's gate decides.
pub async fn renew(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    id: &str,
) -> Result<bool, CoordError> {
    let mut cmd = crate::function_call(store, "wclab_renew", &[&keys.tasks, &keys.leases]);
    cmd.arg(consumer).arg(id);
    Ok(store.call::<i64>("renew a lease", &cmd).await? == 1)
}
