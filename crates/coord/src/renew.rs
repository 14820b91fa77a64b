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
    let cmd = call(keys, consumer, id);
    Ok(store.call::<i64>("renew a lease", &cmd).await? == 1)
}

/// The FCALL of `wclab_renew`.
pub(crate) fn call(keys: &JobKeys, consumer: &str, id: &str) -> redis::Cmd {
    let mut cmd = crate::function_call("wclab_renew", &[&keys.tasks, &keys.leases]);
    cmd.arg(consumer).arg(id);
    cmd
}
