//! The worker: a stateless loop that turns tasks into committed counts.
//!
//! ```text
//!   claim ──► check the path ──► count (renewing the lease) ──► commit
//!     ▲            │ bad: dead-letter          │ error: dead-letter
//!     └────────────┴───────────────────────────┴──────────────────┘
//! ```
//!
//! A worker keeps nothing that matters: it can be killed at any instant.
//! Before its commit nothing of the task is in Redis, and the task is
//! stolen once its lease runs out; the commit itself is one atomic FCALL.
//!
//! # Layout
//!
//! * [`Worker`] runs the loop until told to stop.
//! * [`guard`] decides which paths a worker may open at all.
//! * With [`WorkerConfig::speculate`] on (lab 3), an idle worker asks for a
//!   backup copy of a straggling task (`wclab_speculate`) and handles it
//!   like any other; the commit gate lets only the first commit count.
//! * [`testing`] holds the pause hooks that tests use to kill a worker at a
//!   precise point of the protocol.

pub mod guard;
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;
use wclab_coord::claim::{Claim, ClaimRules, Task};
use wclab_coord::commit::{CommitOutcome, Committed};
use wclab_coord::job::JobSpec;
use wclab_coord::speculate::{self, SpeculationRules};
use wclab_coord::wake::{self, Wake};
use wclab_coord::{
    claim, commit, dead_letter, job, release, renew, CoordError, JobKeys, RetryPolicy, Store,
};
use wclab_count::{CountError, Counter, Counts, Format};

/// How long a stopping worker keeps trying to reach Redis (to commit what
/// it counted, to give back its task) before it exits anyway.
const STOPPING_PATIENCE: Duration = Duration::from_secs(10);

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The job to work on.
    pub job: String,
    /// This worker's consumer name in the group; unique per process.
    pub consumer: String,
    /// Lease length and poison threshold.
    pub rules: ClaimRules,
    /// Longest wait between two claims when there is nothing to do: the
    /// timeout of the blocking read on the tasks stream (which returns as
    /// soon as a task is appended), or the longest sleep where blocking is
    /// refused (Raft). It bounds how late an idle worker steals an expired
    /// lease or backs up a straggler.
    pub idle_poll: Duration,
    /// Counting threads for one task (`None`: all cores).
    pub threads: Option<usize>,
    /// Exit once every task of the job is committed or dead-lettered.
    pub exit_when_done: bool,
    /// Speculative execution (lab 3): when idle, count a backup copy of a
    /// task another worker has held much longer than usual. `None`: off.
    pub speculate: Option<SpeculationRules>,
    /// How many counted tasks may wait for one merged commit.
    pub batch: CommitBatch,
}

/// Limits of a merged commit.
///
/// Redis's work per commit is proportional to the commit's distinct words
/// (checking and storing its tally), so committing k tasks at once divides
/// it by up to k: the distinct words of several files overlap heavily. A
/// worker still claims one task at a time (so work stays balanced between
/// workers) and commits when a limit is reached, or as soon as nothing is
/// waiting. Meanwhile it renews the leases of the tasks it has counted. A
/// crash loses at most one batch of work, which is counted again: never
/// counts.
///
/// With `max_tasks` above 1 the limit grows with what the worker has
/// committed (a batch may hold as many tasks as the worker committed
/// before), so that the number of commits grows with the logarithm of the
/// job, not with the job: Redis's work per GB falls as jobs grow. The
/// delay limit (at most half a lease) still bounds every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitBatch {
    /// Tasks per commit at most.
    pub max_tasks: usize,
    /// Distinct words per commit at most: bounds the worker's memory and
    /// the time one commit blocks Redis (well under a microsecond per word
    /// of its tally), far below Redis's busy-script threshold (5 s).
    pub max_distinct: usize,
    /// Bytes of the commit's tally at most (by
    /// [`Counts::tally_bytes_at_most`]), checked after each task: Redis
    /// refuses an argument over its `proto-max-bulk-len` (512 MB by
    /// default), and a batch bounded by distinct words alone passes it with
    /// long unique tokens (500 k words of 1 KB), so that its commit could
    /// never succeed. A batch goes once it reaches the bound, so a commit
    /// holds at most the bound plus one task's tally; a task's own tally is
    /// bounded by its bytes (`--split-size`).
    pub max_tally_bytes: usize,
    /// Longest a counted task waits for its commit.
    pub max_delay: Duration,
    /// Whether the task limit grows with what the worker has committed
    /// (batch jobs: fewer commits per GB). Off for streams, where the first
    /// file of a merged commit waits for the counting of the others: there
    /// `max_tasks` is a fixed bound.
    pub grows: bool,
}

