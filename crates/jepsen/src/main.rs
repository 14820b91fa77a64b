//! `wclab-jepsen`: run the harness, re-check a history, run the matrix.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use wclab_jepsen::check::Validity;
use wclab_jepsen::nemesis::Nemesis;
use wclab_jepsen::runner::{self, RunConfig};
use wclab_jepsen::workload::Workload;

#[derive(Parser)]
#[command(
    version,
    about = "Jepsen-style tests of a wclab Raft cluster: a workload under a nemesis, the history checked"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The wclab binary (default: $WCLAB_BIN, or the one beside this binary, or wclab on the PATH).
    #[arg(long)]
    wclab: Option<PathBuf>,
    /// Client time per run (faults stop half a second before the end).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Seed of the fault schedule and the clients' choices (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent logical clients.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// The nodes' --heartbeat (default: theirs).
    #[arg(long)]
    heartbeat: Option<String>,
    /// The nodes' --snapshot-every.
    #[arg(long, default_value_t = 100)]
    snapshot_every: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run: a cluster, a workload, a nemesis; writes history.jsonl, nemesis.jsonl, report.json, report.md.
    Run {
        /// Cluster size.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// The faults.
        #[arg(long, value_enum, default_value = "kill-leader")]
        nemesis: Nemesis,
        /// The clients' work.
        #[arg(long, value_enum, default_value = "register")]
        workload: Workload,
        /// Output directory.
        #[arg(long, default_value = "out/jepsen/run")]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Checks the history of an earlier run again, offline.
    Check {
        /// The run's directory (history.jsonl, nemesis.jsonl).
        #[arg(long)]
        out: PathBuf,
        /// Its workload (register, counter or list).
        #[arg(long, value_enum)]
        workload: Workload,
    },
    /// Every workload x nemesis on 3 and 5 nodes; writes DIR/report.md.
    Matrix {
        /// Output directory (one subdirectory per run).
        #[arg(long, default_value = "out/jepsen")]
        out: PathBuf,
        /// Cluster sizes.
        #[arg(long, value_delimiter = ',', default_value = "3,5")]
        nodes: Vec<usize>,
        /// Workloads (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        workloads: Vec<Workload>,
        /// Nemeses (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        nemeses: Vec<Nemesis>,
        #[command(flatten)]
        common: Common,
    },
}

fn config(common: &Common, out: PathBuf, seed: u64) -> RunConfig {
    let mut cfg = RunConfig::new(wclab_jepsen::find_wclab(common.wclab.clone()), out);
    cfg.duration = common.duration;
    cfg.seed = seed;
    cfg.clients = common.clients.max(1);
    cfg.heartbeat = common.heartbeat.clone();
    cfg.snapshot_every = Some(common.snapshot_every);
    cfg
}

fn seed(given: Option<u64>) -> u64 {
    let s = given.unwrap_or_else(rand::random);
    eprintln!("seed {s} (replay with --seed {s})");
    s
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wclab_jepsen=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Run {
            nodes,
            nemesis,
            workload,
            out,
            common,
        } => {
            let mut cfg = config(&common, out, seed(common.seed));
            cfg.nodes = nodes;
            cfg.nemesis = nemesis;
            cfg.workload = workload;
            let report = runner::run(&cfg)?;
            print!("{}", wclab_jepsen::report::run_markdown(&report));
            eprintln!("history and report in {}", cfg.out.display());
            exit(report.validity)
        }
        Cmd::Check { out, workload } => {
            if workload == Workload::Wordcount {
                bail!("the word-count workload is checked against the live cluster, not offline");
            }
            let (checks, windows, counts) = runner::recheck(&out, workload)?;
            println!(
                "{} operations: {} ok, {} fail, {} unknown",
                counts.ops, counts.ok, counts.fail, counts.unknown
            );
            for c in &checks {
                println!("{}: {:?}", c.checker, c.validity);
                for n in &c.notes {
                    println!("  note: {n}");
                }
                for a in &c.anomalies {
                    println!("  {}: {}", a.kind, a.message);
                    for op in &a.ops {
                        println!("    {op}");
                    }
                }
            }
            println!("{} faults", windows.len());
            exit(runner::overall(&checks))
        }
        Cmd::Matrix {
            out,
            nodes,
            workloads,
            nemeses,
            common,
        } => {
            let seed = seed(common.seed);
            let workloads = if workloads.is_empty() {
                Workload::ALL.to_vec()
            } else {
                workloads
            };
            let nemeses = if nemeses.is_empty() {
                Nemesis::ALL.to_vec()
            } else {
                nemeses
            };
            let mut runs = Vec::new();
            let total = nodes.len() * workloads.len() * nemeses.len();
            for &n in &nodes {
                for &w in &workloads {
                    for &m in &nemeses {
                        let name = format!("{n}-{}-{}", w.name(), m.name());
                        let mut cfg = config(&common, out.join(&name), seed);
                        cfg.nodes = n;
                        cfg.workload = w;
                        cfg.nemesis = m;
                        eprintln!("[{}/{total}] {name}", runs.len() + 1);
                        let r = runner::run(&cfg).map_err(|e| format!("{e:#}"));
                        match &r {
                            Ok(r) => eprintln!(
                                "    {:?}: {} ops ({} ok, {} fail, {} unknown) {}",
                                r.validity,
                                r.counts.ops,
                                r.counts.ok,
                                r.counts.fail,
                                r.counts.unknown,
                                r.kinds().join(", ")
                            ),
                            Err(e) => eprintln!("    error: {e}"),
                        }
                        runs.push((name, r));
                        let header = format!(
                            "Seed {seed}; {:?} of clients per run; {} clients; nodes' heartbeat {}; snapshot every {} entries. Each run's history, nemesis log and report are in its directory; `wclab-jepsen check --out DIR --workload W` checks one again.",
                            common.duration,
                            common.clients,
                            common.heartbeat.as_deref().unwrap_or("default"),
                            common.snapshot_every
                        );
                        std::fs::write(
                            out.join("report.md"),
                            wclab_jepsen::report::matrix_markdown(&runs, &header),
                        )?;
                    }
                }
            }
            eprintln!("matrix report: {}", out.join("report.md").display());
            let bad = runs
                .iter()
                .any(|(_, r)| !matches!(r, Ok(r) if r.validity == Validity::Valid));
            std::process::exit(if bad { 1 } else { 0 })
        }
    }
}

fn exit(v: Validity) -> Result<()> {
    std::process::exit(match v {
        Validity::Valid => 0,
        Validity::Invalid => 1,
        Validity::Unknown => 3,
    })
}
