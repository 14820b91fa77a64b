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
    /// Workers that died and were replaced (0 when not supervising).
    pub workers_replaced: u64,
    /// Checkpoints (BGSAVE) taken during the job.
    pub checkpoints: u64,
    /// Times the private Redis was killed and restored (lab 4a).
    pub redis_crashes: u64,
    /// Tasks committed after the last checkpoint before a crash, which the
    /// restored Redis forgot and the workers counted again.
    pub tasks_recomputed: u64,
    /// CPU seconds the Redis server used (server total: the job's own with
    /// the private Redis of `run`).
    pub redis_cpu_seconds: f64,
    /// ZINCRBY calls Redis executed (server total, as above).
    pub redis_zincrby_calls: u64,
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
        workers_replaced,
        checkpoints: 0,
        redis_crashes: 0,
        tasks_recomputed: 0,
        redis_cpu_seconds: work.cpu_seconds,
        redis_zincrby_calls: work.zincrby_calls,
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
            .map(|w| w.word.chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 40);
        writeln!(out, "{:>5}  {:<width$}  {:>12}", "rank", "word", "count")?;
        for (i, w) in summary.top.iter().enumerate() {
            writeln!(out, "{:>5}  {:<width$}  {:>12}", i + 1, w.word, w.count)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "job {}: {} of {} tasks counted, {:.1} MB, {} words, {} distinct, {:.2} s, {:.1} MB/s{}",
            summary.job,
            summary.tasks_done,
            summary.tasks,
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
        if summary.checkpoints > 0 || summary.redis_crashes > 0 {
            writeln!(
                out,
                "{} checkpoint(s); Redis killed and restored {} time(s); {} task(s) recomputed",
                summary.checkpoints, summary.redis_crashes, summary.tasks_recomputed
            )?;
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

/// Writes every word as `word<TAB>count`, count descending then bytes.
pub async fn write_output(store: &mut Store, keys: &JobKeys, path: &Path) -> Result<()> {
    let words = results::all(store, keys).await?;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for wc in &words {
        w.write_all(&wc.word)?;
        writeln!(w, "\t{}", wc.count)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
