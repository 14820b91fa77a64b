//! `wclab_speculate` on a given clock: a task is backed up for how long it
//! has been running (since `wclab_claim` handed it out), measured against
//! how long recent tasks ran, never for how long it waited in the queue.

use redis::Value;
use std::time::Duration;
use wclab_coord::speculate::spec_key;
use wclab_coord::{JobKeys, RedisTarget, RetryPolicy, Store};
use wclab_server::{RedisServer, ServerOptions};

async fn store(server: &RedisServer) -> Store {
    Store::connect(
        RedisTarget::parse(&server.url()).unwrap(),
        RetryPolicy::FAIL_FAST,
    )
    .await
    .unwrap()
}

fn fcall(name: &str, keys: &[&str], now: u64, args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd("FCALL");
    c.arg(name)
        .arg(keys.len())
        .arg(keys)
        .arg(now)
        .arg("workers");
    c.arg(args);
    c
}

fn submit(k: &JobKeys, now: u64, ids: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd("FCALL");
    c.arg("wclab_submit")
        .arg(3)
        .arg(&k.tasks)
        .arg(&k.job)
        .arg(&k.submitted);
    c.arg(now).arg("workers");
    for id in ids {
        c.arg(*id).arg(format!("/r/{id}")).arg(0).arg(10);
    }
    c
}

fn claim(k: &JobKeys, now: u64, who: &str) -> redis::Cmd {
    let spec = spec_key(k);
    fcall(
        "wclab_claim",
        &[&k.tasks, &k.dead, &k.job, &k.leases, &k.submitted, &spec],
        now,
        &[who, "60000", "5"],
    )
}

fn commit(k: &JobKeys, now: u64, who: &str, id: &str) -> redis::Cmd {
    fcall(
        "wclab_commit",
        &k.commit_keys(),
        now,
        &[who, "1", id, "10", "1", "1 word\n"],
    )
}

fn speculate(k: &JobKeys, now: u64, who: &str) -> redis::Cmd {
    let spec = spec_key(k);
    fcall(
        "wclab_speculate",
        &[&k.tasks, &k.done, &spec],
        now,
        &[who, "100", "3", "20"],
    )
}

/// The task ID of a claim-shaped reply, or None for nil.
fn task_id(v: &Value) -> Option<String> {
    let Value::Array(items) = v else { return None };
    match &items[1] {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => panic!("{other:?}"),
    }
}

/// A store that keeps every reply.
struct Log {
    store: Store,
    replies: Vec<Value>,
}

impl Log {
    async fn call(&mut self, what: &'static str, cmd: redis::Cmd) -> Value {
        let v: Value = self.store.call(what, &cmd).await.unwrap();
        self.replies.push(v.clone());
        v
    }
}

/// One scripted history at given times; returns every reply.
async fn history(server: &RedisServer) -> Vec<Value> {
    let mut log = Log {
        store: store(server).await,
        replies: Vec::new(),
    };
    let k = JobKeys::new("spec");
    let t0 = 1_000_000u64;
    log.call("submit", submit(&k, t0, &["1-1"])).await;
    log.call("submit", submit(&k, t0 + 8_000, &["1-2", "1-3", "1-4"]))
        .await;
    // The straggler is handed the first task after it waited 9 s queued.
    let t1 = t0 + 9_000;
    let held = log.call("claim", claim(&k, t1, "slow")).await;
    assert_eq!(task_id(&held).as_deref(), Some("1-1"));
    // Others run three tasks of 100 ms each (latencies 1.1-1.2 s).
    for (id, who, from) in [("1-2", "a", 10), ("1-3", "a", 110), ("1-4", "c", 120)] {
        let got = log.call("claim", claim(&k, t1 + from, who)).await;
        assert_eq!(task_id(&got).as_deref(), Some(id));
        log.call("commit", commit(&k, t1 + from + 100, who, id))
            .await;
    }
    // 250 ms of running is less than 3 x 100 ms. (Its 9.25 s since the
    // injection is far more than 3 x the 1.2 s median latency: a rule on
    // latencies would back it up now.)
    assert_eq!(
        log.call("speculate", speculate(&k, t1 + 250, "b")).await,
        Value::Nil,
        "backed up for its time in the queue"
    );
    // A renewal is not a new start.
    let renew = fcall(
        "wclab_renew",
        &[&k.tasks, &k.leases],
        t1 + 280,
        &["slow", "1-1"],
    );
    assert_eq!(log.call("renew", renew).await, Value::Int(1));
    let backup = log.call("speculate", speculate(&k, t1 + 300, "b")).await;
    assert_eq!(
        task_id(&backup).as_deref(),
        Some("1-1"),
        "300 ms of running is 3 x the median run time"
    );
    assert_eq!(
        log.call("speculate", speculate(&k, t1 + 400, "c")).await,
        Value::Nil,
        "one backup per task"
    );
    log.call("commit", commit(&k, t1 + 310, "b", "1-1")).await;
    let late = log
        .call("commit", commit(&k, t1 + 2_000, "slow", "1-1"))
        .await;
    assert!(
        matches!(&late, Value::Array(v) if v.first() == Some(&Value::Int(0))),
        "the straggler's commit is a no-op: {late:?}"
    );
    log.call(
        "backups",
        redis::cmd("HGET").arg(spec_key(&k)).arg("backups").clone(),
    )
    .await;
    log.replies
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_is_backed_up_for_its_run_time_not_its_time_in_the_queue() {
    let a = RedisServer::start(ServerOptions::default()).unwrap();
    let b = RedisServer::start(ServerOptions::default()).unwrap();
    let first = history(&a).await;
    assert_eq!(
        first.last(),
        Some(&Value::BulkString(b"1".to_vec())),
        "one copy"
    );
    // Another replica, applying the same calls 1.2 s later by its own
    // clock, decides the same: no idle time enters.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(history(&b).await, first);
}
