//! The protocol's guarantees, one function at a time, on a real Redis.

use std::time::Duration;
use wclab_coord::claim::{claim, Claim, ClaimRules};
use wclab_coord::commit::{commit, CommitOutcome, Committed};
use wclab_coord::job::{self, JobPlan, JobSpec};
use wclab_coord::submit::TaskSpec;
use wclab_coord::{
    dead_letter, fold, renew, results, CoordError, JobKeys, RedisTarget, RetryPolicy, Store,
};
use wclab_server::{RedisServer, ServerOptions};

async fn setup(tasks: usize) -> (RedisServer, Store, JobKeys) {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let mut store = Store::connect(
        RedisTarget::parse(&server.url()).unwrap(),
        RetryPolicy::FAIL_FAST,
    )
    .await
    .unwrap();
    let keys = JobKeys::new("t");
    let plan = plan(tasks);
    assert_eq!(plan.submit(&mut store, &keys).await.unwrap(), tasks as u64);
    (server, store, keys)
}

fn plan(n: usize) -> JobPlan {
    JobPlan {
        spec: JobSpec {
            roots: vec!["/r".into()],
            total_tasks: n as u64,
            total_bytes: 10 * n as u64,
            csv_column: None,
        },
        tasks: (0..n)
            .map(|i| TaskSpec {
                id: TaskSpec::id_for(i),
                path: format!("/r/{i}"),
                start: 0,
                end: 10,
            })
            .collect(),
    }
}

const LONG: ClaimRules = ClaimRules {
    lease: Duration::from_secs(60),
    max_deliveries: 3,
};
const NONE: ClaimRules = ClaimRules {
    lease: Duration::ZERO,
    max_deliveries: 3,
};

async fn task(store: &mut Store, keys: &JobKeys, who: &str, rules: ClaimRules) -> String {
    match claim(store, keys, who, rules).await.unwrap() {
        Claim::Task(t) => t.id,
        other => panic!("expected a task, got {other:?}"),
    }
}

