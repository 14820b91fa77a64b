//! `wclab raft ...`: lab 4b's node, cluster administration and commit benchmark.

use super::Outcome;
use crate::cli::{RaftCommand, RaftNodeArgs};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};
use wclab_coord::claim::{Claim, ClaimRules};
use wclab_coord::commit::{CommitOutcome, Committed};
use wclab_coord::submit::TaskSpec;
use wclab_coord::{claim, commit, job, JobKeys};
use wclab_raft::resp::{Auth, Conn, Dial, Frame};

pub async fn raft(what: RaftCommand) -> Result<Outcome> {
    match what {
        RaftCommand::Node(args) => node(args).await,
        RaftCommand::Init { node, member } => {
            let mut args = vec!["RAFT.INIT".to_owned()];
            args.extend(member);
            expect_ok(&node, &args).await
        }
        RaftCommand::Join { cluster, id, addr } => {
            expect_ok(&cluster, &["RAFT.JOIN".to_owned(), id.to_string(), addr]).await
        }
        RaftCommand::Remove { cluster, id } => {
            expect_ok(&cluster, &["RAFT.REMOVE".to_owned(), id.to_string()]).await
        }
        RaftCommand::FailoverBench {
            nodes,
            kills,
            job,
            hog,
            quiet,
            dir,
            heartbeat,
            election_timeout,
            json,
            node_binary,
        } => {
            let mut node_args = vec![
                "--heartbeat".to_owned(),
                humantime::format_duration(heartbeat).to_string(),
            ];
            if let Some(t) = election_timeout {
                node_args.push("--election-timeout".into());
                node_args.push(humantime::format_duration(t).to_string());
            }
            let bench = wclab_raft::failover::Bench {
                exe: match node_binary {
                    Some(b) => b,
                    None => std::env::current_exe().context("cannot find the wclab binary")?,
                },
                dir,
                nodes,
                kills,
                job,
                hog,
                quiet,
                node_args,
            };
            let report = wclab_raft::failover::run(&bench).await?;
            print_failover(&report, json)?;
            Ok(Outcome::Success)
        }
        RaftCommand::Status { node } => {
            for n in node {
                match call(&n, &["RAFT.INFO"]).await {
                    Ok(Frame::Bulk(Some(text))) => {
                        print!("{}", String::from_utf8_lossy(&text).replace('\r', ""))
                    }
                    Ok(other) => println!("# {n}: unexpected reply {other:?}"),
                    Err(e) => println!("# Raft\nnode:{n}\nrole:unreachable ({e:#})"),
                }
                println!();
            }
            Ok(Outcome::Success)
        }
        RaftCommand::BenchCommit {
            redis,
            commits,
            words,
            wait_replicas,
            breakdown,
            clients,
            tls,
        } => {
            let bench = BenchCommit {
                redis,
                commits,
                words,
                wait_replicas,
                breakdown,
                clients,
                tls,
            };
            bench_commit(&bench).await
        }
    }
}

async fn node(args: RaftNodeArgs) -> Result<Outcome> {
    if args.id == 0 {
        bail!("--id must be a positive integer");
    }
    let mut cfg = wclab_raft::NodeConfig::new(args.id, &args.listen, args.dir);
    cfg.password = password();
    cfg.admin_password = admin_password();
    cfg.heartbeat = args.heartbeat;
    cfg.election_timeout = args
        .election_timeout
        .unwrap_or(args.heartbeat * wclab_raft::node::LEASE_HEARTBEATS);
    cfg.snapshot_every = args.snapshot_every.max(10);
    cfg.tls = match (args.tls_cert, args.tls_key, args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(wclab_raft::tls::TlsPaths { cert, key, ca }),
        _ => None,
    };
    wclab_raft::run(cfg).await?;
    Ok(Outcome::Success)
}

/// The cluster's password (clients' and peers' AUTH), from the environment.
fn password() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

/// Environment variable holding the cluster's password, if it has one.
pub(crate) const PASSWORD_ENV: &str = "WCLAB_RAFT_PASSWORD";

