//! Folding under pressure: folds racing each other, commits and readers;
//! a fold read before a Redis restore and sent after it; tallies larger
//! than Redis takes in one argument.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wclab_coord::claim::{claim, Claim, ClaimRules};
use wclab_coord::commit::{commit, CommitOutcome, Committed};
use wclab_coord::fold::{self, FoldLimits};
use wclab_coord::job::{JobPlan, JobSpec};
use wclab_coord::submit::TaskSpec;
use wclab_coord::{results, JobKeys, RedisTarget, RetryPolicy, Store};
use wclab_server::{RedisServer, ServerOptions};

type Counts = HashMap<Vec<u8>, u64>;
/// (word, count) pairs, as a commit takes them.
type Words = Vec<(Vec<u8>, u64)>;

const LONG: ClaimRules = ClaimRules {
    lease: Duration::from_secs(600),
    max_deliveries: 3,
};

async fn connect(server: &RedisServer) -> Store {
    Store::connect(
        RedisTarget::parse(&server.url()).unwrap(),
        RetryPolicy::for_duration(Duration::from_secs(20)),
    )
    .await
    .unwrap()
}

async fn submit(store: &mut Store, keys: &JobKeys, n: usize) {
    let plan = JobPlan {
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
    };
    assert_eq!(plan.submit(store, keys).await.unwrap(), n as u64);
}

async fn take(store: &mut Store, keys: &JobKeys, who: &str) -> Option<String> {
    match claim(store, keys, who, LONG).await.unwrap() {
        Claim::Task(t) => Some(t.id),
        Claim::Idle => None,
        other => panic!("unexpected {other:?}"),
    }
}

async fn commit_words(
    store: &mut Store,
    keys: &JobKeys,
    id: &str,
    words: &[(Vec<u8>, u64)],
) -> CommitOutcome {
    let done = [Committed { id, bytes: 10 }];
    commit(
        store,
        keys,
        "w",
        &done,
        words.iter().map(|(w, n)| (w.as_slice(), *n)),
    )
    .await
    .unwrap()
}

async fn all(store: &mut Store, keys: &JobKeys) -> Counts {
    results::all(store, keys)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.word, w.count))
        .collect()
}

/// The words of task `i`: a marker word of its own (count 1) and some of
/// a shared vocabulary, so that a reader can tell which tasks a reading
/// holds (the markers) and check every shared word against exactly those.
fn task_words(i: usize) -> Words {
    let mut words: Vec<(Vec<u8>, u64)> = (0..300u64)
        .map(|w| (w, (w * 7919 + i as u64 * 104_729) % 37))
        .filter(|(_, k)| *k < 19)
        .map(|(w, k)| (format!("w{w}").into_bytes(), k + 1))
        .collect();
    words.push((format!("task-{i}").into_bytes(), 1));
    words
}

