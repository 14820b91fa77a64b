//! The protocol's guarantees, one function at a time, on a real Redis.

use std::time::Duration;
use wclab_coord::claim::{claim, Claim, ClaimRules};
use wclab_coord::commit::{commit, CommitOutcome, Committed};
use wclab_coord::job::{self, JobPlan, JobSpec};
use wclab_coord::submit::TaskSpec;
use wclab_coord::{
    dead_letter, renew, results, CoordError, JobKeys, RedisTarget, RetryPolicy, Store,
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

/// A store on `server` that sends big commits as FCALL arguments, as to a
/// Raft cluster: the same server named twice is "several endpoints".
async fn argument_store(server: &RedisServer) -> Store {
    let url = format!("{},{}", server.url(), server.url());
    Store::connect(RedisTarget::parse(&url).unwrap(), RetryPolicy::FAIL_FAST)
        .await
        .unwrap()
}

fn words(from: usize, to: usize, n: u64) -> Vec<(Vec<u8>, u64)> {
    (from..to)
        .map(|w| (format!("w{w}").into_bytes(), n + w as u64 % 5))
        .collect()
}

async fn counts(store: &mut Store, keys: &JobKeys) -> std::collections::HashMap<Vec<u8>, u64> {
    results::all(store, keys)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.word, w.count))
        .collect()
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

async fn staging_is_gone(store: &mut Store, keys: &JobKeys) {
    let scratch: u64 = store
        .call("exists", redis::cmd("EXISTS").arg(&keys.merging))
        .await
        .unwrap();
    assert_eq!(scratch, 0, "the scratch set is gone after the commit");
}

/// Every way words reach `counts`, by both routes (staged in a MULTI, and
/// as FCALL arguments for a Raft cluster): the sums must not differ.
#[tokio::test]
async fn big_and_small_commits_add_the_same_as_one_zincrby_per_word() {
    for staged in [true, false] {
        let (server, store, keys) = setup(5).await;
        let mut store = if staged {
            store
        } else {
            argument_store(&server).await
        };
        let mut want: std::collections::HashMap<Vec<u8>, u64> = Default::default();
        let batches: [(usize, usize, u64); 5] = [
            (0, 1500, 1),    // into an empty set: renamed into place
            (500, 2500, 7),  // half new, half old: merged with ZUNIONSTORE
            (2000, 2010, 3), // a few words: ZINCRBY
            (0, 5000, 2),    // everything again, and more
            (6000, 7100, 1), // 1100 words beside 5000: ZINCRBY
        ];
        for (i, (from, to, n)) in batches.iter().enumerate() {
            let id = task(&mut store, &keys, "w", LONG).await;
            let words = words(*from, *to, *n);
            for (w, c) in &words {
                *want.entry(w.clone()).or_default() += c;
            }
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
            assert_eq!(out, CommitOutcome::Applied, "batch {i}, staged {staged}");
        }
        assert_eq!(counts(&mut store, &keys).await, want, "staged {staged}");
        let st = job::status(&mut store, &keys).await.unwrap();
        assert_eq!(st.words_done, want.values().sum::<u64>());
        assert_eq!(st.word_updates, 1500 + 2000 + 10 + 5000 + 1100);
        staging_is_gone(&mut store, &keys).await;
        assert_eq!(command_calls(&mut store, "zunionstore").await, 2);
        assert_eq!(command_calls(&mut store, "zincrby").await, 10 + 1100);
        assert_eq!(command_calls(&mut store, "rename").await, 1);
        // One transaction per big commit, unless Redis has no MULTI.
        assert_eq!(
            command_calls(&mut store, "exec").await,
            if staged { 4 } else { 0 }
        );
    }
}