impl CommitBatch {
    /// One commit per task: the lowest latency (lab 3's streams).
    pub const SINGLE: CommitBatch = CommitBatch {
        max_tasks: 1,
        max_distinct: usize::MAX,
        max_tally_bytes: usize::MAX,
        max_delay: Duration::ZERO,
        grows: false,
    };

    /// Streams (lab 3): files that wait when a worker comes for one are
    /// committed together, `max_tasks` at most, so that Redis's work per
    /// file falls as the rate rises; a file that finds none behind it is
    /// committed at once (the worker commits whenever a claim finds
    /// nothing waiting). The bound is fixed, so a file waits for the
    /// counting of `max_tasks - 1` others at most.
    pub const fn stream(max_tasks: usize) -> CommitBatch {
        CommitBatch {
            max_tasks,
            max_distinct: 500_000,
            max_tally_bytes: MAX_TALLY_BYTES,
            max_delay: Duration::from_millis(100),
            grows: false,
        }
    }
}

impl Default for CommitBatch {
    fn default() -> Self {
        CommitBatch {
            max_tasks: 32,
            max_distinct: 500_000,
            max_tally_bytes: MAX_TALLY_BYTES,
            max_delay: Duration::from_secs(1),
            grows: true,
        }
    }
}

/// The default bound of a commit's tally: 64 MiB, the size of a fold's
/// call too (`wclab_coord::fold`), far below Redis's 512 MB.
pub const MAX_TALLY_BYTES: usize = 64 << 20;

/// Counted tasks waiting for one merged commit.
///
/// Only the sum of their counts is kept (each task is counted straight
/// into it), so memory is bounded by the number of distinct words, not by
/// the number of tasks. When the commit finds that some of them were
/// committed elsewhere meanwhile, the rest are counted again (rare: it
/// takes a worker slower than its lease).
#[derive(Default)]
struct Uncommitted {
    tasks: Vec<Task>,
    merged: Counts,
    /// When the oldest of them was counted.
    oldest: Option<std::time::Instant>,
}

impl Uncommitted {
    fn holds(&self, id: &str) -> bool {
        self.tasks.iter().any(|t| t.id == id)
    }

    /// Records `task`, whose words are already in `merged`.
    fn add(&mut self, task: Task) {
        self.oldest.get_or_insert_with(std::time::Instant::now);
        self.tasks.push(task);
    }
}

impl WorkerConfig {
    /// Defaults for job `job`: 5 s lease, 5 deliveries, 20 ms idle poll.
    pub fn new(job: &str) -> Self {
        WorkerConfig {
            job: job.to_owned(),
            consumer: consumer_name(),
            rules: ClaimRules {
                lease: Duration::from_secs(5),
                max_deliveries: 5,
            },
            idle_poll: Duration::from_millis(20),
            threads: None,
            exit_when_done: false,
            speculate: None,
            batch: CommitBatch::default(),
        }
    }
}

/// `host-pid-xxxx`: unique across hosts and across PID reuse.
pub fn consumer_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// The PID in a consumer name made by [`consumer_name`]; supervisors use it
/// to find which of their workers hold tasks.
pub fn consumer_pid(consumer: &str) -> Option<u32> {
    let mut parts = consumer.rsplit('-');
    parts.next()?;
    parts.next()?.parse().ok()
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Tasks committed by this worker.
    pub committed: u64,
    /// Tasks this worker counted but found already committed by another.
    pub duplicates: u64,
    /// Tasks this worker dead-lettered.
    pub dead_lettered: u64,
    /// Backup copies of straggling tasks this worker counted (whether or
    /// not its commit was the one that counted).
    pub speculated: u64,
}

/// A merged commit sent on the worker's second connection and not
/// answered yet: the worker counts its next task meanwhile. One at most, so
/// at most two batches' counts are in memory (this one's and the next's).
struct InFlight {
    ids: Vec<String>,
    handle: tokio::task::JoinHandle<(Store, Uncommitted, Result<CommitOutcome, CoordError>)>,
}

