//! Every function refuses a malformed call, or one the job's keys do not
//! allow, with a code and a message naming the function and the argument
//! or key, and changes nothing: every key of the job is byte for byte what
//! it was (`DUMP`, which includes the consumer group, its pending entries
//! and their delivery times).
//!
//! The random sequences of `contract.rs` cover the same ground; these are
//! the cases a reader looks for, one function at a time, starting with the
//! issue that asked for the checks (#14): (word, count) pairs where the
//! function takes (count, word) used to add half a commit's words before
//! failing.

use redis::Value;
use wclab_coord::JobKeys;
use wclab_server::{RedisServer, ServerOptions};

const ROLES: [&str; 9] = [
    "tasks",
    "counts",
    "done",
    "dead",
    "job",
    "leases",
    "submitted",
    "spec",
    "merging",
];

struct Job {
    _server: RedisServer,
    con: redis::Connection,
    k: JobKeys,
}

/// A job of three tasks (0-1 /r/a 0..10, 0-2 /r/b 0..20, 0-3 /r/c 0..5),
/// 0-1 and 0-2 claimed by worker w, 0-1 counted once already (words x, y).
fn job() -> Job {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let mut con = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(wclab_coord::FUNCTION_LIBRARY)
        .exec(&mut con)
        .unwrap();
    let k = JobKeys::new("j");
    let mut j = Job {
        _server: server,
        con,
        k,
    };
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("roots")
        .arg("/r")
        .arg("total_tasks")
        .arg(3)
        .exec(&mut j.con)
        .unwrap();
    let submit = j.fcall(
        "wclab_submit",
        &["tasks", "job", "submitted"],
        &[
            "", "workers", "0-1", "/r/a", "0", "10", "0-2", "/r/b", "0", "20", "0-3", "/r/c", "0",
            "5",
        ],
    );
    assert_eq!(submit, Ok(Value::Int(3)));
    for _ in 0..2 {
        let claimed = j.fcall("wclab_claim", &CLAIM, &["", "workers", "w", "60000", "5"]);
        assert!(matches!(claimed, Ok(Value::Array(_))), "{claimed:?}");
    }
    let words = j.fcall("wclab_submit", &SUBMIT, &["", "workers"]);
    assert_eq!(words, Ok(Value::Int(0)));
    j
}

const SUBMIT: [&str; 3] = ["tasks", "job", "submitted"];
const CLAIM: [&str; 6] = ["tasks", "dead", "job", "leases", "submitted", "spec"];
const TWO: [&str; 2] = ["tasks", "leases"];
const COMMIT: [&str; 6] = ["tasks", "counts", "done", "job", "leases", "merging"];
const DEAD: [&str; 4] = ["tasks", "dead", "job", "leases"];
const SPECULATE: [&str; 3] = ["tasks", "done", "spec"];

impl Job {
    fn keys(&self, roles: &[&str]) -> Vec<String> {
        roles
            .iter()
            .map(|r| self.k.role(r).unwrap().to_owned())
            .collect()
    }

    /// The reply, or (code, message).
    fn raw(
        &mut self,
        name: &str,
        keys: &[String],
        argv: &[&[u8]],
    ) -> Result<Value, (String, String)> {
        let mut c = redis::cmd("FCALL");
        c.arg(name).arg(keys.len()).arg(keys).arg(argv);
        c.query::<Value>(&mut self.con).map_err(|e| {
            (
                e.code().unwrap_or("?").to_owned(),
                e.detail().unwrap_or("").to_owned(),
            )
        })
    }

    fn fcall(
        &mut self,
        name: &str,
        roles: &[&str],
        argv: &[&str],
    ) -> Result<Value, (String, String)> {
        let keys = self.keys(roles);
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        self.raw(name, &keys, &argv)
    }

    /// Every key of the job, serialised.
    fn dump(&mut self) -> Vec<Option<Vec<u8>>> {
        ROLES
            .iter()
            .map(|r| {
                redis::cmd("DUMP")
                    .arg(self.k.role(r).unwrap())
                    .query(&mut self.con)
                    .unwrap()
            })
            .collect()
    }

