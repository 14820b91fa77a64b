//! Lab 3: files streamed in at a fixed rate, crashing and straggling
//! workers; every file is committed exactly once, the counts are exact, and
//! the latency of each file is the difference of two server timestamps.

use crate::common::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wclab_testkit::oracle::{self, WordMap};
use wclab_testkit::redis::{Client, Reply};

/// `files` tweet files of `rows` rows each (RFC 4180 hard cases included).
fn tweets(dir: &Path, files: usize, rows: usize) -> PathBuf {
    let out = dir.join("tweets");
    wclab_gen::tweet_corpus(&wclab_gen::TweetOptions {
        files,
        rows,
        seed: 3,
        ..wclab_gen::TweetOptions::new(&out)
    })
    .unwrap();
    out
}

/// The oracle of a CSV corpus: the `text` field of every record, read by
/// the csv crate (not by the kernel under test), split on ASCII whitespace.
fn csv_oracle(files: &[PathBuf]) -> WordMap {
    let mut map = WordMap::new();
    for f in files {
        let mut r = csv::ReaderBuilder::new().from_path(f).unwrap();
        let col = r
            .byte_headers()
            .unwrap()
            .iter()
            .position(|h| h == b"text")
            .expect("a text column");
        for rec in r.byte_records() {
            oracle::count(&rec.unwrap()[col], &mut map);
        }
    }
    map
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// A whole PNG, decoded (every chunk and the image data, not only the
/// header): its size and its RGB pixels.
struct Png {
    size: (u32, u32),
    pixels: Vec<[u8; 3]>,
}

impl Png {
    fn read(path: &Path) -> Png {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut r = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        assert_eq!(pixels.len(), (info.width * info.height) as usize);
        Png {
            size: (info.width, info.height),
            pixels,
        }
    }

    /// Pixels of exactly this colour.
    fn count(&self, rgb: [u8; 3]) -> usize {
        self.pixels.iter().filter(|p| **p == rgb).count()
    }
}

/// The colours of the event marks (wclab_stream::plot).
const CRASH_RED: [u8; 3] = [214, 39, 40];
const SLOWED_ORANGE: [u8; 3] = [255, 127, 14];
const RELEASED_GREEN: [u8; 3] = [44, 160, 44];
/// More pixels than a legend swatch (20 x 2): a mark across the chart.
const A_LINE: usize = 200;

/// The entries of a stream: (ID, fields).
fn stream_entries(server: &RedisServer, key: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut c = Client::connect(server.port(), server.password()).unwrap();
    c.cmd(&["XRANGE", key, "-", "+"])
        .array()
        .iter()
        .map(|e| {
            let fields = e.array()[1]
                .array()
                .chunks(2)
                .map(|p| (p[0].text(), p[1].text()))
                .collect();
            (e.array()[0].text(), fields)
        })
        .collect()
}

/// The PID in a worker's consumer name (`host-pid-xxxx`).
fn pid_of(consumer: &str) -> u32 {
    consumer.rsplit('-').nth(1).unwrap().parse().unwrap()
}

/// events.csv as (at, kind, pids).
fn read_events(path: &Path) -> Vec<(u64, String, Vec<u32>)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(r.headers().unwrap(), vec!["at", "kind", "detail"]);
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let pids = rec[2]
                .strip_prefix("pid")
                .unwrap_or("")
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
            (rec[0].parse().unwrap(), rec[1].to_owned(), pids)
        })
        .collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// latency.csv as rows of strings keyed by column name.
