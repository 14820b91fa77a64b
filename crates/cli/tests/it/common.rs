//! Shared helpers: running the real binary against a real Redis.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use wclab_testkit::oracle::{self, WordMap};
pub use wclab_testkit::{RedisServer, ServerOptions};

/// The `wclab` binary built by cargo for these tests.
pub fn wclab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wclab"));
    c.env_remove("WCLAB_REDIS_URL")
        .env_remove("WCLAB_TEST_PAUSE")
        .env("NO_COLOR", "1");
    c
}

/// Longest any one command of a test may run: a hang is a failure, not a
/// stuck CI job.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs to completion (killed and failed after [`DEADLINE`]) and returns
/// the output.
pub fn output(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wclab");
    wait_output(child, DEADLINE)
}

/// Waits for a child started with piped stdout and stderr, killing it and
/// failing the test after `deadline`.
pub fn wait_output(mut child: Child, deadline: std::time::Duration) -> Output {
    use std::io::Read;
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out_t, err_t) = (reader(Box::new(out)), reader(Box::new(err)));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for wclab") {
            break s;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
            panic!("wclab did not finish within {deadline:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit status, showing stderr if it differs.
pub fn assert_status(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit status; stderr:\n{}",
        stderr(o)
    );
}

/// A real private Redis for one test.
pub fn redis() -> RedisServer {
    RedisServer::start(ServerOptions::default())
        .expect("start redis-server (apt-get install redis-server)")
}

/// The counts in an `--output` file, checked for the required order.
pub fn read_output(path: &Path) -> WordMap {
    let rows = oracle::read_tsv(path);
    for pair in rows.windows(2) {
        let ((wa, ca), (wb, cb)) = (&pair[0], &pair[1]);
        assert!(
            ca > cb || (ca == cb && wa < wb),
            "--output not sorted by count desc, then bytes: {pair:?}"
        );
    }
    let n = rows.len();
    let map: WordMap = rows.into_iter().collect();
    assert_eq!(map.len(), n, "a word appears twice in --output");
    map
}

/// Starts a standalone `wclab worker` on `job` with extra env and args.
pub fn spawn_worker(server: &RedisServer, job: &str, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut c = wclab();
    c.arg("worker")
        .arg("--job")
        .arg(job)
        .args(args)
        .env("WCLAB_REDIS_URL", server.url());
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

/// `wclab submit` of `inputs` as `job`.
pub fn submit(server: &RedisServer, job: &str, inputs: &[&Path]) -> Output {
    let mut c = wclab();
    c.arg("submit")
        .arg("--job")
        .arg(job)
        .arg("--input")
        .args(inputs)
        .env("WCLAB_REDIS_URL", server.url());
    output(&mut c)
}

/// Waits until the job's hash says every task is done or dead.
pub fn wait_finished(server: &RedisServer, job: &str) {
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    let key = format!("wclab:{{{job}}}:job");
    wclab_testkit::procs::wait_for(
        "the job to finish",
        std::time::Duration::from_secs(120),
        || {
            let mut f = |name: &str| -> u64 {
                let r = c.cmd(&["HGET", &key, name]);
                match r {
                    wclab_testkit::redis::Reply::Bulk(Some(b)) => {
                        String::from_utf8_lossy(&b).parse().unwrap_or(0)
                    }
                    _ => 0,
                }
            };
            let total = f("total_tasks");
            (total > 0 && f("files_done") + f("files_dead") >= total).then_some(())
        },
    );
}

/// Every word's count of the job, read directly from Redis: the sorted
/// set `counts` plus the tallies not folded into it yet
/// (docs/protocol.md, "The counts during a job"). Read in one MULTI, so
/// that a fold cannot run between the two reads.
pub fn counts_in_redis(server: &RedisServer, job: &str) -> WordMap {
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    let bulk = |r: &wclab_testkit::redis::Reply| match r {
        wclab_testkit::redis::Reply::Bulk(Some(b)) => b.clone(),
        other => panic!("{other:?}"),
    };
    c.cmd(&["MULTI"]);
    c.cmd(&[
        "ZRANGE",
        &format!("wclab:{{{job}}}:counts"),
        "0",
        "-1",
        "WITHSCORES",
    ]);
    c.cmd(&["XRANGE", &format!("wclab:{{{job}}}:tallies"), "-", "+"]);
    let exec = c.cmd(&["EXEC"]);
    let [sorted, tallies] = exec.array() else {
        panic!("{exec:?}")
    };
    let mut counts: WordMap = sorted
        .array()
        .chunks(2)
        .map(|p| (bulk(&p[0]), p[1].text().parse::<f64>().unwrap() as u64))
        .collect();
    for entry in tallies.array() {
        let fields = entry.array()[1].array();
        let tally = fields
            .chunks(2)
            .find(|p| p[0].text() == "tally")
            .map(|p| bulk(&p[1]))
            .expect("a tally entry without its tally");
        for line in tally.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let space = line.iter().position(|b| *b == b' ').unwrap();
            let n: u64 = std::str::from_utf8(&line[..space])
                .unwrap()
                .parse()
                .unwrap();
            *counts.entry(line[space + 1..].to_vec()).or_default() += n;
        }
    }
    counts
}

/// The job's completion records: (task id, worker, attempts).
pub fn done_records(server: &RedisServer, job: &str) -> Vec<(String, String, u64)> {
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    let r = c.cmd(&["XRANGE", &format!("wclab:{{{job}}}:done"), "-", "+"]);
    r.array()
        .iter()
        .map(|e| {
            let fields = e.array()[1].array();
            let get = |k: &str| {
                fields
                    .chunks(2)
                    .find(|p| p[0].text() == k)
                    .map(|p| p[1].text())
                    .unwrap_or_default()
            };
            (
                get("task"),
                get("worker"),
                get("attempts").parse().unwrap_or(0),
            )
        })
        .collect()
}
