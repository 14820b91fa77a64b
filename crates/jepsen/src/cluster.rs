//! A cluster of real `wclab raft node` processes on loopback ports, and
//! the blows the nemesis deals them: SIGKILL (sidecar and its
//! redis-server, or the redis-server alone), SIGSTOP/SIGCONT, a wiped
//! directory, a new member joining. Everything goes through the real
//! binary and its real commands (`wclab raft node/init/join`,
//! `RAFT.INFO`, `RAFT.DIGEST`); nothing is simulated.
//!
//! Queries to nodes have short timeouts: a node that is stopped (SIGSTOP)
//! still accepts connections but never answers, and the nemesis must not
//! hang on it.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `wclab` binary.
    pub wclab: PathBuf,
    /// Voting members at the start.
    pub nodes: usize,
    /// Extra nodes that may join later (membership changes).
    pub spares: usize,
    /// Where each node's directory and log go.
    pub dir: PathBuf,
    /// `--heartbeat` of every node (the binary's default if `None`).
    pub heartbeat: Option<String>,
    /// `--snapshot-every` of every node.
    pub snapshot_every: Option<u64>,
}

/// One node: its process, port and directory.
#[derive(Debug)]
pub struct Node {
    /// Raft node ID.
    pub id: u64,
    /// The sidecar's port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its stdout and stderr, across restarts.
    pub log: PathBuf,
    /// Is it a member (started with the cluster, or joined)?
    pub member: bool,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Is its sidecar process running (possibly stopped)?
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Is it stopped with SIGSTOP?
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The PID of the sidecar.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The PID of its redis-server, from the file the sidecar writes.
    pub fn redis_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("redis-server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// A node's process that ended without the nemesis killing it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    /// The node.
    pub node: u64,
    /// Its exit status, as text.
    pub status: String,
}

/// The cluster. Dropping it kills every process it started.
pub struct Cluster {
    opts: ClusterOptions,
    nodes: Vec<Node>,
    exits: Vec<Exit>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// Runs a short command of the real binary, killed after `limit`.
fn run_cli(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run wclab")?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !status.success() {
                bail!("{status}: {}", text.trim());
            }
            return Ok(text);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Cluster {
    /// Starts `opts.nodes` nodes, makes them one cluster with `wclab raft
    /// init`, and waits for a leader.
    pub fn start(opts: ClusterOptions) -> Result<Cluster> {
        std::fs::create_dir_all(&opts.dir)?;
        let mut nodes = Vec::new();
        for id in 1..=(opts.nodes + opts.spares) as u64 {
            nodes.push(Node {
                id,
                port: free_port()?,
                dir: opts.dir.join(format!("n{id}")),
                log: opts.dir.join(format!("node-{id}.log")),
                member: id as usize <= opts.nodes,
                child: None,
                paused: false,
            });
        }
        let mut c = Cluster {
            opts,
            nodes,
            exits: Vec::new(),
        };
        for id in c.member_ids() {
            c.start_node(id)?;
        }
        let members: Vec<String> = c
            .nodes
            .iter()
            .filter(|n| n.member)
            .map(|n| format!("{}={}", n.id, n.addr()))
            .collect();
        let first = c.nodes[0].addr();
        run_cli(
            Command::new(&c.opts.wclab).args([
                "raft",
                "init",
                "--node",
                &first,
                "--member",
                &members.join(","),
            ]),
            Duration::from_secs(30),
        )
        .context("wclab raft init")?;
        if c.wait_leader(Duration::from_secs(30)).is_none() {
            bail!("no leader elected within 30 s of wclab raft init");
        }
        Ok(c)
    }

    /// The node `id`.
    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// IDs of the members (started with the cluster or joined).
    pub fn member_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.member)
            .map(|n| n.id)
            .collect()
    }

    /// Addresses of the nodes clients use: the first members.
    pub fn client_endpoints(&self) -> Vec<(u64, String)> {
        self.nodes
            .iter()
            .filter(|n| n.member)
            .map(|n| (n.id, n.addr()))
            .collect()
    }

    /// A spare node not yet a member, if any.
    pub fn spare(&self) -> Option<u64> {
        self.nodes.iter().find(|n| !n.member).map(|n| n.id)
    }