/// A big commit whose tasks were committed meanwhile by a thief changes
/// nothing, and leaves nothing staged that a later commit could pick up.
#[tokio::test]
async fn a_refused_big_commit_leaves_nothing_behind() {
    let (_s, mut store, keys) = setup(2).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    let b = task(&mut store, &keys, "w", LONG).await;
    let only_b = [Committed { id: &b, bytes: 10 }];
    let small = words(0, 10, 1);
    commit(
        &mut store,
        &keys,
        "thief",
        &only_b,
        small.iter().map(|(w, c)| (w.as_slice(), *c)),
    )
    .await
    .unwrap();
    let before = counts(&mut store, &keys).await;
    let both = [
        Committed { id: &a, bytes: 10 },
        Committed { id: &b, bytes: 10 },
    ];
    let big = words(0, 5000, 3);
    let out = commit(
        &mut store,
        &keys,
        "w",
        &both,
        big.iter().map(|(w, c)| (w.as_slice(), *c)),
    )
    .await
    .unwrap();
    assert_eq!(out, CommitOutcome::NotPending(vec![b.clone()]));
    assert_eq!(counts(&mut store, &keys).await, before);
    staging_is_gone(&mut store, &keys).await;
    assert_eq!(job::status(&mut store, &keys).await.unwrap().files_done, 1);
}

/// What a failed transaction might have left in the scratch set is thrown
/// away, never added; and the function itself refuses a staging that does
/// not hold the number of words the caller says it staged.
#[tokio::test]
async fn stale_or_missing_staged_words_are_never_counted() {
    let (_s, mut store, keys) = setup(2).await;
    let junk: Vec<String> = (0..2000)
        .flat_map(|i| ["1000".to_string(), format!("junk{i}")])
        .collect();
    let _: u64 = store
        .call(
            "stage junk",
            redis::cmd("ZADD").arg(&keys.merging).arg(&junk),
        )
        .await
        .unwrap();
    let a = task(&mut store, &keys, "w", LONG).await;
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
    let want: std::collections::HashMap<Vec<u8>, u64> = big.into_iter().collect();
    assert_eq!(counts(&mut store, &keys).await, want);

    // Called directly, with 3 words said to be staged and none there.
    let b = task(&mut store, &keys, "w", LONG).await;
    let mut call = redis::cmd("FCALL");
    call.arg("wclab_commit_staged").arg(6);
    call.arg(&keys.commit_keys()[..]);
    call.arg("")
        .arg(wclab_coord::GROUP)
        .arg("w")
        .arg(1)
        .arg(&b)
        .arg(10)
        .arg(6)
        .arg(3);
    let err = store
        .call::<redis::Value>("staged", &call)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoordError::Refused { code, detail, .. }
            if code == "WCLABARG" && detail.contains("0 words staged")),
        "{err}"
    );
    staging_is_gone(&mut store, &keys).await;
    assert_eq!(counts(&mut store, &keys).await, want);
    let st = job::status(&mut store, &keys).await.unwrap();
    assert_eq!(st.files_done, 1, "the task was not acknowledged");
}

/// A refusal inside the staged commit's transaction reaches the caller as
/// a refusal (by its code, which redis-rs keeps on the command, not on the
/// failed transaction), and nothing was committed.
#[tokio::test]
async fn a_refused_staged_commit_is_a_refusal() {
    let (_s, mut store, keys) = setup(1).await;
    let a = task(&mut store, &keys, "w", LONG).await;
    let big = words(0, 1500, 2);
    // The task owns 10 bytes, not 11.
    let wrong = [Committed { id: &a, bytes: 11 }];
    let err = commit(
        &mut store,
        &keys,
        "w",
        &wrong,
        big.iter().map(|(w, c)| (w.as_slice(), *c)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, CoordError::Refused { code, detail, .. }
            if code == "WCLABARG" && detail.contains("bytes 11 of task 0-1")),
        "{err}"
    );
    assert!(results::all(&mut store, &keys).await.unwrap().is_empty());
    staging_is_gone(&mut store, &keys).await;
}

/// Redis lost the function library (restarted empty, say): the staged
/// commit's FCALL fails inside the transaction with Redis's generic ERR;
/// the store finds the library missing, loads it and commits.
#[tokio::test]
async fn a_staged_commit_loads_a_lost_library_again() {
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
    let want: std::collections::HashMap<Vec<u8>, u64> = big.into_iter().collect();
    assert_eq!(counts(&mut store, &keys).await, want);
}
