//! Lab 4b: the anomalies a Jepsen-style run found in the sidecar (issue 21),
//! one regression test each. Same harness as `raft`: real `wclab raft node`
//! processes, SIGKILL, SIGSTOP, the `RAFT.PARTITION` test switch.

use crate::common::*;
use crate::raft::{Cluster, Node};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};
use wclab_testkit::procs;
use wclab_testkit::redis::Reply;

fn ok() -> Reply {
    Reply::Status("OK".into())
}

fn is_error(r: &Reply, code: &str) -> bool {
    matches!(r, Reply::Error(e) if e.split(' ').next() == Some(code))
}

/// Cuts `node` off from `others`, on both sides of each link.
fn cut(cluster: &Cluster, node: usize, others: &[usize]) {
    let ids: Vec<String> = others
        .iter()
        .map(|&o| cluster.nodes[o].id.to_string())
        .collect();
    let mut args = vec!["RAFT.PARTITION"];
    args.extend(ids.iter().map(String::as_str));
    assert_eq!(cluster.nodes[node].cmd(&args), ok());
    for &o in others {
        assert_eq!(
            cluster.nodes[o].cmd(&["RAFT.PARTITION", &cluster.nodes[node].id.to_string()]),
            ok()
        );
    }
}

fn heal(cluster: &Cluster) {
    for n in cluster.nodes.iter().filter(|n| n.child.is_some()) {
        assert_eq!(n.cmd(&["RAFT.PARTITION"]), ok());
    }
}

fn list(node: &Node, key: &str) -> Reply {
    node.cmd(&["LRANGE", key, "0", "-1"])
}

fn texts(r: &Reply) -> Vec<String> {
    r.array().iter().map(Reply::text).collect()
}

/// Issue 21, anomaly 1. A follower is cut off while ten pushes are
/// acknowledged by the leader and the third node; then the leader and the
/// third node crash, the third loses its directory and comes back empty,
/// and the cut-off follower is healed. Before the fix, the empty node voted
/// the stale follower in and the list came back empty (and the old leader
/// then crashed in apply, "range start is greater than range end").
/// Now the empty node has a new incarnation and votes for nobody until the
/// cluster has taken it back in: no leader can be elected without the old
/// leader, which comes back with the data, and takes the empty node back.
#[test]
fn a_node_restarted_with_an_empty_directory_does_not_vote_away_acknowledged_writes() {
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let (f2, f3) = ((l + 1) % 3, (l + 2) % 3);
    cut(&cluster, f2, &[l, f3]);
    let pushed: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    for (i, v) in pushed.iter().enumerate() {
        assert_eq!(
            cluster.nodes[l].cmd(&["RPUSH", "lw", v]),
            Reply::Int(i as i64 + 1),
            "push {v}"
        );
    }
    cluster.nodes[l].kill();
    cluster.nodes[f3].kill();
    std::fs::remove_dir_all(&cluster.nodes[f3].dir).unwrap();
    cluster.nodes[f3].start();
    heal(&cluster);
    // Without the old leader, nobody holds the pushes: no read may be
    // answered at all (a leader made of the stale follower and the empty
    // node would answer an empty list).
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        for n in [f2, f3] {
            let r = list(&cluster.nodes[n], "lw");
            assert!(
                is_error(&r, "TRYAGAIN"),
                "node {} answered {r:?} while the only holders of the pushes were down",
                cluster.nodes[n].id
            );
        }
    }
    cluster.nodes[l].start();
    cluster.wait_leader();
    for n in &cluster.nodes {
        let got = procs::wait_for("a read", Duration::from_secs(30), || {
            let r = list(n, "lw");
            matches!(r, Reply::Array(_)).then(|| texts(&r))
        });
        assert_eq!(got, pushed, "through node {}", n.id);
    }
    // The empty node is a voter again, with the data, and the old leader
    // did not crash on the way.
    procs::wait_for(
        "the empty node to vote again",
        Duration::from_secs(60),
        || {
            let info = cluster.nodes[f3].info();
            (info.get("voters").map(String::as_str) == Some("1,2,3")
                && info.get("role").map(String::as_str) == Some("follower"))
            .then_some(())
        },
    );
    cluster.assert_identical();
    for n in &mut cluster.nodes {
        let c = n.child.as_mut().unwrap();
        assert!(c.try_wait().unwrap().is_none(), "node {} exited", n.id);
    }
}

