//! The failover benchmark (`wclab raft failover-bench`): how long a client
//! writing to the cluster goes without an acknowledgement when the leader
//! is killed, and how stable leadership is under load without faults.
//!
//! It starts a local cluster of real `wclab raft node` processes (the
//! binary given), optionally a word-count job in a loop against it and CPU
//! hogs, and a writer: wclab's own client ([`wclab_coord::Store`], with its
//! endpoint rotation and retries) sending `INCR` one after another. Each
//! round kills the leader (SIGKILL of its sidecar and its redis-server) at
//! a random moment and measures, as the writer sees it, the time from the
//! kill to the acknowledgement of the first write *sent after the kill*;
//! then restarts the killed node from its directory. Figures, not checks:
//! tests pin the behaviour, this prints the distribution.

use crate::fatal::kill9;
use crate::resp::{Conn, Frame};
use rand::Rng;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wclab_coord::{RedisTarget, RetryPolicy, Store};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Processes, files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The writer's client.
    #[error(transparent)]
    Coord(#[from] wclab_coord::CoordError),
    /// The cluster did not behave.
    #[error("{0}")]
    Failed(String),
}

type Result<T> = std::result::Result<T, BenchError>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(BenchError::Failed(format!($($t)*))) };
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The `wclab` binary that runs the nodes (and the job).
    pub exe: PathBuf,
    /// A directory for the nodes' data and logs (emptied first).
    pub dir: PathBuf,
    /// Nodes in the cluster (2f+1).
    pub nodes: usize,
    /// Leader kills.
    pub kills: usize,
    /// Run a word-count job in a loop against the cluster meanwhile.
    pub job: bool,
    /// Also keep every core busy with a spinning process.
    pub hog: bool,
    /// Before the kills, watch the terms for this long without faults.
    pub quiet: Duration,
    /// Extra arguments for every `wclab raft node` (timers).
    pub node_args: Vec<String>,
}