/// A worker bound to one job and one Redis.
pub struct Worker {
    store: Store,
    keys: JobKeys,
    config: WorkerConfig,
    /// The job's description, with the job stamp it was read under.
    spec: Option<(String, Arc<JobSpec>)>,
    report: WorkerReport,
    /// Counted tasks waiting for the next merged commit.
    uncommitted: Uncommitted,
    /// The connection commits go on (connected at the first commit), while
    /// no commit is in flight.
    committer: Option<Store>,
    /// The commit in flight, if any.
    in_flight: Option<InFlight>,
    /// Whether an idle worker waits in a blocking read of the tasks stream
    /// (woken by the next append) rather than sleeping: off on a Raft
    /// cluster, and once the server refused it.
    block_when_idle: bool,
}

/// What became of one task.
enum Handled {
    /// Counted into the uncommitted batch; waiting for its commit.
    Counted(Task),
    DeadLettered,
    /// A transient failure: left pending, to be retried after the lease.
    LeftPending,
    /// Shutdown was requested while counting.
    Interrupted,
}

impl Worker {
    /// A worker for `config.job` on `store`.
    pub fn new(store: Store, config: WorkerConfig) -> Self {
        let keys = JobKeys::new(&config.job);
        let block_when_idle = !store.target().is_cluster();
        Worker {
            block_when_idle,
            store,
            keys,
            config,
            spec: None,
            report: WorkerReport::default(),
            uncommitted: Uncommitted::default(),
            committer: None,
            in_flight: None,
        }
    }

