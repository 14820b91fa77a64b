//! Leases on a given clock (lab 4b): when the functions are given `now_ms`
//! (the Raft leader's time), a lease expires by that clock alone, so that
//! replicas applying the same calls at different moments decide the same.

use redis::Value;
use std::time::Duration;
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

fn claim(k: &JobKeys, now: u64, who: &str, lease: u64) -> redis::Cmd {
    let mut c = redis::cmd("FCALL");
    c.arg("wclab_claim")
        .arg(6)
        .arg(&k.tasks)
        .arg(&k.dead)
        .arg(&k.job)
        .arg(&k.leases)
        .arg(&k.submitted)
        .arg(&k.spec);
    c.arg(now).arg("workers").arg(who).arg(lease).arg(5);
    c
}

fn renew(k: &JobKeys, now: u64, who: &str, id: &str) -> redis::Cmd {
    let mut c = redis::cmd("FCALL");
    c.arg("wclab_renew").arg(2).arg(&k.tasks).arg(&k.leases);
    c.arg(now).arg("workers").arg(who).arg(id);
    c
}

fn commit(k: &JobKeys, now: u64, who: &str, id: &str) -> redis::Cmd {
    let mut c = redis::cmd("FCALL");
    c.arg("wclab_commit").arg(6).arg(&k.commit_keys()[..]);
    c.arg(now)
        .arg("workers")
        .arg(who)
        .arg(1)
        .arg(id)
        .arg(10)
        .arg(3)
        .arg("3 word\n");
    c
}

/// The claim's task ID and delivery count, or None for nil.
fn task(v: &Value) -> Option<(String, i64)> {
    let Value::Array(items) = v else { return None };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    Some((text(&items[1]), text(&items[6]).parse().unwrap()))
}

/// One scripted history of calls at given times; returns every reply and
/// the final pending entries (id, owner, deliveries) and leases.
async fn history(server: &RedisServer) -> (Vec<Value>, Value, Value) {
    let mut s = store(server).await;
    let k = JobKeys::new("given-time");
    let t0 = 1_000_000u64;
    let mut submit = redis::cmd("FCALL");
    submit
        .arg("wclab_submit")
        .arg(3)
        .arg(&k.tasks)
        .arg(&k.job)
        .arg(&k.submitted);
    submit
        .arg(t0 - 10)
        .arg("workers")
        .arg("1-1")
        .arg("/x")
        .arg(0)
        .arg(10);
    assert_eq!(
        s.call::<Value>("submit", &submit).await.unwrap(),
        Value::Int(1)
    );
    let mut replies = Vec::new();
    let mut run = |v: Value| {
        replies.push(v.clone());
        v
    };
    let first = run(s.call("claim", &claim(&k, t0, "a", 1000)).await.unwrap());
    assert_eq!(task(&first), Some(("1-1".into(), 1)), "a fresh task");
    // Whatever the real clock says, the lease runs on the given one.
    let early = run(s
        .call("claim", &claim(&k, t0 + 999, "b", 1000))
        .await
        .unwrap());
    assert_eq!(early, Value::Nil, "stolen before its lease ran out");
    assert_eq!(
        run(s
            .call("renew", &renew(&k, t0 + 500, "a", "1-1"))
            .await
            .unwrap()),
        Value::Int(1)
    );
    let renewed = run(s
        .call("claim", &claim(&k, t0 + 1400, "b", 1000))
        .await
        .unwrap());
    assert_eq!(renewed, Value::Nil, "a renewed lease was stolen");
    let stolen = run(s
        .call("claim", &claim(&k, t0 + 1500, "b", 1000))
        .await
        .unwrap());
    assert_eq!(
        task(&stolen),
        Some(("1-1".into(), 2)),
        "stolen once expired, a second delivery"
    );
    assert_eq!(
        run(s
            .call("renew", &renew(&k, t0 + 1600, "a", "1-1"))
            .await
            .unwrap()),
        Value::Int(0),
        "the robbed worker cannot take it back"
    );
    run(s
        .call("commit", &commit(&k, t0 + 1700, "b", "1-1"))
        .await
        .unwrap());
    let late = run(s
        .call("claim", &claim(&k, t0 + 99_999, "c", 1000))
        .await
        .unwrap());
    assert_eq!(late, Value::Nil, "a committed task is never stolen");
    let mut xp = redis::cmd("XPENDING");
    xp.arg(&k.tasks).arg("workers").arg("-").arg("+").arg(10);
    let pending: Value = s.call("xpending", &xp).await.unwrap();
    let leases: Value = s
        .call(
            "leases",
            redis::cmd("ZRANGE")
                .arg(&k.leases)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES"),
        )
        .await
        .unwrap();
    (replies, pending, leases)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_calls_at_different_moments_decide_the_same() {
    let a = RedisServer::start(ServerOptions::default()).unwrap();
    let b = RedisServer::start(ServerOptions::default()).unwrap();
    let first = history(&a).await;
    // The second replica applies the same log 1.2 s later by its own clock:
    // more than a lease of real time, which must change nothing.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = history(&b).await;
    assert_eq!(first.0, second.0, "replies differ");
    assert_eq!(first.1, Value::Array(vec![]), "nothing left pending");
    assert_eq!(first.2, Value::Array(vec![]), "no lease left");
    assert_eq!(first, second);
}