/// The administrator's password (`AUTH admin`), from the environment: on a
/// node, what administration needs; for `init`/`join`/`remove`, what they
/// authenticate with.
fn admin_password() -> Option<String> {
    std::env::var(ADMIN_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
}

/// Environment variable holding the administrator's password.
pub(crate) const ADMIN_PASSWORD_ENV: &str = "WCLAB_RAFT_ADMIN_PASSWORD";

/// What the CLI authenticates with: as the administrator when its password
/// is set (administration needs it), else with the cluster's password.
fn auth() -> Option<Auth> {
    match (admin_password(), password()) {
        (Some(admin), _) => Some(Auth::admin(&admin)),
        (None, Some(pw)) => Some(Auth::password(&pw)),
        (None, None) => None,
    }
}

/// How the administration commands reach a node: in TLS, trusting the CA
/// of WCLAB_TLS_CA, when it is set.
fn dial() -> Result<Dial> {
    match std::env::var_os(crate::TLS_CA_ENV).filter(|v| !v.is_empty()) {
        None => Ok(Dial::Plain),
        Some(ca) => Ok(Dial::Client(wclab_raft::tls::client_connector(
            std::path::Path::new(&ca),
            None,
        )?)),
    }
}

async fn call<A: AsRef<[u8]>>(node: &str, args: &[A]) -> Result<Frame> {
    let auth = auth();
    let dial = dial()?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        Conn::dial(node, &dial, 0, auth.as_ref()),
    )
    .await
    .with_context(|| format!("{node} did not accept a connection in time"))?
    .with_context(|| {
        format!("cannot connect to the raft node at {node} (is `wclab raft node` running there?)")
    })?;
    let reply = tokio::time::timeout(Duration::from_secs(60), conn.call(args))
        .await
        .with_context(|| format!("{node} did not answer in time"))?
        .with_context(|| match dial {
            // A node in TLS answers a plain-text request with a TLS alert.
            Dial::Plain => format!(
                "{node} gave no RESP reply (if it speaks TLS, set {} to the cluster's CA)",
                crate::TLS_CA_ENV
            ),
            _ => format!("{node} gave no reply"),
        })?;
    Ok(reply)
}

async fn expect_ok(node: &str, args: &[String]) -> Result<Outcome> {
    match call(node, args).await? {
        Frame::Error(e) => bail!("{node}: {e}"),
        _ => {
            println!("OK");
            Ok(Outcome::Success)
        }
    }
}

/// The URL of a Raft cluster given as `host:port,host:port` (with the
/// password of WCLAB_RAFT_PASSWORD, if set), or a URL as is.
pub(crate) fn cluster_url(nodes: &str) -> String {
    match password() {
        _ if nodes.starts_with("redis://") => nodes.to_owned(),
        Some(pw) => format!("redis://:{pw}@{nodes}"),
        None => format!("redis://{nodes}"),
    }
}

/// Claims and commits `n` tasks of `keys`, one after the other; the
/// latency of each commit (with `WAIT wait` after it if `wait` > 0), ms.
async fn commits(
    store: &mut wclab_coord::Store,
    keys: &JobKeys,
    vocab: &[Vec<u8>],
    n: usize,
    wait_replicas: u32,
) -> Result<Vec<f64>> {
    let rules = ClaimRules {
        lease: Duration::from_secs(60),
        max_deliveries: 5,
    };
    let mut wait = redis::cmd("WAIT");
    wait.arg(wait_replicas).arg(5000);
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let task = match claim::claim(store, keys, "bench", rules).await? {
            Claim::Task(t) => t,
            other => bail!("unexpected claim {other:?}"),
        };
        let started = Instant::now();
        let outcome = commit::commit(
            store,
            keys,
            "bench",
            &[Committed {
                id: &task.id,
                bytes: 1,
            }],
            vocab.iter().map(|w| (w.as_slice(), 1u64)),
        )
        .await?;
        if wait_replicas > 0 {
            let acked: u32 = store.call("wait for replicas", &wait).await?;
            if acked < wait_replicas {
                bail!("WAIT {wait_replicas}: only {acked} replicas acknowledged within 5 s (is a replica attached?)");
            }
        }
        lat.push(started.elapsed().as_secs_f64() * 1000.0);
        if outcome != CommitOutcome::Applied {
            bail!("commit of {} not applied: {outcome:?}", task.id);
        }
    }
    Ok(lat)
}

/// `wclab raft bench-commit`'s settings.
struct BenchCommit {
    redis: String,
    commits: usize,
    words: usize,
    wait_replicas: u32,
    breakdown: bool,
    clients: usize,
    tls: crate::cli::TlsArgs,
}

