//! Lab 1: a batch job gives exact counts.

use crate::common::*;
use wclab_testkit::{corpus, oracle};

#[test]
fn every_word_of_a_tricky_corpus_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::tricky(dir.path());
    let out = dir.path().join("counts.tsv");
    let o = output(
        wclab()
            .args(["run", "--workers", "2", "--input"])
            .arg(&root)
            .arg("--output")
            .arg(&out),
    );
    assert_status(&o, 0);
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("the"), "top words printed:\n{stdout}");
    assert!(
        stdout.contains("13 of 13 tasks counted"),
        "summary printed:\n{stdout}"
    );
}

#[test]
fn a_big_file_split_into_byte_ranges_counts_boundary_words_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 2, 200_000, 3);
    let out = dir.path().join("counts.tsv");
    // 4 KiB ranges: hundreds of boundaries, most of them inside a word.
    let o = output(
        wclab()
            .args(["run", "--workers", "2", "--split-size", "4KiB", "--input"])
            .arg(&root)
            .arg("-o")
            .arg(&out),
    );
    assert_status(&o, 0);
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
}

#[test]
fn json_output_has_the_summary_and_the_top_words() {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 3, 50_000, 11);
    let o = output(
        wclab()
            .args(["run", "--workers", "2", "--json", "-k", "5", "--input"])
            .arg(&root),
    );
    assert_status(&o, 0);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    let want = oracle::count_tree(&root);
    assert_eq!(v["tasks"], 3);
    assert_eq!(v["words"], want.values().sum::<u64>());
    assert_eq!(v["distinct_words"], want.len() as u64);
    // Every distinct word went into the sorted set at least once (it read
    // 0: the job's status was read before the last fold).
    assert!(v["word_updates"].as_u64().unwrap() >= want.len() as u64);
    let mut sorted: Vec<_> = want.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    for (got, (w, n)) in top.iter().zip(sorted) {
        assert_eq!(got["word"], String::from_utf8_lossy(w).as_ref());
        assert_eq!(got["count"], *n);
    }
    assert!(v["failed"].as_array().unwrap().is_empty());
}

#[test]
fn submit_then_remote_style_workers_then_top() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 30_000, 5);
    assert_status(&submit(&server, "books", &[&root]), 0);
    // Submitting again is idempotent: nothing new is added.
    let again = submit(&server, "books", &[&root]);
    assert_status(&again, 0);
    assert!(stderr(&again).contains("(0 new)"), "{}", stderr(&again));
    let workers: Vec<_> = (0..2)
        .map(|_| spawn_worker(&server, "books", &[], &["--exit-when-done"]))
        .collect();
    wait_finished(&server, "books");
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    oracle::assert_same(
        &counts_in_redis(&server, "books"),
        &oracle::count_tree(&root),
    );
    let o = output(
        wclab()
            .args(["top", "--job", "books", "-k", "3"])
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 0);
    // The three most frequent words, most frequent first, ties by bytes.
    let mut want: Vec<(Vec<u8>, u64)> = oracle::count_tree(&root).into_iter().collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let want: Vec<String> = want[..3]
        .iter()
        .map(|(w, n)| format!("{}\t{n}", String::from_utf8_lossy(w)))
        .collect();
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want);
    // A job that does not exist is an error that says so, not an empty list.
    let o = output(
        wclab()
            .args(["top", "--job", "no-such-job"])
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 2);
    assert!(
        stderr(&o).contains("no job \"no-such-job\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn globs_several_paths_and_the_long_flags_are_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let a = corpus::english(&dir.path().join("a"), 3, 5_000, 40);
    let b = corpus::english(&dir.path().join("b"), 2, 5_000, 41);
    std::fs::write(a.join("notes.md"), "not matched by the glob").unwrap();
    let out = dir.path().join("counts.tsv");
    let glob = format!("{}/*.txt", a.display());
    let o = output(
        wclab()
            .args(["run", "--workers", "2", "--top", "4", "--json", "--output"])
            .arg(&out)
            .args(["--input", &glob])
            .arg(&b),
    );
    assert_status(&o, 0);
    let mut want = oracle::count_tree(&b);
    for f in std::fs::read_dir(&a).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "txt") {
            oracle::count(&std::fs::read(p).unwrap(), &mut want);
        }
    }
    oracle::assert_same(&read_output(&out), &want);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 5, "{v}");
    assert_eq!(v["top"].as_array().unwrap().len(), 4, "{v}");
}

#[test]
fn csv_input_counts_only_the_named_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.csv");
    std::fs::write(
        &f,
        "id,text,user\n1,\"hello, world\",bob\n2,\"say \"\"hi\"\"\nhello\",amy\n",
    )
    .unwrap();
    let out = dir.path().join("c.tsv");
    let o = output(
        wclab()
            .args([
                "run", "-w", "1", "--format", "csv", "--column", "text", "--input",
            ])
            .arg(&f)
            .arg("-o")
            .arg(&out),
    );
    assert_status(&o, 0);
    let got = read_output(&out);
    let mut want = oracle::WordMap::new();
    oracle::count(b"hello, world", &mut want);
    oracle::count(b"say \"hi\"\nhello", &mut want);
    oracle::assert_same(&got, &want);
}

/// A worker counts its next task while its previous commit is in flight
/// (issue 22): with every commit held back 1.5 s before its FCALL, a
/// worker that commits one task at a time holds more than one task, with
/// nothing committed yet. (A worker that waited for each commit before
/// claiming again would hold one.) Counts exact, each task once.
#[test]
fn a_worker_counts_its_next_task_while_its_commit_is_in_flight() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 3, 2_000, 21);
    assert_status(&submit(&server, "j", &[&root]), 0);
    let w = spawn_worker(
        &server,
        "j",
        &[("WCLAB_TEST_PAUSE", "before_commit:1500")],
        &["--commit-batch", "1", "--exit-when-done"],
    );
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    wclab_testkit::procs::wait_for(
        "two tasks held before the first commit lands",
        std::time::Duration::from_secs(20),
        || {
            let pending = c.cmd(&["XPENDING", "wclab:{j}:tasks", "workers"]).array()[0].int();
            let done = c.cmd(&["HGET", "wclab:{j}:job", "files_done"]);
            let done = match done {
                wclab_testkit::redis::Reply::Bulk(Some(b)) => {
                    String::from_utf8_lossy(&b).into_owned()
                }
                _ => "0".into(),
            };
            (pending >= 2 && done == "0").then_some(())
        },
    );
    let o = wait_output(w, DEADLINE);
    assert_status(&o, 0);
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    assert_eq!(done_records(&server, "j").len(), 3, "each task once");
}
