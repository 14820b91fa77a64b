//! Lab 2: workers die at any instant; the counts stay exact.

use crate::common::*;
use nix::sys::signal::Signal;
use rand::{Rng, SeedableRng};
use std::process::Stdio;
use std::time::{Duration, Instant};
use wclab_testkit::{corpus, oracle, procs};

/// Kills random workers of a running job at seeded random moments.
fn run_with_kills(seed: u64, kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 30, 40_000, seed);
    let out = dir.path().join("counts.tsv");
    let mut run = wclab()
        .args([
            "run",
            "--workers",
            "3",
            "--lease",
            "400ms",
            "--max-deliveries",
            "50",
            "--json",
            "--input",
        ])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        // Each task takes >= 60 ms, so that kills land mid-task.
        .env("WCLAB_TEST_PAUSE", "while_counting:60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while killed < kills && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
        if run.try_wait().unwrap().is_some() {
            break;
        }
        let workers = procs::workers_of(run.id());
        if let Some(&victim) = workers.get(rng.random_range(0..workers.len().max(1))) {
            procs::kill9(victim);
            killed += 1;
        }
    }
    let o = wait_output(run, DEADLINE);
    assert_status(&o, 0);
    assert!(
        killed >= kills / 2,
        "the job ended before enough kills ({killed})"
    );
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tasks_done"], 30);
    assert!(
        v["workers_replaced"].as_u64().unwrap() >= 1,
        "dead workers were replaced: {v}"
    );
}

#[test]
fn counts_are_exact_when_workers_are_killed_at_random_seed_1() {
    run_with_kills(1, 12);
}

#[test]
fn counts_are_exact_when_workers_are_killed_at_random_seed_2() {
    run_with_kills(2, 12);
}

fn one_file_job(server: &RedisServer, job: &str) -> (tempfile::TempDir, oracle::WordMap) {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 1, 20_000, 9);
    assert_status(&submit(server, job, &[&root]), 0);
    let want = oracle::count_tree(&root);
    (dir, want)
}

/// Waits until some consumer holds the job's one task.
fn wait_claimed(server: &RedisServer, job: &str) {
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    procs::wait_for("the task to be claimed", Duration::from_secs(20), || {
        let r = c.cmd(&["XPENDING", &format!("wclab:{{{job}}}:tasks"), "workers"]);
        (r.array()[0].int() == 1).then_some(())
    });
}

#[test]
fn a_worker_killed_between_claim_and_commit_loses_nothing() {
    let server = redis();
    let (_dir, want) = one_file_job(&server, "j");
    let mut doomed = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "before_commit:30000")],
        &["--lease", "300ms"],
    );
    wait_claimed(&server, "j");
    std::thread::sleep(Duration::from_millis(100)); // well inside the 30 s pause
    procs::kill9(doomed.id());
    doomed.wait().unwrap();
    assert!(
        counts_in_redis(&server, "j").is_empty(),
        "nothing committed before the kill"
    );
    let mut thief = spawn_worker(&server, "j", &[], &["--lease", "300ms", "--exit-when-done"]);
    wait_finished(&server, "j");
    assert!(thief.wait().unwrap().success());
    oracle::assert_same(&counts_in_redis(&server, "j"), &want);
    let done = done_records(&server, "j");
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0].2, 2,
        "the task was delivered twice: to the dead worker, then to the thief"
    );
}

#[test]
fn a_task_finished_by_a_slow_worker_and_a_thief_is_counted_once() {
    let server = redis();
    let (_dir, want) = one_file_job(&server, "j");
    // The slow worker stalls after counting, without renewing its lease.
    let slow = spawn_worker(
        &server,
        "j",
        &[
            ("WCLAB_TEST_PAUSE", "before_commit:2500"),
            ("WCLAB_LOG", "info"),
        ],
        &["--lease", "300ms", "--exit-when-done"],
    );
    wait_claimed(&server, "j");
    let thief = spawn_worker(&server, "j", &[], &["--lease", "300ms", "--exit-when-done"]);
    let slow = wait_output(slow, DEADLINE);
    let thief = wait_output(thief, DEADLINE);
    assert!(slow.status.success() && thief.status.success());
    oracle::assert_same(&counts_in_redis(&server, "j"), &want);
    let done = done_records(&server, "j");
    assert_eq!(done.len(), 1, "one completion record: {done:?}");
    let log = String::from_utf8_lossy(&slow.stderr);
    assert!(
        log.contains("already committed"),
        "the slow worker's commit was a no-op:\n{log}"
    );
}

#[test]
fn a_live_slow_worker_renews_its_lease_and_is_not_robbed() {
    let server = redis();
    let (_dir, want) = one_file_job(&server, "j");
    // Counting takes 2 s, the lease is 300 ms: only renewals keep the task.
    let slow = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:2000")],
        &["--lease", "300ms", "--exit-when-done"],
    );
    wait_claimed(&server, "j");
    let other = spawn_worker(&server, "j", &[], &["--lease", "300ms", "--exit-when-done"]);
    assert!(wait_output(slow, DEADLINE).status.success());
    assert!(wait_output(other, DEADLINE).status.success());
    oracle::assert_same(&counts_in_redis(&server, "j"), &want);
    let done = done_records(&server, "j");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].2, 1, "never stolen: delivered once ({done:?})");
}

