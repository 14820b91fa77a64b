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
//! failing (today: a tally's lines in that order are refused whole).

use redis::Value;
use wclab_coord::JobKeys;
use wclab_server::{RedisServer, ServerOptions};

const ROLES: [&str; 10] = [
    "tasks",
    "counts",
    "tallies",
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
const COMMIT: [&str; 6] = ["tasks", "counts", "tallies", "done", "job", "leases"];
const FOLD: [&str; 4] = ["counts", "tallies", "job", "merging"];
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
fn a_commit_of_word_count_lines_is_refused_before_it_adds_any_word() {
    // Issue 14: pairs in the README's old order, (word, count). Words
    // that look like numbers went in (as counts of the member "2"), then
    // the first other word failed the call, with those writes kept.
    let mut j = job();
    j.refused_args(
        &["ARGV[8] tally is not", "line 3 'the 2\\x0a' is not"],
        "wclab_commit",
        &COMMIT,
        &[
            "",
            "workers",
            "w",
            "1",
            "0-2",
            "20",
            "6",
            "1984 2\n7 2\nthe 2\n",
        ],
    );
    // The same words in the right order go in.
    let ok = j.fcall(
        "wclab_commit",
        &COMMIT,
        &[
            "",
            "workers",
            "w",
            "1",
            "0-2",
            "20",
            "6",
            "2 1984\n2 7\n2 the\n",
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
            &["line 2 'x b\\x0a'"],
            c(&["1", "0-2", "20", "3", "1 a\nx b\n"]),
        ),
        (&["line 1 '0 a\\x0a'"], c(&["1", "0-2", "20", "0", "0 a\n"])),
        (
            &["ARGV[8] tally", "add up to more than 2^53-1"],
            c(&["1", "0-2", "20", "1", "9007199254740992 a\n"]),
        ),
        (
            &["line 1 '1.5 a\\x0a'"],
            c(&["1", "0-2", "20", "1", "1.5 a\n"]),
        ),
        (
            &["line 1 '-1 a\\x0a'"],
            c(&["1", "0-2", "20", "1", "-1 a\n"]),
        ),
        (
            &["line 1 ' 1 a\\x0a'"],
            c(&["1", "0-2", "20", "1", " 1 a\n"]),
        ),
        (
            &["line 1 '01 a\\x0a'"],
            c(&["1", "0-2", "20", "1", "01 a\n"]),
        ),
        (&["line 1 '1 \\x0a'"], c(&["1", "0-2", "20", "1", "1 \n"])),
        (
            &["line 1 '1 a b\\x0a'"],
            c(&["1", "0-2", "20", "1", "1 a b\n"]),
        ),
        (&["line 2 '2 b'"], c(&["1", "0-2", "20", "3", "1 a\n2 b"])),
        (
            &["ARGV[7] words 5 is not the sum of the tally's counts, 3"],
            c(&["1", "0-2", "20", "5", "1 a\n2 b\n"]),
        ),
        (&["ARGV[8] tally is missing"], c(&["1", "0-2", "20", "3"])),
        (
            &["takes 8 arguments, got 9"],
            c(&["1", "0-2", "20", "3", "1 a\n2 b\n", "x"]),
        ),
        (&["n = 2 needs ARGV[5..8]"], c(&["2", "0-2", "20", "1"])),
        (&["ARGV[7] id '1'"], c(&["2", "0-2", "20", "1", "1 a\n"])),
        (&["ARGV[4] n '0'"], c(&["0", "0", ""])),
        (
            &["ARGV[7] task 0-2 is given twice"],
            c(&["2", "0-2", "20", "0-2", "20", "0", ""]),
        ),
        (
            &["ARGV[6] bytes 21 of task 0-2 is not its end - start = 20"],
            c(&["1", "0-2", "21", "0", ""]),
        ),
        (&["ARGV[5] id '0-0'"], c(&["1", "0-0", "20", "0", ""])),
        (&["ARGV[5] id '01-2'"], c(&["1", "01-2", "20", "0", ""])),
        (
            &["ARGV[5] id '18446744073709551616-1'"],
            c(&["1", "18446744073709551616-1", "20", "0", ""]),
        ),
        (
            &["ARGV[3] consumer ''"],
            vec!["", "workers", "", "1", "0-2", "20", "0", ""],
        ),
        (
            &["ARGV[2] group 'other'"],
            vec!["", "other", "w", "1", "0-2", "20", "0", ""],
        ),
        (
            &["ARGV[1] now_ms '1e3'"],
            vec!["1e3", "workers", "w", "1", "0-2", "20", "0", ""],
        ),
        (
            &["ARGV[1] now_ms '-1'"],
            vec!["-1", "workers", "w", "1", "0-2", "20", "0", ""],
        ),
    ];
    for (says, argv) in cases {
        j.refused_args(says, "wclab_commit", &COMMIT, &argv);
    }
    // KEYS: too few, another job's, roles swapped (counts passed as tasks).
    let argv: Vec<&[u8]> = c(&["1", "0-2", "20", "1", "1 a\n"])
        .iter()
        .map(|a| a.as_bytes())
        .collect();
    let mut keys = j.keys(&COMMIT);
    keys.pop();
    j.refused("WCLABARG", &["expects 6 KEYS"], "wclab_commit", keys, &argv);
    let mut keys = j.keys(&COMMIT);
    keys[4] = "wclab:{other}:job".into();
    j.refused(
        "WCLABARG",
        &["KEYS[5] 'wclab:{other}:job' is not 'wclab:{j}:job'"],
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
    let argv = ["", "workers", "w", "1", "0-2", "20", "3", "1 a\n2 b\n"];
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
    for key in [j.k.done.clone(), j.k.tallies.clone()] {
        redis::cmd("SET")
            .arg(&key)
            .arg("oops")
            .exec(&mut j.con)
            .unwrap();
        j.refused(
            "WCLABSTATE",
            &[&format!("'{key}' is a string, not a stream")],
            "wclab_commit",
            j.keys(&COMMIT),
            &argv.map(str::as_bytes),
        );
        redis::cmd("DEL").arg(&key).exec(&mut j.con).unwrap();
    }
    // A count about to pass 2^53 - 1, where it stops being exact: the
    // largest in `counts`, plus the tallies not folded, plus the commit's.
    redis::cmd("ZADD")
        .arg(&j.k.counts)
        .arg(9007199254740980u64)
        .arg("a")
        .exec(&mut j.con)
        .unwrap();
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("tally_words")
        .arg(9)
        .exec(&mut j.con)
        .unwrap();
    j.refused(
        "WCLABSTATE",
        &[
            "holds a count of 9007199254740980",
            "9 words",
            "could pass 2^53-1",
        ],
        "wclab_commit",
        j.keys(&COMMIT),
        &argv.map(str::as_bytes),
    );
    // Up to the limit is fine: 2^53 - 1 exactly.
    let ok = j.fcall(
        "wclab_commit",
        &COMMIT,
        &["", "workers", "w", "1", "0-2", "20", "2", "2 a\n"],
    );
    assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(1)])));
}