#[tokio::test]
async fn a_task_committed_twice_is_counted_once() {
    let (_s, mut store, keys) = setup(1).await;
    let id = task(&mut store, &keys, "a", LONG).await;
    let stolen = task(&mut store, &keys, "b", NONE).await; // lease 0: steal at once
    assert_eq!(id, stolen);
    let words = [(b"w".as_slice(), 2u64)];
    let done = [Committed { id: &id, bytes: 10 }];
    assert_eq!(
        commit(&mut store, &keys, "b", &done, words).await.unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        commit(&mut store, &keys, "a", &done, words).await.unwrap(),
        CommitOutcome::NotPending(vec![id.clone()])
    );
    let all = results::all(&mut store, &keys).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].count, 2);
    let st = job::status(&mut store, &keys).await.unwrap();
    assert_eq!((st.files_done, st.words_done), (1, 2));
    assert!(st.is_finished());
    assert_eq!(results::done(&mut store, &keys).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_multi_task_commit_is_all_or_nothing() {
    let (_s, mut store, keys) = setup(2).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    let b = task(&mut store, &keys, "w", LONG).await;
    // `b` is committed alone first (as by a thief).
    let only_b = [Committed { id: &b, bytes: 10 }];
    commit(
        &mut store,
        &keys,
        "thief",
        &only_b,
        [(b"x".as_slice(), 1u64)],
    )
    .await
    .unwrap();
    let both = [
        Committed { id: &a, bytes: 10 },
        Committed { id: &b, bytes: 10 },
    ];
    let out = commit(&mut store, &keys, "w", &both, [(b"x".as_slice(), 5u64)])
        .await
        .unwrap();
    assert_eq!(out, CommitOutcome::NotPending(vec![b.clone()]));
    // Nothing of the merged commit landed: `a` is still pending, x is 1.
    assert_eq!(
        results::top(&mut store, &keys, 1).await.unwrap()[0].count,
        1
    );
    let only_a = [Committed { id: &a, bytes: 10 }];
    assert_eq!(
        commit(&mut store, &keys, "w", &only_a, [(b"x".as_slice(), 4u64)])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        results::top(&mut store, &keys, 1).await.unwrap()[0].count,
        5
    );
}

#[tokio::test]
async fn a_task_given_twice_in_one_commit_is_refused_and_adds_nothing() {
    let (_s, mut store, keys) = setup(1).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    let twice = [
        Committed { id: &a, bytes: 10 },
        Committed { id: &a, bytes: 10 },
    ];
    let err = commit(&mut store, &keys, "w", &twice, [(b"x".as_slice(), 2u64)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoordError::Refused { code, .. } if code == "WCLABARG"),
        "{err}"
    );
    assert!(results::all(&mut store, &keys).await.unwrap().is_empty());
    assert!(!job::status(&mut store, &keys).await.unwrap().is_finished());
}

#[tokio::test]
async fn a_robbed_worker_cannot_renew_its_lease() {
    let (_s, mut store, keys) = setup(1).await;
    let id = task(&mut store, &keys, "slow", LONG).await;
    assert!(renew::renew(&mut store, &keys, "slow", &id).await.unwrap());
    task(&mut store, &keys, "thief", NONE).await;
    assert!(!renew::renew(&mut store, &keys, "slow", &id).await.unwrap());
    assert!(renew::renew(&mut store, &keys, "thief", &id).await.unwrap());
}

#[tokio::test]
async fn a_task_delivered_too_often_is_dead_lettered_with_its_reason() {
    let (_s, mut store, keys) = setup(1).await;
    task(&mut store, &keys, "w1", NONE).await; // delivery 1
    task(&mut store, &keys, "w2", NONE).await; // 2
    task(&mut store, &keys, "w3", NONE).await; // 3
    let buried = claim(&mut store, &keys, "w4", NONE).await.unwrap(); // 4 > 3
    assert_eq!(buried, Claim::Buried("0-1".into()));
    assert_eq!(
        claim(&mut store, &keys, "w5", NONE).await.unwrap(),
        Claim::Idle
    );
    let dead = results::dead(&mut store, &keys).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].path, "/r/0");
    assert_eq!(dead[0].attempts, 4);
    assert!(
        dead[0].reason.contains("delivered 4 times"),
        "{}",
        dead[0].reason
    );
    assert!(job::status(&mut store, &keys).await.unwrap().is_finished());
}

#[tokio::test]
async fn a_permanent_error_buries_the_task_once() {
    let (_s, mut store, keys) = setup(1).await;
    let id = task(&mut store, &keys, "w", LONG).await;
    assert!(
        dead_letter::dead_letter(&mut store, &keys, "w", &id, "missing")
            .await
            .unwrap()
    );
    assert!(
        !dead_letter::dead_letter(&mut store, &keys, "w", &id, "missing")
            .await
            .unwrap()
    );
    let st = job::status(&mut store, &keys).await.unwrap();
    assert_eq!(st.files_dead, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn resubmitting_adds_only_what_a_restore_lost() {
    let (mut server, mut store, keys) = setup(1).await;
    store
        .call::<String>("save", &redis::cmd("SAVE"))
        .await
        .unwrap();
    let p = plan(3);
    assert_eq!(
        p.submit(&mut store, &keys).await.unwrap(),
        2,
        "only the two new tasks"
    );
    assert_eq!(p.submit(&mut store, &keys).await.unwrap(), 0, "idempotent");
    // Crash and restore from the snapshot, which has only the first task.
    tokio::task::block_in_place(|| server.restart()).unwrap();
    let st = job::status(&mut store, &keys).await.unwrap();
    assert_eq!(st.tasks_in_stream, 1);
    assert!(p.is_lost_in(&st));
    assert_eq!(p.repair(&mut store, &keys, &st).await.unwrap(), 2);
    assert_eq!(
        job::status(&mut store, &keys)
            .await
            .unwrap()
            .tasks_in_stream,
        3
    );
}

#[tokio::test]
async fn a_worker_before_its_job_is_simply_idle() {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let mut store = Store::connect(
        RedisTarget::parse(&server.url()).unwrap(),
        RetryPolicy::FAIL_FAST,
    )
    .await
    .unwrap();
    let keys = JobKeys::new("not-yet");
    assert_eq!(
        claim(&mut store, &keys, "w", LONG).await.unwrap(),
        Claim::Idle
    );
    let none = [Committed {
        id: "0-1",
        bytes: 1,
    }];
    assert_eq!(
        commit(&mut store, &keys, "w", &none, [(b"x".as_slice(), 1u64)])
            .await
            .unwrap(),
        CommitOutcome::NotPending(vec!["0-1".into()])
    );
}

fn words(from: usize, to: usize, n: u64) -> Vec<(Vec<u8>, u64)> {
    (from..to)
        .map(|w| (format!("w{w}").into_bytes(), n + w as u64 % 5))
        .collect()
}

type Counts = std::collections::HashMap<Vec<u8>, u64>;

async fn counts(store: &mut Store, keys: &JobKeys) -> Counts {
    results::all(store, keys)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.word, w.count))
        .collect()
}

