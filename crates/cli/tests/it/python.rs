//! The reference worker in Python (`examples/python-worker`), written from
//! docs/protocol.md alone, on real jobs: alone, beside Rust workers,
//! killed with SIGKILL mid-task, stopped with SIGTERM, one task per commit.
//! Every run is checked against the oracle.
//!
//! These tests need python3 with redis-py (`./bootstrap test` installs it);
//! without it they fail, they do not skip.

use crate::common::*;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wclab_testkit::redis::Client;
use wclab_testkit::{corpus, oracle, procs};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-worker/worker.py")
}

/// python3 with redis-py, or a failure that says how to get it.
fn require_python() {
    let ok = Command::new("python3")
        .args(["-c", "import redis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these tests need python3 with redis-py: ./bootstrap test installs it \
         (python3 -m pip install redis, or apt-get install python3-redis)"
    );
}

/// Starts the Python worker on `job`; the URL (with its password) goes in
/// the environment, never on the command line.
fn python_worker(server: &RedisServer, job: &str, env: &[(&str, &str)], args: &[&str]) -> Child {
    require_python();
    let mut c = Command::new("python3");
    c.arg(script())
        .arg("--job")
        .arg(job)
        .args(args)
        .env("WCLAB_REDIS_URL", server.url())
        .env_remove("WCLAB_TEST_PAUSE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3")
}

fn submit_split(server: &RedisServer, job: &str, root: &Path, split: &str) {
    let o = output(
        wclab()
            .args(["submit", "--job", job, "--split-size", split, "--input"])
            .arg(root)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 0);
}

/// Calls of a command in the server's INFO commandstats.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    let info = c.cmd(&["INFO", "commandstats"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// The consumers holding tasks of `job` (XPENDING summary).
fn holders(server: &RedisServer, job: &str) -> Vec<String> {
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    let r = c.cmd(&["XPENDING", &format!("wclab:{{{job}}}:tasks"), "workers"]);
    match r.array().get(3) {
        Some(consumers) if !consumers.array().is_empty() => consumers
            .array()
            .iter()
            .map(|c| c.array()[0].text())
            .collect(),
        _ => Vec::new(),
    }
}

fn wait_done(child: Child) {
    let o = wait_output(child, DEADLINE);
    assert_status(&o, 0);
}

#[test]
fn the_python_worker_alone_counts_every_word_of_the_tricky_corpus() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::tricky(dir.path());
    // Ranges of 64 KiB: words straddle hundreds of boundaries, and the
    // 3 MB word spans many ranges (it belongs to the first).
    submit_split(&server, "j", &root, "64KiB");
    wait_done(python_worker(&server, "j", &[], &["--exit-when-done"]));
    // Every commit is one FCALL with one tally: no transaction, and no
    // sorted-set update until somebody folds.
    assert_eq!(calls(&server, "exec"), 0);
    assert_eq!(calls(&server, "zincrby") + calls(&server, "zadd"), 0);
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    let done = done_records(&server, "j");
    assert!(done.iter().all(|d| d.1.starts_with("py-")), "{done:?}");
}

#[test]
fn python_and_rust_workers_share_a_job_exactly() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 24, 30_000, 11);
    submit_split(&server, "j", &root, "8KiB");
    // Slowed down a little, so that all four take tasks.
    let pause = [("WCLAB_TEST_PAUSE", "while_counting:20")];
    let workers = [
        python_worker(
            &server,
            "j",
            &pause,
            &["--exit-when-done", "--commit-batch", "4"],
        ),
        python_worker(
            &server,
            "j",
            &pause,
            &["--exit-when-done", "--commit-batch", "1"],
        ),
        spawn_worker(
            &server,
            "j",
            &pause,
            &["--exit-when-done", "--commit-batch", "4"],
        ),
        spawn_worker(
            &server,
            "j",
            &pause,
            &["--exit-when-done", "--commit-batch", "1"],
        ),
    ];
    for w in workers {
        wait_done(w);
    }
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    let done = done_records(&server, "j");
    let python = done.iter().filter(|d| d.1.starts_with("py-")).count();
    assert!(
        python > 0 && python < done.len(),
        "both languages committed tasks: {python} of {}",
        done.len()
    );
}

#[test]
fn a_python_worker_killed_mid_task_is_robbed_by_a_rust_worker() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 20_000, 12);
    submit_split(&server, "j", &root, "16KiB");
    // It claims a task and sits on it (a minute of "counting").
    let doomed = python_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:60000")],
        &["--lease-ms", "500"],
    );
    procs::wait_for(
        "the Python worker to hold a task",
        Duration::from_secs(30),
        || {
            holders(&server, "j")
                .iter()
                .any(|h| h.starts_with("py-"))
                .then_some(())
        },
    );
    procs::kill9(doomed.id());
    let o = wait_output(doomed, Duration::from_secs(10));
    assert!(!o.status.success());
    let thief = spawn_worker(&server, "j", &[], &["--lease", "500ms", "--exit-when-done"]);
    wait_done(thief);
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    let done = done_records(&server, "j");
    assert!(
        done.iter().all(|d| !d.1.starts_with("py-")),
        "the killed worker committed nothing"
    );
    assert!(
        done.iter().any(|d| d.2 >= 2),
        "the dead worker's task was stolen: delivered twice: {done:?}"
    );
}

#[test]
fn the_python_worker_commits_one_tally_per_task() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 30, 2_000, 13);
    assert_status(&submit(&server, "j", &[&root]), 0);
    wait_done(python_worker(
        &server,
        "j",
        &[],
        &["--exit-when-done", "--commit-batch", "1"],
    ));
    assert_eq!(calls(&server, "exec"), 0, "no transaction");
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    assert_eq!(done_records(&server, "j").len(), 30);
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    let tallies = c.cmd(&["XLEN", "wclab:{j}:tallies"]);
    assert_eq!(tallies.text(), "30", "one tally per commit");
}

#[test]
fn sigterm_makes_the_python_worker_give_its_task_back() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 1, 20_000, 14);
    assert_status(&submit(&server, "j", &[&root]), 0);
    let busy = python_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:60000")],
        &["--lease-ms", "60000"],
    );
    procs::wait_for(
        "the Python worker to hold the task",
        Duration::from_secs(30),
        || (!holders(&server, "j").is_empty()).then_some(()),
    );
    procs::signal(busy.id(), Signal::SIGTERM);
    // It exits long before its minute of counting...
    let o = wait_output(busy, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("given back (True)"), "{}", stderr(&o));
    // ...and the task is claimable at once, not after the 60 s lease.
    let next = spawn_worker(&server, "j", &[], &["--lease", "60s", "--exit-when-done"]);
    let o = wait_output(next, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
}

#[test]
fn the_python_worker_dead_letters_a_file_it_cannot_read() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 3, 5_000, 15);
    assert_status(&submit(&server, "j", &[&root]), 0);
    let gone = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&gone).unwrap();
    wait_done(python_worker(&server, "j", &[], &["--exit-when-done"]));
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    let dead = c.cmd(&["XRANGE", "wclab:{j}:dead", "-", "+"]);
    assert_eq!(dead.array().len(), 1);
    let fields: Vec<String> = dead.array()[0].array()[1]
        .array()
        .iter()
        .map(|f| f.text())
        .collect();
    assert!(
        fields.iter().any(|f| f.contains(gone.to_str().unwrap())),
        "{fields:?}"
    );
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
}
