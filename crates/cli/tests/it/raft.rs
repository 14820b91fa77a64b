//! Lab 4b: Redis replicated by Raft. Nodes (sidecar + redis-server) are
//! real processes, killed with SIGKILL; partitions are the sidecars'
//! test switch (`RAFT.PARTITION`), which drops Raft traffic and proxying
//! between chosen nodes. Whatever happens, a job finishes with exact
//! counts, no acknowledged write is lost, and replicas end identical.

use crate::common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wclab_testkit::redis::{Client, Reply};
use wclab_testkit::{corpus, oracle, procs};

/// One node: a `wclab raft node` process and its directory.
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    pub(crate) child: Option<Child>,
    /// Extra `wclab raft node` options.
    pub(crate) args: Vec<String>,
    /// The administrator's password (WCLAB_RAFT_ADMIN_PASSWORD): given to
    /// the node, and used by [`Node::client`].
    pub(crate) admin_password: Option<String>,
}

/// A cluster of 2f+1 nodes on loopback ports.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// `n` free ports, all different from each other and from `taken`, where
/// no other process is handed them while a node is down (see
/// `wclab_testkit::ports`). The kernel may hand out a port it just
/// released again: two nodes given one port would be one process answering
/// for two members, and a killed node's port taken meanwhile keeps it from
/// starting again.
pub(crate) fn free_ports(n: usize, taken: &[u16]) -> Vec<u16> {
    wclab_testkit::ports::restartable(n, taken)
}

impl Node {
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The node's log, next to its directory (which a test may wipe), one
    /// file across restarts; kept with the cluster's directory when a
    /// test fails.
    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .expect("node log file")
    }

    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none());
        let child = wclab()
            .args([
                "raft",
                "node",
                "--id",
                &self.id.to_string(),
                "--listen",
                &self.addr(),
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--heartbeat", "100ms", "--snapshot-every", "20"])
            .args(&self.args)
            .env("WCLAB_RAFT_TEST_FAULTS", "1")
            .env("WCLAB_LOG", "info")
            .envs(
                self.admin_password
                    .iter()
                    .map(|pw| ("WCLAB_RAFT_ADMIN_PASSWORD", pw)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("spawn wclab raft node");
        self.child = Some(child);
        // Up means: this node (not another process that took its port
        // while it was down) answers as itself: its ID and the incarnation
        // written in its directory (a node of another test's cluster may
        // have the same ID). A node that exited at start (its port taken)
        // fails the test here, not later and elsewhere.
        let id = self.id.to_string();
        let incarnation = || {
            std::fs::read_to_string(self.dir.join("raft").join("incarnation"))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node {} exited at start ({status}): see {}",
                    self.id,
                    self.dir.with_extension("log").display()
                );
            }
            let info = self.info();
            if info.get("node_id") == Some(&id) && info.get("incarnation").cloned() == incarnation()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not answer as itself within 30 s",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9 of the sidecar and of its redis-server: the whole node crashes.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            procs::kill9(c.id());
            let _ = c.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("redis-server.pid")) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                procs::kill9(pid);
            }
        }
    }

    /// kill -9 of the sidecar alone: its redis-server lives on, with a
    /// dataset the restarted node must not trust. Returns that Redis's PID.
    pub(crate) fn kill_sidecar(&mut self) -> u32 {
        let redis: u32 = std::fs::read_to_string(self.dir.join("redis-server.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if let Some(mut c) = self.child.take() {
            procs::kill9(c.id());
            let _ = c.wait();
        }
        redis
    }

    /// A connection to the node; in TLS, with the node's own certificate,
    /// which administration needs (a node's certificate or the
    /// administrator's password).
    pub(crate) fn client(&self) -> Option<Client> {
        self.child.as_ref()?;
        match crate::raft_tls::ca_in(&self.args) {
            Some(ca) => {
                let cert = crate::raft_tls::option_in(&self.args, "--tls-cert")?;
                let key = crate::raft_tls::option_in(&self.args, "--tls-key")?;
                crate::raft_tls::connect(self.port, &ca, Some((&cert, &key))).ok()
            }
            None => {
                let mut c = Client::connect(self.port, "").ok()?;
                if let Some(pw) = &self.admin_password {
                    assert_eq!(c.cmd(&["AUTH", "admin", pw]), Reply::Status("OK".into()));
                }
                Some(c)
            }
        }
    }

    pub(crate) fn info(&self) -> HashMap<String, String> {
        let Some(mut c) = self.client() else {
            return HashMap::new();
        };
        match c.cmd(&["RAFT.INFO"]) {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// (applied index, digest of the dataset).
    pub(crate) fn digest(&self) -> Option<(i64, String)> {
        let r = self.client()?.cmd(&["RAFT.DIGEST"]);
        let a = r.array();
        Some((a[0].int(), a[1].text()))
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Reply {
        self.client().expect("node is up").cmd(args)
    }
}

impl Cluster {
    /// `n` nodes started and configured as one cluster, with a leader.
    pub(crate) fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// [`Cluster::start`], with extra `wclab raft node` options.
    pub(crate) fn start_with(n: usize, args: &[&str]) -> Cluster {
        Cluster::start_administered(n, args, None)
    }

    /// [`Cluster::start_with`], the nodes given an administrator's
    /// password.
    pub(crate) fn start_administered(n: usize, args: &[&str], admin: Option<&str>) -> Cluster {
        let c = Cluster::spawn_administered(n, args, admin);
        let members: Vec<String> = c
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.addr()))
            .collect();
        let mut init = vec!["RAFT.INIT"];
        init.extend(members.iter().map(String::as_str));
        let r = c.nodes[0].cmd(&init);
        assert_eq!(r, Reply::Status("OK".into()), "RAFT.INIT");
        c.wait_leader();
        c
    }

    /// `n` nodes started, not configured yet; `{id}` in `args` stands for
    /// each node's ID.
    pub(crate) fn spawn(n: usize, args: &[&str]) -> Cluster {
        Cluster::spawn_administered(n, args, None)
    }

    /// [`Cluster::spawn`], the nodes given an administrator's password.
    pub(crate) fn spawn_administered(n: usize, args: &[&str], admin: Option<&str>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (1..=n as u64)
            .zip(free_ports(n, &[]))
            .map(|(id, port)| Node {
                id,
                port,
                dir: dir.path().join(format!("n{id}")),
                child: None,
                args: args
                    .iter()
                    .map(|a| a.replace("{id}", &id.to_string()))
                    .collect(),
                admin_password: admin.map(str::to_owned),
            })
            .collect();
        for node in &mut nodes {
            node.start();
        }
        Cluster { nodes, _dir: dir }
    }

    /// The index in `nodes` of the leader, once a live node says it leads
    /// and every live node agrees.
    pub(crate) fn wait_leader(&self) -> usize {
        procs::wait_for("a leader", Duration::from_secs(30), || {
            let infos: Vec<_> = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .map(|n| n.info())
                .collect();
            let leader = infos
                .iter()
                .find(|i| i.get("role").map(String::as_str) == Some("leader"))?;
            let id: u64 = leader["node_id"].parse().ok()?;
            infos
                .iter()
                .all(|i| i.get("leader_id") == Some(&id.to_string()))
                .then(|| self.nodes.iter().position(|n| n.id == id).unwrap())
        })
    }

    pub(crate) fn url(&self) -> String {
        let addrs: Vec<String> = self.nodes.iter().map(Node::addr).collect();
        addrs.join(",")
    }

    /// Waits until every live node has applied the same index, and returns
    /// their digests at that index.
    pub(crate) fn converged_digests(&self) -> Vec<(u64, i64, String)> {
        procs::wait_for(
            "replicas to apply the same log",
            Duration::from_secs(60),
            || {
                let ds: Vec<(u64, i64, String)> = self
                    .nodes
                    .iter()
                    .filter(|n| n.child.is_some())
                    .filter_map(|n| n.digest().map(|(a, d)| (n.id, a, d)))
                    .collect();
                let live = self.nodes.iter().filter(|n| n.child.is_some()).count();
                (ds.len() == live && ds.iter().all(|d| d.1 == ds[0].1)).then_some(ds)
            },
        )
    }

    pub(crate) fn assert_identical(&self) {
        let ds = self.converged_digests();
        assert!(
            ds.iter().all(|d| d.2 == ds[0].2),
            "replicas at the same applied index differ: {ds:?}"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap()).keep();
            eprintln!(
                "the nodes' directories and logs are kept in {}",
                kept.display()
            );
        }
    }
}