/// The sorted set `counts` alone (the folded part).
async fn sorted_set(store: &mut Store, keys: &JobKeys) -> Counts {
    let raw: Vec<(Vec<u8>, f64)> = store
        .call(
            "zrange",
            redis::cmd("ZRANGE")
                .arg(&keys.counts)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES"),
        )
        .await
        .unwrap();
    raw.into_iter().map(|(w, s)| (w, s as u64)).collect()
}

async fn tallies(store: &mut Store, keys: &JobKeys) -> u64 {
    store
        .call("xlen", redis::cmd("XLEN").arg(&keys.tallies))
        .await
        .unwrap()
}

async fn command_calls(store: &mut Store, cmd: &str) -> u64 {
    let stats: String = store
        .call("stats", redis::cmd("INFO").arg("commandstats"))
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Everything a refused or stale call must leave as it was.
async fn snapshot(store: &mut Store, keys: &JobKeys) -> (Counts, Counts, Vec<String>, String) {
    let ids: Vec<(String, std::collections::HashMap<String, Vec<u8>>)> = store
        .call(
            "xrange",
            redis::cmd("XRANGE").arg(&keys.tallies).arg("-").arg("+"),
        )
        .await
        .unwrap();
    let job: std::collections::BTreeMap<String, String> = store
        .call("hgetall", redis::cmd("HGETALL").arg(&keys.job))
        .await
        .unwrap();
    let pending: redis::Value = store
        .call(
            "xpending",
            redis::cmd("XPENDING").arg(&keys.tasks).arg("workers"),
        )
        .await
        .unwrap();
    (
        counts(store, keys).await,
        sorted_set(store, keys).await,
        ids.into_iter().map(|e| e.0).collect(),
        format!("{job:?} {pending:?}"),
    )
}

/// What `counts` means during a job (docs/protocol.md, "The counts during
/// a job"): the sorted set holds what was folded, the tallies the rest,
/// and their sum is every acknowledged task's counts at every step, with
/// folds at any moment; after the last fold the sorted set alone is all.
#[tokio::test]
async fn the_counts_during_a_job_are_the_sorted_set_plus_the_tallies() {
    let (_s, mut store, keys) = setup(6).await;
    let mut want = Counts::new();
    let mut folded = Counts::new();
    let batches: [(usize, usize, u64, bool); 6] = [
        (0, 1500, 1, false),
        (500, 2500, 7, true), // fold: into an empty sorted set
        (2000, 2010, 3, false),
        (0, 5000, 2, true), // fold: into a non-empty one
        (6000, 7100, 1, false),
        (0, 0, 1, false), // a task without words: no tally
    ];
    for (i, (from, to, n, fold_after)) in batches.iter().enumerate() {
        let id = task(&mut store, &keys, "w", LONG).await;
        let words = words(*from, *to, *n);
        let done = [Committed { id: &id, bytes: 10 }];
        let out = commit(
            &mut store,
            &keys,
            "w",
            &done,
            words.iter().map(|(w, c)| (w.as_slice(), *c)),
        )
        .await
        .unwrap();
        assert_eq!(out, CommitOutcome::Applied, "batch {i}");
        for (w, c) in &words {
            *want.entry(w.clone()).or_default() += c;
        }
        assert_eq!(counts(&mut store, &keys).await, want, "batch {i}");
        assert_eq!(sorted_set(&mut store, &keys).await, folded, "batch {i}");
        if *fold_after {
            let f = fold::fold(&mut store, &keys).await.unwrap();
            assert_eq!(f.raced, 0);
            folded = want.clone();
            assert_eq!(sorted_set(&mut store, &keys).await, folded, "fold {i}");
            assert_eq!(tallies(&mut store, &keys).await, 0);
            assert_eq!(counts(&mut store, &keys).await, want, "fold {i}");
        }
    }
    // Batches 0 and 1 folded into the empty set in one ZADD pass (1500 +
    // 1000 new words in 2500 lines), then batches 2 and 3 with ZINCRBY.
    assert_eq!(command_calls(&mut store, "rename").await, 1);
    assert_eq!(command_calls(&mut store, "zincrby").await, 5000);
    assert_eq!(
        tallies(&mut store, &keys).await,
        1,
        "batch 4; batch 5 had no words"
    );
    let top = results::top(&mut store, &keys, 3).await.unwrap();
    let mut sorted: Vec<_> = want.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let expect: Vec<(Vec<u8>, u64)> = sorted[..3]
        .iter()
        .map(|(w, c)| ((*w).clone(), **c))
        .collect();
    let got: Vec<(Vec<u8>, u64)> = top.into_iter().map(|w| (w.word, w.count)).collect();
    assert_eq!(got, expect, "top merges the tallies");
    fold::fold(&mut store, &keys).await.unwrap();
    assert_eq!(sorted_set(&mut store, &keys).await, want);
    let st = job::status(&mut store, &keys).await.unwrap();
    assert_eq!(st.words_done, want.values().sum::<u64>());
    assert_eq!(st.word_updates, 2500 + 5000 + 1100);
    let pending_words: Option<u64> = store
        .call("hget", redis::cmd("HGET").arg(&keys.job).arg("tally_words"))
        .await
        .unwrap();
    assert_eq!(pending_words, Some(0));
}

/// A fold whose tallies another fold took first changes nothing; a fold
/// whose words are not the tallies' is refused and changes nothing.
#[tokio::test]
async fn a_stale_or_wrong_fold_changes_nothing() {
    let (_s, mut store, keys) = setup(2).await;
    for (i, w) in [b"a".as_slice(), b"b"].into_iter().enumerate() {
        let id = task(&mut store, &keys, "w", LONG).await;
        let done = [Committed { id: &id, bytes: 10 }];
        let n = i as u64 + 2;
        commit(&mut store, &keys, "w", &done, [(w, n)])
            .await
            .unwrap();
    }
    let ids: Vec<(String, std::collections::HashMap<String, Vec<u8>>)> = store
        .call(
            "xrange",
            redis::cmd("XRANGE").arg(&keys.tallies).arg("-").arg("+"),
        )
        .await
        .unwrap();
    let before = snapshot(&mut store, &keys).await;
    let fcall = |last: &str, n: u64, words: u64, tally: &str| {
        let first = if n == 1 { last } else { &ids[0].0 };
        let mut c = redis::cmd("FCALL");
        c.arg("wclab_fold").arg(4).arg(&keys.fold_keys()[..]);
        c.arg("")
            .arg("workers")
            .arg(first)
            .arg(last)
            .arg(n)
            .arg(words)
            .arg(tally);
        c
    };
    // Says 1 tally up to the second: there are 2, so another fold ran.
    let stale: redis::Value = store
        .call("fold", &fcall(&ids[1].0, 1, 3, "3 b\n"))
        .await
        .unwrap();
    assert_eq!(stale, redis::Value::Array(vec![redis::Value::Int(0)]));
    assert_eq!(snapshot(&mut store, &keys).await, before);
    for (words, tally, why) in [
        (4, "4 a\n", "not the sum of the words of the 2 tallies"),
        (5, "2 a\n2 b\n", "is not the sum of the tally's counts"),
        (5, "2 a\n3 b", "line 2 '3 b' is not"),
        (5, "2 a\n03 b\n", "line 2"),
        (5, "2 a\n3 b c\n", "line 2"),
    ] {
        let err = store
            .call::<redis::Value>("fold", &fcall(&ids[1].0, 2, words, tally))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CoordError::Refused { code, detail, .. }
                if code == "WCLABARG" && detail.contains(why)),
            "{tally:?}: {err}"
        );
        assert_eq!(snapshot(&mut store, &keys).await, before, "{tally:?}");
    }
    let ok: redis::Value = store
        .call("fold", &fcall(&ids[1].0, 2, 5, "3 b\n2 a\n"))
        .await
        .unwrap();
    assert_eq!(
        ok,
        redis::Value::Array(vec![redis::Value::Int(1), redis::Value::Int(2)])
    );
    assert_eq!(sorted_set(&mut store, &keys).await, before.0);
}