fn read_latency(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "file",
            "injected_at",
            "committed_at",
            "latency_ms",
            "worker",
            "attempts",
            "handed_out_at",
            "queue_wait_ms",
            "service_ms"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Checks everything a stream run must guarantee, whatever the faults:
/// each injected file committed once, exact counts, latencies that are the
/// server's own timestamps, injection paced at `rate` files a second, and
/// one task per commit. `files` are the files injected (in path order).
/// The run must use `WCLAB_TEST_PAUSE=while_counting:N`, so that no worker
/// can commit twice within one millisecond.
fn assert_stream_exact(
    server: &RedisServer,
    job: &str,
    files: &[PathBuf],
    rate: usize,
    out: &Path,
) {
    // Exactly one completion record per task, for every task.
    let done = done_records(server, job);
    let ids: Vec<&str> = done.iter().map(|d| d.0.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a task committed twice: {ids:?}");
    let want: HashSet<String> = (1..=files.len()).map(|i| format!("0-{i}")).collect();
    assert_eq!(
        distinct,
        want.iter().map(String::as_str).collect::<HashSet<_>>(),
        "every injected file committed"
    );
    oracle::assert_same(&counts_in_redis(server, job), &csv_oracle(files));

    // latency.csv agrees with the done stream and with itself.
    let rows = read_latency(&out.join("latency.csv"));
    assert_eq!(rows.len(), files.len());
    let by_task: HashMap<&str, (&str, u64)> = done
        .iter()
        .map(|(t, w, a)| (t.as_str(), (w.as_str(), *a)))
        .collect();
    let mut names = HashSet::new();
    for row in &rows {
        let n = |k: &str| row[k].parse::<i64>().unwrap();
        assert!(n("latency_ms") >= 0, "negative latency: {row:?}");
        assert_eq!(
            n("latency_ms"),
            n("committed_at") - n("injected_at"),
            "{row:?}"
        );
        let index = files
            .iter()
            .position(|f| f.file_name().unwrap().to_str() == Some(row["file"].as_str()))
            .unwrap_or_else(|| panic!("unknown file {row:?}"));
        let (worker, attempts) = by_task[format!("0-{}", index + 1).as_str()];
        assert_eq!(row["worker"], worker);
        assert_eq!(n("attempts") as u64, attempts);
        assert!(names.insert(row["file"].clone()), "file listed twice");
    }

    // Both timestamps are the ones the functions wrote, on the server's
    // clock: `injected` in the task (wclab_submit), `committed` in its
    // completion record (wclab_commit).
    let tasks = stream_entries(server, &format!("wclab:{{{job}}}:tasks"));
    assert_eq!(
        tasks.len(),
        files.len(),
        "only the injected files are in the stream"
    );
    let injected: HashMap<&str, u64> = tasks
        .iter()
        .map(|(id, f)| (id.as_str(), f["injected"].parse().unwrap()))
        .collect();
    let done = stream_entries(server, &format!("wclab:{{{job}}}:done"));
    let committed: HashMap<&str, u64> = done
        .iter()
        .map(|(_, f)| (f["task"].as_str(), f["committed"].parse().unwrap()))
        .collect();
    // The stages split the latency at the hand-out, wclab_claim's time
    // (claimed:<id> in the job's description), on the same clock.
    let spec: HashMap<String, String> = Client::connect(server.port(), server.password())
        .unwrap()
        .cmd(&["HGETALL", &format!("wclab:{{{job}}}:spec")])
        .array()
        .chunks(2)
        .map(|p| (p[0].text(), p[1].text()))
        .collect();
    for row in &rows {
        let index = files
            .iter()
            .position(|f| f.file_name().unwrap().to_str() == Some(row["file"].as_str()))
            .unwrap();
        let task = format!("0-{}", index + 1);
        assert_eq!(
            row["injected_at"].parse::<u64>().unwrap(),
            injected[task.as_str()],
            "{row:?}"
        );
        let n = |k: &str| {
            row[k]
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{k}: {row:?}"))
        };
        assert_eq!(
            n("handed_out_at").to_string(),
            spec[&format!("claimed:{task}")],
            "{row:?}"
        );
        assert!(n("queue_wait_ms") >= 0 && n("service_ms") >= 0, "{row:?}");
        assert_eq!(
            n("queue_wait_ms") + n("service_ms"),
            n("latency_ms"),
            "{row:?}"
        );
        assert_eq!(
            row["committed_at"].parse::<u64>().unwrap(),
            committed[task.as_str()],
            "{row:?}"
        );
    }

    // Paced: ceil(n/R) micro-batches of R files (the last may be short), in
    // input order, each injected by one call (one timestamp), about a second
    // apart. Only lower bounds: a busy machine can make a batch late, never
    // early.
    let mut batches: Vec<(u64, Vec<&str>)> = Vec::new();
    for (id, f) in &tasks {
        let at: u64 = f["injected"].parse().unwrap();
        match batches.last_mut() {
            Some((t, ids)) if *t == at => ids.push(id),
            _ => batches.push((at, vec![id])),
        }
    }
    assert_eq!(batches.len(), files.len().div_ceil(rate), "micro-batches");
    for (k, (_, ids)) in batches.iter().enumerate() {
        let want: Vec<String> = (k * rate + 1..=((k + 1) * rate).min(files.len()))
            .map(|i| format!("0-{i}"))
            .collect();
        assert_eq!(ids, &want, "batch {k}");
    }
    for pair in batches.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= 500, "micro-batches {gap} ms apart, not a second");
    }
    let span = batches.last().unwrap().0 - batches[0].0;
    assert!(
        span + 400 >= 1000 * (batches.len() as u64 - 1),
        "{} batches within {span} ms",
        batches.len()
    );

    // Files counted while a worker's commit is in flight go together in
    // its next commit, 8 at most (`stream` runs its workers with --stream
    // --commit-batch 8); a merged commit writes one record per file, all
    // with one worker and one time.
    let mut commits: HashMap<(String, String), usize> = HashMap::new();
    for (_, f) in &done {
        *commits
            .entry((f["worker"].clone(), f["committed"].clone()))
            .or_default() += 1;
    }
    for ((worker, at), n) in &commits {
        assert!(*n <= 8, "{n} tasks committed together by {worker} at {at}");
    }

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["files_committed"], files.len());
    assert_eq!(summary["settings"]["files_injected"], files.len());
    for k in ["p50_ms", "p95_ms", "p99_ms", "max_ms"] {
        assert!(summary[k].as_i64().unwrap() >= 0, "{k}");
    }
    assert_eq!(summary["stages_ms"]["files"], files.len());
    for stage in ["queue_wait", "service"] {
        for p in ["p50", "p95", "p99"] {
            assert!(
                summary["stages_ms"][stage][p].as_i64().unwrap() >= 0,
                "{stage} {p}"
            );
        }
    }
    assert!(summary["throughput_files_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(Png::read(&out.join("timeline.png")).size, (1200, 600));
}

fn stream_cmd(server: &RedisServer, job: &str, input: &Path, out: &Path) -> std::process::Command {
    let mut c = wclab();
    c.arg("stream")
        .arg("--redis")
        .arg(server.url())
        .args(["--job", job, "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--max-deliveries", "50"]);
    c
}

#[test]
fn every_file_is_committed_once_with_crashing_workers_and_stragglers() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // More files than 2.5 s at 16 files/s inject: batches at 0, 1 and 2 s.
    let input = tweets(dir.path(), 60, 40);
    let out = dir.path().join("out");
    let o = output(
        stream_cmd(&server, "lab3", &input, &out)
            .args(["--rate", "16", "--duration", "2500ms", "--workers", "1"])
            .args([
                "--crashing",
                "1",
                "--crash-every",
                "700ms",
                "--lease",
                "600ms",
            ])
            .args(["--stragglers", "1", "--straggler-cpu", "20"])
            .args(["--straggler-period", "250ms", "--straggle-from", "500ms"])
            .args(["--straggle-for", "1500ms"])
            // Tasks take >= 30 ms, so that kills land mid-task.
            .env("WCLAB_TEST_PAUSE", "while_counting:30"),
    );
    assert_status(&o, 0);
    let files = sorted_files(&input);
    assert_stream_exact(&server, "lab3", &files[..48], 16, &out);

    let events = read_events(&out.join("events.csv"));
    let crashes: Vec<&Vec<u32>> = events
        .iter()
        .filter(|e| e.1 == "crash")
        .map(|e| &e.2)
        .collect();
    assert!(
        !crashes.is_empty(),
        "the crashing worker crashed: {events:?}"
    );
    // Crashes come every 0.35-1.05 s, more often than a crash waits for
    // its worker to hold a task (2 s): still one kill per process.
    let killed: Vec<u32> = crashes.iter().flat_map(|p| p.iter().copied()).collect();
    assert_eq!(
        killed.iter().collect::<HashSet<_>>().len(),
        killed.len(),
        "a process killed twice: {events:?}"
    );
    let window = |kind: &str| events.iter().find(|e| e.1 == kind).unwrap();
    let (slowed, released) = (window("straggle_start"), window("straggle_end"));
    assert_eq!(slowed.2.len(), 1, "one straggler");

    let rows = read_latency(&out.join("latency.csv"));
    assert!(
        rows.iter()
            .any(|r| r["attempts"].parse::<u64>().unwrap() >= 2),
        "no task was lost by a crash and delivered again"
    );
    let by_straggler = rows
        .iter()
        .filter(|r| pid_of(&r["worker"]) == slowed.2[0])
        .filter(|r| (slowed.0..=released.0).contains(&r["committed_at"].parse::<u64>().unwrap()))
        .count();
    assert!(
        by_straggler >= 1,
        "the straggler committed nothing while slowed"
    );

    // The timeline marks the crashes and both ends of the slowdown.
    let png = Png::read(&out.join("timeline.png"));
    for (what, rgb) in [
        ("crash", CRASH_RED),
        ("stragglers slowed", SLOWED_ORANGE),
        ("stragglers released", RELEASED_GREEN),
    ] {
        assert!(png.count(rgb) > A_LINE, "no {what} mark on the timeline");
    }

    let summary = read_json(&out.join("summary.json"));
    assert!(summary["settings"]["workers_replaced"].as_u64().unwrap() >= 1);
    assert_eq!(summary["settings"]["duplicate_commits"], 0);
    let events = summary["events"].as_array().unwrap();
    assert!(events
        .iter()
        .all(|e| e["recovery_ms"].as_i64().unwrap() >= 0));
    assert_eq!(
        summary["recovery_ms"].as_array().unwrap().len(),
        events
            .iter()
            .filter(|e| e["kind"] != "straggle_end")
            .count(),
        "one recovery time per failure event"
    );

    // `wclab plot` redraws it, here twice on one figure of another size.
    let fig = dir.path().join("figs/both.png");
    let o = output(
        wclab()
            .arg("plot")
            .arg(&out)
            .arg(out.join("latency.csv"))
            .args(["--label", "first", "--label", "second", "--log"])
            .args(["--width", "800", "--height", "420", "-o"])
            .arg(&fig),
    );
    assert_status(&o, 0);
    let png = Png::read(&fig);
    assert_eq!(png.size, (800, 420));
    assert!(png.count(CRASH_RED) > A_LINE);

    // As panels side by side, written beside the first input by default.
    let o = output(
        wclab()
            .arg("plot")
            .arg(&out)
            .arg(out.join("latency.csv"))
            .args(["--panels", "2", "--panel-title", "a", "--panel-title", "b"])
            .args(["--width", "400", "--height", "300"]),
    );
    assert_status(&o, 0);
    assert_eq!(Png::read(&out.join("plot.png")).size, (800, 300));
}

