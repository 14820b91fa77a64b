//! Checkpoints: BGSAVE snapshots of the whole dataset (lab 4a).
//!
//! Every change a job makes is one atomic function call and Redis runs one
//! command at a time, so a snapshot is always a consistent cut: each task
//! in it is either committed with all its counts, or not at all. A Redis
//! restored from it has merely forgotten the tasks committed after it,
//! which are then delivered and counted again.

use crate::{CoordError, Store};

/// What became of a BGSAVE request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bgsave {
    /// A background save started.
    Started,
    /// One was already running, or another child (an AOF rewrite) is:
    /// this checkpoint is skipped, the next one will do.
    Skipped,
}

/// Starts a background save.
///
/// Redis refuses a BGSAVE while a child process runs with a plain `ERR`
/// and prose only, so the children are looked up in `INFO persistence`
/// instead: before (the usual case) and, should a child have started in
/// between, after a refusal.
pub async fn bgsave(store: &mut Store) -> Result<Bgsave, CoordError> {
    if persistence(store).await?.child_running {
        return Ok(Bgsave::Skipped);
    }
    match store
        .call::<String>("start a checkpoint (BGSAVE)", &redis::cmd("BGSAVE"))
        .await
    {
        Ok(_) => Ok(Bgsave::Started),
        Err(e) => match persistence(store).await {
            Ok(p) if p.child_running => Ok(Bgsave::Skipped),
            _ => Err(e),
        },
    }
}

/// The `INFO persistence` figures that checkpoints are judged by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persistence {
    /// A BGSAVE child is running.
    pub bgsave_in_progress: bool,
    /// Some child is running (BGSAVE, AOF rewrite, module fork): a BGSAVE
    /// now would be refused.
    pub child_running: bool,
    /// Snapshots completed since this server started (`rdb_saves`).
    pub saves: u64,
    /// The last BGSAVE succeeded.
    pub last_bgsave_ok: bool,
    /// Keys loaded from disk at start.
    pub keys_loaded_at_start: u64,
}

/// Reads `INFO persistence`.
pub async fn persistence(store: &mut Store) -> Result<Persistence, CoordError> {
    let text: String = store
        .call(
            "read INFO persistence",
            redis::cmd("INFO").arg("persistence"),
        )
        .await?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
    };
    Ok(Persistence {
        bgsave_in_progress: field("rdb_bgsave_in_progress") == "1",
        child_running: [
            "rdb_bgsave_in_progress",
            "aof_rewrite_in_progress",
            "module_fork_in_progress",
        ]
        .iter()
        .any(|f| field(f) == "1"),
        saves: field("rdb_saves").parse().unwrap_or(0),
        last_bgsave_ok: field("rdb_last_bgsave_status") == "ok",
        keys_loaded_at_start: field("rdb_last_load_keys_loaded").parse().unwrap_or(0),
    })
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