fn term(node: &Node) -> String {
    node.info().get("term").cloned().unwrap_or_default()
}

/// Issue 21, anomaly 5: a follower cut off for several election timeouts
/// and healed must not depose the healthy leader (pre-vote): the term and
/// the leader stay what they were.
#[test]
fn a_healed_follower_does_not_depose_a_healthy_leader() {
    let cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let before = term(&cluster.nodes[l]);
    let f = (l + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|&i| i != f).collect();
    for round in 0..2 {
        cut(&cluster, f, &others);
        // Writes go on meanwhile, through the leader.
        let until = Instant::now() + Duration::from_secs(3);
        let mut n = 0;
        while Instant::now() < until {
            n += 1;
            assert_eq!(
                cluster.nodes[l].cmd(&["SET", &format!("k{round}"), &n.to_string()]),
                ok()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        heal(&cluster);
        // The healed follower catches up with the writes made meanwhile.
        procs::wait_for("the follower to catch up", Duration::from_secs(30), || {
            (cluster.nodes[f].digest() == cluster.nodes[l].digest()).then_some(())
        });
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(cluster.wait_leader(), l, "the leader changed");
    for n in &cluster.nodes {
        assert_eq!(term(n), before, "node {} changed term", n.id);
    }
}

/// Issue 21, anomaly 2 and the small ones: scripts and commands whose
/// effect depends on the replica never reach the log; options are parsed
/// as options, not as any argument that happens to read "px".
#[test]
fn scripts_and_replica_dependent_commands_never_reach_the_log() {
    let cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let node = &cluster.nodes[(l + 1) % 3]; // through a follower
    assert_eq!(node.cmd(&["SADD", "s", "a", "b", "c"]), Reply::Int(3));
    let refused: &[&[&str]] = &[
        &["EVAL", "return redis.call('SPOP',KEYS[1])", "1", "s"],
        &["EVAL", "return redis.call('TIME')", "0"],
        &["EVAL_RO", "return 1", "0"],
        &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        &["SCRIPT", "LOAD", "return 1"],
        &["SCRIPT", "FLUSH"],
        &["FCALL", "somebody_elses", "0"],
        &["FCALL", "wclab_commit", "0"], // no now_ms: the server's own clock
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=x\nredis.register_function('wclab_x', function() return redis.call('SPOP', 's') end)",
        ],
        &["SPOP", "s"],
        &["SET", "k", "v", "PX", "100"],
        &["SET", "k", "v", "ex", "10"],
        &["SET", "k", "v", "KEEPTTL"],
        &["SET", "k", "v", "NX", "EXAT", "99999999999"],
        &["XADD", "x", "*", "f", "v"],
        &["XADD", "x", "MAXLEN", "~", "10", "1-1", "f", "v"],
        &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "x", ">"],
        &["CLIENT", "KILL", "ID", "1"],
        &["CLIENT", "PAUSE", "10"],
    ];
    for cmd in refused {
        let r = node.cmd(cmd);
        assert!(is_error(&r, "ERR"), "{cmd:?} answered {r:?}");
    }
    // Words that read like options, where they are not options.
    assert_eq!(node.cmd(&["SET", "px", "v"]), ok());
    assert_eq!(node.cmd(&["GET", "px"]).text(), "v");
    assert_eq!(node.cmd(&["SET", "k", "EX"]), ok());
    assert_eq!(node.cmd(&["GET", "k"]).text(), "EX");
    assert_eq!(
        node.cmd(&["SET", "k2", "v", "NX", "GET"]),
        Reply::Bulk(None)
    );
    assert_eq!(
        node.cmd(&["XADD", "x", "MAXLEN", "=", "10", "1-1", "f", "v"])
            .text(),
        "1-1"
    );
    assert_eq!(
        node.cmd(&["XGROUP", "CREATE", "x", "g", "0"]),
        ok(),
        "a consumer group"
    );
    // A consumer named BLOCK is a consumer, not an option.
    let got = node.cmd(&["XREADGROUP", "GROUP", "g", "BLOCK", "STREAMS", "x", ">"]);
    assert_eq!(got.array().len(), 1, "{got:?}");
    // Our own library may be loaded; its functions called.
    let lib = wclab_coord::FUNCTION_LIBRARY;
    assert_eq!(
        node.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]).text(),
        "wclab"
    );
    // CLIENT answers the truth about this connection, or refuses.
    let mut c = node.client().unwrap();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    let mut other = node.client().unwrap();
    assert_ne!(other.cmd(&["CLIENT", "ID"]).int(), id);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Reply::Bulk(None));
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "me"]), ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).text(), "me");
    // Nothing refused reached any replica.
    assert_eq!(node.cmd(&["SCARD", "s"]), Reply::Int(3));
    cluster.assert_identical();
}