/// Claims and commits synthetic tasks, timing each commit FCALL as the
/// client sees it (request sent to reply received, failover retries
/// included; with `WAIT`, until the replicas have it).
async fn bench_commit(b: &BenchCommit) -> Result<Outcome> {
    let mut store = super::connect_with(&cluster_url(&b.redis), &b.tls).await?;
    let name = format!(
        "bench-commit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    let keys = JobKeys::new(&name);
    let tasks: Vec<TaskSpec> = (0..b.commits)
        .map(|i| TaskSpec {
            id: TaskSpec::id_for(i),
            path: format!("/bench/{i}"),
            start: 0,
            end: 1,
        })
        .collect();
    wclab_coord::submit::submit(&mut store, &keys, &tasks).await?;
    let vocab: Vec<Vec<u8>> = (0..b.words)
        .map(|j| format!("word{j}").into_bytes())
        .collect();
    let traced = if b.breakdown {
        Some(Traced::start(&b.redis).await?)
    } else {
        None
    };
    let t0 = Instant::now();
    let mut lat = Vec::with_capacity(b.commits);
    if b.clients <= 1 {
        lat = commits(&mut store, &keys, &vocab, b.commits, b.wait_replicas).await?;
    } else {
        // Concurrent clients, each on its own connection: what group
        // commit is for.
        let mut set = tokio::task::JoinSet::new();
        for c in 0..b.clients {
            let n = b.commits / b.clients + usize::from(c < b.commits % b.clients);
            let mut store = super::connect_with(&cluster_url(&b.redis), &b.tls).await?;
            let (keys, vocab, wait) = (keys.clone(), vocab.clone(), b.wait_replicas);
            set.spawn(async move { commits(&mut store, &keys, &vocab, n, wait).await });
        }
        while let Some(r) = set.join_next().await {
            lat.extend(r??);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let stages = match traced {
        Some(t) => Some(t.breakdown(&lat).await?),
        None => None,
    };
    job::delete(&mut store, &keys).await?;
    let client = lat.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let mut out = serde_json::json!({
        "commits": b.commits,
        "words_per_commit": b.words,
        "wait_replicas": b.wait_replicas,
        "clients": b.clients.max(1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": client.iter().sum::<f64>() / client.len() as f64,
        "claims_and_commits_per_s": b.commits as f64 / wall,
    });
    if let Some(stages) = &stages {
        out["breakdown"] = serde_json::to_value(stages)?;
    }
    println!("{out}");
    if let Some(stages) = &stages {
        print_breakdown(stages, pct(0.50));
    }
    Ok(Outcome::Success)
}

/// Every node of a Raft cluster with tracing on (`RAFT.TRACE START`).
struct Traced {
    nodes: Vec<String>,
}

impl Traced {
    async fn start(redis: &str) -> Result<Traced> {
        if redis.starts_with("redis://") {
            bail!("--breakdown needs the cluster's nodes as HOST:PORT,HOST:PORT,...");
        }
        let mut nodes: Vec<String> = Vec::new();
        for n in redis.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !nodes.iter().any(|m| m == n) {
                nodes.push(n.to_owned());
            }
        }
        for n in &nodes {
            match call(n, &["RAFT.TRACE", "START"]).await? {
                Frame::Error(e) => {
                    bail!("{n}: RAFT.TRACE START: {e} (a node of another wclab build?)")
                }
                _ => continue,
            }
        }
        Ok(Traced { nodes })
    }

    /// Stops tracing everywhere and puts the stages together.
    async fn breakdown(self, client_ms: &[f64]) -> Result<Vec<wclab_raft::trace::Stage>> {
        let mut leader = Vec::new();
        let mut followers = Vec::new();
        for n in &self.nodes {
            let Frame::Array(Some(items)) = call(n, &["RAFT.TRACE", "STOP"]).await? else {
                bail!("{n}: bad RAFT.TRACE STOP reply");
            };
            let lines: Vec<wclab_raft::trace::Line> = items
                .iter()
                .filter_map(|f| f.as_bytes())
                .filter_map(|b| wclab_raft::trace::Line::parse(&String::from_utf8_lossy(b)))
                .collect();
            // The leader is the node that received the client's writes.
            if lines.iter().any(|l| l.marks.contains_key("received")) {
                leader = lines;
            } else {
                followers.push(lines);
            }
        }
        let quorum = self.nodes.len() / 2 + 1;
        Ok(wclab_raft::trace::breakdown(
            client_ms,
            &leader,
            &followers,
            quorum,
            "wclab_commit",
        ))
    }
}

fn print_breakdown(stages: &[wclab_raft::trace::Stage], client_p50: f64) {
    println!("where a commit's time goes (ms; means add up to the client's mean):");
    println!("  {:<56} {:>7} {:>7}", "stage", "mean", "p50");
    for s in stages {
        println!("  {:<56} {:>7.3} {:>7.3}", s.stage, s.mean_ms, s.p50_ms);
    }
    let total: f64 = stages.iter().map(|s| s.mean_ms).sum();
    println!(
        "  {:<56} {:>7.3} {:>7.3}",
        "total (client)", total, client_p50
    );
}

fn print_failover(r: &wclab_raft::failover::Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let load = match (r.job, r.hog) {
        (true, true) => "a job and CPU hogs running",
        (true, false) => "a job running",
        (false, true) => "CPU hogs running",
        (false, false) => "no other load",
    };
    println!("failover of a {}-node cluster, {load}:", r.nodes);
    if r.quiet_s > 0.0 {
        println!(
            "  fault-free watch: {:.0} s, {} term changes",
            r.quiet_s, r.quiet_term_changes
        );
    }
    if !r.unavailable_ms.is_empty() {
        println!(
            "  leader killed {} times; kill -> first acknowledged write (ms): min {:.0}, median {:.0}, p90 {:.0}, max {:.0}",
            r.unavailable_ms.len(),
            r.percentile(0.0),
            r.percentile(0.5),
            r.percentile(0.9),
            r.percentile(1.0)
        );
        let elections: u64 = r.terms_per_kill.iter().sum();
        println!(
            "  term changes per kill: {:?} ({elections} in all)",
            r.terms_per_kill
        );
    }
    println!("  writes acknowledged: {}, failed: {}", r.writes, r.failed);
    if r.job {
        println!("  word-count jobs finished meanwhile: {}", r.jobs_finished);
    }
    Ok(())
}