/// A client outside the cluster that keeps writing `HSET acked <n> 1`,
/// fails over among the nodes on its own, and records each write the
/// cluster acknowledged. Every one must survive every failover.
struct AckedWriter {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AckedWriter {
    fn start(ports: Vec<u16>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            use wclab_raft::resp::{Conn, Frame};
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut n = 0u64;
                let mut i = 0usize;
                while !s.load(Ordering::SeqCst) {
                    let addr = format!("127.0.0.1:{}", ports[i % ports.len()]);
                    let Ok(mut c) = Conn::connect(&addr, None).await else {
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    while !s.load(Ordering::SeqCst) {
                        n += 1;
                        let key = n.to_string();
                        match c.call(&["HSET", "acked", &key, "1"]).await {
                            Ok(Frame::Int(_)) => a.lock().unwrap().push(n),
                            // TRYAGAIN, or the node died: maybe applied, maybe
                            // not; not acknowledged. Try the next node.
                            _ => {
                                i += 1;
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        });
        AckedWriter {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    /// Every acknowledged write is present, read linearizably through `node`.
    fn check(&self, cluster: &Cluster) -> usize {
        let acked = self.acked.lock().unwrap().clone();
        let node = &cluster.nodes[cluster.wait_leader()];
        let present: BTreeSet<u64> = procs::wait_for(
            "a linearizable read",
            Duration::from_secs(30),
            || match node.client()?.cmd(&["HKEYS", "acked"]) {
                Reply::Array(Some(keys)) => {
                    Some(keys.iter().map(|k| k.text().parse().unwrap()).collect())
                }
                _ => None,
            },
        );
        let lost: Vec<u64> = acked
            .iter()
            .filter(|n| !present.contains(n))
            .copied()
            .collect();
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
        acked.len()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `wclab run` against the cluster, in the background.
fn spawn_run(cluster: &Cluster, root: &Path, out: &Path, job: &str) -> Child {
    spawn_run_with(cluster, root, out, job, &[])
}

/// [`spawn_run`] with extra `wclab run` options.
pub(crate) fn spawn_run_with(
    cluster: &Cluster,
    root: &Path,
    out: &Path,
    job: &str,
    extra: &[&str],
) -> Child {
    wclab()
        .args([
            "run",
            "--workers",
            "2",
            "--threads",
            "1",
            "--lease",
            "1s",
            "--job",
            job,
        ])
        .args([
            "--redis-cluster",
            &cluster.url(),
            "--json",
            "-k",
            "0",
            "--input",
        ])
        .arg(root)
        .arg("-o")
        .arg(out)
        .args(extra)
        // Each task takes >= 150 ms, so the job outlives the faults.
        .env("WCLAB_TEST_PAUSE", "while_counting:150")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wclab run")
}

/// The job's committed task count, read through any live node (a
/// linearizable read); records it to check that it never goes back.
fn files_done(cluster: &Cluster, job: &str, seen: &mut Vec<u64>) -> u64 {
    let key = format!("wclab:{{{job}}}:job");
    for n in cluster.nodes.iter().filter(|n| n.child.is_some()) {
        if let Some(mut c) = n.client() {
            if let Reply::Bulk(b) = c.cmd(&["HGET", &key, "files_done"]) {
                let v = b
                    .map(|b| String::from_utf8_lossy(&b).parse().unwrap_or(0))
                    .unwrap_or(0);
                if let Some(&last) = seen.last() {
                    assert!(
                        v >= last,
                        "committed tasks went back from {last} to {v} (read through node {}): \
                         a committed write was lost, or a read was stale",
                        n.id
                    );
                }
                seen.push(v);
                return v;
            }
        }
    }
    seen.last().copied().unwrap_or(0)
}

/// Waits until `at_least` tasks are committed, and checks that the job is
/// still running (so that the fault that follows lands mid-job).
pub(crate) fn wait_progress(
    cluster: &Cluster,
    job: &str,
    seen: &mut Vec<u64>,
    at_least: u64,
    total: u64,
) {
    procs::wait_for("the job to make progress", Duration::from_secs(60), || {
        (files_done(cluster, job, seen) >= at_least).then_some(())
    });
    let now = *seen.last().unwrap();
    assert!(
        now < total,
        "the job finished before the fault ({now} of {total} tasks)"
    );
    eprintln!("{job}: fault at {now} of {total} tasks committed");
}

/// Waits for the run, checks exact counts, every task committed exactly
/// once (one completion record each, none recomputed after a commit).
pub(crate) fn finish_run(
    cluster: &Cluster,
    run: Child,
    root: &Path,
    out: &Path,
    job: &str,
    tasks: usize,
) {
    let o = wait_output(run, DEADLINE);
    assert_status(&o, 0);
    oracle::assert_same(&read_output(out), &oracle::count_tree(root));
    let leader = &cluster.nodes[cluster.wait_leader()];
    let done = leader.cmd(&["XRANGE", &format!("wclab:{{{job}}}:done"), "-", "+"]);
    let ids: Vec<String> = done
        .array()
        .iter()
        .map(|e| {
            let f = e.array()[1].array();
            f.chunks(2).find(|p| p[0].text() == "task").unwrap()[1].text()
        })
        .collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), tasks, "one completion record per task: {ids:?}");
    assert_eq!(distinct.len(), tasks, "a task was committed twice: {ids:?}");
}

#[test]
fn the_job_finishes_exactly_while_the_leader_is_killed_and_restarted() {
    let cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 60, 8_000, 11);
    let out = dir.path().join("counts.tsv");
    let mut writer = AckedWriter::start(cluster.nodes.iter().map(|n| n.port).collect());
    let run = spawn_run(&cluster, &root, &out, "leader");
    let mut seen = Vec::new();
    let mut cluster = cluster;
    for round in 0..2 {
        wait_progress(&cluster, "leader", &mut seen, 10 + 15 * round, 60);
        let l = cluster.wait_leader();
        let killed_at = Instant::now();
        cluster.nodes[l].kill();
        let new_leader = cluster.wait_leader();
        eprintln!(
            "leader {} killed; node {} leads after {:?}",
            cluster.nodes[l].id,
            cluster.nodes[new_leader].id,
            killed_at.elapsed()
        );
        writer.check(&cluster);
        cluster.nodes[l].start();
    }
    finish_run(&cluster, run, &root, &out, "leader", 60);
    writer.stop();
    assert!(
        writer.check(&cluster) > 0,
        "the writer got acknowledgements"
    );
    cluster.assert_identical();
}

#[test]
fn a_follower_killed_and_a_node_restarted_with_an_empty_directory_catch_up() {
    let mut cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 50, 8_000, 12);
    let out = dir.path().join("counts.tsv");
    let run = spawn_run(&cluster, &root, &out, "follower");
    let mut seen = Vec::new();
    wait_progress(&cluster, "follower", &mut seen, 8, 50);
    let l = cluster.wait_leader();
    let f = (l + 1) % 3;
    // A follower's sidecar crashes and comes back before anyone notices a
    // thing; it stops the Redis it left behind and rebuilds a fresh one
    // from its snapshot and log.
    let orphan = cluster.nodes[f].kill_sidecar();
    cluster.nodes[f].start();
    assert!(
        procs::is_dead(orphan),
        "the redis-server of the crashed sidecar is still running"
    );
    wait_progress(&cluster, "follower", &mut seen, 20, 50);
    // Another follower loses its disk: it comes back empty and is rebuilt
    // from the leader (snapshot, then log).
    let g = (l + 2) % 3;
    cluster.nodes[g].kill();
    std::fs::remove_dir_all(&cluster.nodes[g].dir).unwrap();
    // The leader snapshots and purges the head of its log meanwhile, so
    // the empty node can only be rebuilt from a snapshot.
    let leader = &cluster.nodes[cluster.wait_leader()];
    assert_eq!(leader.cmd(&["RAFT.SNAPSHOT"]), Reply::Status("OK".into()));
    procs::wait_for("a snapshot", Duration::from_secs(30), || {
        (leader.info().get("snapshot_index").map(String::as_str) != Some("-")).then_some(())
    });
    cluster.nodes[g].start();
    finish_run(&cluster, run, &root, &out, "follower", 50);
    cluster.assert_identical();
    let rebuilt = cluster.nodes[g].info();
    assert_eq!(
        rebuilt["snapshots_installed"], "1",
        "rebuilt from the leader's snapshot: {rebuilt:?}"
    );
}

#[test]
fn with_five_nodes_two_down_at_once_and_repeated_kills_the_job_finishes() {
    let mut cluster = Cluster::start(5);
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 60, 8_000, 13);
    let out = dir.path().join("counts.tsv");
    let run = spawn_run(&cluster, &root, &out, "five");
    let mut seen = Vec::new();
    wait_progress(&cluster, "five", &mut seen, 6, 60);
    // f = 2 down at once, the leader among them.
    let l = cluster.wait_leader();
    let other = (l + 1) % 5;
    cluster.nodes[l].kill();
    cluster.nodes[other].kill();
    wait_progress(&cluster, "five", &mut seen, 12, 60);
    cluster.nodes[l].start();
    cluster.nodes[other].start();
    // Then one node after another, each back before the next goes.
    for k in 0..4 {
        wait_progress(&cluster, "five", &mut seen, 18 + 6 * k, 60);
        let victim = (cluster.wait_leader() + k as usize) % 5;
        cluster.nodes[victim].kill();
        std::thread::sleep(Duration::from_millis(300));
        cluster.nodes[victim].start();
    }
    // The leader's redis-server dies alone: its sidecar cannot apply the
    // log any more, stops, and the node is restarted from its disk.
    wait_progress(&cluster, "five", &mut seen, 44, 60);
    let l = cluster.wait_leader();
    let redis: u32 = std::fs::read_to_string(cluster.nodes[l].dir.join("redis-server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    procs::kill9(redis);
    let sidecar = cluster.nodes[l].child.as_mut().unwrap();
    procs::wait_for("the sidecar to stop", Duration::from_secs(30), || {
        sidecar.try_wait().unwrap().map(|_| ())
    });
    cluster.nodes[l].kill();
    cluster.nodes[l].start();
    finish_run(&cluster, run, &root, &out, "five", 60);
    cluster.assert_identical();
}

#[test]
fn a_minority_leader_cannot_commit_and_nothing_it_took_survives_the_heal() {
    let cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let old = &cluster.nodes[l];
    assert_eq!(old.cmd(&["HSET", "h", "before", "1"]), Reply::Int(1));
    let others: Vec<&Node> = cluster.nodes.iter().filter(|n| n.id != old.id).collect();
    // Cut the leader off from the other two, both ways.
    let mut cut = vec!["RAFT.PARTITION".to_owned()];
    cut.extend(others.iter().map(|n| n.id.to_string()));
    let cut: Vec<&str> = cut.iter().map(String::as_str).collect();
    assert_eq!(old.cmd(&cut), Reply::Status("OK".into()));
    for n in &others {
        assert_eq!(
            n.cmd(&["RAFT.PARTITION", &old.id.to_string()]),
            Reply::Status("OK".into())
        );
    }
    // The majority elects a leader of its own.
    let new = procs::wait_for("a majority leader", Duration::from_secs(30), || {
        others
            .iter()
            .find(|n| n.info().get("role").map(String::as_str) == Some("leader"))
            .copied()
    });
    // The old leader, which has not heard from a majority since, appends
    // no write (TRYAGAIN: known not applied), nor serves a read.
    match old.cmd(&["HSET", "h", "minority", "1"]) {
        Reply::Error(e) => assert!(e.starts_with("TRYAGAIN"), "{e}"),
        other => panic!("a leader without a quorum acknowledged a write: {other:?}"),
    }
    match old.cmd(&["HGET", "h", "before"]) {
        Reply::Error(e) => assert!(e.starts_with("TRYAGAIN"), "{e}"),
        other => panic!("a leader without a quorum served a read: {other:?}"),
    }
    assert_eq!(new.cmd(&["HSET", "h", "majority", "1"]), Reply::Int(1));
    // Heal.
    for n in &cluster.nodes {
        assert_eq!(n.cmd(&["RAFT.PARTITION"]), Reply::Status("OK".into()));
    }
    cluster.wait_leader();
    cluster.assert_identical();
    for n in &cluster.nodes {
        // Through every node (proxied to the leader, linearizable).
        let keys = procs::wait_for("a read", Duration::from_secs(30), || {
            match n.cmd(&["HKEYS", "h"]) {
                Reply::Array(Some(k)) => Some(k.iter().map(Reply::text).collect::<BTreeSet<_>>()),
                _ => None,
            }
        });
        assert_eq!(
            keys,
            ["before", "majority"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "the minority's uncommitted write must not survive"
        );
    }
}

#[test]
fn replicas_that_replay_one_log_at_different_times_end_identical() {
    // Worker kills make the job steal tasks (the lease path, where time
    // matters most); then every node is restarted and replays its log from
    // disk seconds later than it first applied it, one from an empty disk.
    let mut cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 20, 8_000, 14);
    let out = dir.path().join("counts.tsv");
    let o = output(
        wclab()
            .args([
                "run",
                "--workers",
                "2",
                "--threads",
                "1",
                "--lease",
                "300ms",
                "--job",
                "replay",
            ])
            .args([
                "--chaos-kills",
                "4",
                "--redis-cluster",
                &cluster.url(),
                "--json",
                "--input",
            ])
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .env("WCLAB_TEST_PAUSE", "while_counting:60"),
    );
    assert_status(&o, 0);
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    let leader = &cluster.nodes[cluster.wait_leader()];
    let stolen = leader.cmd(&["XRANGE", "wclab:{replay}:done", "-", "+"]);
    assert!(!stolen.array().is_empty());
    let before = cluster.converged_digests();
    assert!(before.iter().all(|d| d.2 == before[0].2), "{before:?}");
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        cluster.nodes[i].kill();
    }
    std::fs::remove_dir_all(&cluster.nodes[2].dir).unwrap();
    for i in 0..3 {
        cluster.nodes[i].start();
    }
    cluster.wait_leader();
    let after = cluster.converged_digests();
    assert!(after.iter().all(|d| d.2 == after[0].2), "{after:?}");
    assert_eq!(
        after[0].2, before[0].2,
        "replaying the log later changed the dataset"
    );
}

#[test]
fn a_new_node_joins_through_a_follower_and_the_status_shows_it() {
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let follower = cluster.nodes[(l + 1) % 3].addr();
    assert_eq!(
        cluster.nodes[l].cmd(&["HSET", "h", "before", "1"]),
        Reply::Int(1)
    );
    let taken: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let mut new = Node {
        id: 4,
        port: free_ports(1, &taken)[0],
        dir: cluster._dir.path().join("n4"),
        child: None,
        args: Vec::new(),
        admin_password: None,
    };
    new.start();
    let o = output(wclab().args([
        "raft",
        "join",
        "--cluster",
        &follower,
        "--id",
        "4",
        "--addr",
        &new.addr(),
    ]));
    assert_status(&o, 0);
    cluster.nodes.push(new);
    cluster.wait_leader();
    // `wclab raft status`, and the same through any Redis client.
    let o = output(wclab().args(["raft", "status", "--node", &cluster.nodes[3].addr()]));
    assert_status(&o, 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in [
        "node_id:4",
        "role:follower",
        "voters:1,2,3,4",
        "learners:\n",
        "applied_index:",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let info = cluster.nodes[3].cmd(&["INFO", "raft"]).text();
    assert!(
        info.contains("role:follower") && info.contains("commit_index:"),
        "{info}"
    );
    // The new node serves writes (through the leader) and holds the data.
    assert_eq!(
        cluster.nodes[3].cmd(&["HSET", "h", "after", "1"]),
        Reply::Int(1)
    );
    cluster.assert_identical();
    assert_eq!(cluster.converged_digests().len(), 4);
}

#[test]
fn with_a_password_clients_and_peers_must_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Child> = Vec::new();
    let ports = free_ports(3, &[]);
    for (i, port) in ports.iter().enumerate() {
        let child = wclab()
            .args([
                "raft",
                "node",
                "--id",
                &(i + 1).to_string(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--dir")
            .arg(dir.path().join(format!("n{i}")))
            .args(["--heartbeat", "100ms"])
            .env("WCLAB_RAFT_PASSWORD", "s3cret")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        nodes.push(child);
        let port = *port;
        procs::wait_for("the node to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
    }
    let members: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect();
    let init = |pw: &str| {
        output(
            wclab()
                .args([
                    "raft",
                    "init",
                    "--node",
                    &format!("127.0.0.1:{}", ports[0]),
                    "--member",
                    &members.join(","),
                ])
                .env("WCLAB_RAFT_PASSWORD", pw),
        )
    };
    assert_status(&init("wrong"), 2);
    assert_status(&init("s3cret"), 0);
    // A write through a follower: peers authenticate to each other.
    let write = |port: u16| {
        let mut c = Client::connect(port, "s3cret").unwrap();
        c.cmd(&["HSET", "h", "k", "v"])
    };
    procs::wait_for(
        "a committed write",
        Duration::from_secs(30),
        || match write(ports[2]) {
            Reply::Int(_) => Some(()),
            _ => None,
        },
    );
    match Client::connect(ports[1], "nope") {
        Err(e) => assert!(e.to_string().contains("WRONGPASS"), "{e}"),
        Ok(_) => panic!("a wrong password was accepted"),
    }
    let mut unauthenticated =
        std::io::BufReader::new(std::net::TcpStream::connect(("127.0.0.1", ports[1])).unwrap());
    std::io::Write::write_all(
        unauthenticated.get_mut(),
        b"*2\r\n$4\r\nHGET\r\n$1\r\nh\r\n",
    )
    .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut unauthenticated, &mut line).unwrap();
    assert!(line.starts_with("-NOAUTH"), "{line}");
    // Test switches are off on a node not started for tests: a client
    // (even an authenticated one) cannot cut a node off.
    let mut client = Client::connect(ports[1], "s3cret").unwrap();
    match client.cmd(&["RAFT.PARTITION", "1"]) {
        Reply::Error(e) => assert!(e.contains("test switch"), "{e}"),
        other => panic!("RAFT.PARTITION accepted: {other:?}"),
    }
    // Hostile bytes before any password: 800 KB of nested array headers
    // (once a stack overflow that killed the node), lengths past the
    // limits, a huge announced string, 1 GiB without a newline. Each gets
    // a protocol error and its connection closed; the node's memory stays
    // bounded and the cluster keeps committing.
    let rss_kb = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let pid = nodes[1].id();
    let before = rss_kb(pid);
    let garbage: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .collect();
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("nested headers", b"*3\r\n".repeat(200_000)),
        ("a huge array", b"*2147483647\r\n".to_vec()),
        ("a huge string", b"$99999999999\r\n".to_vec()),
        (
            "a string of the largest size, never sent",
            b"*1\r\n$536870912\r\nab".to_vec(),
        ),
        // Sent 1 MiB at a time, 1024 times, until the node hangs up.
        ("1 GiB without a newline", Vec::new()),
    ];
    for (what, bytes) in &attacks {
        let mut hostile = std::net::TcpStream::connect(("127.0.0.1", ports[1])).unwrap();
        hostile
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The node may hang up before all is sent: that is the point.
        if bytes.is_empty() {
            for _ in 0..1024 {
                if std::io::Write::write_all(&mut hostile, &garbage).is_err() {
                    break;
                }
            }
        }
        let _ = std::io::Write::write_all(&mut hostile, bytes);
        let _ = hostile.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&hostile), &mut reply);
        if !what.contains("never sent") {
            assert!(
                reply.starts_with("-ERR Protocol error"),
                "{what}: {reply:?}"
            );
        }
        assert!(
            matches!(write(ports[1]), Reply::Int(_)),
            "the node died after {what}"
        );
    }
    let after = rss_kb(pid);
    assert!(
        after < before + 64 * 1024,
        "the node grew from {before} kB to {after} kB"
    );
    for mut n in nodes {
        procs::kill9(n.id());
        let _ = n.wait();
    }
    // Their redis-servers, left behind by SIGKILL.
    for i in 0..3 {
        if let Ok(pid) = std::fs::read_to_string(dir.path().join(format!("n{i}/redis-server.pid")))
        {
            procs::kill9(pid.trim().parse().unwrap());
        }
    }
}

#[test]
fn replies_through_followers_reach_the_client_that_asked_and_reads_are_never_stale() {
    // Jepsen found RedisRaft's follower proxy answering the wrong client.
    // Here each client owns one key: after its SET of v<n> is acknowledged
    // its GET must answer exactly v<n> (never another client's value, never
    // an older one), through a follower, across a failover.
    let mut cluster = Cluster::start(3);
    let l = cluster.wait_leader();
    let followers: Vec<u16> = cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != l)
        .map(|(_, n)| n.port)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (stop, port) = (stop.clone(), followers[i % followers.len()]);
            std::thread::spawn(move || {
                let mut c = Client::connect(port, "").unwrap();
                let key = format!("client{i}");
                let (mut checked, mut last_acked) = (0u64, None::<u64>);
                for n in 0u64.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let value = format!("{key}-{n}");
                    match c.cmd(&["SET", &key, &value]) {
                        Reply::Status(s) if s == "OK" => last_acked = Some(n),
                        // Not applied, or maybe applied: either way no
                        // read may go below the last acknowledged write.
                        Reply::Error(e)
                            if e.starts_with("TRYAGAIN") || e.starts_with("UNKNOWN") => {}
                        other => panic!("{key}: SET answered {other:?}"),
                    }
                    match c.cmd(&["GET", &key]) {
                        Reply::Bulk(Some(v)) => {
                            let v = String::from_utf8(v).unwrap();
                            let m: u64 = v
                                .strip_prefix(&format!("{key}-"))
                                .unwrap_or_else(|| panic!("{key} got another client's value {v}"))
                                .parse()
                                .unwrap();
                            // Not older than the last acknowledged write; not
                            // newer than the last one sent.
                            assert!(
                                last_acked.is_none_or(|a| m >= a) && m <= n,
                                "{key}: read {m} after write {n} (acknowledged: {last_acked:?})"
                            );
                            checked += 1;
                        }
                        Reply::Bulk(None) => assert!(last_acked.is_none(), "{key}: lost"),
                        Reply::Error(e) if e.starts_with("TRYAGAIN") => {}
                        other => panic!("{key}: GET answered {other:?}"),
                    }
                }
                checked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    cluster.nodes[l].kill();
    cluster.wait_leader();
    std::thread::sleep(Duration::from_millis(800));
    cluster.nodes[l].start();
    cluster.wait_leader();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        assert!(c.join().expect("a client saw a wrong reply") > 0);
    }
    cluster.assert_identical();
}

/// A node given as a plain `--redis` URL looks like any Redis, but takes
/// no MULTI: a commit, big or small, is one FCALL with one tally, so
/// nothing is ever refused for being a transaction. Counts stay exact.
#[test]
fn one_node_given_as_a_plain_redis_takes_big_commits_without_multi() {
    let cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 24, 40_000, 5);
    let out = dir.path().join("counts.tsv");
    // A follower's address, even, so that the proxy path is taken too.
    let leader = cluster.wait_leader();
    let node = &cluster.nodes[(leader + 1) % 3];
    let o = wait_output(
        wclab()
            .args(["run", "--workers", "2", "--threads", "1", "-k", "0"])
            .arg("--redis")
            .arg(format!("redis://{}", node.addr()))
            .arg("--input")
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .env("RUST_LOG", "wclab_coord=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wclab run"),
        DEADLINE,
    );
    assert_status(&o, 0);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stderr.contains("WCLABNOMULTI") && !stderr.contains("EXECABORT"),
        "a transaction was sent: {stderr}"
    );
    oracle::assert_same(&read_output(&out), &oracle::count_tree(&root));
    cluster.assert_identical();
}

/// One process never counts as two members. A configuration that gives two
/// members one address (node 2's, once by IP and once by name) is refused:
/// the hello that asks a member for its incarnation names the member, and
/// node 2 will not answer for node 3. The old sidecar accepted it, and node
/// 2 then held two of the three votes: with node 1 cut off it alone was a
/// quorum and acknowledged writes no other process held.
#[test]
fn a_configuration_naming_one_process_twice_is_refused() {
    let c = Cluster::spawn(3, &[]);
    let alias = format!("3=localhost:{}", c.nodes[1].port);
    let (one, two) = (
        format!("1={}", c.nodes[0].addr()),
        format!("2={}", c.nodes[1].addr()),
    );
    match c.nodes[0].cmd(&["RAFT.INIT", &one, &two, &alias]) {
        Reply::Error(e) => assert!(e.contains("is node 2, not node 3"), "{e}"),
        other => panic!("a configuration naming node 2 twice was accepted: {other:?}"),
    }
    // Nothing was configured: a correct configuration is accepted after it.
    let three = format!("3={}", c.nodes[2].addr());
    assert_eq!(
        c.nodes[0].cmd(&["RAFT.INIT", &one, &two, &three]),
        Reply::Status("OK".into())
    );
    c.wait_leader();
    // Any RPC meant for another node is refused with its own code.
    let inc = c.nodes[1].info()["incarnation"].clone();
    match c.nodes[1].cmd(&["RAFT.RPC", "append", "1", "", &inc, "0", "3"]) {
        Reply::Error(e) => assert!(e.starts_with("WRONGNODE 2"), "{e}"),
        other => panic!("node 2 answered an RPC meant for node 3: {other:?}"),
    }
}

/// Copies every connection made to `from` to `to`, both ways, until the
/// test ends: a member's address that now reaches another member (a port
/// taken over, a name that moved).
fn forward_port(from: u16, to: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", from)).expect("bind the forwarder");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (mut r, mut w) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut r, &mut w);
                    let _ = w.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

/// A member whose address comes to reach another member is not counted as
/// that member: node 3 stops, its port now leads to node 2, and node 1 is
/// cut off. Node 2 alone must neither lead nor acknowledge anything (it is
/// one process of three). The old sidecar took node 2's answers on node 3's
/// address for a node 3 that lost its directory and took "it" back with
/// node 2's incarnation; once node 1 was cut off, node 2 counted its own
/// vote twice, became leader alone, and its Raft core then panicked on an
/// append it had sent to itself (node 2 stopped, exit 73).
#[test]
fn a_member_whose_address_reaches_another_member_is_not_counted() {
    let mut c = Cluster::start(3);
    assert_eq!(c.nodes[0].cmd(&["HSET", "h", "before", "1"]), Reply::Int(1));
    c.nodes[2].kill();
    forward_port(c.nodes[2].port, c.nodes[1].port);
    // Time for a leader to take node 3 back, were it fooled.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        c.nodes[0].cmd(&["RAFT.PARTITION", "2", "3"]),
        Reply::Status("OK".into())
    );
    assert_eq!(
        c.nodes[1].cmd(&["RAFT.PARTITION", "1"]),
        Reply::Status("OK".into())
    );
    for i in 0..3 {
        let field = format!("alone{i}");
        match c.nodes[1].cmd(&["HSET", "h", &field, "1"]) {
            Reply::Error(e) => assert!(
                e.starts_with("TRYAGAIN") || e.starts_with("UNKNOWN"),
                "node 2 alone: {e}"
            ),
            other => panic!("node 2 alone acknowledged a write: {other:?}"),
        }
    }
    let info = c.nodes[1].info();
    assert_ne!(
        info.get("role").map(String::as_str),
        Some("leader"),
        "node 2 alone leads: {info:?}"
    );
}

/// A leader killed and restarted at once comes back as a follower, and a
/// read through it is not behind what was acknowledged. openraft restarts
/// a node whose stored vote is its own won election as the leader of that
/// term, with the commit index read back from `committed.bin`, a file
/// rewritten without atomicity: a kill -9 in the middle leaves it empty
/// (here emptied by hand), and the old sidecar then confirmed its
/// leadership with followers still in that term and answered reads from
/// its snapshot (the five-node test once read 17 committed tasks after 22).
#[test]
fn a_leader_restarted_at_once_does_not_serve_reads_from_its_snapshot() {
    // Followers that wait 5 s before campaigning: the restarted node finds
    // them still in its term.
    let mut c = Cluster::start_with(3, &["--election-timeout", "5s"]);
    let l = c.wait_leader();
    let term = c.nodes[l].info()["term"].clone();
    let mut last = 0;
    // Past a snapshot (every 20 entries), so that the snapshot is behind.
    for _ in 0..30 {
        last = c.nodes[l].cmd(&["INCR", "x"]).int();
    }
    c.nodes[l].kill();
    std::fs::write(c.nodes[l].dir.join("raft").join("committed.bin"), b"").unwrap();
    c.nodes[l].start();
    let info = c.nodes[l].info();
    assert!(
        info["role"] != "leader" || info["term"] != term,
        "the restarted node resumed its leadership of term {term}: {info:?}"
    );
    let read = procs::wait_for("a read", Duration::from_secs(30), || {
        match c.nodes[l].client()?.cmd(&["GET", "x"]) {
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).parse::<i64>().unwrap()),
            _ => None,
        }
    });
    assert_eq!(
        read, last,
        "a read after the restart is behind the last acknowledged write"
    );
}

