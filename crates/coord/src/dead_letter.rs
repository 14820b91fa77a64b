//! `wclab_dead`: give up on a task that can never be counted, with a reason.

use crate::{CoordError, JobKeys, Store};

/// Moves task `id` to the dead-letter stream with `reason`. Returns `false`
/// if it was no longer pending (committed or buried by someone else).
pub async fn dead_letter(
    store: &mut Store,
    keys: &JobKeys,
    consumer: &str,
    id: &str,
    reason: &str,
) -> Result<bool, CoordError> {
    let cmd = call(keys, consumer, id, reason);
    Ok(store.call::<i64>("dead-letter a task", &cmd).await? == 1)
}

/// The FCALL of `wclab_dead`.
pub(crate) fn call(keys: &JobKeys, consumer: &str, id: &str, reason: &str) -> redis::Cmd {
    let mut cmd = crate::function_call(
        "wclab_dead",
        &[&keys.tasks, &keys.dead, &keys.job, &keys.leases],
    );
    cmd.arg(consumer).arg(id).arg(reason);
    cmd
}
