//! `wclab stream` (lab 3): inject R files a second, fail and slow workers
//! down, measure every file's latency from injection to commit.
//!
//! ```text
//!   every second: wclab_submit(next R files) ──► tasks stream ──► workers
//!   meanwhile:    kill -9 a crashing worker (replaced at once)
//!                 SIGSTOP/SIGCONT the stragglers (a duty cycle, as cpulimit)
//!   at the end:   done stream ──► latency.csv, summary.json, timeline.png
//! ```
//!
//! Both ends of a latency come from the Redis server's clock, inside the
//! functions (`injected` by wclab_submit, `committed` by wclab_commit), and
//! the moments of the faults are read from it too (`TIME`), so the client's
//! and the workers' clocks never enter. The arithmetic (schedule,
//! percentiles, recovery) and the plot live in `wclab-stream`.

use super::Outcome;
use crate::backend::Backend;
use crate::cli::{LeaseArgs, StreamArgs};
use crate::supervisor::{Supervisor, WorkerCommand};
use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wclab_coord::job::{self, JobSpec};
use wclab_coord::submit::{self, TaskSpec};
use wclab_coord::{results, speculate, JobKeys, Store};
use wclab_server::ServerOptions;
use wclab_stream::plot::{self, PlotOptions, Series};
use wclab_stream::summary::{Percentiles, Summary};
use wclab_stream::{record, schedule, Event, EventKind, LatencyRecord};

/// How many files a stream's worker commits together at most, when files
/// are counted while its previous commit is in flight (a group commit; see
/// `wclab worker --stream`): alone, a file is committed at once.
const STREAM_COMMIT_BATCH: u32 = 8;

/// The longest turn of the driver's loop (injections are on time; the
/// faults, progress and folds are checked once a turn).
const LOOP_TURN: Duration = Duration::from_millis(20);

/// How often the driver folds the commits' tallies into `counts` while a
/// stream runs (docs/protocol.md, "The counts during a job").
const FOLD_EVERY: Duration = Duration::from_secs(2);

