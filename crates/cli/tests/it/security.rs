//! Issue 17: least privilege (an ACL user per role) and TLS on every Redis
//! connection, against real redis-servers.

use crate::common::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use wclab_coord::acl::{KeyScope, Role};
use wclab_server::{tls, AclUser, ServerTls};
use wclab_testkit::redis::{Client, Reply};
use wclab_testkit::{corpus, oracle, procs};

/// Commands no role may run, with arguments that would work for the
/// administrator. Keys are the job's own (`wclab:{j}:*`) where a key is
/// needed, so that a refusal is the command's, not the key's.
const DANGEROUS: &[&[&str]] = &[
    &["FLUSHALL"],
    &["FLUSHDB"],
    &["CONFIG", "SET", "maxmemory", "1"],
    &["CONFIG", "GET", "requirepass"],
    &["CONFIG", "REWRITE"],
    &["FUNCTION", "DELETE", "wclab"],
    &["FUNCTION", "FLUSH"],
    &[
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=wclab\nredis.register_function('wclab_claim', function() return 1 end)",
    ],
    &["FUNCTION", "DUMP"],
    &["FUNCTION", "RESTORE", "x"],
    &["KEYS", "*"],
    &["SCAN", "0"],
    &["RANDOMKEY"],
    &["DEBUG", "SLEEP", "0"],
    &["DEBUG", "SEGFAULT"],
    &["ACL", "SETUSER", "intruder", "on", ">pw", "+@all", "~*"],
    &["ACL", "LIST"],
    &["ACL", "GETUSER", "default"],
    &["ACL", "DELUSER", "worker"],
    &["MODULE", "LOAD", "/nonexistent.so"],
    &["MODULE", "LIST"],
    &["EVAL", "return redis.call('FLUSHALL')", "0"],
    &["EVAL_RO", "return 1", "0"],
    &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
    &["SCRIPT", "LOAD", "return 1"],
    &["SCRIPT", "FLUSH"],
    &["MIGRATE", "127.0.0.1", "1", "wclab:{j}:job", "0", "1000"],
    &["SAVE"],
    &["BGSAVE"],
    &["BGREWRITEAOF"],
    &["REPLICAOF", "127.0.0.1", "1"],
    &["SLAVEOF", "127.0.0.1", "1"],
    &["FAILOVER"],
    &["CLIENT", "LIST"],
    &["CLIENT", "KILL", "USER", "worker"],
    &["CLIENT", "PAUSE", "1000"],
    &["SWAPDB", "0", "1"],
    &["SELECT", "1"],
    &["MOVE", "wclab:{j}:job", "1"],
    &["DUMP", "wclab:{j}:job"],
    &["RESTORE", "wclab:{j}:new", "0", "x"],
    &["RENAME", "wclab:{j}:job", "elsewhere"],
    &["COPY", "wclab:{j}:job", "elsewhere"],
    &["SORT", "wclab:{j}:counts", "BY", "nosort", "GET", "other:*"],
    &["OBJECT", "ENCODING", "wclab:{j}:job"],
    &["PUBLISH", "chan", "x"],
    &["SUBSCRIBE", "chan"],
    &["PSUBSCRIBE", "*"],
    &["SET", "wclab:{j}:job", "x"],
    &["GET", "wclab:{j}:job"],
    &["LATENCY", "RESET"],
    &["SLOWLOG", "RESET"],
    &["LASTSAVE"],
    &["MONITOR"],
    &["SHUTDOWN", "NOSAVE"],
];

