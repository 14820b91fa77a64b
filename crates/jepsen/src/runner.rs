//! One run: a cluster, a workload, a nemesis, a history, the checks.
//!
//! Start the cluster; clients (or jobs) run for the duration while the
//! nemesis acts; the nemesis heals everything; clients stop; final reads;
//! replicas must converge to one digest; the history is written
//! (`history.jsonl`, `nemesis.jsonl`) and checked; the report is written
//! (`report.json`, `report.md`, by [`crate::report`]).

use crate::check::windows::{windows, Window};
use crate::check::{self, Anomaly, Check, Validity};
use crate::cluster::{Cluster, ClusterOptions};
use crate::history::{self, Event, Fault, Recorder, F};
use crate::nemesis::{self, Nemesis};
use crate::partition::RaftSwitch;
pub use crate::report::{Counts, RunReport};
use crate::workload::{self, Clients, Workload};
use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The `wclab` binary.
    pub wclab: PathBuf,
    /// Cluster size (3 or 5).
    pub nodes: usize,
    /// The faults.
    pub nemesis: Nemesis,
    /// The clients' work.
    pub workload: Workload,
    /// How long clients run (faults stop half a second before).
    pub duration: Duration,
    /// Seed of the schedule and of the clients' choices.
    pub seed: u64,
    /// Where the history, report and nodes' directories go.
    pub out: PathBuf,
    /// Concurrent logical clients.
    pub clients: usize,
    /// An operation not answered within this is unknown.
    pub op_timeout: Duration,
    /// `--heartbeat` for the nodes (their default if `None`).
    pub heartbeat: Option<String>,
    /// `--snapshot-every` for the nodes.
    pub snapshot_every: Option<u64>,
}

impl RunConfig {
    /// Defaults for a run.
    pub fn new(wclab: PathBuf, out: PathBuf) -> Self {
        RunConfig {
            wclab,
            nodes: 3,
            nemesis: Nemesis::KillLeader,
            workload: Workload::Register,
            duration: Duration::from_secs(20),
            seed: 1,
            out,
            clients: 6,
            // Above the sidecar's own request timeout (5 s, 6 s proxied),
            // so that its answer, not ours, decides.
            op_timeout: Duration::from_secs(8),
            heartbeat: None,
            snapshot_every: Some(100),
        }
    }
}

/// The overall verdict of several checks.
pub fn overall(checks: &[Check]) -> Validity {
    if checks.iter().any(|c| c.validity == Validity::Invalid) {
        Validity::Invalid
    } else if checks.iter().any(|c| c.validity == Validity::Unknown) {
        Validity::Unknown
    } else {
        Validity::Valid
    }
}

/// The checks of a workload's history.
pub fn check_history(workload: Workload, ops: &[history::Op]) -> Vec<Check> {
    match workload {
        Workload::Register => vec![check::register::check(ops)],
        Workload::Counter => vec![check::counter::check(ops)],
        Workload::List => vec![check::list::check(ops)],
        Workload::Wordcount => vec![],
    }
}