#[test]
fn with_speculation_stragglers_are_backed_up_and_counted_once() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let input = tweets(dir.path(), 45, 40);
    let out = dir.path().join("out");
    let o = output(
        stream_cmd(&server, "spec", &input, &out)
            .args(["--rate", "15", "--workers", "2", "--stragglers", "1"])
            // Runs 30 ms in 600: a task it takes (30 ms or more) is stopped
            // for 570 ms in the middle, while the others go idle.
            .args(["--straggler-cpu", "5", "--straggler-period", "600ms"])
            .args(["--straggle-from", "0s", "--straggle-for", "10s"])
            .arg("--speculate")
            .env("WCLAB_TEST_PAUSE", "while_counting:30"),
    );
    assert_status(&o, 0);
    assert_stream_exact(&server, "spec", &sorted_files(&input), 15, &out);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["settings"]["speculate"], true);
    assert!(
        summary["settings"]["speculative_copies"].as_u64().unwrap() >= 1,
        "no backup copy of the straggler's tasks: {}",
        summary["settings"]
    );
    assert_eq!(summary["settings"]["duplicate_commits"], 0);
}

/// The pending entries of a job: (task, owner).
fn pending(c: &mut Client, job: &str) -> Vec<(String, String)> {
    let r = c.cmd(&[
        "XPENDING",
        &format!("wclab:{{{job}}}:tasks"),
        "workers",
        "-",
        "+",
        "10",
    ]);
    match r {
        Reply::Array(Some(items)) => items
            .iter()
            .map(|p| (p.array()[0].text(), p.array()[1].text()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_backup_copy_commits_first_and_the_stragglers_commit_is_a_no_op() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let input = tweets(dir.path(), 1, 30);
    let file = sorted_files(&input);
    let mut c = wclab();
    let o = output(
        c.args(["submit", "--job", "slow", "--format", "csv", "--input"])
            .arg(&input)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 0);

    // The straggler: claims the task, then counts for 4 s while renewing
    // its lease (30 s), so nobody can steal it.
    let mut straggler = spawn_worker(
        &server,
        "slow",
        &[("WCLAB_TEST_PAUSE", "while_counting:4000")],
        &["--lease", "30s"],
    );
    let mut rc = Client::connect(server.port(), server.password()).unwrap();
    let owner =
        wclab_testkit::procs::wait_for("the straggler's claim", Duration::from_secs(30), || {
            pending(&mut rc, "slow").first().map(|p| p.1.clone())
        });
    // An idle worker with speculation on backs the task up and commits.
    let mut backup = spawn_worker(&server, "slow", &[], &["--speculate", "--lease", "30s"]);
    wait_finished(&server, "slow");
    let done = done_records(&server, "slow");
    assert_eq!(done.len(), 1);
    assert_ne!(done[0].1, owner, "the backup's commit came first");

    // The straggler finishes later; its commit must change nothing.
    let stderr = straggler.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("no longer pending") {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the straggler's late commit found its task already committed");
    for w in [&mut straggler, &mut backup] {
        let _ = w.kill();
        let _ = w.wait();
    }
    assert_eq!(done_records(&server, "slow").len(), 1);
    oracle::assert_same(&counts_in_redis(&server, "slow"), &csv_oracle(&file));
}

#[test]
fn a_live_worker_renews_its_lease_and_is_never_robbed() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let input = tweets(dir.path(), 1, 30);
    let o = output(
        wclab()
            .args(["submit", "--job", "renew", "--format", "csv", "--input"])
            .arg(&input)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 0);
    // A slow task (4 s, three leases of lab 3's 1 s) on a worker that is
    // also stopped three quarters of the time by SIGSTOP cycles, next to
    // an idle worker that would steal the task as soon as its lease ran
    // out. Only the renewals keep it.
    let mut straggler = spawn_worker(
        &server,
        "renew",
        &[("WCLAB_TEST_PAUSE", "while_counting:4000")],
        &["--lease", "1s"],
    );
    let mut rc = Client::connect(server.port(), server.password()).unwrap();
    let owner =
        wclab_testkit::procs::wait_for("the straggler's claim", Duration::from_secs(30), || {
            pending(&mut rc, "renew").first().map(|p| p.1.clone())
        });
    let mut thief = spawn_worker(&server, "renew", &[], &["--lease", "1s"]);
    let pid = straggler.id();
    let cycling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cycler = {
        let cycling = cycling.clone();
        std::thread::spawn(move || {
            use wclab_testkit::procs::signal;
            while cycling.load(std::sync::atomic::Ordering::Relaxed) {
                signal(pid, nix::sys::signal::Signal::SIGSTOP);
                std::thread::sleep(Duration::from_millis(150));
                signal(pid, nix::sys::signal::Signal::SIGCONT);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    wait_finished(&server, "renew");
    cycling.store(false, std::sync::atomic::Ordering::Relaxed);
    cycler.join().unwrap();
    for w in [&mut straggler, &mut thief] {
        let _ = w.kill();
        let _ = w.wait();
    }
    let done = done_records(&server, "renew");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, owner, "the task was stolen from a live worker");
    assert_eq!(done[0].2, 1, "the task was handed out again");
    oracle::assert_same(
        &counts_in_redis(&server, "renew"),
        &csv_oracle(&sorted_files(&input)),
    );
}

#[test]
fn with_spread_the_files_of_a_second_are_injected_one_by_one_over_it() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let input = tweets(dir.path(), 8, 20);
    let out = dir.path().join("out");
    let o = output(stream_cmd(&server, "spread", &input, &out).args([
        "--rate",
        "4",
        "--workers",
        "2",
        "--spread",
    ]));
    assert_status(&o, 0);
    let files = sorted_files(&input);
    assert_eq!(done_records(&server, "spread").len(), files.len());
    oracle::assert_same(&counts_in_redis(&server, "spread"), &csv_oracle(&files));
    // In input order, each later than the one before; micro-batches
    // would give two injection times for eight files.
    let injected: Vec<u64> = stream_entries(&server, "wclab:{spread}:tasks")
        .iter()
        .map(|(_, f)| f["injected"].parse().unwrap())
        .collect();
    assert_eq!(injected.len(), 8);
    assert!(injected.windows(2).all(|w| w[0] <= w[1]), "{injected:?}");
    let distinct: HashSet<u64> = injected.iter().copied().collect();
    assert!(
        distinct.len() > 2,
        "injected in micro-batches: {injected:?}"
    );
    assert_eq!(
        read_json(&out.join("summary.json"))["settings"]["spread"],
        true
    );
}

#[test]
fn the_csv_column_is_read_with_rfc4180_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.csv");
    // The counted column is not the first; other columns hold words that
    // must not be counted; CRLF and LF line ends are mixed.
    std::fs::write(
        &f,
        concat!(
            "id,text,user\r\n",
            "1,plain words,alice\r\n",
            "2,\"a, quoted comma\",bob\n",
            "3,\"say \"\"hi\"\" twice\",carol\n",
            "4,\"line one\nline two\r\nthree\",dave\n",
            "5,,erin\n",
            "6,\"\",frank\n",
            "7,\"\"\"\",gina\n",
            "8,\"trailing \"\"quote\"\" inside\",hank\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("out.tsv");
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
    let mut want = WordMap::new();
    for w in [
        "plain",
        "words",
        "a,",
        "quoted",
        "comma",
        "say",
        "\"hi\"",
        "twice",
        "line",
        "one",
        "line",
        "two",
        "three",
        "\"",
        "trailing",
        "\"quote\"",
        "inside",
    ] {
        *want.entry(w.as_bytes().to_vec()).or_insert(0) += 1;
    }
    oracle::assert_same(&read_output(&out), &want);
}

#[test]
fn a_malformed_csv_file_is_dead_lettered_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("good.csv"),
        "id,text\n1,good words here\n2,more good\n",
    )
    .unwrap();
    // The record on line 5 (the quoted newline makes it the fifth line) has
    // a third field: the file is refused whole, not half-counted.
    std::fs::write(
        root.join("bad.csv"),
        "id,text\n1,badfirst row\n2,\"badsecond\nspans lines\"\n3,badthird,extra\n4,badlast\n",
    )
    .unwrap();
    let server = redis();
    let out = dir.path().join("out.tsv");
    let o = output(
        wclab()
            .args(["run", "-w", "2", "--format", "csv", "--job", "badcsv"])
            .arg("--redis")
            .arg(server.url())
            .arg("--input")
            .arg(&root)
            .arg("-o")
            .arg(&out),
    );
    assert_status(&o, 1);
    let e = stderr(&o);
    assert!(e.contains("bad.csv") && e.contains("line 5"), "{e}");
    // The dead-letter stream says which file and why, with the line.
    let dead = stream_entries(&server, "wclab:{badcsv}:dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let f = &dead[0].1;
    assert!(f["path"].ends_with("bad.csv"), "{f:?}");
    assert!(
        f["reason"].to_lowercase().contains("csv") && f["reason"].contains("line 5"),
        "{f:?}"
    );
    let mut want = WordMap::new();
    oracle::count(b"good words here more good", &mut want);
    oracle::assert_same(&read_output(&out), &want);
}