/// What a role may not run that another role may: FCALL of the other
/// roles' functions, writes for the observer, any key outside `wclab:*`.
fn refused_for(role: Role) -> Vec<Vec<&'static str>> {
    let mut v: Vec<Vec<&str>> = vec![
        // Keys outside wclab:*, with commands the role may run on its own.
        vec!["HGETALL", "other"],
        vec!["XLEN", "other"],
        vec!["HGET", "other", "f"],
        vec!["ZRANGE", "other", "0", "-1"],
    ];
    match role {
        Role::Worker => v.extend([
            vec!["FCALL", "wclab_submit", "0"],
            vec!["DEL", "wclab:{j}:job"],
            vec!["ZADD", "other", "1", "a"],
            vec!["UNLINK", "other"],
            vec!["HSET", "other", "a", "1"],
            vec!["XADD", "other", "*", "a", "1"],
        ]),
        Role::Submitter => v.extend([
            vec!["FCALL", "wclab_claim", "0"],
            vec!["FCALL", "wclab_commit", "0"],
            vec!["FCALL", "wclab_dead", "0"],
            vec!["HSET", "other", "a", "1"],
            vec!["DEL", "other"],
            // Not the counts: the fold (wclab_fold) runs ZADD and UNLINK
            // on them as the submitter (docs/security.md).
            vec!["ZADD", "other", "1", "forged"],
            vec!["UNLINK", "other"],
        ]),
        Role::Observer => v.extend([
            vec!["FCALL", "wclab_submit", "0"],
            vec!["FCALL", "wclab_claim", "0"],
            vec!["FCALL_RO", "wclab_claim", "0"],
            vec!["DEL", "wclab:{j}:job"],
            vec!["HSET", "wclab:{j}:job", "state", "x"],
            vec!["ZADD", "wclab:{j}:counts", "1", "forged"],
            vec!["XADD", "wclab:{j}:tasks", "*", "a", "1"],
            vec!["UNLINK", "wclab:{j}:counts"],
            vec!["ZINCRBY", "wclab:{j}:counts", "1", "forged"],
        ]),
    }
    v
}

/// What a role must be able to run (not refused: it may fail otherwise).
fn allowed_for(role: Role) -> Vec<Vec<&'static str>> {
    let mut v: Vec<Vec<&str>> = vec![
        vec!["XLEN", "wclab:{j}:tasks"],
        vec!["HGETALL", "wclab:{j}:job"],
    ];
    match role {
        Role::Worker => v.push(vec!["FCALL", "wclab_release", "0"]),
        Role::Submitter => v.push(vec!["FCALL", "wclab_submit", "0"]),
        Role::Observer => v.push(vec!["ZRANGE", "wclab:{j}:counts", "0", "-1"]),
    }
    v
}

/// Tries each command on a connection of its own, as `user`, and checks
/// that the refused ones are refused (NOPERM) and the allowed ones are not.
/// The administrator's view afterwards must be unchanged.
fn assert_least_privilege(server: &RedisServer, users: &BTreeMap<Role, (String, String)>) {
    let mut admin = Client::connect(server.port(), server.password()).unwrap();
    assert_eq!(
        admin.cmd(&["HSET", "wclab:{j}:job", "state", "open"]),
        Reply::Int(1)
    );
    admin.cmd(&["ZADD", "wclab:{j}:counts", "3", "word"]);
    admin.cmd(&["HSET", "other", "f", "v"]);
    let before = admin.cmd(&["DBSIZE"]);
    for role in Role::ALL {
        let (name, pw) = &users[&role];
        let refused: Vec<Vec<&str>> = (DANGEROUS.iter().map(|c| c.to_vec()))
            .chain(refused_for(role))
            .collect();
        for cmd in &refused {
            let mut c = Client::connect_as(server.port(), name, pw).unwrap();
            match c.cmd(cmd) {
                Reply::Error(e) if e.starts_with("NOPERM") => {}
                other => panic!("{name} ran {cmd:?}: {other:?}"),
            }
        }
        for cmd in allowed_for(role) {
            let mut c = Client::connect_as(server.port(), name, pw).unwrap();
            if let Reply::Error(e) = c.cmd(&cmd) {
                assert!(!e.starts_with("NOPERM"), "{name} may not run {cmd:?}: {e}");
            }
        }
    }
    // Nothing was changed by the refused commands; the server still runs.
    assert_eq!(admin.cmd(&["DBSIZE"]), before);
    assert_eq!(
        admin.cmd(&["HGET", "wclab:{j}:job", "state"]).text(),
        "open"
    );
    let lib = admin.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "wclab"]);
    assert_eq!(lib.array().len(), 1, "the library is still loaded");
}