pub async fn stream(args: StreamArgs) -> Result<Outcome> {
    let total_workers = args.workers + args.crashing + args.stragglers;
    if total_workers == 0 {
        anyhow::bail!("no workers: give --workers, --crashing or --stragglers at least 1");
    }
    // One task per file: a file's latency is the lab's unit.
    let inputs = crate::inputs::resolve(&args.input, 0)?;
    let batches = schedule::micro_batches(inputs.tasks.len(), args.rate as usize, args.duration);
    let injection_span = Duration::from_secs(batches.len() as u64);
    let batches = if args.spread {
        schedule::spread(&batches)
    } else {
        batches
    };
    let n = schedule::total_files(&batches);
    if n == 0 {
        anyhow::bail!("no files found in {}", args.input.join(" "));
    }
    let tasks: Vec<TaskSpec> = inputs.tasks[..n].to_vec();
    let names: HashMap<String, String> = tasks
        .iter()
        .map(|t| (t.id.clone(), display_name(&inputs.roots, &t.path)))
        .collect();
    let label = args.label.clone().unwrap_or_else(|| {
        let spec = if args.speculate { ", speculation" } else { "" };
        let spread = if args.spread { " spread" } else { "" };
        format!("{} files/s{spread}{spec}", args.rate)
    });

    let backend = Backend::start(
        args.redis.as_deref(),
        ServerOptions::default(),
        &args.tls,
        &args.server_tls,
    )
    .await?;
    let mut store = backend.driver().await?;
    let job_name = args.job.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("stream-{ms}-{}", std::process::id())
    });
    let keys = JobKeys::new(&job_name);
    if job::status(&mut store, &keys).await?.exists {
        anyhow::bail!(
            "job {job_name:?} already exists on {}; choose another --job name",
            store.target()
        );
    }
    let by_path: HashMap<&str, u64> = inputs
        .files
        .iter()
        .filter_map(|(p, size)| Some((p.to_str()?, *size)))
        .collect();
    job::describe(
        &mut store,
        &keys,
        &JobSpec {
            roots: inputs.roots.clone(),
            total_tasks: n as u64,
            total_bytes: tasks
                .iter()
                .map(|t| by_path.get(t.path.as_str()).copied().unwrap_or(0))
                .sum(),
            csv_column: (args.format == "csv").then(|| args.column.clone()),
        },
    )
    .await?;
    // The consumer group, so that workers can join it before the first
    // file arrives.
    submit::open(&mut store, &keys).await?;

    let mut worker_args = [
        vec!["--job".into(), job_name.clone()],
        args.lease
            .worker_args(LeaseArgs::STREAM_LEASE, STREAM_COMMIT_BATCH),
        vec!["--stream".into()],
        vec!["--threads".into(), args.threads.max(1).to_string()],
    ]
    .concat();
    if args.speculate {
        worker_args.push("--speculate".into());
    }
    let command = WorkerCommand {
        program: std::env::current_exe()
            .context("cannot find the wclab executable to start workers")?,
        args: worker_args,
        env: backend.worker_env(),
    };
    // Slots 0..N are normal, then C crashing, then S stragglers; a slot
    // keeps its role when its process is replaced.
    let mut supervisor = Supervisor::start(command, total_workers)?;
    // CLIENT LIST is the administrator's.
    wait_for_workers(&mut backend.admin().await?, total_workers).await?;

    let straggler_slots = args.workers + args.crashing..total_workers;
    let throttle = Throttle::start(args.straggler_cpu, args.straggler_period);
    let mut chaos = Chaos::new(&args, injection_span);
    let mut events: Vec<Event> = Vec::new();
    // Crashing slots waiting for their worker to hold a task.
    let mut armed: Vec<(usize, Instant)> = Vec::new();
    // Processes killed already: until the supervisor has noticed and
    // replaced one, its slot still shows it (and its lost task is still
    // pending in its name), so it must not be "crashed" again.
    let mut dead: HashSet<u32> = HashSet::new();
    let mut live = Live::new(n);

    let started = Instant::now();
    let mut next_batch = 0;
    let mut injected = 0usize;
    let mut last_print = Instant::now();
    let mut last_fold = Instant::now();
    let outcome = tokio::select! {
        r = async {
            loop {
                let t = started.elapsed();
                // The batches due (several when spread files fall within
                // one turn of this loop) go in one call.
                let first = next_batch;
                while next_batch < batches.len() && t >= batches[next_batch].at {
                    next_batch += 1;
                }
                if next_batch > first {
                    let files = batches[first].files.start..batches[next_batch - 1].files.end;
                    submit::submit(&mut store, &keys, &tasks[files.clone()]).await?;
                    injected += files.len();
                }
                for (kind, slots) in chaos.due(t) {
                    match kind {
                        EventKind::Crash => arm(&mut armed, slots, Instant::now()),
                        EventKind::StraggleStart | EventKind::StraggleEnd => {
                            let pids = straggler_pids(&supervisor, straggler_slots.clone());
                            throttle.set(pids.clone(), kind == EventKind::StraggleStart);
                            events.push(event(&mut store, &live, t, kind, &pids).await?);
                        }
                    }
                }
                if !armed.is_empty() {
                    let busy = busy_pids(&mut store, &keys).await?;
                    let due = fire(&mut armed, &supervisor.pids(), &busy, &dead, Instant::now());
                    let killed: Vec<u32> = due.iter().filter_map(|&s| supervisor.kill_one(s)).collect();
                    dead.extend(&killed);
                    if !killed.is_empty() {
                        events.push(event(&mut store, &live, t, EventKind::Crash, &killed).await?);
                    }
                }
                if supervisor.keep_alive()? > 0 && throttle.is_active() {
                    throttle.set(straggler_pids(&supervisor, straggler_slots.clone()), true);
                }
                // The commits' tallies into the counts' sorted set now and
                // then: the counts are right without it, but `top` and the
                // final read get slower with every tally left.
                if last_fold.elapsed() >= FOLD_EVERY {
                    wclab_coord::fold::fold(&mut store, &keys).await?;
                    last_fold = Instant::now();
                }
                let status = job::status(&mut store, &keys).await?;
                live.read_done(&mut store, &keys).await?;
                live.show(injected, &status);
                // Without a terminal (a log, CI), one line a second.
                if live.bar.is_hidden() && last_print.elapsed() >= Duration::from_secs(1) {
                    eprintln!("[{:>5.1}s] {}", t.as_secs_f64(), live.line(injected, &status));
                    last_print = Instant::now();
                }
                if next_batch == batches.len() {
                    if status.files_done + status.files_dead >= n as u64 {
                        return Ok::<_, anyhow::Error>(true);
                    }
                    if t > injection_span + args.drain_timeout {
                        live.println(&format!(
                            "gave up waiting: {} file(s) still in flight {} after the last injection",
                            n as u64 - status.files_done - status.files_dead,
                            humantime::format_duration(args.drain_timeout)
                        ));
                        return Ok(false);
                    }
                }
                // Until the next injection is due, 20 ms at most.
                let turn = batches
                    .get(next_batch)
                    .map_or(LOOP_TURN, |b| b.at.saturating_sub(started.elapsed()).min(LOOP_TURN));
                tokio::time::sleep(turn).await;
            }
        } => Some(r?),
        _ = super::stop_requested() => None,
    };
    live.bar.finish_and_clear();
    throttle.stop();
    supervisor.stop(Duration::from_secs(2));

    let done = results::done(&mut store, &keys).await?;
    let handed_out = results::handed_out(&mut store, &keys).await?;
    let dead = results::dead(&mut store, &keys).await?;
    let backups = speculate::backups(&mut store, &keys).await?;
    let mut seen = HashMap::new();
    for d in &done {
        *seen.entry(d.task.as_str()).or_insert(0u32) += 1;
    }
    let twice: Vec<&str> = seen
        .iter()
        .filter(|(_, &k)| k > 1)
        .map(|(t, _)| *t)
        .collect();
    if !twice.is_empty() {
        // The commit gate makes this impossible; say so loudly if it happens.
        eprintln!("BUG: task(s) committed more than once: {twice:?}");
    }
    let mut records: Vec<LatencyRecord> = done
        .iter()
        .map(|d| {
            let file = names
                .get(&d.task)
                .cloned()
                .unwrap_or_else(|| d.task.clone());
            let r = LatencyRecord::new(
                file,
                d.injected_ms,
                d.committed_ms,
                d.worker.clone(),
                d.attempts,
            );
            match handed_out.get(&d.task) {
                Some(&at) => r.with_handed_out(at),
                None => r,
            }
        })
        .collect();
    records.sort_by(|a, b| (a.injected_at, &a.file).cmp(&(b.injected_at, &b.file)));

    let mut summary = Summary::new(&records, &events);
    let settings = serde_json::json!({
        "label": label,
        "job": job_name,
        "rate_files_per_s": args.rate,
        "spread": args.spread,
        "duration_s": args.duration.map(|d| d.as_secs_f64()),
        "files_injected": injected,
        "files_dead": dead.len(),
        "workers": args.workers,
        "crashing": args.crashing,
        "crash_every_s": args.crash_every.as_secs_f64(),
        "stragglers": args.stragglers,
        "straggler_cpu_percent": args.straggler_cpu,
        "straggler_period_s": args.straggler_period.as_secs_f64(),
        "straggle_from_s": chaos.straggle.map(|w| w.0.as_secs_f64()),
        "straggle_until_s": chaos.straggle.map(|w| w.1.as_secs_f64()),
        "speculate": args.speculate,
        "speculative_copies": backups,
        "lease_s": args.lease.lease_or(LeaseArgs::STREAM_LEASE).as_secs_f64(),
        "workers_replaced": supervisor.replaced,
        "duplicate_commits": twice.len(),
    });
    if let serde_json::Value::Object(m) = settings {
        summary.settings = m;
    }
    write_outputs(&args.out, &records, &events, &summary, &label, &args)?;
    print_summary(&summary, &args.out, &dead);

    Ok(match outcome {
        None => {
            eprintln!("interrupted; wrote what was committed so far");
            Outcome::Interrupted
        }
        Some(_) if !dead.is_empty() || records.len() < injected || !twice.is_empty() => {
            Outcome::SomeFailed
        }
        Some(_) => Outcome::Success,
    })
}

