//! Set-up shared by the worker's integration tests: a connection to a real
//! redis-server, and a job opened on it. (Each test file is its own binary:
//! the test pauses, `WCLAB_TEST_PAUSE`, are read once per process.)

#![allow(dead_code)] // each binary uses its own part

use std::path::PathBuf;
use std::time::{Duration, Instant};
use wclab_coord::job::{self, JobSpec};
use wclab_coord::submit::{self, TaskSpec};
use wclab_coord::{JobKeys, RedisTarget, RetryPolicy, Store};
use wclab_server::RedisServer;

/// A store on `server` that fails at once rather than retrying.
pub async fn store(server: &RedisServer) -> Store {
    Store::connect(
        RedisTarget::parse(&server.url()).unwrap(),
        RetryPolicy::FAIL_FAST,
    )
    .await
    .unwrap()
}

/// Describes job `keys` (files under `root`, `total_tasks` of them,
/// `total_bytes` in all) and opens its consumer group, as a submitter does
/// before its first task.
pub async fn open_job(
    driver: &mut Store,
    keys: &JobKeys,
    root: PathBuf,
    total_tasks: u64,
    total_bytes: u64,
) {
    job::describe(
        driver,
        keys,
        &JobSpec {
            roots: vec![root],
            total_tasks,
            total_bytes,
            csv_column: None,
        },
    )
    .await
    .unwrap();
    submit::open(driver, keys).await.unwrap();
}

/// A whole-file task.
pub fn task(id: &str, path: &std::path::Path, bytes: u64) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        path: path.to_str().unwrap().into(),
        start: 0,
        end: bytes,
    }
}

/// Waits until `files_done` reaches `n` (or gives up after a minute).
pub async fn wait_done(driver: &mut Store, keys: &JobKeys, n: u64) {
    let since = Instant::now();
    while job::status(driver, keys).await.unwrap().files_done < n {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{n} files not committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