/// `wclab acl --apply` against the administrator's URL: the users it
/// made, from its `ROLE URL` lines.
fn acl_apply(server: &RedisServer) -> BTreeMap<Role, (String, String, String)> {
    let o = output(
        wclab()
            .args(["acl", "--apply"])
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert_status(&o, 0);
    let mut users = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let (role, url) = line.split_once('\t').expect("ROLE<TAB>URL");
        let role = Role::from_name(role).unwrap();
        let creds = url.split_once("://").unwrap().1;
        let (creds, _) = creds.rsplit_once('@').unwrap();
        let (name, pw) = creds.split_once(':').unwrap();
        users.insert(role, (name.to_owned(), pw.to_owned(), url.to_owned()));
    }
    assert_eq!(users.len(), 3, "{}", stderr(&o));
    users
}

/// Redis 7.0 refuses DEBUG and MODULE to everyone by default: turned on
/// here, so that the ACL is what refuses them.
fn risky_commands_enabled() -> Vec<String> {
    vec![
        "enable-debug-command yes".into(),
        "enable-module-command yes".into(),
    ]
}

#[test]
fn each_role_of_a_private_server_is_refused_every_command_outside_its_set() {
    // The users as `run` and `stream` make them (config file lines).
    let server = RedisServer::start(ServerOptions {
        extra_config: risky_commands_enabled(),
        users: (Role::ALL.iter())
            .map(|r| AclUser {
                name: r.name().to_owned(),
                rules: r.rules(&KeyScope::AllJobs),
            })
            .collect(),
        ..Default::default()
    })
    .unwrap();
    // The library, loaded by the administrator.
    load_library(&server);
    let users = (Role::ALL.iter())
        .map(|&r| {
            let pw = server.user_password(r.name()).unwrap().to_owned();
            (r, (r.name().to_owned(), pw))
        })
        .collect();
    assert_least_privilege(&server, &users);
}

