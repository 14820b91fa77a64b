//! Lab 4a: Redis is killed and restored from its last checkpoint; the
//! answer is still exact.

use crate::common::*;
use std::process::Stdio;
use std::time::Duration;
use wclab_testkit::{corpus, oracle, procs, redis::Client};

fn run_with_redis_kills(seed: u64) {
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
    assert!(
        v["redis_crashes"].as_u64().unwrap() >= 2,
        "Redis was killed several times: {v}"
    );
    assert!(v["checkpoints"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
fn counts_are_exact_when_redis_is_killed_and_restored_seed_1() {
    run_with_redis_kills(1);
}

#[test]
fn counts_are_exact_when_redis_is_killed_and_restored_seed_2() {
    run_with_redis_kills(2);
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
    let o = submitter.wait_with_output().unwrap();
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
    let o = worker.wait_with_output().unwrap();
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("rejected the password") && e.contains("same requirepass"),
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
    let o = worker.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("function library"),
        "the worker said what happened:\n{}",
        stderr(&o)
    );
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
}