#[test]
fn wclab_fold_refuses_every_malformed_call_and_a_wrong_merge() {
    let mut j = job();
    for (id, bytes, words, tally) in [
        ("0-1", "10", "3", "1 a\n2 b\n"),
        ("0-2", "20", "4", "4 a\n"),
    ] {
        let ok = j.fcall(
            "wclab_commit",
            &COMMIT,
            &["", "workers", "w", "1", id, bytes, words, tally],
        );
        assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(1)])));
    }
    let ids: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(&j.k.tallies)
        .arg("-")
        .arg("+")
        .query(&mut j.con)
        .unwrap();
    let (first, last) = (ids[0].0.as_str(), ids[1].0.as_str());
    let f = |argv: &[&str]| -> Vec<String> {
        [&["", "workers"][..], argv]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "WCLABARG",
            "ARGV[3] first 'x'",
            f(&["x", last, "2", "7", "5 a\n2 b\n"]),
        ),
        (
            "WCLABARG",
            "ARGV[4] last '1'",
            f(&[first, "1", "2", "7", "5 a\n2 b\n"]),
        ),
        (
            "WCLABARG",
            "ARGV[5] n '0'",
            f(&[first, last, "0", "7", "5 a\n2 b\n"]),
        ),
        (
            "WCLABARG",
            "line 1",
            f(&[first, last, "2", "7", "a 5\nb 2\n"]),
        ),
        (
            "WCLABARG",
            "ARGV[6] words 8 is not the sum of the tally's counts, 7",
            f(&[first, last, "2", "8", "5 a\n2 b\n"]),
        ),
        (
            "WCLABARG",
            "ARGV[6] words 8 is not the sum of the words of the 2 tallies",
            f(&[first, last, "2", "8", "6 a\n2 b\n"]),
        ),
        (
            "WCLABARG",
            "takes 7 arguments, got 8",
            f(&[first, last, "2", "7", "5 a\n2 b\n", "x"]),
        ),
    ];
    for (code, says, argv) in &cases {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        j.refused(code, &[*says], "wclab_fold", j.keys(&FOLD), &argv);
    }
    // The tallies' words are not all in tally_words (edited by hand).
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("tally_words")
        .arg(6)
        .exec(&mut j.con)
        .unwrap();
    let good = f(&[first, last, "2", "7", "5 a\n2 b\n"]);
    let good: Vec<&[u8]> = good.iter().map(|a| a.as_bytes()).collect();
    j.refused(
        "WCLABSTATE",
        &["tally_words is 6, less than the 7 words folded"],
        "wclab_fold",
        j.keys(&FOLD),
        &good,
    );
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("tally_words")
        .arg(7)
        .exec(&mut j.con)
        .unwrap();
    // A tally_words that Lua reads as a number but HINCRBY does not take
    // (edited by hand): the fold used to add the words to `counts` and
    // delete the tallies, then fail at its HINCRBY, keeping both writes.
    for bad in ["1e3", "7.0", " 7", "0x7"] {
        redis::cmd("HSET")
            .arg(&j.k.job)
            .arg("tally_words")
            .arg(bad)
            .exec(&mut j.con)
            .unwrap();
        j.refused(
            "WCLABSTATE",
            &["field tally_words is", "not an integer"],
            "wclab_fold",
            j.keys(&FOLD),
            &good,
        );
    }
    redis::cmd("HSET")
        .arg(&j.k.job)
        .arg("tally_words")
        .arg(7)
        .exec(&mut j.con)
        .unwrap();
    let keys = j.keys(&FOLD);
    let ok = j.raw("wclab_fold", &keys, &good);
    assert_eq!(ok, Ok(Value::Array(vec![Value::Int(1), Value::Int(2)])));
    let a: String = redis::cmd("ZSCORE")
        .arg(&j.k.counts)
        .arg("a")
        .query(&mut j.con)
        .unwrap();
    assert_eq!(a, "5");
    // Again: its tallies are gone, nothing changes.
    let stale = j.raw("wclab_fold", &keys, &good);
    assert_eq!(stale, Ok(Value::Array(vec![Value::Int(0)])));
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
