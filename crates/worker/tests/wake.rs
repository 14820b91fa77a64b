//! An idle worker waits in a blocking read on the job's stream and wakes
//! when a task is appended, instead of sleeping between claims (issue 19).

mod common;

use common::{open_job, store, task};
use std::time::{Duration, Instant};
use wclab_coord::job;
use wclab_coord::submit;
use wclab_coord::JobKeys;
use wclab_server::{RedisServer, ServerOptions};
use wclab_worker::{CommitBatch, Worker, WorkerConfig};

/// Panics with `what` once `since` is `limit` old.
fn give_up_after(since: Instant, limit: Duration, what: &str) {
    assert!(since.elapsed() < limit, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_blocked_on_the_stream_wakes_when_a_task_is_injected() {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "x y x\n").unwrap();
    let root = dir.path().canonicalize().unwrap();
    let keys = JobKeys::new("wake");
    let mut driver = store(&server).await;
    open_job(&mut driver, &keys, root.clone(), 1, 6).await;

    // Polling once an hour: only a wake-up on the append can commit the
    // task before the test gives up.
    let mut config = WorkerConfig::new("wake");
    config.idle_poll = Duration::from_secs(3600);
    config.batch = CommitBatch::SINGLE;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(store(&server).await, config).run(stop_rx));

    let mut admin = store(&server).await;
    let since = Instant::now();
    loop {
        let clients: String = admin
            .call("list the clients", redis::cmd("CLIENT").arg("LIST"))
            .await
            .unwrap();
        if clients
            .lines()
            .any(|l| l.contains(" cmd=xread ") && l.contains(" flags=b "))
        {
            break;
        }
        give_up_after(
            since,
            Duration::from_secs(60),
            "the idle worker never blocked in a read of the stream",
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    submit::submit(&mut driver, &keys, &[task("0-1", &root.join("a.txt"), 6)])
        .await
        .unwrap();
    let since = Instant::now();
    while job::status(&mut driver, &keys).await.unwrap().files_done < 1 {
        give_up_after(
            since,
            Duration::from_secs(60),
            "the blocked worker did not wake up to commit the injected task",
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.committed, 1);
}