    /// Runs the call, which must be refused with `code` and a message
    /// containing each of `says`, and change nothing.
    fn refused(
        &mut self,
        code: &str,
        says: &[&str],
        name: &str,
        keys: Vec<String>,
        argv: &[&[u8]],
    ) {
        let before = self.dump();
        let got = self.raw(name, &keys, argv);
        let after = self.dump();
        for (role, (b, a)) in ROLES.iter().zip(before.iter().zip(&after)) {
            assert!(b == a, "{name} {argv:?} ({got:?}) changed {role}");
        }
        let Err((c, message)) = &got else {
            panic!("{name} {argv:?} was not refused: {got:?}");
        };
        assert_eq!(c, code, "{name}: {message}");
        assert!(message.starts_with(&format!("{name}: ")), "{message}");
        for s in says {
            assert!(
                message.contains(s),
                "{name}: {message:?} does not say {s:?}"
            );
        }
    }

    fn refused_args(&mut self, says: &[&str], name: &str, roles: &[&str], argv: &[&str]) {
        let keys = self.keys(roles);
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        self.refused("WCLABARG", says, name, keys, &argv);
    }
}

#[test]
fn a_commit_of_word_count_pairs_is_refused_before_it_adds_any_word() {
    // Issue 14: pairs in the README's old order, (word, count). Words
    // that look like numbers went in (as counts of the member "2"), then
    // the first other word failed the call, with those writes kept.
    let mut j = job();
    j.refused_args(
        &["ARGV[12] count 'the' is not an integer"],
        "wclab_commit",
        &COMMIT,
        &[
            "", "workers", "w", "1", "0-2", "20", "6", "1984", "2", "7", "2", "the", "2",
        ],
    );
    // The same words in the right order go in.
    let ok = j.fcall(
        "wclab_commit",
        &COMMIT,
        &[
            "", "workers", "w", "1", "0-2", "20", "6", "2", "1984", "2", "7", "2", "the",
        ],
    );
    assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(1)])));
}