/// A malformed tally is refused before anything is written: the task stays
/// pending, no tally, no record, no total moves.
#[tokio::test]
async fn a_malformed_tally_is_refused_and_changes_nothing() {
    let (_s, mut store, keys) = setup(1).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    let before = snapshot(&mut store, &keys).await;
    for (words, tally, why) in [
        (3, "3 x y\n", "line 1"),    // a word with a space
        (3, "3 x\n0 y\n", "line 2"), // a count of 0
        (3, "3 x", "line 1"),        // no newline
        (3, "03 x\n", "line 1"),     // a leading zero
        (3, "3 \n", "line 1"),       // no word
        (3, "3 x\ty\n", "line 1"),   // a tab in the word
        (4, "3 x\n", "not the sum"), // words is not the sum
        (1, "9007199254740992 x\n", "2^53-1"),
    ] {
        let mut c = redis::cmd("FCALL");
        c.arg("wclab_commit").arg(6).arg(&keys.commit_keys()[..]);
        c.arg("")
            .arg("workers")
            .arg("w")
            .arg(1)
            .arg(&a)
            .arg(10)
            .arg(words)
            .arg(tally);
        let err = store.call::<redis::Value>("commit", &c).await.unwrap_err();
        assert!(
            matches!(&err, CoordError::Refused { code, detail, .. }
                if code == "WCLABARG" && detail.contains(why)),
            "{tally:?}: {err}"
        );
        assert_eq!(snapshot(&mut store, &keys).await, before, "{tally:?}");
    }
    assert!(!job::status(&mut store, &keys).await.unwrap().is_finished());
}

/// Redis lost the function library (restarted empty, say): the commit's
/// FCALL fails with Redis's generic ERR; the store finds the library
/// missing, loads it and commits.
#[tokio::test]
async fn a_commit_loads_a_lost_library_again() {
    let (_s, mut store, keys) = setup(1).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    store
        .call::<String>(
            "delete the library",
            redis::cmd("FUNCTION").arg("DELETE").arg("wclab"),
        )
        .await
        .unwrap();
    let big = words(0, 1500, 2);
    let done = [Committed { id: &a, bytes: 10 }];
    let out = commit(
        &mut store,
        &keys,
        "w",
        &done,
        big.iter().map(|(w, c)| (w.as_slice(), *c)),
    )
    .await
    .unwrap();
    assert_eq!(out, CommitOutcome::Applied);
    let want: Counts = big.into_iter().collect();
    assert_eq!(counts(&mut store, &keys).await, want);
}
