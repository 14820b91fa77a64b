//! Results of a job, for people (a table) and for programs (`--json`,
//! `--output`).

use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use wclab_coord::job::JobStatus;
use wclab_coord::results::{self, DeadTask, WordCount};
use wclab_coord::{JobKeys, Store};

/// A word for JSON: the bytes as text (invalid UTF-8 replaced by U+FFFD).
#[derive(Debug, Serialize)]
pub struct JsonWord {
    /// The word.
    pub word: String,
    /// Its count.
    pub count: u64,
}

/// A file that could not be counted.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
    /// Deliveries before it was given up.
    pub attempts: u64,
}

/// The kind of a Redis crash (lab 4a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashKind {
    /// Before any checkpoint: the restored Redis starts from nothing.
    BeforeFirstCheckpoint,
    /// While a BGSAVE ran: it dies unfinished, the previous one is restored.
    DuringBgsave,
    /// After commits that the last checkpoint does not have.
    BetweenCheckpoints,
    /// Without checkpoints at all.
    NoCheckpoint,
}

impl CrashKind {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            CrashKind::BeforeFirstCheckpoint => "before the first checkpoint",
            CrashKind::DuringBgsave => "during a BGSAVE",
            CrashKind::BetweenCheckpoints => "between checkpoints",
            CrashKind::NoCheckpoint => "no checkpoints",
        }
    }
}

/// One crash of the private Redis and its restore.
#[derive(Debug, Clone, Serialize)]
pub struct RedisCrash {
    /// When it happened.
    pub kind: CrashKind,
    /// Tasks committed at the instant of the crash.
    pub committed_before: u64,
    /// Tasks the restored Redis remembers as committed.
    pub committed_after_restore: u64,
    /// Tasks to count again: what the restore forgot.
    pub recomputed: u64,
    /// A BGSAVE child was running, and died with the server.
    pub bgsave_in_progress: bool,
    /// Milliseconds from the kill until the new server answered.
    pub down_ms: u64,
}

/// Everything `run` and `submit --wait` report.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The job's name.
    pub job: String,
    /// Tasks committed.
    pub tasks_done: u64,
    /// Tasks in the job.
    pub tasks: u64,
    /// Input bytes.
    pub bytes: u64,
    /// Words counted.
    pub words: u64,
    /// Distinct words.
    pub distinct_words: u64,
    /// Wall time of the job, seconds.
    pub wall_seconds: f64,
    /// Input megabytes (10^6) per second of wall time.
    pub mb_per_s: f64,
    /// Files the tasks came from (a big file may be split into several).
    pub files: u64,
    /// Workers that died and were replaced (0 when not supervising).
    pub workers_replaced: u64,
    /// Workers killed on purpose (lab 2's chaos).
    pub workers_killed: u64,
    /// Checkpoints (BGSAVE) taken during the job.
    pub checkpoints: u64,
    /// Times the private Redis was killed and restored (lab 4a).
    pub redis_crashes: u64,
    /// Tasks committed after the last checkpoint before a crash, which the
    /// restored Redis forgot and the workers counted again.
    pub tasks_recomputed: u64,
    /// Each Redis crash, in order.
    pub redis_crash_log: Vec<RedisCrash>,
    /// Faults asked for that the job ended too soon to see.
    pub chaos_not_done: Option<String>,
    /// CPU seconds the Redis server used (server total: the job's own with
    /// the private Redis of `run`).
    pub redis_cpu_seconds: f64,
    /// Words added to the sorted set of counts, one per distinct word per
    /// fold call (ZADD into an empty set, ZINCRBY otherwise): the job's
    /// sorted-set work for Redis.
    pub word_updates: u64,
    /// FCALL calls Redis executed (server total, as above).
    pub redis_fcall_calls: u64,
    /// The most frequent words.
    pub top: Vec<JsonWord>,
    /// Files that could not be counted, with reasons.
    pub failed: Vec<Failure>,
}

/// Collects the summary of a finished job.
pub async fn gather(
    store: &mut Store,
    keys: &JobKeys,
    status: &JobStatus,
    k: usize,
    wall: Duration,
    workers_replaced: u64,
) -> Result<Summary> {
    // What a finished job's reader expects: every count in the sorted set.
    wclab_coord::fold::fold(store, keys).await?;
    // The folds count the words they add to the sorted set: `status`, read
    // when the last task was done, is from before the last fold (it read 0
    // for a whole job).
    let word_updates = wclab_coord::job::status(store, keys).await?.word_updates;
    let top = results::top(store, keys, k).await?;
    let distinct: u64 = store
        .call(
            "count distinct words",
            redis::cmd("ZCARD").arg(&keys.counts),
        )
        .await?;
    let dead = results::dead(store, keys).await?;
    let work = results::server_work(store).await?;
    let secs = wall.as_secs_f64();
    Ok(Summary {
        job: keys.job_name.clone(),
        tasks_done: status.files_done,
        tasks: status.total_tasks,
        bytes: status.total_bytes,
        words: status.words_done,
        distinct_words: distinct,
        wall_seconds: secs,
        mb_per_s: if secs > 0.0 {
            status.bytes_done as f64 / 1e6 / secs
        } else {
            0.0
        },
        files: 0,
        workers_replaced,
        workers_killed: 0,
        checkpoints: 0,
        redis_crashes: 0,
        tasks_recomputed: 0,
        redis_crash_log: Vec::new(),
        chaos_not_done: None,
        redis_cpu_seconds: work.cpu_seconds,
        word_updates,
        redis_fcall_calls: work.fcall_calls,
        top: top.into_iter().map(json_word).collect(),
        failed: dead.into_iter().map(failure).collect(),
    })
}