/// How long a due crash waits for its worker to hold a task: a crash of an
/// idle worker loses nothing and shows nothing.
const CRASH_PATIENCE: Duration = Duration::from_secs(2);

/// Arms the crashes of `slots`. A slot already armed (its crash is still
/// waiting for the worker to hold a task, when crashes come more often than
/// [`CRASH_PATIENCE`]) keeps its first arming: one crash, one kill.
fn arm(armed: &mut Vec<(usize, Instant)>, slots: Vec<usize>, now: Instant) {
    for slot in slots {
        if !armed.iter().any(|&(s, _)| s == slot) {
            armed.push((slot, now));
        }
    }
}

/// The armed slots whose crash is due now, disarmed: those whose worker
/// holds a task (in `busy`), or that have waited [`CRASH_PATIENCE`]. A slot
/// whose process is already `dead` (killed, not yet replaced) waits for its
/// replacement.
fn fire(
    armed: &mut Vec<(usize, Instant)>,
    pids: &[u32],
    busy: &[u32],
    dead: &HashSet<u32>,
    now: Instant,
) -> Vec<usize> {
    let mut due = Vec::new();
    armed.retain(|&(slot, since)| {
        let Some(pid) = pids.get(slot).filter(|p| !dead.contains(p)) else {
            return true;
        };
        let fire = busy.contains(pid) || now.duration_since(since) >= CRASH_PATIENCE;
        if fire {
            due.push(slot);
        }
        !fire
    });
    due
}