    /// Whether `id` is counted and not committed yet (waiting, or in the
    /// commit in flight).
    fn holds(&self, id: &str) -> bool {
        self.uncommitted.holds(id)
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.ids.iter().any(|i| i == id))
    }

    /// Runs until `stop` becomes true (or, with `exit_when_done`, until the
    /// job is finished). Errors are only those retrying cannot fix: a wrong
    /// password, a Redis that gave up being reachable, a protocol bug.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
    ) -> Result<WorkerReport, CoordError> {
        let span =
            tracing::info_span!("worker", consumer = %self.config.consumer, job = %self.config.job);
        let _enter = span.enter();
        tracing::info!("worker started");
        let mut idle = Duration::from_millis(1);
        while !*stop.borrow() {
            match claim::claim(
                &mut self.store,
                &self.keys,
                &self.config.consumer,
                self.config.rules,
            )
            .await?
            {
                Claim::Idle => {
                    // Nothing waiting: commit what is counted now.
                    self.flush(&mut stop).await?;
                    if let Some(task) = self.speculative_task().await? {
                        idle = Duration::from_millis(1);
                        self.report.speculated += 1;
                        let handled = self.handle(task, &mut stop).await?;
                        let stop_now = self.tally(handled);
                        self.flush(&mut stop).await?;
                        if stop_now {
                            break;
                        }
                        continue;
                    }
                    if self.config.exit_when_done
                        && job::status(&mut self.store, &self.keys)
                            .await?
                            .is_finished()
                    {
                        break;
                    }
                    if self.block_when_idle {
                        // Woken by the next task's append: the poll's sleep
                        // was what the first file of a micro-batch waited.
                        tokio::select! {
                            woke = wake::wait_for_task(&mut self.store, &self.keys, self.config.idle_poll) => {
                                if woke? == Wake::Unsupported {
                                    tracing::info!("the server refuses a blocking read of the stream (Raft, or an older ACL): polling instead");
                                    self.block_when_idle = false;
                                }
                            }
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = stop.changed() => {}
                    }
                    idle = (idle * 2).min(self.config.idle_poll);
                }
                Claim::Buried(id) => {
                    tracing::warn!(task = %id, "task dead-lettered (delivered too often, or not submitted by the job)");
                    self.report.dead_lettered += 1;
                }
                Claim::Task(task) if self.holds(&task.id) => {
                    // Handed back to us: a restored Redis forgot the
                    // delivery, or our own lease ran out. We hold its counts
                    // already (counting is deterministic); counting it again
                    // would put it twice into one commit.
                    tracing::debug!(task = %task.id, "claimed a task we hold uncommitted; not counting it again");
                    if self.batch_is_full() {
                        self.flush(&mut stop).await?;
                    }
                }
                Claim::Task(task) => {
                    idle = Duration::from_millis(1);
                    // A task delivered before may be what kills workers: it
                    // is counted and committed alone, so that it cannot take
                    // a batch of innocent tasks down with it, again and again.
                    let suspect = task.deliveries > 1;
                    if suspect {
                        self.flush(&mut stop).await?;
                    } else if self.batch_is_full() || self.commit_line_is_free() {
                        // Sent now, after this task's claim (which Redis
                        // then answers first), so that the commit runs in
                        // Redis while this task is counted here.
                        self.send(&mut stop).await?;
                    }
                    let handled = self.handle(task, &mut stop).await?;
                    if self.tally(handled) {
                        break;
                    }
                    if suspect {
                        self.flush(&mut stop).await?;
                    }
                }
            }
        }
        // Stopping: what is counted is committed, not thrown away, but a
        // Redis that stays away must not keep a stopping worker alive.
        self.store
            .set_policy(RetryPolicy::for_duration(STOPPING_PATIENCE));
        if let Some(c) = &mut self.committer {
            c.set_policy(RetryPolicy::for_duration(STOPPING_PATIENCE));
        }
        self.flush(&mut stop).await?;
        tracing::info!(?self.report, "worker stopping");
        Ok(self.report)
    }

    /// Counts what became of a task; true if the worker must stop.
    fn tally(&mut self, handled: Handled) -> bool {
        match handled {
            Handled::Counted(task) => self.uncommitted.add(task),
            Handled::DeadLettered => self.report.dead_lettered += 1,
            Handled::LeftPending => {}
            Handled::Interrupted => return true,
        }
        false
    }

    fn batch_is_full(&self) -> bool {
        let b = self.config.batch;
        // Uncommitted leases are renewed only while counting: never let a
        // batch wait longer than half a lease.
        let max_delay = b.max_delay.min(self.config.rules.lease / 2);
        let u = &self.uncommitted;
        let max_tasks = if b.grows && b.max_tasks > 1 {
            b.max_tasks.max(self.report.committed as usize)
        } else {
            b.max_tasks
        };
        u.tasks.len() >= max_tasks
            || u.merged.distinct() >= b.max_distinct
            || u.merged.tally_bytes_at_most() >= b.max_tally_bytes
            || u.oldest.is_some_and(|t| t.elapsed() >= max_delay)
    }

    /// With a fixed bound (streams), whether the counted tasks should go
    /// now because no commit is in flight: a group commit. While Redis
    /// answers commits faster than files are counted, every file is
    /// committed alone, at once; when commits queue up (Redis busy, files
    /// waiting), the files counted meanwhile go together in the next one,
    /// up to `max_tasks`, so Redis's work per file falls as the rate
    /// rises, without a delay at low rates.
    fn commit_line_is_free(&self) -> bool {
        !self.config.batch.grows
            && !self.uncommitted.tasks.is_empty()
            && self
                .in_flight
                .as_ref()
                .is_none_or(|f| f.handle.is_finished())
    }

    /// Commits every counted task and waits for every answer.
    async fn flush(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), CoordError> {
        self.send(stop).await?;
        self.settle(stop).await
    }

    /// Sends the counted tasks' merged commit on the second connection
    /// and returns without its answer, once the previous commit's answer
    /// is in (one commit in flight at most).
    async fn send(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), CoordError> {
        self.settle(stop).await?;
        if self.uncommitted.tasks.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.uncommitted);
        let mut store = match self.committer.take() {
            Some(s) => s,
            None => Store::connect(self.store.target().clone(), RetryPolicy::FOREVER).await?,
        };
        let keys = self.keys.clone();
        let consumer = self.config.consumer.clone();
        let ids = batch.tasks.iter().map(|t| t.id.clone()).collect();
        let span = tracing::debug_span!("commit", tasks = batch.tasks.len());
        let handle = tokio::spawn(
            async move {
                // After counting, before the FCALL, without renewals.
                let _ =
                    tokio::task::spawn_blocking(|| testing::pause_at(testing::Point::BeforeCommit))
                        .await;
                let done: Vec<Committed> = batch
                    .tasks
                    .iter()
                    .map(|t| Committed {
                        id: &t.id,
                        bytes: t.end.saturating_sub(t.start),
                    })
                    .collect();
                let started = std::time::Instant::now();
                let outcome =
                    commit::commit(&mut store, &keys, &consumer, &done, batch.merged.iter()).await;
                tracing::debug!(
                    words = batch.merged.distinct(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "commit answered"
                );
                drop(done);
                (store, batch, outcome)
            }
            .instrument(span),
        );
        self.in_flight = Some(InFlight { ids, handle });
        Ok(())
    }

    /// Waits for the commit in flight, if any. Tasks that are no longer
    /// pending (a thief committed them first) are dropped and the rest
    /// counted again and committed: their counts are never added twice,
    /// and the others' are never lost.
    async fn settle(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), CoordError> {
        while let Some(flight) = self.in_flight.take() {
            let (store, mut batch, outcome) = match flight.handle.await {
                Ok(answer) => answer,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            self.committer = Some(store);
            match outcome? {
                CommitOutcome::Applied => {
                    tracing::debug!(tasks = batch.tasks.len(), "committed");
                    self.report.committed += batch.tasks.len() as u64;
                }
                CommitOutcome::NotPending(gone) => {
                    tracing::info!(tasks = ?gone, "task(s) no longer pending (already committed by another worker, or forgotten by a restored Redis): their counts are not added");
                    self.report.duplicates += gone.len() as u64;
                    let rest: Vec<Task> = batch
                        .tasks
                        .drain(..)
                        .filter(|t| !gone.contains(&t.id))
                        .collect();
                    // Counted again (the merged counts cannot be taken
                    // apart), with whatever was counted meanwhile, and
                    // committed.
                    for task in rest {
                        match self.handle(task, stop).await? {
                            Handled::Counted(t) => self.uncommitted.add(t),
                            Handled::DeadLettered => self.report.dead_lettered += 1,
                            // Left pending: stolen and counted after the lease.
                            Handled::LeftPending | Handled::Interrupted => {}
                        }
                    }
                    // Sends (nothing is in flight now); the loop waits.
                    Box::pin(self.send(stop)).await?;
                }
            }
        }
        Ok(())
    }

    /// With speculation on, a backup copy of a straggling task, if any.
    async fn speculative_task(&mut self) -> Result<Option<Task>, CoordError> {
        let Some(rules) = self.config.speculate else {
            return Ok(None);
        };
        let task =
            speculate::speculate(&mut self.store, &self.keys, &self.config.consumer, rules).await?;
        if let Some(t) = &task {
            tracing::info!(task = %t.id, path = %t.path, "speculative copy of a straggling task");
        }
        Ok(task)
    }

    /// The job's description for `task`. A long-running worker outlives
    /// jobs, and a job submitted again under the same name may have other
    /// roots or another format: the description is read again whenever
    /// the job's stamp in the claim differs from the one it was read under.
    async fn job_spec(&mut self, task: &Task) -> Result<Option<Arc<JobSpec>>, CoordError> {
        if let (Some(stamp), Some((read_under, spec))) = (&task.job_stamp, &self.spec) {
            if stamp == read_under {
                return Ok(Some(spec.clone()));
            }
        }
        let spec = job::spec(&mut self.store, &self.keys).await?.map(Arc::new);
        self.spec = match (&task.job_stamp, &spec) {
            (Some(stamp), Some(spec)) => Some((stamp.clone(), spec.clone())),
            _ => None,
        };
        Ok(spec)
    }

    async fn handle(
        &mut self,
        task: Task,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Handled, CoordError> {
        let span = tracing::debug_span!("task", id = %task.id, path = %task.path, attempt = task.deliveries);
        let _enter = span.enter();
        testing::pause_at(testing::Point::AfterClaim);

        let Some(spec) = self.job_spec(&task).await? else {
            return self
                .bury(
                    &task,
                    "the job has no description in Redis (no roots): refusing to open anything",
                )
                .await;
        };
        let path = match guard::check(&spec.roots, &task.path) {
            Ok(p) => p,
            Err(reason) => return self.bury(&task, &reason.to_string()).await,
        };
        let counting_started = std::time::Instant::now();
        let counted = tokio::select! {
            r = self.count_renewing(&task, path, &spec) => r?,
            _ = stop.changed() => {
                // Told to stop: give the task back rather than make the
                // others wait a lease for it. The batch's merged counts
                // were being added to on the counting thread, which is
                // left behind: its tasks go back too, uncommitted.
                self.store.set_policy(RetryPolicy::for_duration(STOPPING_PATIENCE));
                let held = std::mem::take(&mut self.uncommitted);
                for t in std::iter::once(&task).chain(&held.tasks) {
                    let given_back = release::release(
                        &mut self.store,
                        &self.keys,
                        &self.config.consumer,
                        self.config.rules.lease,
                        &t.id,
                    )
                    .await
                    .unwrap_or(false);
                    tracing::info!(task = %t.id, given_back, "stopping in the middle of a task: given back");
                }
                return Ok(Handled::Interrupted);
            }
        };
        match counted {
            Ok(()) => {}
            Err(e) if e.is_permanent() => return self.bury(&task, &e.to_string()).await,
            Err(e) => {
                tracing::warn!(error = %e, "transient error; the task will be retried after its lease");
                return Ok(Handled::LeftPending);
            }
        };
        tracing::debug!(
            bytes = task.end - task.start,
            took_ms = counting_started.elapsed().as_millis() as u64,
            "counted"
        );
        Ok(Handled::Counted(task))
    }

    /// Counts into the uncommitted batch on a blocking thread while
    /// renewing the lease every quarter of it, so that a live but slow
    /// worker is never robbed: with lab 3's 1 s lease, every 250 ms, which
    /// leaves three renewals' slack to a worker held to a sliver of a CPU
    /// (SIGSTOP cycles) or to a Redis call that is slow to answer. The tasks counted earlier and waiting for
    /// their commit are renewed too. On a counting error nothing is added.
    async fn count_renewing(
        &mut self,
        task: &Task,
        path: PathBuf,
        spec: &JobSpec,
    ) -> Result<Result<(), CountError>, CoordError> {
        let format = match &spec.csv_column {
            Some(column) => Format::Csv {
                column: column.clone(),
            },
            None => Format::Text,
        };
        let counter = Counter::new().format(format).threads(self.config.threads);
        let range = task.start..task.end;
        let mut merged = std::mem::take(&mut self.uncommitted.merged);
        let mut counting = tokio::task::spawn_blocking(move || {
            testing::pause_at(testing::Point::WhileCounting);
            let r = counter.count_file_into(&mut merged, &path, Some(range));
            (merged, r)
        });
        let mut tick = tokio::time::interval(self.config.rules.lease / 4);
        tick.tick().await;
        loop {
            tokio::select! {
                joined = &mut counting => {
                    return Ok(match joined {
                        Ok((merged, r)) => {
                            self.uncommitted.merged = merged;
                            r
                        }
                        // The merged counts went down with the thread: the
                        // batch cannot be committed; its tasks are stolen
                        // and counted again after their leases.
                        Err(panic) => {
                            self.uncommitted = Uncommitted::default();
                            Err(CountError::Io {
                                path: PathBuf::from(&task.path),
                                source: std::io::Error::other(format!("counting panicked: {panic}")),
                            })
                        }
                    });
                }
                _ = tick.tick() => {
                    let held: Vec<String> = std::iter::once(&task.id)
                        .chain(self.uncommitted.tasks.iter().map(|t| &t.id))
                        .cloned()
                        .collect();
                    for id in held {
                        if !renew::renew(&mut self.store, &self.keys, &self.config.consumer, &id).await? {
                            tracing::info!(task = %id, "lease lost (stolen while we were slow); the commit decides");
                        }
                    }
                }
            }
        }
    }

    async fn bury(&mut self, task: &Task, reason: &str) -> Result<Handled, CoordError> {
        tracing::warn!(reason, "dead-lettering task");
        dead_letter::dead_letter(
            &mut self.store,
            &self.keys,
            &self.config.consumer,
            &task.id,
            reason,
        )
        .await?;
        Ok(Handled::DeadLettered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_name_gives_its_pid() {
        assert_eq!(consumer_pid("vm-12692-bf86"), Some(12692));
        assert_eq!(consumer_pid("my-host-7-0001"), Some(7));
        assert_eq!(consumer_pid("nopid"), None);
        assert_eq!(
            consumer_pid(&consumer_name()),
            Some(std::process::id()),
            "the two agree"
        );
    }
}