#[test]
fn wclab_commit_refuses_every_malformed_call() {
    let mut j = job();
    let c =
        |argv: &[&'static str]| -> Vec<&'static str> { [&["", "workers", "w"][..], argv].concat() };
    let cases: Vec<(&[&str], Vec<&str>)> = vec![
        (
            &["ARGV[10] count 'x'"],
            c(&["1", "0-2", "20", "3", "1", "a", "x", "b"]),
        ),
        (
            &["ARGV[8] count '0'"],
            c(&["1", "0-2", "20", "0", "0", "a"]),
        ),
        (
            &["ARGV[8] count '9007199254740992'"],
            c(&["1", "0-2", "20", "1", "9007199254740992", "a"]),
        ),
        (
            &["ARGV[8] count '1.5'"],
            c(&["1", "0-2", "20", "1", "1.5", "a"]),
        ),
        (
            &["ARGV[8] count '-1'"],
            c(&["1", "0-2", "20", "1", "-1", "a"]),
        ),
        (
            &["ARGV[8] count ' 1'"],
            c(&["1", "0-2", "20", "1", " 1", "a"]),
        ),
        (&["ARGV[9] word ''"], c(&["1", "0-2", "20", "1", "1", ""])),
        (
            &["ARGV[7] words 5 is not the sum of the counts, 3"],
            c(&["1", "0-2", "20", "5", "1", "a", "2", "b"]),
        ),
        (
            &["ARGV[8..10] are not whole groups"],
            c(&["1", "0-2", "20", "3", "1", "a", "2"]),
        ),
        (&["n = 2 needs ARGV[5..8]"], c(&["2", "0-2", "20", "1"])),
        (&["ARGV[7] id '1'"], c(&["2", "0-2", "20", "1", "1", "a"])),
        (&["ARGV[4] n '0'"], c(&["0", "0"])),
        (
            &["ARGV[7] task 0-2 is given twice"],
            c(&["2", "0-2", "20", "0-2", "20", "0"]),
        ),
        (
            &["ARGV[6] bytes 21 of task 0-2 is not its end - start = 20"],
            c(&["1", "0-2", "21", "0"]),
        ),
        (&["ARGV[5] id '0-0'"], c(&["1", "0-0", "20", "0"])),
        (&["ARGV[5] id '01-2'"], c(&["1", "01-2", "20", "0"])),
        (
            &["ARGV[5] id '18446744073709551616-1'"],
            c(&["1", "18446744073709551616-1", "20", "0"]),
        ),
        (
            &["ARGV[3] consumer ''"],
            vec!["", "workers", "", "1", "0-2", "20", "0"],
        ),
        (
            &["ARGV[2] group 'other'"],
            vec!["", "other", "w", "1", "0-2", "20", "0"],
        ),
        (
            &["ARGV[1] now_ms '1e3'"],
            vec!["1e3", "workers", "w", "1", "0-2", "20", "0"],
        ),
        (
            &["ARGV[1] now_ms '-1'"],
            vec!["-1", "workers", "w", "1", "0-2", "20", "0"],
        ),
    ];
    for (says, argv) in cases {
        j.refused_args(says, "wclab_commit", &COMMIT, &argv);
    }
    // KEYS: too few, another job's, roles swapped (counts passed as tasks).
    let argv: Vec<&[u8]> = c(&["1", "0-2", "20", "1", "1", "a"])
        .iter()
        .map(|a| a.as_bytes())
        .collect();
    let mut keys = j.keys(&COMMIT);
    keys.pop();
    j.refused("WCLABARG", &["expects 6 KEYS"], "wclab_commit", keys, &argv);
    let mut keys = j.keys(&COMMIT);
    keys[3] = "wclab:{other}:job".into();
    j.refused(
        "WCLABARG",
        &["KEYS[4] 'wclab:{other}:job' is not 'wclab:{j}:job'"],
        "wclab_commit",
        keys,
        &argv,
    );
    let mut keys = j.keys(&COMMIT);
    keys.swap(0, 1);
    j.refused(
        "WCLABARG",
        &["KEYS[1] 'wclab:{j}:counts' is not a job's tasks key"],
        "wclab_commit",
        keys,
        &argv,
    );
}

#[test]
fn a_commit_is_refused_when_the_job_s_keys_would_make_it_fail_half_way() {
    let mut j = job();
    let argv = [
        "", "workers", "w", "1", "0-2", "20", "3", "1", "a", "2", "b",
    ];
    // A counter that HINCRBY cannot add to (edited by hand).
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("words_done")
        .arg("lots")
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &["field words_done is 'lots'"],
        "wclab_commit",
        j.keys(&COMMIT),
        &argv.map(str::as_bytes),
    );
    redis::cmd("HDEL")
        .arg(&j.k.job)
        .arg("words_done")
        .exec(&mut j.con)
        .unwrap();
    // A stream the commit appends to that is not a stream.
    redis::cmd("SET")
        .arg(&j.k.done)
        .arg("oops")
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &["'wclab:{j}:done' is a string, not a stream"],
        "wclab_commit",
        j.keys(&COMMIT),
        &argv.map(str::as_bytes),
    );
    redis::cmd("DEL").arg(&j.k.done).exec(&mut j.con).unwrap();
    // A count about to pass 2^53 - 1, where it stops being exact.
    redis::cmd("ZADD")
        .arg(&j.k.counts)
        .arg(9007199254740990u64)
        .arg("a")
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &["holds a count of 9007199254740990", "could pass 2^53-1"],
        "wclab_commit",
        j.keys(&COMMIT),
        &argv.map(str::as_bytes),
    );
    // One below the limit is fine: adding 1 reaches 2^53 - 1 exactly.
    let ok = j.fcall(
        "wclab_commit",
        &COMMIT,
        &["", "workers", "w", "1", "0-2", "20", "1", "1", "a"],
    );
    assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(1)])));
    let score: String = redis::cmd("ZSCORE")
        .arg(&j.k.counts)
        .arg("a")
        .query(&mut j.con)
        .unwrap();
    assert_eq!(score, "9007199254740991");
}

/// A staged commit: ZADDs into `merging` and the function in one MULTI.
fn staged(
    j: &mut Job,
    words: &[(&str, &str)],
    keys: Vec<String>,
    argv: &[&str],
) -> Result<Value, (String, String)> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("UNLINK").arg(&j.k.merging).ignore();
    if !words.is_empty() {
        let zadd = pipe.cmd("ZADD").arg(&j.k.merging);
        for (score, w) in words {
            zadd.arg(*score).arg(*w);
        }
        zadd.ignore();
    }
    let mut fcall = redis::cmd("FCALL");
    fcall
        .arg("wclab_commit_staged")
        .arg(keys.len())
        .arg(&keys)
        .arg(argv);
    pipe.add_command(fcall);
    let fail = |e: &redis::ServerError| (e.code().to_owned(), e.details().unwrap_or("").to_owned());
    match pipe.query::<(Value,)>(&mut j.con) {
        Ok((Value::ServerError(e),)) => Err(fail(&e)),
        Ok((v,)) => Ok(v),
        Err(e) => Err(e
            .into_server_errors()
            .map(|e| fail(&e[0].1))
            .unwrap_or_default()),
    }
}