/// Two folders, three committers and a reader at once, on one Redis:
/// every reading (`results::all`) is the counts of exactly the tasks whose
/// marker it holds, nothing partial, nothing twice; at the end, after the
/// last fold, the sorted set alone is the oracle's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folds_racing_commits_folds_and_readers_never_show_a_wrong_count() {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let keys = JobKeys::new("race");
    const TASKS: usize = 150;
    submit(&mut connect(&server).await, &keys, TASKS).await;
    let by_task: Arc<Vec<Words>> = Arc::new((0..TASKS).map(task_words).collect());
    let committing = Arc::new(AtomicBool::new(true));

    let mut committers = Vec::new();
    for _ in 0..3 {
        let mut store = connect(&server).await;
        let (keys, by_task) = (keys.clone(), by_task.clone());
        committers.push(tokio::spawn(async move {
            while let Some(id) = take(&mut store, &keys, "w").await {
                // IDs are 0-<index + 1> (TaskSpec::id_for).
                let i: usize = id.strip_prefix("0-").unwrap().parse::<usize>().unwrap() - 1;
                let out = commit_words(&mut store, &keys, &id, &by_task[i]).await;
                assert_eq!(out, CommitOutcome::Applied);
                // Leaves the reader and the folders time to interleave.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    let mut folders = Vec::new();
    for _ in 0..2 {
        let mut store = connect(&server).await;
        let (keys, committing) = (keys.clone(), committing.clone());
        folders.push(tokio::spawn(async move {
            let mut raced = 0;
            while committing.load(Ordering::Relaxed) {
                raced += fold::fold(&mut store, &keys).await.unwrap().raced;
                // A reading restarts whenever a fold ran meanwhile: folds
                // back to back would starve the reader.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            raced
        }));
    }
    let reader = {
        let mut store = connect(&server).await;
        let (keys, by_task, committing) = (keys.clone(), by_task.clone(), committing.clone());
        tokio::spawn(async move {
            let mut readings = 0;
            while committing.load(Ordering::Relaxed) {
                let got = all(&mut store, &keys).await;
                let mut want = Counts::new();
                for (i, words) in by_task.iter().enumerate() {
                    if got.contains_key(format!("task-{i}").as_bytes()) {
                        for (w, n) in words {
                            *want.entry(w.clone()).or_default() += n;
                        }
                    }
                }
                assert_eq!(got, want, "reading {readings}");
                readings += 1;
            }
            readings
        })
    };
    for c in committers {
        c.await.unwrap();
    }
    committing.store(false, Ordering::Relaxed);
    let mut raced = 0;
    for f in folders {
        raced += f.await.unwrap();
    }
    let readings = reader.await.unwrap();
    let mut store = connect(&server).await;
    fold::fold(&mut store, &keys).await.unwrap();
    let mut want = Counts::new();
    for words in by_task.iter() {
        for (w, n) in words {
            *want.entry(w.clone()).or_default() += n;
        }
    }
    let tallies: u64 = store
        .call("xlen", redis::cmd("XLEN").arg(&keys.tallies))
        .await
        .unwrap();
    assert_eq!(tallies, 0);
    assert_eq!(all(&mut store, &keys).await, want);
    eprintln!("{readings} consistent readings, {raced} folds raced");
    assert!(readings > 0);
}

/// The FCALL of wclab_fold, written out as docs/protocol.md says.
fn fold_call(
    keys: &JobKeys,
    first: &str,
    last: &str,
    n: u64,
    words: u64,
    tally: &[u8],
) -> redis::Cmd {
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
}

/// A fold reads the tallies, Redis is killed and restored from an older
/// checkpoint (lab 4a), and the fold's call reaches the restored Redis.
/// The restored stream holds as many tallies up to the fold's `last`, with
/// as many words, as the fold read, but other ones: the ones folded after
/// the checkpoint. The fold must find its tallies gone, not delete those
/// and add its own (whose tasks the restored Redis has not committed, so
/// they are committed and counted again).
#[tokio::test]
async fn a_fold_read_before_a_restore_does_not_apply_to_the_restored_tallies() {
    let mut server = RedisServer::start(ServerOptions::default()).unwrap();
    let keys = JobKeys::new("restore");
    let mut store = connect(&server).await;
    submit(&mut store, &keys, 4).await;
    let words: [&[(Vec<u8>, u64)]; 4] = [
        &[(b"z".to_vec(), 4)],
        &[(b"a".to_vec(), 1)],
        &[(b"b".to_vec(), 1)],
        &[(b"c".to_vec(), 4)],
    ];
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(take(&mut store, &keys, "w").await.unwrap());
    }
    for i in 0..2 {
        let out = commit_words(&mut store, &keys, &ids[i], words[i]).await;
        assert_eq!(out, CommitOutcome::Applied);
    }
    // The checkpoint: tallies z (4 words) and a (1), nothing folded.
    let _: () = store.call("save", &redis::cmd("SAVE")).await.unwrap();
    fold::fold(&mut store, &keys).await.unwrap();
    for i in 2..4 {
        let out = commit_words(&mut store, &keys, &ids[i], words[i]).await;
        assert_eq!(out, CommitOutcome::Applied);
    }
    // The fold reads tallies b (1 word) and c (4)...
    let read: Vec<(String, HashMap<String, Vec<u8>>)> = store
        .call(
            "xrange",
            redis::cmd("XRANGE").arg(&keys.tallies).arg("-").arg("+"),
        )
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    // ... Redis dies and comes back from the checkpoint ...
    server.restart().unwrap();
    // ... and the fold's call arrives.
    let reply: redis::Value = store
        .call(
            "fold",
            &fold_call(&keys, &read[0].0, &read[1].0, 2, 5, b"1 b\n4 c\n"),
        )
        .await
        .unwrap();
    assert_eq!(
        reply,
        redis::Value::Array(vec![redis::Value::Int(0)]),
        "the fold applied to tallies it never read"
    );
    // The workers commit again what the restored Redis forgot.
    for i in 2..4 {
        let out = commit_words(&mut store, &keys, &ids[i], words[i]).await;
        assert_eq!(out, CommitOutcome::Applied, "task {i}");
    }
    fold::fold(&mut store, &keys).await.unwrap();
    let want: Counts = words.iter().flat_map(|w| w.iter().cloned()).collect();
    assert_eq!(all(&mut store, &keys).await, want);
}

/// Tallies that add up to more than Redis takes in one argument
/// (`proto-max-bulk-len`, 512 MB by default; its minimum, 1 MB, here):
/// each commit's tally fits, the merged tally of all of them does not.
/// The fold sends them in parts, each within its byte limit.
#[tokio::test]
async fn tallies_larger_than_one_argument_are_folded_in_parts() {
    let server = RedisServer::start(ServerOptions {
        extra_config: vec!["proto-max-bulk-len 1mb".into()],
        ..Default::default()
    })
    .unwrap();
    let keys = JobKeys::new("big");
    let mut store = connect(&server).await;
    submit(&mut store, &keys, 3).await;
    let mut want = Counts::new();
    for t in 0..3 {
        let id = take(&mut store, &keys, "w").await.unwrap();
        // ~450 KB of distinct words per tally, ~1.35 MB together.
        let words: Vec<(Vec<u8>, u64)> = (0..15_000)
            .map(|w| (format!("{t}-word-number-{w:08}").into_bytes(), 3))
            .collect();
        want.extend(words.iter().cloned());
        let out = commit_words(&mut store, &keys, &id, &words).await;
        assert_eq!(out, CommitOutcome::Applied);
    }
    let limits = FoldLimits {
        bytes: 600 << 10,
        ..FoldLimits::default()
    };
    let folded = fold::fold_with(&mut store, &keys, limits).await.unwrap();
    assert_eq!(folded.tallies, 3);
    let left: u64 = store
        .call("xlen", redis::cmd("XLEN").arg(&keys.tallies))
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(all(&mut store, &keys).await, want);
}
