//! Checkpoints: BGSAVE snapshots of the whole dataset (lab 4a).
//!
//! Every change a job makes is one atomic function call and Redis runs one
//! command at a time, so a snapshot is always a consistent cut: each task
//! in it is either committed with all its counts, or not at all. A Redis
//! restored from it has merely forgotten the tasks committed after it,
//! which are then delivered and counted again.

use crate::{CoordError, Store};

/// Starts a background save. Returns `false` if one was already running.
pub async fn bgsave(store: &mut Store) -> Result<bool, CoordError> {
    match store
        .call::<String>("start a checkpoint (BGSAVE)", &redis::cmd("BGSAVE"))
        .await
    {
        Ok(_) => Ok(true),
        Err(CoordError::Redis { source, .. })
            if source.to_string().contains("already in progress") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Unix time (s) of the last successful save.
pub async fn last_save(store: &mut Store) -> Result<u64, CoordError> {
    store.call("read LASTSAVE", &redis::cmd("LASTSAVE")).await
}

/// Where the snapshot lives: `CONFIG GET dir` and `dbfilename`.
pub async fn dump_path(store: &mut Store) -> Result<std::path::PathBuf, CoordError> {
    let dir: Vec<String> = store
        .call(
            "read CONFIG dir",
            redis::cmd("CONFIG").arg("GET").arg("dir"),
        )
        .await?;
    let file: Vec<String> = store
        .call(
            "read CONFIG dbfilename",
            redis::cmd("CONFIG").arg("GET").arg("dbfilename"),
        )
        .await?;
    Ok(
        std::path::Path::new(dir.get(1).map(String::as_str).unwrap_or("."))
            .join(file.get(1).map(String::as_str).unwrap_or("dump.rdb")),
    )
}