#[test]
fn wclab_commit_staged_refuses_what_was_not_staged_and_always_drops_the_staging() {
    let mut j = job();
    let before = j.dump();
    let keys = j.keys(&COMMIT);
    for (words, argv, says) in [
        (
            vec![("2", "a"), ("1", "b")],
            vec!["", "workers", "w", "1", "0-2", "20", "3", "3"],
            "2 words staged in 'wclab:{j}:merging', ARGV[8] distinct says 3",
        ),
        (
            vec![("0.5", "a"), ("2", "b")],
            vec!["", "workers", "w", "1", "0-2", "20", "3", "2"],
            "range from 0.5 to 2",
        ),
        (
            vec![("2", "a"), ("1", "b")],
            vec!["", "workers", "w", "1", "0-2", "20", "1", "2"],
            "ARGV[7] words 1 is less than the 2 staged words",
        ),
        (
            vec![("2", "a")],
            vec!["", "workers", "w", "1", "0-2", "20", "2", "1", "extra"],
            "takes 8 arguments, got 9",
        ),
    ] {
        let got = staged(&mut j, &words, keys.clone(), &argv);
        let Err((code, message)) = got else {
            panic!("{argv:?} was not refused: {got:?}");
        };
        assert_eq!(code, "WCLABARG", "{message}");
        assert!(message.contains(says), "{message:?} does not say {says:?}");
        // Nothing changed, and the staged words are gone with the call.
        assert!(j.dump() == before, "{message}: something changed");
    }
    // Refused KEYS: the function touches no key at all, not even the
    // scratch the transaction staged (whatever is there is never added).
    let mut wrong = keys.clone();
    wrong[5] = "wclab:{other}:merging".into();
    let got = staged(
        &mut j,
        &[("2", "a")],
        wrong,
        &["", "workers", "w", "1", "0-2", "20", "2", "1"],
    );
    assert!(matches!(&got, Err((c, _)) if c == "WCLABARG"), "{got:?}");
    let left: u64 = redis::cmd("ZCARD")
        .arg(&j.k.merging)
        .query(&mut j.con)
        .unwrap();
    assert_eq!(left, 1);
    let ok = staged(
        &mut j,
        &[("2", "a"), ("1", "b")],
        keys,
        &["", "workers", "w", "1", "0-2", "20", "3", "2"],
    );
    assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(1)])));
    let a: String = redis::cmd("ZSCORE")
        .arg(&j.k.counts)
        .arg("a")
        .query(&mut j.con)
        .unwrap();
    assert_eq!(a, "2", "the staged words of this transaction only");
}

#[test]
fn wclab_submit_refuses_every_malformed_call() {
    let mut j = job();
    let cases: Vec<(&[&str], Vec<&str>)> = vec![
        (
            &["ARGV[7] id '0-4' is not above the previous task's '0-5'"],
            vec![
                "", "workers", "0-5", "/r/e", "0", "1", "0-4", "/r/d", "0", "1",
            ],
        ),
        (
            &["ARGV[7] id '0-5' is not above"],
            vec![
                "", "workers", "0-5", "/r/e", "0", "1", "0-5", "/r/e", "0", "1",
            ],
        ),
        (
            &["ARGV[5] start 9 is after ARGV[6] end 8"],
            vec!["", "workers", "0-5", "/r/e", "9", "8"],
        ),
        (
            &["ARGV[4] path '/r/a\\x00b'"],
            vec!["", "workers", "0-5", "/r/a\0b", "0", "1"],
        ),
        (
            &["ARGV[4] path 'r/rel'"],
            vec!["", "workers", "0-5", "r/rel", "0", "1"],
        ),
        (
            &["ARGV[4] path ''"],
            vec!["", "workers", "0-5", "", "0", "1"],
        ),
        (
            &["ARGV[3..5] are not whole groups of (id path start end)"],
            vec!["", "workers", "0-5", "/r/e", "0"],
        ),
        (
            &["ARGV[6] end '1.0'"],
            vec!["", "workers", "0-5", "/r/e", "0", "1.0"],
        ),
        (
            &["ARGV[3] id 'x'"],
            vec!["", "workers", "x", "/r/e", "0", "1"],
        ),
    ];
    for (says, argv) in cases {
        j.refused_args(says, "wclab_submit", &SUBMIT, &argv);
    }
    // Two KEYS, as lab 3 used to create its group.
    let argv: [&[u8]; 2] = [b"", b"workers"];
    j.refused(
        "WCLABARG",
        &["expects 3 KEYS (tasks job submitted), got 2"],
        "wclab_submit",
        j.keys(&["tasks", "job"]),
        &argv,
    );
    // A new ID below the stream's last cannot be added any more.
    let argv = ["", "workers", "0-0x", "/r/e", "0", "1"];
    j.refused_args(&["ARGV[3] id '0-0x'"], "wclab_submit", &SUBMIT, &argv);
    let ok = j.fcall(
        "wclab_submit",
        &SUBMIT,
        &["", "workers", "0-9", "/r/z", "0", "1"],
    );
    assert_eq!(ok, Ok(Value::Int(1)));
    let keys = j.keys(&SUBMIT);
    j.refused(
        "WCLABSTATE",
        &["task 0-5 is not in 'wclab:{j}:tasks', whose last ID is 0-9"],
        "wclab_submit",
        keys,
        &["", "workers", "0-5", "/r/e", "0", "1"].map(str::as_bytes),
    );
}