/// Sends `cmds` on one connection without waiting in between, then reads
/// one single-line reply per command (status, error or integer).
fn pipelined(port: u16, cmds: &[&[&str]]) -> Vec<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = Vec::new();
    for args in cmds {
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in *args {
            buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    s.write_all(&buf).unwrap();
    let mut r = BufReader::new(s);
    cmds.iter()
        .map(|_| {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            line.trim_end().to_owned()
        })
        .collect()
}

/// Issue 21, anomaly 3: an outcome the sidecar cannot know is `UNKNOWN`,
/// never `TRYAGAIN` (which clients may retry blindly).
#[test]
fn a_write_whose_outcome_the_sidecar_cannot_know_is_answered_unknown() {
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let (f1, f2) = ((l + 1) % 3, (l + 2) % 3);
    // 1. The leader takes a write into its log just as it is cut off from
    // both followers: it cannot commit it, nor know that it never will.
    let ids: Vec<String> = [f1, f2]
        .iter()
        .map(|&i| cluster.nodes[i].id.to_string())
        .collect();
    let replies = pipelined(
        cluster.nodes[l].port,
        &[
            &["RAFT.PARTITION", &ids[0], &ids[1]],
            &["HSET", "h", "cut", "1"],
        ],
    );
    assert_eq!(replies[0], "+OK");
    assert!(
        replies[1].starts_with("-UNKNOWN "),
        "a write appended but not committed: {}",
        replies[1]
    );
    // Once the cut-off leader knows it has no quorum, a write it is sent is
    // not appended at all: that one may be retried.
    for n in [f1, f2] {
        assert_eq!(
            cluster.nodes[n].cmd(&["RAFT.PARTITION", &cluster.nodes[l].id.to_string()]),
            ok()
        );
    }
    let r = cluster.nodes[l].cmd(&["HSET", "h", "late", "1"]);
    assert!(is_error(&r, "TRYAGAIN"), "{r:?}");
    heal(&cluster);
    let l = cluster.wait_leader();
    let f = (l + 1) % 3;

    // 2. A follower proxies a write to the leader, which dies before it
    // answers: the write may have been applied; the follower cannot know.
    let mut client = cluster.nodes[f].client().unwrap();
    assert_eq!(client.cmd(&["HSET", "h", "before", "1"]), Reply::Int(1));
    let leader_pid = cluster.nodes[l].child.as_ref().unwrap().id();
    procs::signal(leader_pid, Signal::SIGSTOP);
    let pending = std::thread::spawn(move || client.cmd(&["HSET", "h", "lost", "1"]));
    std::thread::sleep(Duration::from_millis(300));
    cluster.nodes[l].kill();
    let r = pending.join().unwrap();
    assert!(is_error(&r, "UNKNOWN"), "{r:?}");
    cluster.wait_leader();
    cluster.nodes[l].start();
    cluster.wait_leader();

    // 3. No leader at all (two of three down): known not appended.
    let l = cluster.wait_leader();
    let survivor = (l + 1) % 3;
    cluster.nodes[l].kill();
    cluster.nodes[(l + 2) % 3].kill();
    let r = cluster.nodes[survivor].cmd(&["HSET", "h", "alone", "1"]);
    assert!(is_error(&r, "TRYAGAIN"), "{r:?}");
}

/// The exit status of a node's sidecar, once it has exited by itself.
fn wait_exit(node: &mut Node, what: &str) -> std::process::ExitStatus {
    let child = node.child.as_mut().expect("running");
    let status = procs::wait_for(what, Duration::from_secs(30), || child.try_wait().unwrap());
    node.child = None;
    node.kill(); // whatever it left behind
    status
}

fn redis_pid(node: &Node) -> u32 {
    std::fs::read_to_string(node.dir.join("redis-server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Issue 21, anomaly 4 and the zombies: a node whose redis-server hangs
/// or dies stops (non-zero) so that its supervisor restarts it from its
/// log, even when nothing is being applied; a leader whose redis-server
/// hangs is replaced.
#[test]
fn a_node_whose_redis_server_hangs_or_dies_stops_and_another_leader_takes_over() {
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    assert_eq!(cluster.nodes[l].cmd(&["SET", "k", "1"]), ok());
    // The leader's redis-server hangs (SIGSTOP): the leader stops.
    procs::signal(redis_pid(&cluster.nodes[l]), Signal::SIGSTOP);
    let status = wait_exit(&mut cluster.nodes[l], "the leader to stop");
    assert!(!status.success(), "{status:?}");
    let new = cluster.wait_leader();
    assert_ne!(new, l);
    assert_eq!(cluster.nodes[new].cmd(&["SET", "k", "2"]), ok());
    cluster.nodes[l].start();
    // An idle follower's redis-server dies: the follower stops too.
    let f = (new + 1) % 3;
    procs::kill9(redis_pid(&cluster.nodes[f]));
    let status = wait_exit(&mut cluster.nodes[f], "the follower to stop");
    assert!(!status.success(), "{status:?}");
    cluster.nodes[f].start();
    cluster.wait_leader();
    assert_eq!(cluster.nodes[f].cmd(&["GET", "k"]).text(), "2");
    cluster.assert_identical();
}

/// The zombies: a panic in apply, or in the Raft core itself (here in its
/// log storage), stops the node instead of leaving it serving clients
/// with a state nobody keeps up to date. (`RAFT.FAULT` is a test switch,
/// on only with WCLAB_RAFT_TEST_FAULTS=1.)
#[test]
fn a_panic_in_apply_or_in_the_raft_core_stops_the_node() {
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    for (k, fault) in ["panic-apply", "panic-append"].iter().enumerate() {
        let l = cluster.wait_leader();
        let f = (l + 1 + k) % 3;
        assert_eq!(cluster.nodes[f].cmd(&["RAFT.FAULT", fault]), ok());
        assert_eq!(cluster.nodes[l].cmd(&["SET", "k", fault]), ok());
        let status = wait_exit(&mut cluster.nodes[f], "the node to stop");
        assert!(!status.success(), "{fault}: {status:?}");
        cluster.nodes[f].start();
    }
    cluster.wait_leader();
    assert_eq!(cluster.nodes[l].cmd(&["GET", "k"]).text(), "panic-append");
    cluster.assert_identical();
}

/// Issue 21, anomaly 3, client side: a commit answered `UNKNOWN` although
/// it was applied is retried by wclab's client, finds its tasks already
/// committed, and counts as applied (not as somebody else's, not as an
/// error). `RAFT.FAULT unknown-reply wclab_commit` makes the leader answer
/// its next commit UNKNOWN after applying it.
#[test]
fn a_commit_answered_unknown_after_it_was_applied_counts_once_as_ours() {
    let cluster = Cluster::start(3);
    cluster.wait_leader();
    for n in &cluster.nodes {
        assert_eq!(
            n.cmd(&["RAFT.FAULT", "unknown-reply", "wclab_commit"]),
            ok()
        );
    }
    let o = output(wclab().args([
        "raft",
        "bench-commit",
        "--redis",
        &cluster.url(),
        "--commits",
        "5",
        "--words",
        "20",
    ]));
    assert_status(&o, 0);
    let leader = &cluster.nodes[cluster.wait_leader()];
    let fired = leader.info();
    assert_eq!(
        fired.get("faults_fired").map(String::as_str),
        Some("1"),
        "the UNKNOWN reply was sent once: {fired:?}"
    );
    cluster.assert_identical();
}
