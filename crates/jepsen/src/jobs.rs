//! The word-count workload: real `wclab run` jobs against the cluster,
//! one after another until the run's time is up, each recorded as one
//! operation of the history and checked afterwards against the oracle.

use crate::check::wordcount::JobResult;
use crate::cluster::{query, Cluster};
use crate::history::{Event, Recorder, Type, F};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Files per job and the pause per task: each job lasts a few seconds,
/// so that faults land in the middle of jobs.
pub const FILES: usize = 40;
const PAUSE_MS: u64 = 100;

/// Runs jobs until `stop_at`; returns them (checked later, once the
/// cluster is healed).
pub fn run_jobs(
    wclab: &Path,
    endpoints: &[(u64, String)],
    input: &Path,
    out: &Path,
    recorder: &Recorder,
    stop_at: Instant,
) -> Vec<(JobResult, PathBuf)> {
    let cluster: Vec<&str> = endpoints.iter().map(|(_, a)| a.as_str()).collect();
    let mut jobs = Vec::new();
    let mut i = 0;
    while Instant::now() < stop_at {
        i += 1;
        let job = format!("jepsen-{i}");
        let output = out.join(format!("{job}.tsv"));
        let process = recorder.fresh_process();
        let ev = |kind, error: Option<String>| Event {
            kind,
            process,
            time: 0,
            f: F::Job,
            key: job.clone(),
            value: None,
            node: None,
            error,
        };
        recorder.record(ev(Type::Invoke, None));
        let finished = run_one(wclab, &cluster.join(","), &job, input, &output);
        recorder.record(match &finished {
            Ok(()) => ev(Type::Ok, None),
            Err(e) => ev(Type::Fail, Some(e.clone())),
        });
        jobs.push((
            JobResult {
                job,
                finished,
                counts: None,
                done: None,
                tasks: FILES,
            },
            output,
        ));
    }
    jobs
}

fn run_one(
    wclab: &Path,
    cluster: &str,
    job: &str,
    input: &Path,
    output: &Path,
) -> Result<(), String> {
    let mut child = Command::new(wclab)
        .args([
            "run",
            "--workers",
            "2",
            "--threads",
            "1",
            "--lease",
            "1s",
            "--job",
            job,
        ])
        .args(["--redis-cluster", cluster, "--json", "-k", "0", "--input"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .env("WCLAB_TEST_PAUSE", format!("while_counting:{PAUSE_MS}"))
        .env_remove("WCLAB_REDIS_URL")
        .env_remove("WCLAB_RAFT_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wclab: {e}"))?;
    let stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let started = Instant::now();
    let limit = Duration::from_secs(300);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Ok(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!("did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    let tail: String = text.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{s}: {tail}")),
        Err(e) => Err(format!("{e}: {tail}")),
    }
}

/// Fills in each job's counts and `done` records, read through the
/// (healed) cluster.
pub fn collect(cluster: &Cluster, jobs: Vec<(JobResult, PathBuf)>) -> Vec<JobResult> {
    jobs.into_iter()
        .map(|(mut j, output)| {
            if j.finished.is_ok() {
                j.counts = std::fs::metadata(&output).is_ok().then(|| {
                    wclab_testkit::oracle::read_tsv(&output)
                        .into_iter()
                        .collect()
                });
            }
            j.done = done_tasks(cluster, &j.job);
            j
        })
        .collect()
}

/// The task IDs in the job's `done` stream (a linearizable read through
/// any node), retried for up to 30 s.
fn done_tasks(cluster: &Cluster, job: &str) -> Option<Vec<String>> {
    let key = format!("wclab:{{{job}}}:done");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        for (_, addr) in cluster.client_endpoints() {
            if let Ok(redis::Value::Array(entries)) =
                query(&addr, &["XRANGE", &key, "-", "+"], Duration::from_secs(5))
            {
                return Some(entries.iter().filter_map(task_of).collect());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn task_of(entry: &redis::Value) -> Option<String> {
    let redis::Value::Array(e) = entry else {
        return None;
    };
    let redis::Value::Array(fields) = e.get(1)? else {
        return None;
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    fields
        .chunks(2)
        .find(|p| text(&p[0]).as_deref() == Some("task"))
        .and_then(|p| text(p.get(1)?))
}