fn json_word(w: WordCount) -> JsonWord {
    JsonWord {
        word: String::from_utf8_lossy(&w.word).into_owned(),
        count: w.count,
    }
}

fn failure(d: DeadTask) -> Failure {
    Failure {
        path: d.path,
        reason: d.reason,
        attempts: d.attempts,
    }
}

/// Longest word a table shows whole, in characters.
pub const TABLE_WORD_CHARS: usize = 40;

/// `word` as a table shows it: whole up to [`TABLE_WORD_CHARS`]
/// characters, otherwise its beginning, an ellipsis and its length. A
/// "word" is any run of non-space bytes, so an input without spaces is one
/// word as long as the file (a 200 MB one reached the terminal whole); the
/// `-o` file and `--json` keep every word whole.
pub fn table_word(word: &str) -> std::borrow::Cow<'_, str> {
    if word.chars().count() <= TABLE_WORD_CHARS {
        return word.into();
    }
    let head: String = word.chars().take(TABLE_WORD_CHARS - 15).collect();
    format!("{head}… ({} bytes)", word.len()).into()
}

/// Prints the summary: a table of top words and totals on stdout, or one
/// JSON object; failures always go to stderr too.
pub fn print(summary: &Summary, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, summary)?;
        writeln!(out)?;
    } else {
        let width = summary
            .top
            .iter()
            .map(|w| table_word(&w.word).chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, TABLE_WORD_CHARS);
        writeln!(out, "{:>5}  {:<width$}  {:>12}", "rank", "word", "count")?;
        for (i, w) in summary.top.iter().enumerate() {
            let word = table_word(&w.word);
            writeln!(out, "{:>5}  {:<width$}  {:>12}", i + 1, word, w.count)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "job {}: {} of {} tasks counted ({} files), {:.1} MB, {} words, {} distinct, {:.2} s, {:.1} MB/s{}",
            summary.job,
            summary.tasks_done,
            summary.tasks,
            summary.files,
            summary.bytes as f64 / 1e6,
            summary.words,
            summary.distinct_words,
            summary.wall_seconds,
            summary.mb_per_s,
            if summary.workers_replaced > 0 {
                format!(", {} dead workers replaced", summary.workers_replaced)
            } else {
                String::new()
            }
        )?;
        if summary.workers_killed > 0 {
            writeln!(
                out,
                "{} worker(s) killed with SIGKILL while holding a task",
                summary.workers_killed
            )?;
        }
        if summary.checkpoints > 0 || summary.redis_crashes > 0 {
            writeln!(
                out,
                "{} checkpoint(s); Redis killed and restored {} time(s); {} task(s) recomputed",
                summary.checkpoints, summary.redis_crashes, summary.tasks_recomputed
            )?;
            for (i, c) in summary.redis_crash_log.iter().enumerate() {
                writeln!(
                    out,
                    "  crash {} ({}): {} tasks committed, {} remembered after the restore, {} recomputed, down {} ms",
                    i + 1,
                    c.kind.describe(),
                    c.committed_before,
                    c.committed_after_restore,
                    c.recomputed,
                    c.down_ms
                )?;
            }
        }
        if let Some(why) = &summary.chaos_not_done {
            writeln!(out, "chaos: {why}")?;
        }
    }
    if !summary.failed.is_empty() {
        eprintln!("{} file(s) could not be counted:", summary.failed.len());
        for f in &summary.failed {
            eprintln!(
                "  {} (after {} attempt(s)): {}",
                f.path, f.attempts, f.reason
            );
        }
    }
    Ok(())
}

/// Checks, before the job, that the `--output` file can be written, so
/// that a path that cannot is found out before the work rather than after
/// it. Nothing is created or emptied: an output from an earlier run stays
/// as it was until the new one replaces it whole.
pub fn check_output(path: &Path) -> Result<()> {
    let cannot = || format!("cannot write the --output file {}", path.display());
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(cannot)?;
    }
    tempfile::NamedTempFile::new_in(output_dir(path))
        .with_context(cannot)
        .map(drop)
}

/// The directory `path` is written in.
fn output_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes every word as `word<TAB>count`, count descending then bytes.
///
/// Into a temporary file next to `path`, renamed over it once complete:
/// a run interrupted (Ctrl-C, a crash, a full disk) leaves either the old
/// file or the whole new one, never an empty or truncated one.
pub async fn write_output(store: &mut Store, keys: &JobKeys, path: &Path) -> Result<()> {
    let words = results::all(store, keys).await?;
    let cannot = || format!("cannot write the --output file {}", path.display());
    let tmp = tempfile::NamedTempFile::new_in(output_dir(path)).with_context(cannot)?;
    let mut w = std::io::BufWriter::new(tmp);
    for wc in &words {
        w.write_all(&wc.word).with_context(cannot)?;
        writeln!(w, "\t{}", wc.count).with_context(cannot)?;
    }
    let tmp = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(cannot)?;
    // NamedTempFile is created 0600; an output is an ordinary file.
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::os::unix::fs::PermissionsExt::from_mode(0o644));
    tmp.as_file().set_permissions(mode).with_context(cannot)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(())
}
