//! `wclab run`: submit, start workers, wait, report.

use super::Outcome;
use crate::cli::{InputArgs, OutputArgs, RunArgs};
use crate::inputs::{self, Inputs};
use crate::report;
use crate::supervisor::{Supervisor, WorkerCommand};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use wclab_coord::job::{self, JobSpec, JobStatus};
use wclab_coord::{submit, JobKeys, Store};
use wclab_server::{RedisServer, ServerOptions};

pub async fn run(args: RunArgs) -> Result<Outcome> {
    let inputs = resolve_inputs(&args.input)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = args.workers.unwrap_or(cores).max(1);
    let threads = args.threads.unwrap_or((cores / workers).max(1));

    // The private Redis lives as long as this function.
    let (_server, url) = match &args.redis {
        Some(url) => (None, url.clone()),
        None => {
            let opts = ServerOptions {
                port: args.port,
                ..Default::default()
            };
            let server = tokio::task::spawn_blocking(move || RedisServer::start(opts)).await??;
            let url = server.url();
            tracing::info!(port = server.port(), dir = %server.dir().display(), "started a private redis-server");
            (Some(server), url)
        }
    };
    let mut store = super::connect(&url).await?;
    let job_name = args.job.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("run-{ms}-{}", std::process::id())
    });
    let keys = JobKeys::new(&job_name);
    if job::status(&mut store, &keys).await?.exists {
        anyhow::bail!(
            "job {job_name:?} already exists on {}; choose another --job name",
            store.target()
        );
    }

    let started = Instant::now();
    submit_job(&mut store, &keys, &inputs, &args.input).await?;

    let command = WorkerCommand {
        program: std::env::current_exe()
            .context("cannot find the wclab executable to start workers")?,
        args: vec![
            "--job".into(),
            job_name.clone(),
            "--lease".into(),
            humantime::format_duration(args.lease.lease).to_string(),
            "--max-deliveries".into(),
            args.lease.max_deliveries.to_string(),
            "--threads".into(),
            threads.to_string(),
        ],
        env: worker_env(&url),
    };
    let mut supervisor = Supervisor::start(command, workers)?;
    tracing::info!(pids = ?supervisor.pids(), "workers started");

    let pb = crate::progress::bar(inputs.total_bytes());
    let mut chaos = Chaos::new(args.chaos_kills, args.chaos_seed);
    let tick = || {
        if let Some(pid) = chaos.strike(&mut supervisor) {
            pb.println(format!("chaos: kill -9 {pid}"));
        }
        supervisor.keep_alive().map(|_| ())
    };
    let waited = tokio::select! {
        status = crate::progress::wait(&mut store, &keys, &pb, tick) => Some(status?),
        _ = tokio::signal::ctrl_c() => None,
    };
    pb.finish_and_clear();
    supervisor.stop(Duration::from_secs(2));
    let Some(status) = waited else {
        eprintln!("interrupted; job {job_name} left unfinished");
        return Ok(Outcome::Interrupted);
    };
    finish(
        &mut store,
        &keys,
        &status,
        &args.output,
        started.elapsed(),
        supervisor.replaced,
    )
    .await
}

/// Lab 2's chaos monkey: kills random workers at random moments.
struct Chaos {
    left: usize,
    rng: rand_chacha::ChaCha8Rng,
    next: Instant,
}

impl Chaos {
    fn new(kills: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let next = Instant::now() + Self::pause(&mut rng);
        Chaos {
            left: kills,
            rng,
            next,
        }
    }

    fn pause(rng: &mut rand_chacha::ChaCha8Rng) -> Duration {
        use rand::Rng;
        Duration::from_millis(rng.random_range(50..600))
    }

    /// Kills a worker if one is due; returns its PID.
    fn strike(&mut self, supervisor: &mut Supervisor) -> Option<u32> {
        use rand::Rng;
        if self.left == 0 || Instant::now() < self.next {
            return None;
        }
        self.left -= 1;
        self.next = Instant::now() + Self::pause(&mut self.rng);
        supervisor.kill_one(self.rng.random_range(0..usize::MAX))
    }
}

/// The environment of workers started by `run`: the Redis URL (never on
/// the command line), and quiet logs unless the user asked for more.
fn worker_env(url: &str) -> Vec<(String, String)> {
    let mut env = vec![(crate::REDIS_URL_ENV.to_owned(), url.to_owned())];
    if std::env::var_os("WCLAB_LOG").is_none() && std::env::var_os("RUST_LOG").is_none() {
        env.push(("WCLAB_LOG".into(), "warn".into()));
    }
    env
}

/// Resolves inputs and, for CSV, checks the column name is sane.
pub(crate) fn resolve_inputs(args: &InputArgs) -> Result<Inputs> {
    // A CSV file is never split: a byte range cannot tell whether it
    // starts inside a quoted field.
    let split = if args.format == "csv" {
        0
    } else {
        args.split_size
    };
    let inputs = inputs::resolve(&args.input, split)?;
    if inputs.files.is_empty() {
        anyhow::bail!("no files found in {}", args.input.join(" "));
    }
    Ok(inputs)
}

/// Describes the job, then adds its tasks (idempotently).
pub(crate) async fn submit_job(
    store: &mut Store,
    keys: &JobKeys,
    inputs: &Inputs,
    args: &InputArgs,
) -> Result<u64> {
    let spec = JobSpec {
        roots: inputs.roots.clone(),
        total_tasks: inputs.tasks.len() as u64,
        total_bytes: inputs.tasks.iter().map(|t| t.end - t.start).sum(),
        csv_column: (args.format == "csv").then(|| args.column.clone()),
    };
    job::describe(store, keys, &spec).await?;
    Ok(submit::submit(store, keys, &inputs.tasks).await?)
}

/// Prints and writes the results; the outcome says whether all was counted.
pub(crate) async fn finish(
    store: &mut Store,
    keys: &JobKeys,
    status: &JobStatus,
    output: &OutputArgs,
    wall: Duration,
    replaced: u64,
) -> Result<Outcome> {
    let summary = report::gather(store, keys, status, output.top, wall, replaced).await?;
    if let Some(path) = &output.output {
        report::write_output(store, keys, path).await?;
    }
    report::print(&summary, output.json)?;
    Ok(if summary.failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}