#[test]
fn wclab_claim_refuses_every_malformed_call() {
    let mut j = job();
    let cases: Vec<(&[&str], Vec<&str>)> = vec![
        (
            &["ARGV[5] max_deliveries '0'"],
            vec!["", "workers", "w2", "1000", "0"],
        ),
        (
            &["ARGV[4] lease_ms '-1'"],
            vec!["", "workers", "w2", "-1", "5"],
        ),
        (
            &["ARGV[4] lease_ms '5s'"],
            vec!["", "workers", "w2", "5s", "5"],
        ),
        (
            &["ARGV[3] consumer ''"],
            vec!["", "workers", "", "1000", "5"],
        ),
        (
            &["ARGV[2] group 'other'"],
            vec!["", "other", "w2", "1000", "5"],
        ),
        (
            &["ARGV[1] now_ms 'now'"],
            vec!["now", "workers", "w2", "1000", "5"],
        ),
        (
            &["ARGV[5] max_deliveries is missing"],
            vec!["", "workers", "w2", "1000"],
        ),
        (
            &["takes 5 arguments, got 6"],
            vec!["", "workers", "w2", "1000", "5", "6"],
        ),
    ];
    for (says, argv) in cases {
        j.refused_args(says, "wclab_claim", &CLAIM, &argv);
    }
    // Without the spec key (the hand-out time would not be recorded).
    let argv = ["", "workers", "w2", "1000", "5"].map(str::as_bytes);
    j.refused(
        "WCLABARG",
        &["expects 6 KEYS"],
        "wclab_claim",
        j.keys(&CLAIM[..5]),
        &argv,
    );
    // leases of the wrong type would fail the ZADD after XREADGROUP.
    redis::cmd("SET")
        .arg(&j.k.leases)
        .arg("x")
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &["'wclab:{j}:leases' is a string, not a zset"],
        "wclab_claim",
        j.keys(&CLAIM),
        &argv,
    );
}

#[test]
fn renew_release_dead_and_speculate_refuse_every_malformed_call() {
    let mut j = job();
    let w =
        |more: &[&'static str]| -> Vec<&'static str> { [&["", "workers", "w"][..], more].concat() };
    for (says, argv) in [
        (&["ARGV[4] id '0-0'"][..], w(&["0-0"])),
        (&["ARGV[4] id '1-2-3'"], w(&["1-2-3"])),
        (&["takes 4 arguments, got 5"], w(&["0-1", "x"])),
    ] {
        j.refused_args(says, "wclab_renew", &TWO, &argv);
    }
    for (says, argv) in [
        (&["ARGV[4] lease_ms 'x'"][..], w(&["x", "0-1"])),
        (&["ARGV[5] id is missing"], w(&["1000"])),
    ] {
        j.refused_args(says, "wclab_release", &TWO, &argv);
    }
    for (says, argv) in [
        (&["ARGV[5] reason ''"][..], w(&["0-1", ""])),
        (&["ARGV[4] id 'x'"], w(&["x", "missing"])),
    ] {
        j.refused_args(says, "wclab_dead", &DEAD, &argv);
    }
    for (says, argv) in [
        (&["ARGV[5] factor 'x'"][..], w(&["100", "x", "20"])),
        (&["ARGV[5] factor '-1'"], w(&["100", "-1", "20"])),
        (&["ARGV[6] sample '0'"], w(&["100", "3", "0"])),
        (&["ARGV[4] min_age_ms '1.5'"], w(&["1.5", "3", "20"])),
    ] {
        j.refused_args(says, "wclab_speculate", &SPECULATE, &argv);
    }
    // A counter the dead letter adds to that is not an integer.
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("files_dead")
        .arg("1.5")
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &["field files_dead is '1.5'"],
        "wclab_dead",
        j.keys(&DEAD),
        &["", "workers", "w", "0-1", "missing"].map(str::as_bytes),
    );
}
