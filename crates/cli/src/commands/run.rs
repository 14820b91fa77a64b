//! `wclab run`: submit, start workers, wait, report.
//!
//! The wait loop is also where the labs' faults are injected: worker kills
//! (lab 2), checkpoints and Redis kills (lab 4a). Faults are driven from
//! here, by the one process that owns both the workers and the private
//! Redis, at seeded random moments.

use super::Outcome;
use crate::cli::{InputArgs, OutputArgs, RunArgs};
use crate::inputs::{self, Inputs};
use crate::report;
use crate::supervisor::{Supervisor, WorkerCommand};
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use wclab_coord::job::{self, JobPlan, JobSpec, JobStatus};
use wclab_coord::{checkpoint, JobKeys, Store};
use wclab_server::{RedisServer, ServerOptions};

pub async fn run(args: RunArgs) -> Result<Outcome> {
    let inputs = resolve_inputs(&args.input)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = args.workers.unwrap_or(cores).max(1);
    let threads = args.threads.unwrap_or((cores / workers).max(1));

    // The private Redis lives as long as this function.
    let given = (args.redis.clone())
        .or_else(|| args.redis_cluster.as_deref().map(super::raft::cluster_url));
    let (mut server, url) = match &given {
        Some(url) => (None, url.clone()),
        None => {
            let opts = ServerOptions {
                port: args.port,
                dir: args.redis_dir.clone(),
                extra_config: args.redis_config.clone(),
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
    let plan = plan(&inputs, &args.input);
    plan.submit(&mut store, &keys).await?;

    let command = WorkerCommand {
        program: std::env::current_exe()
            .context("cannot find the wclab executable to start workers")?,
        args: [
            vec!["--job".into(), job_name.clone()],
            args.lease
                .worker_args(wclab_worker::CommitBatch::default().max_tasks as u32),
            vec!["--threads".into(), threads.to_string()],
        ]
        .concat(),
        env: worker_env(&url),
    };
    let mut supervisor = Supervisor::start(command, workers)?;
    tracing::info!(pids = ?supervisor.pids(), "workers started");

    let pb = crate::progress::bar(inputs.total_bytes());
    let mut faults = Faults::new(&args);
    let interrupted = tokio::select! {
        r = async {
            loop {
                let status = job::status(&mut store, &keys).await?;
                faults.observe(&status);
                if plan.repair(&mut store, &keys, &status).await? > 0 {
                    continue;
                }
                crate::progress::show(&pb, &status);
                if status.is_finished() {
                    return Ok::<_, anyhow::Error>(status);
                }
                faults.step(&mut store, &keys, &mut supervisor, server.as_mut(), &pb).await?;
                supervisor.keep_alive()?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } => Some(r?),
        _ = tokio::signal::ctrl_c() => None,
    };
    pb.finish_and_clear();
    supervisor.stop(Duration::from_secs(2));
    let Some(status) = interrupted else {
        eprintln!("interrupted; job {job_name} left unfinished");
        return Ok(Outcome::Interrupted);
    };
    let mut summary = report::gather(
        &mut store,
        &keys,
        &status,
        args.output.top,
        started.elapsed(),
        supervisor.replaced,
    )
    .await?;
    summary.checkpoints = faults.checkpoints;
    summary.redis_crashes = faults.redis_crashes;
    summary.tasks_recomputed = faults.recomputed;
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

/// The faults of the labs and the checkpoints, on their schedules.
struct Faults {
    rng: ChaCha8Rng,
    worker_kills_left: usize,
    next_worker_kill: Instant,
    checkpoint_every: Option<Duration>,
    next_checkpoint: Instant,
    checkpoints: u64,
    redis_kills_left: usize,
    next_redis_kill: Instant,
    /// Kill Redis right after the next BGSAVE starts (while it runs).
    kill_during_next_bgsave: bool,
    redis_crashes: u64,
    /// Tasks committed when Redis was last killed, not yet compared with
    /// what the restored Redis remembers.
    done_at_crash: Option<u64>,
    last_done: u64,
    recomputed: u64,
}

impl Faults {
    fn new(args: &RunArgs) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(args.chaos_seed);
        let now = Instant::now();
        let every = args.checkpoint_every;
        // The first Redis kill comes before the first checkpoint, so that
        // the restore starts from nothing at all.
        let first_redis_kill = match every {
            Some(e) => now + e.mul_f64(rng.random_range(0.3..0.9)),
            None => now + Duration::from_millis(rng.random_range(200..800)),
        };
        Faults {
            next_worker_kill: now + Duration::from_millis(rng.random_range(50..600)),
            worker_kills_left: args.chaos_kills,
            checkpoint_every: every,
            next_checkpoint: now + every.unwrap_or_default(),
            checkpoints: 0,
            redis_kills_left: args.chaos_redis_kills,
            next_redis_kill: first_redis_kill,
            kill_during_next_bgsave: false,
            redis_crashes: 0,
            done_at_crash: None,
            last_done: 0,
            recomputed: 0,
            rng,
        }
    }

    /// Notes the latest progress; after a crash, the first status from the
    /// restored Redis tells how many commits it forgot.
    fn observe(&mut self, status: &JobStatus) {
        if let Some(before) = self.done_at_crash.take() {
            let lost = before.saturating_sub(status.files_done);
            self.recomputed += lost;
            tracing::warn!(
                lost,
                "Redis restored: tasks committed after the last checkpoint will be recomputed"
            );
        }
        self.last_done = status.files_done;
    }

    async fn step(
        &mut self,
        store: &mut Store,
        keys: &JobKeys,
        supervisor: &mut Supervisor,
        server: Option<&mut RedisServer>,
        pb: &indicatif::ProgressBar,
    ) -> Result<()> {
        let now = Instant::now();
        if self.worker_kills_left > 0 && now >= self.next_worker_kill {
            self.worker_kills_left -= 1;
            self.next_worker_kill = now + Duration::from_millis(self.rng.random_range(50..600));
            if let Some(pid) = supervisor.kill_one(self.rng.random_range(0..usize::MAX)) {
                pb.println(format!("chaos: kill -9 worker {pid}"));
            }
        }
        let mut kill_now = self.redis_kills_left > 0
            && now >= self.next_redis_kill
            && !self.kill_during_next_bgsave;
        if let Some(every) = self.checkpoint_every {
            if now >= self.next_checkpoint {
                self.next_checkpoint = now + every;
                if checkpoint::bgsave(store).await? {
                    self.checkpoints += 1;
                    if self.kill_during_next_bgsave {
                        self.kill_during_next_bgsave = false;
                        kill_now = true;
                        pb.println("chaos: killing Redis while its BGSAVE runs");
                    }
                }
            }
        }
        let Some(server) = server else { return Ok(()) };
        if kill_now && self.redis_kills_left > 0 {
            // The exact count of commits at the instant of the crash.
            self.last_done = job::status(store, keys).await?.files_done;
            server.kill();
            self.redis_kills_left -= 1;
            self.redis_crashes += 1;
            self.done_at_crash = Some(self.last_done);
            pb.println(format!(
                "chaos: kill -9 redis-server ({} tasks committed so far)",
                self.last_done
            ));
            tokio::task::block_in_place(|| server.restart())?;
            // A restored Redis has the functions saved in its dump; make
            // sure it runs exactly ours.
            store.load_library().await?;
            pb.println(format!(
                "chaos: redis-server restarted on port {} from {}",
                server.port(),
                server.dir().join("dump.rdb").display()
            ));
            self.next_redis_kill =
                Instant::now() + Duration::from_millis(self.rng.random_range(150..800));
            // Some of the next kills land during a BGSAVE.
            self.kill_during_next_bgsave = self.redis_kills_left > 0
                && self.checkpoint_every.is_some()
                && self.rng.random_bool(0.4);
        }
        Ok(())
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