/// One node process of the local cluster.
struct LocalNode {
    id: u64,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A cluster of `wclab raft node` processes on loopback.
pub struct LocalCluster {
    exe: PathBuf,
    node_args: Vec<String>,
    nodes: Vec<LocalNode>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn ask(addr: &str, args: &[&str]) -> Option<Frame> {
    let call = async {
        let mut c = Conn::connect(addr, None).await.ok()?;
        c.call(args).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .ok()
        .flatten()
}

impl LocalCluster {
    /// Starts `n` nodes in `dir` and forms the cluster.
    pub async fn start(exe: &Path, dir: &Path, n: usize, node_args: &[String]) -> Result<Self> {
        let mut c = LocalCluster {
            exe: exe.to_owned(),
            node_args: node_args.to_vec(),
            nodes: Vec::new(),
        };
        for id in 1..=n as u64 {
            c.nodes.push(LocalNode {
                id,
                port: free_port()?,
                dir: dir.join(format!("n{id}")),
                child: None,
            });
        }
        for i in 0..n {
            c.start_node(i).await?;
        }
        let members: Vec<String> = c
            .nodes
            .iter()
            .map(|n| format!("{}=127.0.0.1:{}", n.id, n.port))
            .collect();
        let mut init = vec!["RAFT.INIT"];
        init.extend(members.iter().map(String::as_str));
        match ask(&c.addr(0), &init).await {
            Some(Frame::Simple(_)) => {}
            other => bail!("RAFT.INIT answered {other:?}"),
        }
        c.wait_leader(None).await?;
        Ok(c)
    }

    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// `host:port,host:port,...`
    pub fn addrs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.addr(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `i` (from its directory, if it has one).
    pub async fn start_node(&mut self, i: usize) -> Result<()> {
        let addr = self.addr(i);
        let n = &mut self.nodes[i];
        std::fs::create_dir_all(&n.dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.with_extension("log"))?;
        let child = Command::new(&self.exe)
            .args(["raft", "node", "--id", &n.id.to_string(), "--listen", &addr])
            .arg("--dir")
            .arg(&n.dir)
            .args(&self.node_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| BenchError::Failed(format!("cannot run {}: {e}", self.exe.display())))?;
        n.child = Some(child);
        for _ in 0..600 {
            if ask(&addr, &["PING"]).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "node {} did not start; see {}",
            i + 1,
            n.dir.with_extension("log").display()
        )
    }

    /// SIGKILL of node `i`'s sidecar and of its redis-server.
    pub fn kill(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(mut c) = n.child.take() {
            let _ = kill9(c.id() as i32);
            let _ = c.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(n.dir.join("redis-server.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = kill9(pid);
            }
        }
    }

    /// `RAFT.INFO` of node `i`, as a map.
    pub async fn info(&self, i: usize) -> HashMap<String, String> {
        if self.nodes[i].child.is_none() {
            return HashMap::new();
        }
        match ask(&self.addr(i), &["RAFT.INFO"]).await {
            Some(Frame::Bulk(Some(b))) => String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// The index of the node that leads (other than `not`), once one does.
    pub async fn wait_leader(&self, not: Option<usize>) -> Result<usize> {
        for _ in 0..3000 {
            for i in 0..self.nodes.len() {
                if Some(i) != not
                    && self.info(i).await.get("role").map(String::as_str) == Some("leader")
                {
                    return Ok(i);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("no leader elected within 30 s")
    }

    /// The term of every live node.
    pub async fn terms(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for i in 0..self.nodes.len() {
            if let Some(t) = self.info(i).await.get("term").and_then(|t| t.parse().ok()) {
                out.push(t);
            }
        }
        out
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Processes killed when dropped (job loop, hogs), each with its process
/// group (the job loop's `wclab run` and its workers).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let pgid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

/// The writer's record: (sent, acknowledged) of every acknowledged write.
type Acks = Arc<Mutex<Vec<(Instant, Instant)>>>;

async fn writer(
    url: String,
    acks: Acks,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let mut store = Store::connect(RedisTarget::parse(&url)?, RetryPolicy::FOREVER).await?;
    let incr = redis::cmd("INCR").arg("failover:writes").clone();
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        match store.call::<i64>("failover write", &incr).await {
            Ok(_) => acks.lock().unwrap().push((sent, Instant::now())),
            Err(e) => {
                failed.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(error = %e, "failover write failed");
            }
        }
    }
    Ok(())
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Whether a job ran meanwhile, and hogs.
    pub job: bool,
    /// Whether CPU hogs ran meanwhile.
    pub hog: bool,
    /// Kill → first acknowledged write sent after it, per kill (ms).
    pub unavailable_ms: Vec<f64>,
    /// Term changes per kill (1 is one election).
    pub terms_per_kill: Vec<u64>,
    /// The fault-free watch: its length (s) and the term changes seen.
    pub quiet_s: f64,
    /// Term changes during the fault-free watch.
    pub quiet_term_changes: u64,
    /// Word-count jobs that finished (exit 0) meanwhile.
    pub jobs_finished: usize,
    /// Writes acknowledged in all.
    pub writes: usize,
    /// Writes that failed (the client gave up on them).
    pub failed: u64,
}

impl Report {
    /// The `p`-th percentile (nearest rank) of the unavailability.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut v = self.unavailable_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1]
    }
}

/// Runs the benchmark.
pub async fn run(b: &Bench) -> Result<Report> {
    let _ = std::fs::remove_dir_all(&b.dir);
    std::fs::create_dir_all(&b.dir)?;
    let mut cluster = LocalCluster::start(&b.exe, &b.dir, b.nodes, &b.node_args).await?;
    let url = format!("redis://{}", cluster.addrs());
    let mut background = Children(Vec::new());
    let stop = Arc::new(AtomicBool::new(false));
    if b.job {
        let corpus = b.dir.join("corpus");
        let gen = Command::new(&b.exe)
            .args([
                "gen", "text", "--files", "200", "--size", "64KiB", "--seed", "7", "--out",
            ])
            .arg(&corpus)
            .stderr(Stdio::null())
            .status()?;
        if !gen.success() {
            bail!("wclab gen text failed");
        }
        // A shell loop of jobs, killed with the rest.
        let script = format!(
            "i=0; while :; do i=$((i+1)); '{}' run --input '{}' --workers 2 --threads 1 --redis-cluster '{}' --job failover-$i -k 0 > /dev/null 2>> '{}' && echo $i >> '{}'; done",
            b.exe.display(),
            corpus.display(),
            cluster.addrs(),
            b.dir.join("jobs.log").display(),
            b.dir.join("jobs.done").display(),
        );
        background.0.push(
            Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()?,
        );
    }
    if b.hog {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..cores {
            background.0.push(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .process_group(0)
                    .spawn()?,
            );
        }
    }
    let acks: Acks = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let w = tokio::spawn(writer(url, acks.clone(), failed.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = cluster.terms().await;
    tokio::time::sleep(b.quiet).await;
    let after = cluster.terms().await;
    let quiet_term_changes = after.iter().max().unwrap_or(&0) - before.iter().max().unwrap_or(&0);

    let mut unavailable_ms = Vec::new();
    let mut terms_per_kill = Vec::new();
    for k in 0..b.kills {
        let wait = rand::rng().random_range(1000..2000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let l = cluster.wait_leader(None).await?;
        let term_before = *cluster.terms().await.iter().max().unwrap_or(&0);
        let killed_at = Instant::now();
        cluster.kill(l);
        tracing::info!(node = l + 1, "killed the leader");
        let acked = loop {
            let first = acks
                .lock()
                .unwrap()
                .iter()
                .rev()
                .take_while(|(sent, _)| *sent >= killed_at)
                .last()
                .map(|a| a.1);
            if let Some(t) = first {
                break t;
            }
            if killed_at.elapsed() > Duration::from_secs(60) {
                bail!("no write acknowledged within 60 s of kill {}", k + 1);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let ms = acked.duration_since(killed_at).as_secs_f64() * 1000.0;
        let new = cluster.wait_leader(Some(l)).await?;
        let term_after = *cluster.terms().await.iter().max().unwrap_or(&0);
        eprintln!(
            "kill {}: node {} killed, node {} leads; first write acknowledged after {ms:.0} ms; term {term_before} -> {term_after}",
            k + 1,
            l + 1,
            new + 1
        );
        unavailable_ms.push(ms);
        terms_per_kill.push(term_after - term_before);
        cluster.start_node(l).await?;
    }
    stop.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    let writes = acks.lock().unwrap().len();
    drop(background);
    let jobs_finished = std::fs::read_to_string(b.dir.join("jobs.done"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    drop(cluster);
    Ok(Report {
        nodes: b.nodes,
        job: b.job,
        hog: b.hog,
        unavailable_ms,
        terms_per_kill,
        quiet_s: b.quiet.as_secs_f64(),
        quiet_term_changes,
        jobs_finished,
        writes,
        failed: failed.load(Ordering::SeqCst),
    })
}