/// Cuts `id` off from every other node of `c`, both ways.
fn isolate(c: &Cluster, id: u64) {
    for n in &c.nodes {
        let args: Vec<String> = if n.id == id {
            let mut a = vec!["RAFT.PARTITION".to_owned()];
            a.extend(
                c.nodes
                    .iter()
                    .filter(|o| o.id != id)
                    .map(|o| o.id.to_string()),
            );
            a
        } else {
            vec!["RAFT.PARTITION".to_owned(), id.to_string()]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(n.cmd(&args), Reply::Status("OK".into()));
    }
}

fn heal(c: &Cluster) {
    for n in &c.nodes {
        assert_eq!(n.cmd(&["RAFT.PARTITION"]), Reply::Status("OK".into()));
    }
}

#[test]
fn a_leader_whose_batches_in_flight_a_snapshot_overtook_writes_again_when_it_leads_again() {
    // The leader's proposer keeps two entries in flight; openraft answers
    // the writes of an entry when it is applied, or when a new leader's
    // log truncates it. An entry of a deposed leader that the new leader's
    // snapshot overtook (purged, never truncated) is answered never: the
    // old proposer held its two slots for good, and every write of that
    // node, once it led again, timed out as UNKNOWN.
    let c = Cluster::start(3);
    let old = c.nodes[c.wait_leader()].id;
    let port = c.nodes.iter().find(|n| n.id == old).unwrap().port;
    let stop = Arc::new(AtomicBool::new(false));
    // Clients keep the leader's two slots busy while it is cut off.
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut client) = Client::connect(port, "") else {
                    return;
                };
                let key = format!("w{w}");
                while !stop.load(Ordering::SeqCst) {
                    client.cmd(&["INCR", &key]);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    isolate(&c, old);
    // The others elect a leader and go far past the old leader's log, so
    // that it can only catch up from a snapshot.
    let others: Vec<&Node> = c.nodes.iter().filter(|n| n.id != old).collect();
    let new = procs::wait_for("a majority leader", Duration::from_secs(30), || {
        others
            .iter()
            .find(|n| n.info().get("role").map(String::as_str) == Some("leader"))
            .copied()
    });
    for _ in 0..100 {
        assert!(matches!(new.cmd(&["INCR", "majority"]), Reply::Int(_)));
    }
    assert_eq!(new.cmd(&["RAFT.SNAPSHOT"]), Reply::Status("OK".into()));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    heal(&c);
    c.assert_identical();
    let old_node = c.nodes.iter().find(|n| n.id == old).unwrap();
    assert!(
        old_node.info()["snapshots_installed"] != "0",
        "the old leader caught up without a snapshot: {:?}",
        old_node.info()
    );
    // Make the old leader lead again: cut off whichever other node leads.
    procs::wait_for(
        "the old leader to lead again",
        Duration::from_secs(120),
        || {
            let l = c.nodes[c.wait_leader()].id;
            if l == old {
                return Some(());
            }
            isolate(&c, l);
            procs::wait_for("a leader among the others", Duration::from_secs(30), || {
                c.nodes
                    .iter()
                    .filter(|n| n.id != l)
                    .find(|n| n.info().get("role").map(String::as_str) == Some("leader"))
                    .map(|_| ())
            });
            heal(&c);
            None
        },
    );
    for i in 1..=5 {
        assert_eq!(
            old_node.cmd(&["INCR", "again"]),
            Reply::Int(i),
            "a write to the old leader, leading again"
        );
    }
}
