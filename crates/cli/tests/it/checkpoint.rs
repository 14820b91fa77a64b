//! Lab 4a: Redis is killed and restored from its last checkpoint; the
//! answer is still exact.

use crate::common::*;
use std::process::Stdio;
use std::time::Duration;
use wclab_testkit::{corpus, oracle, procs, redis::Client};

/// `run` with 4 Redis kills (and `downtime` of outage each): one before
/// the first checkpoint, the others during a BGSAVE and between
/// checkpoints. Returns the JSON summary.
fn run_with_redis_kills(seed: u64, downtime: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 30, 30_000, seed);
    let out = dir.path().join("counts.tsv");
    let o = output(
        wclab()
            .args([
                "run",
                "--workers",
                "2",
                "--lease",
                "500ms",
                "--json",
                "--checkpoint-every",
                "250ms",
            ])
            .args([
                "--chaos-redis-kills",
                "4",
                "--chaos-redis-downtime",
                downtime,
                "--chaos-seed",
                &seed.to_string(),
                "--input",
            ])
            .arg(&root)
            .arg("-o")
            .arg(&out)
            // Each task takes >= 80 ms, so the job outlives several kills.
            .env("WCLAB_TEST_PAUSE", "while_counting:80"),
    );
    assert_status(&o, 0);
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tasks_done"], 30, "{v}");
    assert_eq!(v["redis_crashes"], 4, "every kill happened: {v}");
    assert_eq!(
        v["workers_replaced"], 0,
        "no worker died of the outages: {v}"
    );
    assert!(v["checkpoints"].as_u64().unwrap() >= 1, "{v}");
    let log = v["redis_crash_log"].as_array().unwrap();
    let kinds: Vec<&str> = log.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "before_first_checkpoint", "{v}");
    assert!(kinds.contains(&"during_bgsave"), "{v}");
    assert!(kinds.contains(&"between_checkpoints"), "{v}");
    for c in log {
        let (before, after) = (
            c["committed_before"].as_u64().unwrap(),
            c["committed_after_restore"].as_u64().unwrap(),
        );
        assert!(after <= before, "a restore added commits: {c}");
        assert_eq!(c["recomputed"].as_u64().unwrap(), before - after, "{c}");
        match c["kind"].as_str().unwrap() {
            // Nothing to restore from: everything is counted again.
            "before_first_checkpoint" => assert!(before >= 1 && after == 0, "{c}"),
            // Killed after commits that no checkpoint had yet.
            "between_checkpoints" => assert!(after < before, "{c}"),
            // The BGSAVE child died with the server, unfinished.
            "during_bgsave" => assert_eq!(c["bgsave_in_progress"], true, "{c}"),
            other => panic!("unexpected crash kind {other}"),
        }
    }
    let sum: u64 = log.iter().map(|c| c["recomputed"].as_u64().unwrap()).sum();
    assert_eq!(v["tasks_recomputed"], sum, "{v}");
    v
}

#[test]
fn counts_are_exact_when_redis_is_killed_and_restored_seed_1() {
    run_with_redis_kills(1, "0s");
}

#[test]
fn counts_are_exact_when_redis_is_killed_and_restored_seed_2() {
    run_with_redis_kills(2, "0s");
}

#[test]
fn workers_and_the_submitter_ride_out_redis_outages_of_seconds() {
    let v = run_with_redis_kills(3, "2s");
    for c in v["redis_crash_log"].as_array().unwrap() {
        assert!(c["down_ms"].as_u64().unwrap() >= 2000, "{c}");
    }
}

#[test]
fn a_waiting_submitter_resubmits_what_a_restored_redis_lost() {
    let mut server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 12, 20_000, 6);
    let out = dir.path().join("counts.tsv");
    let submitter = wclab()
        .args(["submit", "--job", "j", "--wait", "--input"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .env("WCLAB_REDIS_URL", server.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let worker = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "while_counting:100")],
        &["--lease", "500ms"],
    );
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    procs::wait_for("a few commits", Duration::from_secs(30), || {
        (c.cmd(&["HGET", "wclab:{j}:job", "files_done"])
            .text()
            .parse::<u64>()
            .unwrap_or(0)
            >= 3)
            .then_some(())
    });
    // No checkpoint was ever taken: the restored Redis is empty.
    server.restart().unwrap();
    let o = wait_output(submitter, DEADLINE);
    assert_status(&o, 0);
    assert!(stderr(&o).contains("re-submitted"), "{}", stderr(&o));
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let mut worker = worker;
    procs::kill9(worker.id());
    worker.wait().unwrap();
}

#[test]
fn a_restart_with_another_password_is_explained() {
    let mut server = redis();
    let worker = spawn_worker(&server, "j", &[], &[]);
    std::thread::sleep(Duration::from_millis(300));
    server.restart_with_password("a-new-password").unwrap();
    let o = wait_output(worker, DEADLINE);
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("rejected the user or password") && e.contains("same requirepass"),
        "{e}"
    );
}

#[test]
fn a_redis_without_the_function_library_gets_it_back() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 10_000, 8);
    assert_status(&submit(&server, "j", &[&root]), 0);
    let worker = spawn_worker(
        &server,
        "j",
        &[
            ("WCLAB_TEST_PAUSE", "while_counting:300"),
            ("WCLAB_LOG", "info"),
        ],
        // One commit per task, so that commits are still to come after the deletion.
        &["--exit-when-done", "--commit-batch", "1"],
    );
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    procs::wait_for("the first commit", Duration::from_secs(20), || {
        (c.cmd(&["HGET", "wclab:{j}:job", "files_done"])
            .text()
            .parse::<u64>()
            .unwrap_or(0)
            >= 1)
            .then_some(())
    });
    // As if Redis had been restarted from a dump taken without functions.
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "wclab"]).text(), "OK");
    let o = wait_output(worker, DEADLINE);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("function library"),
        "the worker said what happened:\n{}",
        stderr(&o)
    );
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
}
