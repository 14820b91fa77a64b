//! `wclab run`: submit, start workers, wait, report.
//!
//! The wait loop is also where the labs' faults are injected ([`chaos`]):
//! worker kills (lab 2), checkpoints and Redis kills (lab 4a), driven by
//! the one process that owns both the workers and the private Redis.
//!
//! [`chaos`]: crate::chaos

use super::Outcome;
use crate::backend::Backend;
use crate::chaos::{Chaos, ChaosPlan};
use crate::cli::{InputArgs, OutputArgs, RunArgs};
use crate::inputs::{self, Inputs};
use crate::report;
use crate::supervisor::{Supervisor, WorkerCommand};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use wclab_coord::job::{self, JobPlan, JobSpec};
use wclab_coord::{JobKeys, Store};
use wclab_server::ServerOptions;

/// How often `run` looks at the job.
const POLL: Duration = Duration::from_millis(10);

pub async fn run(args: RunArgs) -> Result<Outcome> {
    let inputs = resolve_inputs(&args.input)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = args.workers.unwrap_or(cores);
    if workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    let threads = args.threads.unwrap_or((cores / workers).max(1));

    // The private Redis lives as long as this function.
    let given = (args.redis.clone())
        .or_else(|| args.redis_cluster.as_deref().map(super::raft::cluster_url));
    if let Some(url) = &given {
        super::warn_if_password_on_command_line(url);
    }
    let opts = ServerOptions {
        port: args.port,
        dir: args.redis_dir.clone(),
        extra_config: args.redis_config.clone(),
        ..Default::default()
    };
    let mut backend = Backend::start(given.as_deref(), opts, &args.tls, &args.server_tls).await?;
    let mut store = backend.driver().await?;
    // Checkpoints and the labs' faults act on the server itself: the
    // administrator's, not the submitter's, business.
    let mut admin = backend.admin().await?;
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

    // An output that cannot be written is found out now, not after the job.
    if let Some(path) = &args.output.output {
        report::check_output(path)?;
    }
    let chaos_plan = ChaosPlan {
        worker_kills: args.chaos_kills,
        redis_kills: args.chaos_redis_kills,
        redis_downtime: args.chaos_redis_downtime,
        checkpoint_every: args.checkpoint_every,
        seed: args.chaos_seed,
    };
    let mut lease = args.lease.clone();
    lease.max_deliveries = chaos_plan.max_deliveries(lease.max_deliveries);
    if lease.max_deliveries != args.lease.max_deliveries {
        tracing::info!(
            max_deliveries = lease.max_deliveries,
            "under chaos, a task may be delivered once per fault: poison threshold raised"
        );
    }

    if let Some(every) = args.checkpoint_every {
        // Where the checkpoints go, as Redis itself says (CONFIG GET dir).
        let dump = wclab_coord::checkpoint::dump_path(&mut admin).await?;
        eprintln!(
            "checkpoints: BGSAVE every {} into {} (CONFIG GET dir / dbfilename)",
            humantime::format_duration(every),
            dump.display()
        );
    }

    let started = Instant::now();
    let plan = plan(&inputs, &args.input);
    plan.submit(&mut store, &keys).await?;

    let command = WorkerCommand {
        program: std::env::current_exe()
            .context("cannot find the wclab executable to start workers")?,
        args: [
            vec!["--job".into(), job_name.clone()],
            lease.worker_args(
                crate::cli::LeaseArgs::DEFAULT_LEASE,
                wclab_worker::CommitBatch::default().max_tasks as u32,
            ),
            vec!["--threads".into(), threads.to_string()],
        ]
        .concat(),
        env: backend.worker_env(),
    };
    let mut supervisor = Supervisor::start(command, workers)?;
    tracing::info!(pids = ?supervisor.pids(), "workers started");

    let pb = crate::progress::bar(inputs.total_bytes());
    let say = |line: String| crate::progress::say(&pb, line);
    let mut chaos = Chaos::new(chaos_plan, plan.spec.total_tasks);
    let interrupted = tokio::select! {
        r = async {
            loop {
                let status = job::status(&mut store, &keys).await?;
                if plan.repair(&mut store, &keys, &status).await? > 0 {
                    continue;
                }
                crate::progress::show(&pb, &status);
                if status.is_finished() {
                    return Ok::<_, anyhow::Error>(status);
                }
                chaos
                    .step(&mut admin, &keys, status.files_done, &mut supervisor, backend.server_mut(), &say)
                    .await?;
                supervisor.keep_alive()?;
                // Often enough that the end of a sub-second job is seen at
                // once; one small read for Redis each time.
                tokio::time::sleep(POLL).await;
            }
        } => Some(r?),
        _ = super::stop_requested() => None,
    };
    pb.finish_and_clear();
    supervisor.stop(Duration::from_secs(2));
    let Some(status) = interrupted else {
        eprintln!("interrupted; job {job_name} left unfinished");
        return Ok(Outcome::Interrupted);
    };
    // The counts are complete (the sorted set plus the commits' tallies);
    // building the sorted set of the result is part of the job's time.
    let folded = wclab_coord::fold::fold(&mut store, &keys).await?;
    tracing::info!(?folded, "tallies folded into the counts");
    let mut summary = report::gather(
        &mut store,
        &keys,
        &status,
        args.output.top,
        started.elapsed(),
        supervisor.replaced,
    )
    .await?;
    summary.files = inputs.files.len() as u64;
    summary.workers_killed = chaos.workers_killed;
    summary.checkpoints = chaos.checkpoints;
    summary.redis_crashes = chaos.crashes.len() as u64;
    summary.tasks_recomputed = chaos.recomputed();
    summary.chaos_not_done = chaos.not_done();
    summary.redis_crash_log = std::mem::take(&mut chaos.crashes);
    finish(&mut store, &keys, summary, &args.output).await
}

/// The job as submitted: description and tasks.
pub(crate) fn plan(inputs: &Inputs, args: &InputArgs) -> JobPlan {
    JobPlan {
        spec: JobSpec {
            roots: inputs.roots.clone(),
            total_tasks: inputs.tasks.len() as u64,
            total_bytes: inputs.tasks.iter().map(|t| t.end - t.start).sum(),
            csv_column: (args.format == "csv").then(|| args.column.clone()),
        },
        tasks: inputs.tasks.clone(),
    }
}

/// Resolves inputs and refuses an empty job.
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

/// Writes `--output`, prints the summary; the outcome says whether all was counted.
pub(crate) async fn finish(
    store: &mut Store,
    keys: &JobKeys,
    summary: report::Summary,
    output: &OutputArgs,
) -> Result<Outcome> {
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
