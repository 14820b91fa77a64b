//! Streams (issue 19): files counted while the worker's previous commit is
//! in flight are committed together, one completion record per file, a
//! fixed number at most; a file that finds nothing behind it is committed
//! at once, alone.
//!
//! Its own test binary: the pause before each commit (`WCLAB_TEST_PAUSE`)
//! is read once per process.

mod common;

use common::{open_job, store, wait_done};
use std::collections::HashMap;
use wclab_coord::submit::{self, TaskSpec};
use wclab_coord::{JobKeys, Store};
use wclab_server::{RedisServer, ServerOptions};
use wclab_worker::{CommitBatch, Worker, WorkerConfig};

fn task(root: &std::path::Path, i: usize) -> TaskSpec {
    common::task(&format!("0-{i}"), &root.join(format!("{i}.txt")), 6)
}

/// The tasks of each commit, from the completion records: one commit
/// writes its records with one time and one worker, the tally once.
async fn commits(driver: &mut Store, keys: &JobKeys) -> Vec<Vec<String>> {
    let done: Vec<(String, HashMap<String, String>)> = driver
        .call(
            "read done",
            redis::cmd("XRANGE").arg(&keys.done).arg("-").arg("+"),
        )
        .await
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (_, f) in done {
        match out.last_mut() {
            Some((at, ids)) if *at == f["committed"] => ids.push(f["task"].clone()),
            _ => out.push((f["committed"].clone(), vec![f["task"].clone()])),
        }
    }
    out.into_iter().map(|c| c.1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_counted_during_a_commit_go_together_and_a_lone_file_goes_at_once() {
    // Each commit waits 1 s before its FCALL: the files counted meanwhile
    // pile up behind it.
    std::env::set_var("WCLAB_TEST_PAUSE", "before_commit:1000");
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for i in 1..=6 {
        std::fs::write(root.join(format!("{i}.txt")), "x y x\n").unwrap();
    }
    let keys = JobKeys::new("group");
    let mut driver = store(&server).await;
    open_job(&mut driver, &keys, root.clone(), 6, 36).await;
    // Five files wait before the worker starts.
    let five: Vec<TaskSpec> = (1..=5).map(|i| task(&root, i)).collect();
    submit::submit(&mut driver, &keys, &five).await.unwrap();

    let mut config = WorkerConfig::new("group");
    config.batch = CommitBatch::stream(3);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(store(&server).await, config).run(stop_rx));
    wait_done(&mut driver, &keys, 5).await;
    // The first goes alone (nothing in flight), the next three together
    // while it is in flight (the bound), the last alone when the claim
    // after it finds nothing.
    assert_eq!(
        commits(&mut driver, &keys).await,
        [vec!["0-1"], vec!["0-2", "0-3", "0-4"], vec!["0-5"]]
    );

    // A lone file later: committed without waiting for company.
    submit::submit(&mut driver, &keys, &[task(&root, 6)])
        .await
        .unwrap();
    wait_done(&mut driver, &keys, 6).await;
    assert_eq!(commits(&mut driver, &keys).await.last().unwrap(), &["0-6"]);
    let tallies: u64 = driver
        .call("count tallies", redis::cmd("XLEN").arg(&keys.tallies))
        .await
        .unwrap();
    assert_eq!(tallies, 4, "one tally per commit");

    stop_tx.send(true).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.committed, 6);
}