    /// Starts node `id` from its directory (empty if wiped) and waits
    /// until it listens.
    pub fn start_node(&mut self, id: u64) -> Result<()> {
        let wclab = self.opts.wclab.clone();
        let (heartbeat, snapshot) = (self.opts.heartbeat.clone(), self.opts.snapshot_every);
        let n = self.node_mut(id);
        if n.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)?;
        let mut cmd = Command::new(&wclab);
        cmd.args([
            "raft",
            "node",
            "--id",
            &id.to_string(),
            "--listen",
            &n.addr(),
        ])
        .arg("--dir")
        .arg(&n.dir);
        if let Some(h) = heartbeat {
            cmd.args(["--heartbeat", &h]);
        }
        if let Some(s) = snapshot {
            cmd.args(["--snapshot-every", &s.to_string()]);
        }
        let child = cmd
            .env_remove("WCLAB_RAFT_PASSWORD")
            // RAFT.PARTITION, the harness's partitions, is a test switch.
            .env("WCLAB_RAFT_TEST_FAULTS", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", wclab.display()))?;
        n.child = Some(child);
        n.paused = false;
        let (port, log) = (n.port, n.log.clone());
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .node_mut(id)
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.node_mut(id).child = None;
                bail!(
                    "node {id} exited at start ({status}); see {}",
                    log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "node {id} did not listen within 30 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL of node `id`'s sidecar and of its redis-server: a crash.
    pub fn kill(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(mut c) = n.child.take() {
            signal(c.id(), Signal::SIGKILL);
            let _ = c.wait();
        }
        n.paused = false;
        if let Some(pid) = n.redis_pid() {
            if is_redis(pid) {
                signal(pid, Signal::SIGKILL);
            }
        }
    }

    /// SIGKILL of node `id`'s redis-server alone; returns its PID.
    pub fn kill_redis(&mut self, id: u64) -> Option<u32> {
        let pid = self.node(id).redis_pid().filter(|&p| is_redis(p))?;
        signal(pid, Signal::SIGKILL);
        Some(pid)
    }

    /// SIGSTOP of node `id`'s sidecar.
    pub fn pause(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(pid) = n.pid() {
            signal(pid, Signal::SIGSTOP);
            n.paused = true;
        }
    }

    /// SIGCONT of node `id`'s sidecar.
    pub fn resume(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(pid) = n.pid() {
            signal(pid, Signal::SIGCONT);
        }
        n.paused = false;
    }

    /// Deletes node `id`'s directory (the node must be down): it lost its disk.
    pub fn wipe(&mut self, id: u64) -> Result<()> {
        let n = self.node(id);
        assert!(!n.is_running(), "wipe a node only while it is down");
        match std::fs::remove_dir_all(&n.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Makes spare node `id` a member: starts it, then `wclab raft join`
    /// through node `via`.
    pub fn join(&mut self, id: u64, via: u64) -> Result<()> {
        self.start_node(id)?;
        let addr = self.node(id).addr();
        let cluster = self.node(via).addr();
        run_cli(
            Command::new(&self.opts.wclab)
                .args([
                    "raft",
                    "join",
                    "--cluster",
                    &cluster,
                    "--id",
                    &id.to_string(),
                    "--addr",
                    &addr,
                ])
                .env_remove("WCLAB_RAFT_PASSWORD"),
            Duration::from_secs(60),
        )
        .with_context(|| format!("wclab raft join of node {id} through node {via}"))?;
        self.node_mut(id).member = true;
        Ok(())
    }

    /// Notes nodes whose process ended without the nemesis killing it
    /// (a node that stops itself, as it must when it cannot trust its
    /// state), and forgets their process.
    pub fn reap(&mut self) -> Vec<Exit> {
        let mut found = Vec::new();
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    n.child = None;
                    n.paused = false;
                    found.push(Exit {
                        node: n.id,
                        status: status.to_string(),
                    });
                }
            }
        }
        self.exits.extend(found.iter().cloned());
        found
    }

    /// Every unprompted exit seen so far.
    pub fn exits(&self) -> &[Exit] {
        &self.exits
    }

    /// Resumes stopped members and restarts the ones that are down.
    pub fn ensure_up(&mut self) -> Result<()> {
        self.reap();
        for id in self.member_ids() {
            if self.node(id).paused {
                self.resume(id);
            }
            if !self.node(id).is_running() {
                self.start_node(id)?;
            }
        }
        Ok(())
    }

    /// Sends one command to node `id` (2 s timeouts).
    pub fn query(&self, id: u64, args: &[&str]) -> Result<redis::Value> {
        let n = self.node(id);
        if !n.is_running() || n.paused {
            bail!("node {id} is down or stopped");
        }
        query(&n.addr(), args, Duration::from_secs(2))
    }

    /// Node `id`'s `RAFT.INFO` as a map.
    pub fn info(&self, id: u64) -> Option<HashMap<String, String>> {
        match self.query(id, &["RAFT.INFO"]).ok()? {
            redis::Value::BulkString(b) => Some(
                String::from_utf8_lossy(&b)
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The member that says it leads with the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.member_ids()
            .into_iter()
            .filter_map(|id| {
                let i = self.info(id)?;
                let term: u64 = i.get("term")?.parse().ok()?;
                (i.get("role").map(String::as_str) == Some("leader")).then_some((term, id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Waits up to `limit` for a leader that every reachable member follows.
    pub fn wait_leader(&self, limit: Duration) -> Option<u64> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(l) = self.leader() {
                let agree = self
                    .member_ids()
                    .into_iter()
                    .filter_map(|id| self.info(id))
                    .all(|i| i.get("leader_id") == Some(&l.to_string()));
                if agree {
                    return Some(l);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `(node, applied index, digest)` of every reachable member.
    pub fn digests(&self) -> Vec<(u64, i64, String)> {
        self.member_ids()
            .into_iter()
            .filter_map(|id| match self.query(id, &["RAFT.DIGEST"]).ok()? {
                redis::Value::Array(a) if a.len() >= 2 => {
                    let applied = match &a[0] {
                        redis::Value::Int(i) => *i,
                        _ => return None,
                    };
                    let digest = match &a[1] {
                        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => return None,
                    };
                    Some((id, applied, digest))
                }
                _ => None,
            })
            .collect()
    }

    /// Lines of the nodes' logs that report a panic.
    pub fn panics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if let Ok(text) = std::fs::read_to_string(&n.log) {
                for l in text.lines().filter(|l| l.contains("panicked at")) {
                    out.push(format!("node {}: {}", n.id, l.trim()));
                }
            }
        }
        out
    }

    /// Kills every process of the cluster.
    pub fn stop(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.kill(id);
        }
    }

    /// The directory of the cluster's nodes.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Is `pid` a redis-server (and not a PID reused by something else)?
fn is_redis(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.starts_with("redis-server") || c.starts_with("redis-check"))
        .unwrap_or(false)
}

/// One command to `addr`, with connect, read and write timeouts.
pub fn query(addr: &str, args: &[&str], timeout: Duration) -> Result<redis::Value> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query::<redis::Value>(&mut con)?)
}