/// Loads the library as the administrator, through `wclab top` on a job
/// that does not exist (connecting loads it; the job's absence is exit 2).
fn load_library(server: &RedisServer) {
    let o = output(
        wclab()
            .args(["top", "--job", "none"])
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert!(stderr(&o).contains("no job"), "{}", stderr(&o));
}

#[test]
fn each_role_made_by_wclab_acl_is_refused_every_command_outside_its_set() {
    let server = RedisServer::start(ServerOptions {
        extra_config: risky_commands_enabled(),
        ..Default::default()
    })
    .unwrap();
    let users = acl_apply(&server);
    let users = (users.into_iter())
        .map(|(r, (name, pw, _))| (r, (name, pw)))
        .collect();
    assert_least_privilege(&server, &users);
}

#[test]
fn acl_without_apply_prints_lines_redis_accepts() {
    // The `user` lines, as an operator pastes them into an ACL file.
    let o = output(wclab().args(["acl", "--format", "conf", "--job", "j"]));
    assert_status(&o, 0);
    let conf: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(conf.len(), 3);
    let server = RedisServer::start(ServerOptions {
        extra_config: conf.clone(),
        ..Default::default()
    })
    .unwrap();
    load_library(&server);
    let pw = |line: &str| {
        line.split(" >")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let mut w = Client::connect_as(server.port(), "worker-j", &pw(&conf[0])).unwrap();
    assert_eq!(w.cmd(&["XLEN", "wclab:{j}:tasks"]), Reply::Int(0));
    // Scoped to job j: another job's keys are refused.
    match w.cmd(&["XLEN", "wclab:{k}:tasks"]) {
        Reply::Error(e) if e.starts_with("NOPERM") => {}
        other => panic!("worker-j read job k: {other:?}"),
    }
    // The commands, as redis-cli would send them, are accepted too.
    let o = output(wclab().args(["acl"]));
    assert_status(&o, 0);
    let mut admin = Client::connect(server.port(), server.password()).unwrap();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let args: Vec<&str> = line.split(' ').collect();
        assert_eq!(args[..2], ["ACL", "SETUSER"]);
        assert_eq!(admin.cmd(&args), Reply::Status("OK".into()), "{line}");
    }
    assert!(
        stderr(&o).contains("worker    redis://worker:"),
        "{}",
        stderr(&o)
    );
}

/// Submits as the submitter, runs standalone workers as the worker (killed
/// at seeded random moments and replaced), reads the result as the
/// observer: the counts are exact.
#[test]
fn a_job_with_workers_killed_at_random_is_exact_on_the_roles_users() {
    let seed = 17;
    let server = redis();
    let users = acl_apply(&server);
    let url = |r: Role| users[&r].2.clone();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 20, 30_000, seed);
    let o = output(
        wclab()
            .args(["submit", "--job", "j", "--input"])
            .arg(&root)
            .env("WCLAB_REDIS_URL", url(Role::Submitter)),
    );
    assert_status(&o, 0);
    let spawn = || {
        wclab()
            .args([
                "worker",
                "--job",
                "j",
                "--lease",
                "400ms",
                "--exit-when-done",
            ])
            .env("WCLAB_REDIS_URL", url(Role::Worker))
            .env("WCLAB_TEST_PAUSE", "while_counting:60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<_> = (0..3).map(|_| spawn()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the job did not finish");
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
        let mut finished = 0;
        for w in &mut workers {
            if let Some(status) = w.try_wait().unwrap() {
                if status.success() {
                    finished += 1;
                } else {
                    let mut e = String::new();
                    std::io::Read::read_to_string(w.stderr.as_mut().unwrap(), &mut e).unwrap();
                    panic!("a worker failed ({status}): {e}");
                }
            }
        }
        if finished > 0 {
            break;
        }
        if killed < 8 {
            let i = rng.random_range(0..workers.len());
            procs::kill9(workers[i].id());
            workers[i].wait().unwrap();
            workers[i] = spawn();
            killed += 1;
        }
    }
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
    assert!(killed >= 4, "the job ended before enough kills ({killed})");
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    // The observer reads the result.
    let o = output(
        wclab()
            .args(["top", "--job", "j", "-k", "1"])
            .env("WCLAB_REDIS_URL", url(Role::Observer)),
    );
    assert_status(&o, 0);
    // And the observer cannot submit: a clear error naming the role.
    let o = output(
        wclab()
            .args(["submit", "--job", "j2", "--input"])
            .arg(&root)
            .env("WCLAB_REDIS_URL", url(Role::Observer)),
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("refused") && stderr(&o).contains("\"observer\""),
        "{}",
        stderr(&o)
    );
}

/// The environment of `run`'s worker processes while they run.
fn worker_envs(run: &std::process::Child) -> Vec<BTreeMap<String, String>> {
    let pids = procs::wait_for("workers", Duration::from_secs(30), || {
        let w = procs::workers_of(run.id());
        (!w.is_empty()).then_some(w)
    });
    pids.iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
        .map(|env| {
            (env.split(|&b| b == 0))
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect()
        })
        .collect()
}

