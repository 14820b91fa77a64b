//! A merged commit's tally is bounded in bytes, not only in distinct
//! words: Redis refuses an argument over its `proto-max-bulk-len`, and a
//! batch of long unique tokens passed it (found by the review of the tally
//! commit path: the worker's commit failed with "invalid bulk length").

mod common;

use common::{open_job, store, task, wait_done};
use wclab_coord::submit;
use wclab_coord::JobKeys;
use wclab_count::Counts;
use wclab_server::{RedisServer, ServerOptions};
use wclab_worker::{CommitBatch, Worker, WorkerConfig};

#[test]
fn the_bound_is_never_below_the_tally_written() {
    let mut counts = Counts::new();
    for (i, len) in [1usize, 7, 8, 9, 16, 17, 40, 1000].iter().enumerate() {
        let word = vec![b'a' + i as u8; *len];
        counts.add(&word, 999_999_999_999_999);
        let (tally, _) = wclab_coord::commit::tally(counts.iter());
        assert!(
            counts.tally_bytes_at_most() >= tally.len(),
            "{} < {} after a word of {len} bytes",
            counts.tally_bytes_at_most(),
            tally.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_once_its_tally_reaches_the_byte_bound() {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    // Five files of 20 unique 100-byte words each: ~2 KB of tally apiece.
    let mut tasks = Vec::new();
    for i in 1..=5 {
        let text: String = (0..20)
            .map(|w| format!("{}{w:02}{i} ", "x".repeat(97)))
            .collect();
        let path = root.join(format!("{i}.txt"));
        std::fs::write(&path, &text).unwrap();
        tasks.push(task(&format!("0-{i}"), &path, text.len() as u64));
    }
    let keys = JobKeys::new("bound");
    let mut driver = store(&server).await;
    let bytes = tasks.iter().map(|t| t.end).sum();
    open_job(&mut driver, &keys, root.clone(), 5, bytes).await;
    // All five wait before the worker starts: without the byte bound they
    // go in one merged commit (32 tasks and 500 k words allowed).
    submit::submit(&mut driver, &keys, &tasks).await.unwrap();

    let mut config = WorkerConfig::new("bound");
    config.batch = CommitBatch {
        max_tally_bytes: 1500,
        ..CommitBatch::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(store(&server).await, config).run(stop_rx));
    wait_done(&mut driver, &keys, 5).await;
    stop_tx.send(true).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.committed, 5);
    // Each task's tally alone reaches the bound: one commit (one tally)
    // per task.
    let tallies: u64 = driver
        .call("count tallies", redis::cmd("XLEN").arg(&keys.tallies))
        .await
        .unwrap();
    assert_eq!(tallies, 5, "a commit held more than the bound allows");
}