#[test]
fn a_stopped_worker_is_robbed_and_its_late_commit_adds_nothing() {
    // A straggler frozen by SIGSTOP (as cpulimit does) cannot renew.
    let server = redis();
    let (_dir, want) = one_file_job(&server, "j");
    let frozen = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:500")],
        &["--lease", "300ms", "--exit-when-done"],
    );
    wait_claimed(&server, "j");
    procs::signal(frozen.id(), Signal::SIGSTOP);
    let thief = spawn_worker(&server, "j", &[], &["--lease", "300ms", "--exit-when-done"]);
    wait_finished(&server, "j");
    procs::signal(frozen.id(), Signal::SIGCONT);
    assert!(wait_output(frozen, DEADLINE).status.success());
    assert!(wait_output(thief, DEADLINE).status.success());
    oracle::assert_same(&counts_in_redis(&server, "j"), &want);
    assert_eq!(done_records(&server, "j").len(), 1);
}

#[test]
fn a_worker_exits_cleanly_on_sigterm() {
    let server = redis();
    let mut w = spawn_worker(&server, "idle", &[], &[]);
    std::thread::sleep(Duration::from_millis(300));
    procs::signal(w.id(), Signal::SIGTERM);
    let status = w.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn runs_own_chaos_kills_every_worker_it_was_asked_to_while_batches_are_in_flight() {
    // `run --chaos-kills` (what `just lab2` uses), with merged commits: a
    // worker dies holding a batch of counted, uncommitted tasks.
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 40, 20_000, 3);
    let out = dir.path().join("counts.tsv");
    let o = output(
        wclab()
            .args(["run", "--workers", "3", "--lease", "400ms", "--json"])
            .args(["--chaos-kills", "8", "--chaos-seed", "5", "--input"])
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .env("WCLAB_TEST_PAUSE", "while_counting:40"),
    );
    assert_status(&o, 0);
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workers_killed"], 8, "{v}");
    assert_eq!(v["tasks_done"], 40, "{v}");
    assert!(v["chaos_not_done"].is_null(), "{v}");
    assert_eq!(
        stderr(&o).matches("chaos: kill -9 worker").count(),
        8,
        "each kill is reported:\n{}",
        stderr(&o)
    );
    // Eight distinct processes: a worker killed but not yet reaped (its
    // consumer still holding its tasks) is not killed, and counted, again.
    let err = stderr(&o);
    let pids: std::collections::BTreeSet<&str> = err
        .split("chaos: kill -9 worker ")
        .skip(1)
        .filter_map(|rest| rest.split(',').next())
        .collect();
    assert_eq!(pids.len(), 8, "a worker was killed twice:\n{err}");
}

#[test]
fn a_batch_partly_committed_by_a_thief_commits_the_rest_exactly_once() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 5_000, 21);
    assert_status(&submit(&server, "j", &[&root]), 0);
    // A counts all four tasks into one batch, then stalls before its
    // commit without renewing: its leases run out.
    let a = spawn_worker(
        &server,
        "j",
        &[
            ("WCLAB_TEST_PAUSE", "before_commit:2500"),
            ("WCLAB_LOG", "info"),
        ],
        &[
            "--lease",
            "300ms",
            "--commit-batch",
            "4",
            "--exit-when-done",
        ],
    );
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    procs::wait_for("A to hold all four", Duration::from_secs(20), || {
        let r = c.cmd(&["XPENDING", "wclab:{j}:tasks", "workers"]);
        (r.array()[0].int() == 4).then_some(())
    });
    // B steals one task at a time, slowly: when A wakes up, some of its
    // tasks are committed by B, one is held by B, the rest are A's again.
    let b = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:1200")],
        &[
            "--lease",
            "300ms",
            "--commit-batch",
            "1",
            "--exit-when-done",
        ],
    );
    let a = wait_output(a, DEADLINE);
    let b = wait_output(b, DEADLINE);
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    let done = done_records(&server, "j");
    let ids: std::collections::BTreeSet<&String> = done.iter().map(|d| &d.0).collect();
    assert_eq!((done.len(), ids.len()), (4, 4), "once each: {done:?}");
    assert!(
        stderr(&a).contains("no longer pending"),
        "A's merged commit met a task committed by B:\n{}",
        stderr(&a)
    );
}

#[test]
fn a_long_running_worker_follows_a_job_submitted_again_with_other_inputs() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let first = corpus::english(&dir.path().join("first"), 2, 5_000, 30);
    let second = corpus::english(&dir.path().join("second"), 3, 5_000, 31);
    let mut w = spawn_worker(&server, "j", &[], &["--commit-batch", "1"]);
    assert_status(&submit(&server, "j", &[&first]), 0);
    wait_finished(&server, "j");
    let o = output(
        wclab()
            .args([
                "submit", "--job", "j", "--fresh", "--wait", "--json", "--input",
            ])
            .arg(&second)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    w.kill().unwrap();
    let _ = w.wait();
    assert_status(&o, 0);
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&second));
}

#[test]
fn a_worker_told_to_stop_mid_task_exits_and_gives_the_task_back() {
    let server = redis();
    let (_dir, want) = one_file_job(&server, "j");
    // Counting would take a minute; the lease is a minute too.
    let busy = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:60000")],
        &["--lease", "60s"],
    );
    wait_claimed(&server, "j");
    procs::signal(busy.id(), Signal::SIGTERM);
    // It exits well before its counting would have ended (the deadline
    // here is a liveness bound, far below the 60 s pause)...
    let o = wait_output(busy, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    // ...and the task is claimable at once, not after its 60 s lease.
    let next = spawn_worker(&server, "j", &[], &["--lease", "60s", "--exit-when-done"]);
    let o = wait_output(next, Duration::from_secs(30));
    assert!(o.status.success(), "{}", stderr(&o));
    oracle::assert_same(&counts_in_redis(&server, "j"), &want);
}