/// Records an event at the server's time and tells the user.
async fn event(
    store: &mut Store,
    live: &Live,
    t: Duration,
    kind: EventKind,
    pids: &[u32],
) -> Result<Event> {
    let at = server_ms(store).await?;
    let detail = format!(
        "pid {}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    live.println(&format!(
        "{:>6.1}s  {} ({detail})",
        t.as_secs_f64(),
        kind.label()
    ));
    Ok(Event { at, kind, detail })
}

/// PIDs of the workers that hold a task now, from the consumer names in
/// the pending list (`host-pid-xxxx`, see `wclab_worker::consumer_name`).
async fn busy_pids(store: &mut Store, keys: &JobKeys) -> Result<Vec<u32>> {
    Ok(job::holders(store, keys)
        .await?
        .iter()
        .filter(|(_, n)| *n > 0)
        .filter_map(|(consumer, _)| wclab_worker::consumer_pid(consumer))
        .collect())
}

/// A file's name for latency.csv: relative to the input root holding it.
fn display_name(roots: &[std::path::PathBuf], path: &str) -> String {
    let p = Path::new(path);
    roots
        .iter()
        .filter_map(|r| p.strip_prefix(r).ok())
        .find(|rel| !rel.as_os_str().is_empty())
        .map(|rel| rel.display().to_string())
        .or_else(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.to_owned())
}

fn straggler_pids(supervisor: &Supervisor, slots: std::ops::Range<usize>) -> Vec<u32> {
    let pids = supervisor.pids();
    slots.filter_map(|s| pids.get(s).copied()).collect()
}

