//! The job's description (what was submitted) and its progress.

use crate::{CoordError, JobKeys, Store};
use std::collections::HashMap;
use std::path::PathBuf;

/// What a job counts, as stored in its `job` hash before any task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Canonical input roots; workers open nothing outside them.
    pub roots: Vec<PathBuf>,
    /// Number of tasks the job consists of.
    pub total_tasks: u64,
    /// Bytes of input over all tasks.
    pub total_bytes: u64,
    /// `None` for plain text, `Some(column)` for CSV.
    pub csv_column: Option<String>,
}

/// A job's progress, from its `job` hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// `false` if the job hash is missing (no such job, or Redis lost it).
    pub exists: bool,
    /// Tasks in the job.
    pub total_tasks: u64,
    /// Input bytes in the job.
    pub total_bytes: u64,
    /// Tasks committed.
    pub files_done: u64,
    /// Bytes of committed tasks.
    pub bytes_done: u64,
    /// Words of committed tasks.
    pub words_done: u64,
    /// Tasks dead-lettered.
    pub files_dead: u64,
    /// Stream entries the job never submitted (added by hand), dead-lettered
    /// unread; they do not count towards finishing the job.
    pub entries_foreign: u64,
    /// Words added to the counts' sorted set, one per distinct word per
    /// fold call (wclab_fold): the job's sorted-set work for Redis.
    pub word_updates: u64,
    /// Entries in the task stream (acknowledged ones included).
    pub tasks_in_stream: u64,
}

impl JobStatus {
    /// Every task is committed or dead-lettered.
    pub fn is_finished(&self) -> bool {
        self.exists && self.files_done + self.files_dead >= self.total_tasks
    }
}

fn field_u64(h: &HashMap<String, String>, k: &str) -> u64 {
    h.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Writes the job's description. Done before its tasks are added, so that
/// a worker that sees a task always finds the job's roots.
pub async fn describe(store: &mut Store, keys: &JobKeys, spec: &JobSpec) -> Result<(), CoordError> {
    let roots: Vec<String> = spec
        .roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let mut cmd = redis::cmd("HSET");
    cmd.arg(&keys.job)
        .arg("roots")
        .arg(roots.join("\n"))
        .arg("total_tasks")
        .arg(spec.total_tasks)
        .arg("total_bytes")
        .arg(spec.total_bytes)
        .arg("format")
        .arg(if spec.csv_column.is_some() {
            "csv"
        } else {
            "text"
        })
        .arg("column")
        .arg(spec.csv_column.as_deref().unwrap_or(""));
    store.call::<()>("describe the job", &cmd).await
}

/// Reads the job's description; `None` if the job does not exist.
pub async fn spec(store: &mut Store, keys: &JobKeys) -> Result<Option<JobSpec>, CoordError> {
    let h: HashMap<String, String> = store
        .call("read the job", redis::cmd("HGETALL").arg(&keys.job))
        .await?;
    let Some(roots) = h.get("roots") else {
        return Ok(None);
    };
    Ok(Some(JobSpec {
        roots: roots
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect(),
        total_tasks: field_u64(&h, "total_tasks"),
        total_bytes: field_u64(&h, "total_bytes"),
        csv_column: match h.get("format").map(String::as_str) {
            Some("csv") => h.get("column").cloned(),
            _ => None,
        },
    }))
}

/// Reads the job's progress.
pub async fn status(store: &mut Store, keys: &JobKeys) -> Result<JobStatus, CoordError> {
    let mut pipe = redis::pipe();
    pipe.cmd("HGETALL")
        .arg(&keys.job)
        .cmd("XLEN")
        .arg(&keys.tasks);
    let (h, tasks_in_stream): (HashMap<String, String>, u64) =
        store.call_pipe("read the job's progress", &pipe).await?;
    Ok(JobStatus {
        exists: h.contains_key("roots"),
        total_tasks: field_u64(&h, "total_tasks"),
        total_bytes: field_u64(&h, "total_bytes"),
        files_done: field_u64(&h, "files_done"),
        bytes_done: field_u64(&h, "bytes_done"),
        words_done: field_u64(&h, "words_done"),
        files_dead: field_u64(&h, "files_dead"),
        entries_foreign: field_u64(&h, "entries_foreign"),
        word_updates: field_u64(&h, "word_updates"),
        tasks_in_stream,
    })
}

/// Deletes every key of the job.
pub async fn delete(store: &mut Store, keys: &JobKeys) -> Result<(), CoordError> {
    store
        .call::<()>("delete the job", redis::cmd("DEL").arg(&keys.all()[..]))
        .await
}

/// Everything needed to (re-)submit a job: its description and its tasks.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The description written to the job hash.
    pub spec: JobSpec,
    /// The tasks, with their deterministic IDs.
    pub tasks: Vec<crate::submit::TaskSpec>,
}

impl JobPlan {
    /// Writes the description, then adds the tasks not yet in the stream.
    /// Returns how many tasks were added. Idempotent.
    pub async fn submit(&self, store: &mut Store, keys: &JobKeys) -> Result<u64, CoordError> {
        describe(store, keys, &self.spec).await?;
        crate::submit::submit(store, keys, &self.tasks).await
    }

    /// True when Redis has lost part of the job: its description, or tasks
    /// that were submitted (a restore from a snapshot older than them).
    pub fn is_lost_in(&self, status: &JobStatus) -> bool {
        !status.exists || status.tasks_in_stream < self.tasks.len() as u64
    }

    /// Re-submits the job if Redis lost part of it; returns the number of
    /// tasks added back (0 when nothing was missing).
    pub async fn repair(
        &self,
        store: &mut Store,
        keys: &JobKeys,
        status: &JobStatus,
    ) -> Result<u64, CoordError> {
        if !self.is_lost_in(status) {
            return Ok(0);
        }
        let added = self.submit(store, keys).await?;
        tracing::warn!(
            target = %store.target(),
            added,
            "Redis lost part of the job (restored from an older checkpoint?): re-submitted the missing tasks"
        );
        Ok(added)
    }
}

/// The consumers that hold tasks right now, with how many each holds.
pub async fn holders(store: &mut Store, keys: &JobKeys) -> Result<Vec<(String, u64)>, CoordError> {
    let summary: redis::Value = store
        .call(
            "read the pending tasks",
            redis::cmd("XPENDING").arg(&keys.tasks).arg(crate::GROUP),
        )
        .await
        .or_else(|e| match e {
            // No stream or group (yet, or any more after a restore).
            CoordError::Redis { ref source, .. } if source.code() == Some("NOGROUP") => {
                Ok(redis::Value::Nil)
            }
            e => Err(e),
        })?;
    let redis::Value::Array(parts) = summary else {
        return Ok(Vec::new());
    };
    let Some(redis::Value::Array(consumers)) = parts.get(3) else {
        return Ok(Vec::new());
    };
    Ok(consumers
        .iter()
        .filter_map(|c| redis::from_redis_value::<(String, u64)>(c.clone()).ok())
        .collect())
}