/// `run` (with `--tls` or not) with workers killed at seeded random
/// moments; its workers hold the worker's URL only.
fn run_killing_workers(seed: u64, tls: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 24, 40_000, seed);
    let out = dir.path().join("counts.tsv");
    let redis_dir = dir.path().join("redis");
    let mut cmd = wclab();
    cmd.args(["run", "--workers", "3", "--lease", "400ms", "--json"])
        .arg("--redis-dir")
        .arg(&redis_dir)
        .arg("--input")
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .env("WCLAB_TEST_PAUSE", "while_counting:60");
    if tls {
        cmd.arg("--tls");
    }
    let mut run = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let envs = worker_envs(&run);
    let conf = std::fs::read_to_string(redis_dir.join("redis.conf")).unwrap();
    let admin_pw = conf
        .lines()
        .find_map(|l| l.strip_prefix("requirepass "))
        .unwrap();
    let scheme = if tls { "rediss" } else { "redis" };
    for env in &envs {
        let url = &env["WCLAB_REDIS_URL"];
        assert!(url.starts_with(&format!("{scheme}://worker:")), "{url}");
        assert!(!url.contains(admin_pw), "a worker holds the admin password");
        assert_eq!(
            env.get("WCLAB_TLS_CA").is_some(),
            tls,
            "the CA is handed over with TLS only"
        );
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut killed = 0;
    while killed < 8 && run.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
        let workers = procs::workers_of(run.id());
        if let Some(&victim) = workers.get(rng.random_range(0..workers.len().max(1))) {
            procs::kill9(victim);
            killed += 1;
        }
    }
    let o = wait_output(run, DEADLINE);
    assert_status(&o, 0);
    assert!(killed >= 4, "the job ended before enough kills ({killed})");
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tasks_done"], 24);
    if tls {
        assert!(
            conf.contains("\nport 0\n") && conf.contains("tls-port "),
            "{conf}"
        );
    }
}

#[test]
fn run_gives_its_workers_the_worker_user_and_stays_exact_under_kills() {
    run_killing_workers(3, false);
}

#[test]
fn run_over_tls_is_exact_under_kills() {
    run_killing_workers(4, true);
}

/// A TLS server for one test, with its CA.
fn tls_redis() -> (RedisServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(ServerOptions {
        dir: Some(dir.path().to_owned()),
        tls: Some(ServerTls::Generate),
        ..Default::default()
    })
    .unwrap();
    (server, dir)
}

#[test]
fn a_client_with_another_ca_is_refused_with_the_fix() {
    let (server, _dir) = tls_redis();
    let other = tempfile::tempdir().unwrap();
    let other = tls::generate(other.path(), &["127.0.0.1".into()]).unwrap();
    let hostport = format!("127.0.0.1:{}", server.port());
    for ca in [Some(&other.ca), None] {
        let mut c = wclab();
        c.args(["top", "--job", "j"])
            .env("WCLAB_REDIS_URL", server.url());
        if let Some(ca) = ca {
            c.arg("--tls-ca").arg(ca);
        }
        let o = output(&mut c);
        assert_status(&o, 2);
        let e = stderr(&o);
        assert!(e.contains(&hostport), "names the server: {e}");
        assert!(
            e.contains("not signed by a CA we trust") && e.contains("--tls-ca"),
            "says what to do: {e}"
        );
        assert!(!e.contains(server.password()), "no password: {e}");
    }
    // The right CA works.
    let o = output(
        wclab()
            .args(["top", "--job", "j", "--tls-ca"])
            .arg(&server.tls().unwrap().ca)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    assert!(stderr(&o).contains("no job \"j\""), "{}", stderr(&o));
}

#[test]
fn tls_and_plain_text_mixed_up_are_explained() {
    // A TLS client to a plain-text server.
    let plain = redis();
    let (tls_server, _dir) = tls_redis();
    let o = output(
        wclab()
            .args(["top", "--job", "j", "--tls", "--tls-ca"])
            .arg(&tls_server.tls().unwrap().ca)
            .env("WCLAB_REDIS_URL", plain.url()),
    );
    assert_status(&o, 2);
    let e = stderr(&o);
    // Redis waits for the end of a line that never comes: a time-out.
    assert!(e.contains("does it speak TLS"), "{e}");
    // A plain-text client to a TLS server.
    let o = output(wclab().args(["top", "--job", "j"]).env(
        "WCLAB_REDIS_URL",
        tls_server.url().replace("rediss://", "redis://"),
    ));
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(e.contains("rediss://") && e.contains("--tls"), "{e}");
}