/// The Redis server's clock, ms: the one clock of the lab.
async fn server_ms(store: &mut Store) -> Result<u64> {
    let (secs, micros): (u64, u64) = store
        .call("read the server clock", &redis::cmd("TIME"))
        .await?;
    Ok(secs * 1000 + micros / 1000)
}

/// Waits until every worker is polling Redis, so that the first
/// micro-batch does not measure process start-up. (A worker joins the
/// consumer group only when it is first handed a task, so the group cannot
/// tell; the clients whose last command was an FCALL or, idle, a blocking
/// XREAD of the tasks stream, ours excepted, can.)
async fn wait_for_workers(store: &mut Store, n: usize) -> Result<()> {
    let me: i64 = store
        .call("read our client id", redis::cmd("CLIENT").arg("ID"))
        .await?;
    let me = format!("id={me} ");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let clients: String = store
            .call("list the clients", redis::cmd("CLIENT").arg("LIST"))
            .await?;
        let polling = clients
            .lines()
            .filter(|l| {
                !l.starts_with(&me) && (l.contains(" cmd=fcall ") || l.contains(" cmd=xread "))
            })
            .count();
        if polling >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            tracing::warn!(
                polling,
                n,
                "not every worker is polling after 30 s; injecting anyway"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When the faults happen: crashes of each crashing slot at seeded random
/// moments while files are injected, and one straggling window.
struct Chaos {
    rng: ChaCha8Rng,
    crash_every: Duration,
    /// Next crash time of each crashing slot.
    crashes: Vec<(usize, Duration)>,
    /// Crashes stop with the injection, so that the tail shows recovery.
    crash_until: Duration,
    /// The straggling window (start, end), if there are stragglers.
    straggle: Option<(Duration, Duration)>,
    straggling: bool,
    straggle_over: bool,
}

impl Chaos {
    fn new(args: &StreamArgs, span: Duration) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        let every = args.crash_every;
        let crashes = (args.workers..args.workers + args.crashing)
            .map(|slot| (slot, every.mul_f64(rng.random_range(0.5..1.5))))
            .collect();
        let straggle = (args.stragglers > 0).then(|| {
            let from = args.straggle_from.unwrap_or(span / 4);
            (from, from + args.straggle_for.unwrap_or(span / 2))
        });
        Chaos {
            rng,
            crash_every: every,
            crashes,
            crash_until: span,
            straggle,
            straggling: false,
            straggle_over: false,
        }
    }

    /// The events due at `t` (since the first injection), with the slots
    /// they concern.
    fn due(&mut self, t: Duration) -> Vec<(EventKind, Vec<usize>)> {
        let mut out = Vec::new();
        if let Some((from, until)) = self.straggle {
            if !self.straggling && !self.straggle_over && t >= from {
                self.straggling = true;
                out.push((EventKind::StraggleStart, Vec::new()));
            }
            if self.straggling && t >= until {
                self.straggling = false;
                self.straggle_over = true;
                out.push((EventKind::StraggleEnd, Vec::new()));
            }
        }
        let mut killed = Vec::new();
        for (slot, at) in &mut self.crashes {
            if t >= *at && t < self.crash_until {
                killed.push(*slot);
                *at = t + self.crash_every.mul_f64(self.rng.random_range(0.5..1.5));
            }
        }
        if !killed.is_empty() {
            out.push((EventKind::Crash, killed));
        }
        out
    }
}

/// Holds processes to a share of a CPU by stopping and continuing them
/// (SIGSTOP/SIGCONT), as cpulimit does: in each period they run for
/// `percent` of it and are stopped for the rest.
struct Throttle {
    state: Arc<Mutex<(Vec<u32>, bool)>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Throttle {
    fn start(percent: u64, period: Duration) -> Self {
        let state = Arc::new(Mutex::new((Vec::<u32>::new(), false)));
        let stop = Arc::new(AtomicBool::new(false));
        let run = period.mul_f64(percent.min(100) as f64 / 100.0);
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let signal_all = |pids: &[u32], sig: Signal| {
                for &p in pids {
                    let _ = kill(Pid::from_raw(p as i32), sig);
                }
            };
            // Sleeps `d` unless asked to stop; true if asked.
            let nap = |d: Duration| {
                let end = Instant::now() + d;
                while Instant::now() < end {
                    if sp.load(Ordering::Relaxed) {
                        return true;
                    }
                    std::thread::sleep((end - Instant::now()).min(Duration::from_millis(10)));
                }
                sp.load(Ordering::Relaxed)
            };
            loop {
                let (pids, active) = st.lock().map(|s| s.clone()).unwrap_or_default();
                signal_all(&pids, Signal::SIGCONT);
                if !active || run >= period {
                    if nap(Duration::from_millis(10)) {
                        break;
                    }
                    continue;
                }
                if nap(run) {
                    break;
                }
                signal_all(&pids, Signal::SIGSTOP);
                if nap(period - run) {
                    break;
                }
            }
            let (pids, _) = st.lock().map(|s| s.clone()).unwrap_or_default();
            signal_all(&pids, Signal::SIGCONT);
        });
        Throttle {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Throttles `pids` (active) or releases them.
    fn set(&self, pids: Vec<u32>, active: bool) {
        if let Ok(mut s) = self.state.lock() {
            // Released processes must not stay stopped.
            if !active {
                for &p in &s.0 {
                    let _ = kill(Pid::from_raw(p as i32), Signal::SIGCONT);
                }
            }
            *s = (pids, active);
        }
    }

    fn is_active(&self) -> bool {
        self.state.lock().map(|s| s.1).unwrap_or(false)
    }

    /// Continues every throttled process and ends the thread.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Live progress: files injected, done, in flight, and the p50/p95 of the
/// files committed in the last few seconds.
struct Live {
    bar: indicatif::ProgressBar,
    last_id: String,
    /// (commit time, latency) of the recent commits.
    recent: VecDeque<(u64, i64)>,
}

/// The window of the live percentiles.
const LIVE_WINDOW_MS: u64 = 5_000;

impl Live {
    fn new(n: usize) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(n as u64),
            if std::io::stderr().is_terminal() {
                indicatif::ProgressDrawTarget::stderr()
            } else {
                indicatif::ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} committed  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Live {
            bar,
            last_id: "-".into(),
            recent: VecDeque::new(),
        }
    }

    fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Reads the completion records committed since the last call.
    async fn read_done(&mut self, store: &mut Store, keys: &JobKeys) -> Result<()> {
        type Entry = (String, HashMap<String, String>);
        let start = if self.last_id == "-" {
            "-".to_owned()
        } else {
            format!("({}", self.last_id)
        };
        let entries: Vec<Entry> = store
            .call(
                "read the completion records",
                redis::cmd("XRANGE")
                    .arg(&keys.done)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(10_000),
            )
            .await?;
        let num = |f: &HashMap<String, String>, k: &str| -> u64 {
            f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        for (id, f) in entries {
            let committed = num(&f, "committed");
            self.recent
                .push_back((committed, committed as i64 - num(&f, "injected") as i64));
            self.last_id = id;
        }
        if let Some(&(newest, _)) = self.recent.back() {
            while self
                .recent
                .front()
                .is_some_and(|&(c, _)| c + LIVE_WINDOW_MS < newest)
            {
                self.recent.pop_front();
            }
        }
        Ok(())
    }

    fn line(&self, injected: usize, status: &job::JobStatus) -> String {
        let p = Percentiles::of(self.recent.iter().map(|r| r.1));
        let finished = status.files_done + status.files_dead;
        let dead = if status.files_dead > 0 {
            format!(", {} failed", status.files_dead)
        } else {
            String::new()
        };
        format!(
            "injected {injected}, done {}{dead}, in flight {}, last 5 s: p50 {} ms, p95 {} ms",
            status.files_done,
            (injected as u64).saturating_sub(finished),
            p.p50,
            p.p95
        )
    }

    fn show(&self, injected: usize, status: &job::JobStatus) {
        self.bar.set_position(status.files_done);
        self.bar.set_message(self.line(injected, status));
    }
}

fn write_outputs(
    out: &Path,
    records: &[LatencyRecord],
    events: &[Event],
    summary: &Summary,
    label: &str,
    args: &StreamArgs,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    record::write_latency_csv(&out.join("latency.csv"), records)?;
    record::write_events_csv(&out.join("events.csv"), events)?;
    summary.write(&out.join("summary.json"))?;
    let mut title = format!("{label}: {} worker(s)", args.workers);
    if args.crashing > 0 {
        title += &format!(", {} crashing", args.crashing);
    }
    if args.stragglers > 0 {
        title += &format!(
            ", {} straggling at {}% CPU",
            args.stragglers, args.straggler_cpu
        );
    }
    let series = [Series {
        label: label.to_owned(),
        records,
        events,
    }];
    let negative = plot::negative_latencies(&series);
    if negative > 0 {
        // Cannot happen with one server clock; if it does, show it.
        eprintln!(
            "warning: {negative} file(s) committed before they were injected (the server clock went back?); drawn below zero"
        );
    }
    plot::timeline(
        &out.join("timeline.png"),
        &series,
        &PlotOptions {
            title,
            ..PlotOptions::default()
        },
    )?;
    Ok(())
}

fn print_summary(s: &Summary, out: &Path, dead: &[results::DeadTask]) {
    println!(
        "{} file(s) committed; latency p50 {} ms, p95 {} ms, p99 {} ms, max {} ms; {:.1} files/s",
        s.files_committed, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.throughput_files_per_s
    );
    for e in &s.events {
        let after_release = e
            .after_release_ms
            .map(|a| format!(", {a} ms after the release"))
            .unwrap_or_default();
        let recovery = if e.recovered {
            format!("recovered after {} ms", e.recovery_ms)
        } else {
            format!(
                "late files until {} ms after it, not seen back on time before the run ended",
                e.recovery_ms
            )
        };
        println!(
            "  {:>6.1}s {:<24} peak {:>6} ms, {recovery}{after_release}",
            e.at_s,
            e.kind.label(),
            e.peak_latency_ms,
        );
    }
    for d in dead {
        eprintln!("failed: {} ({})", d.path, d.reason);
    }
    println!(
        "wrote {}/{{latency.csv,events.csv,summary.json,timeline.png}}",
        out.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_still_armed_is_not_armed_twice() {
        let t0 = Instant::now();
        let mut armed = Vec::new();
        arm(&mut armed, vec![2], t0);
        let later = t0 + Duration::from_millis(700);
        arm(&mut armed, vec![2, 3], later);
        arm(&mut armed, vec![3], later + Duration::from_millis(700));
        assert_eq!(armed, vec![(2, t0), (3, later)]);
    }

    #[test]
    fn a_killed_worker_is_not_killed_again_before_its_replacement() {
        let t0 = Instant::now();
        let (pids, busy) = ([10, 11, 12], [11, 12]);
        let mut dead = HashSet::new();
        let mut armed = vec![(0, t0), (1, t0)];
        assert_eq!(fire(&mut armed, &pids, &busy, &dead, t0), vec![1]);
        assert_eq!(
            armed,
            vec![(0, t0)],
            "slot 0 waits for its worker to be busy"
        );
        dead.insert(11);
        // Armed again at once; the killed worker's task is still pending in
        // its name, but it is not replaced yet.
        arm(&mut armed, vec![1], t0);
        let late = t0 + CRASH_PATIENCE;
        assert_eq!(fire(&mut armed, &pids, &busy, &dead, late), vec![0]);
        assert_eq!(armed, vec![(1, t0)]);
        // Replaced by pid 13: now it can crash.
        assert_eq!(fire(&mut armed, &[10, 13, 12], &[13], &dead, late), vec![1]);
    }
}