/// Runs one test and writes its files into `cfg.out`.
pub fn run(cfg: &RunConfig) -> Result<RunReport> {
    std::fs::create_dir_all(&cfg.out)
        .with_context(|| format!("cannot create {}", cfg.out.display()))?;
    let nodes_dir = cfg.out.join("nodes");
    let _ = std::fs::remove_dir_all(&nodes_dir);
    let mut cluster = Cluster::start(ClusterOptions {
        wclab: cfg.wclab.clone(),
        nodes: cfg.nodes,
        spares: cfg.nemesis.spares(),
        dir: nodes_dir,
        heartbeat: cfg.heartbeat.clone(),
        snapshot_every: cfg.snapshot_every,
    })?;
    let recorder = Recorder::new(Instant::now());
    let endpoints = cluster.client_endpoints();
    let clients = Arc::new(Clients {
        workload: cfg.workload,
        endpoints: endpoints.clone(),
        recorder: recorder.clone(),
        stop: AtomicBool::new(false),
        next_value: AtomicI64::new(1),
        op_timeout: cfg.op_timeout,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop_at = Instant::now() + cfg.duration;
    let mut partitioner = RaftSwitch;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);

    // Word count: a corpus and its oracle, made before the clock matters.
    let corpus = (cfg.workload == Workload::Wordcount).then(|| {
        let dir = cfg.out.join("corpus");
        let _ = std::fs::remove_dir_all(&dir);
        let root = wclab_testkit::corpus::english(&dir, crate::jobs::FILES, 8_000, cfg.seed);
        let expected = wclab_testkit::oracle::count_tree(&root);
        (root, expected)
    });

    let (faults, jobs) = std::thread::scope(|s| {
        let tasks: Vec<_> = if cfg.workload == Workload::Wordcount {
            Vec::new()
        } else {
            (0..cfg.clients)
                .map(|slot| rt.spawn(workload::client(clients.clone(), slot, cfg.seed)))
                .collect()
        };
        let jobs = corpus.as_ref().map(|(root, _)| {
            let (wclab, out, rec, eps) = (&cfg.wclab, &cfg.out, &recorder, &endpoints);
            s.spawn(move || crate::jobs::run_jobs(wclab, eps, root, out, rec, stop_at))
        });
        let faults = nemesis::run(
            cfg.nemesis,
            &mut cluster,
            &mut partitioner,
            &mut rng,
            &recorder,
            stop_at,
        );
        // The nemesis has healed everything: let clients see the healed
        // cluster until the end of the run, then stop them.
        std::thread::sleep(
            stop_at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        );
        clients.stop.store(true, Ordering::SeqCst);
        rt.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        let jobs = jobs
            .map(|j| j.join().expect("job thread"))
            .unwrap_or_default();
        (faults, jobs)
    });

    // Jobs can end after the last heal; make sure all is up again.
    nemesis::heal_all(&mut cluster, &mut partitioner);
    let mut checks = Vec::new();
    if cfg.workload == Workload::Wordcount {
        let (_, expected) = corpus.as_ref().expect("corpus");
        let results = crate::jobs::collect(&cluster, jobs);
        checks.push(check::wordcount::check(&results, expected));
    } else if let Err(e) = rt.block_on(workload::final_reads(
        clients.clone(),
        Duration::from_secs(60),
    )) {
        checks.push(Check::new("final-read", vec![], vec![e]));
    }
    checks.push(convergence(&mut cluster));

    let events = recorder.events();
    history::write_jsonl(&cfg.out.join("history.jsonl"), &events)?;
    history::write_jsonl(&cfg.out.join("nemesis.jsonl"), &faults)?;
    let ops = history::pair(&events).context("the harness recorded a malformed history")?;
    checks.splice(0..0, check_history(cfg.workload, &ops));
    cluster.reap();
    let report = RunReport {
        nodes: cfg.nodes,
        nemesis: cfg.nemesis.name(),
        workload: cfg.workload.name(),
        seed: cfg.seed,
        duration_s: cfg.duration.as_secs_f64(),
        counts: Counts::of(&ops),
        write_counts: Counts::of(
            &ops.iter()
                .filter(|o| matches!(o.f, F::Write | F::Add | F::Append))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        validity: overall(&checks),
        checks,
        windows: windows(&ops, &faults),
        exits: cluster.exits().to_vec(),
        panics: cluster.panics(),
    };
    cluster.stop();
    crate::report::write(&cfg.out, &report)?;
    Ok(report)
}

/// Every live member must reach the same applied index with the same
/// digest (nothing is written any more).
fn convergence(cluster: &mut Cluster) -> Check {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        cluster.reap();
        let members = cluster.member_ids().len();
        last = cluster.digests();
        if last.len() == members && last.iter().all(|d| d.1 == last[0].1) {
            let anomalies = if last.iter().all(|d| d.2 == last[0].2) {
                vec![]
            } else {
                vec![Anomaly::new(
                    "replicas-differ",
                    format!("replicas at the same applied index have different datasets: {last:?}"),
                    vec![],
                )]
            };
            return Check::new("replicas-identical", anomalies, vec![]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Check::new(
        "replicas-identical",
        vec![Anomaly::new(
            "replicas-diverged",
            format!("the members did not reach one applied index within 30 s of the end: {last:?}"),
            vec![],
        )],
        vec![],
    )
}

/// Checks a history written by an earlier run again (register, counter
/// and list workloads): reads `history.jsonl` and `nemesis.jsonl` in `dir`.
pub fn recheck(dir: &Path, workload: Workload) -> Result<(Vec<Check>, Vec<Window>, Counts)> {
    let events: Vec<Event> = history::read_jsonl(&dir.join("history.jsonl"))?;
    let faults: Vec<Fault> = history::read_jsonl(&dir.join("nemesis.jsonl")).unwrap_or_default();
    let ops = history::pair(&events)?;
    Ok((
        check_history(workload, &ops),
        windows(&ops, &faults),
        Counts::of(&ops),
    ))
}
