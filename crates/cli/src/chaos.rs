//! The labs' faults, injected by `wclab run` while it waits for its job:
//! worker kills (lab 2), checkpoints and Redis crashes (lab 4a).
//!
//! Faults are placed at seeded points of the job's *progress* (tasks handed
//! out), not of wall time: the same seed hits the same part of the job on a
//! fast machine and on a slow one, and every fault asked for happens while
//! work is in flight, or is reported as not done.
//!
//! Redis crashes come in the three kinds that lab 4a is about: before the
//! first checkpoint (the restored Redis starts from nothing), during a
//! BGSAVE (the half-written snapshot dies with the server; the previous one
//! is restored), and between checkpoints after commits the last snapshot
//! does not have (so that some tasks must be counted again). Before each
//! kill, commits are frozen with `CLIENT PAUSE ... WRITE`, so that the
//! number of tasks committed at the instant of the crash is exact, and the
//! number recomputed is exactly what the restore forgot.

use crate::report::{CrashKind, RedisCrash};
use crate::supervisor::Supervisor;
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use wclab_coord::checkpoint::{self, Bgsave};
use wclab_coord::{job, JobKeys, Store};
use wclab_server::RedisServer;

/// What to inject.
#[derive(Debug, Clone, Default)]
pub struct ChaosPlan {
    /// Workers to kill (lab 2).
    pub worker_kills: usize,
    /// Times to kill the private Redis (lab 4a).
    pub redis_kills: usize,
    /// How long Redis stays down at each kill.
    pub redis_downtime: Duration,
    /// BGSAVE period.
    pub checkpoint_every: Option<Duration>,
    /// Seed of every random choice.
    pub seed: u64,
}

impl ChaosPlan {
    /// The poison threshold to use: a healthy task can be hit by every
    /// fault, so under chaos it must be above their number.
    pub fn max_deliveries(&self, asked: u32) -> u32 {
        let faults = (self.worker_kills + self.redis_kills) as u32;
        if faults == 0 {
            asked
        } else {
            asked.max(faults + 3)
        }
    }
}

/// Per-BGSAVE delay (µs per key) that makes a snapshot last long enough to
/// be killed in the middle of it.
const SLOW_SAVE_US_PER_KEY: u64 = 200_000;

/// The faults of one job, on their schedules.
pub struct Chaos {
    rng: ChaCha8Rng,
    /// Tasks handed out at which a worker is to be killed, ascending.
    worker_kill_at: VecDeque<u64>,
    /// Redis crashes to come, with the progress at which each is due.
    redis_plan: VecDeque<(CrashKind, u64)>,
    downtime: Duration,
    checkpoint_every: Option<Duration>,
    next_checkpoint: Instant,
    /// A BGSAVE is running; the tasks committed right after it started (an
    /// upper bound of what the snapshot holds).
    bgsave_running: Option<u64>,
    /// `rdb_saves` of the running server already accounted for.
    saves_seen: u64,
    /// Upper bound of the tasks committed in the last completed snapshot.
    done_at_last_checkpoint: Option<u64>,
    /// The most tasks seen handed out so far. The worker kills' schedule
    /// and messages use it: `committed` and the holders are two reads, and
    /// a commit between them makes their sum dip by the tasks it
    /// acknowledged ("160 tasks handed out", then "159").
    handed_out: u64,
    /// Workers killed so far.
    pub workers_killed: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// The Redis crashes, in order.
    pub crashes: Vec<RedisCrash>,
    /// Faults asked for.
    pub plan: ChaosPlan,
}

fn spread(rng: &mut ChaCha8Rng, n: usize, total: u64, from: f64, to: f64) -> Vec<u64> {
    let mut at: Vec<u64> = (0..n)
        .map(|_| ((rng.random_range(from..to) * total as f64).ceil() as u64).max(1))
        .collect();
    at.sort_unstable();
    at
}

impl Chaos {
    /// The schedule of `plan` for a job of `total_tasks` tasks.
    pub fn new(plan: ChaosPlan, total_tasks: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let worker_kill_at = spread(&mut rng, plan.worker_kills, total_tasks, 0.05, 0.9).into();
        let mut kinds = Vec::new();
        if plan.redis_kills > 0 {
            if plan.checkpoint_every.is_some() {
                kinds.push(CrashKind::BeforeFirstCheckpoint);
                let mut rest: Vec<CrashKind> = (1..plan.redis_kills)
                    .map(|i| {
                        if i % 2 == 1 {
                            CrashKind::DuringBgsave
                        } else {
                            CrashKind::BetweenCheckpoints
                        }
                    })
                    .collect();
                rest.shuffle(&mut rng);
                kinds.extend(rest);
            } else {
                kinds.extend((0..plan.redis_kills).map(|_| CrashKind::NoCheckpoint));
            }
        }
        let mut redis_plan = VecDeque::new();
        if let Some((first, rest)) = kinds.split_first() {
            let first_at = spread(&mut rng, 1, total_tasks, 0.05, 0.25);
            redis_plan.push_back((*first, first_at[0]));
            let at = spread(&mut rng, rest.len(), total_tasks, 0.3, 0.9);
            redis_plan.extend(rest.iter().copied().zip(at));
        }
        Chaos {
            rng,
            worker_kill_at,
            redis_plan,
            downtime: plan.redis_downtime,
            checkpoint_every: plan.checkpoint_every,
            next_checkpoint: Instant::now() + plan.checkpoint_every.unwrap_or_default(),
            bgsave_running: None,
            saves_seen: 0,
            done_at_last_checkpoint: None,
            handed_out: 0,
            workers_killed: 0,
            checkpoints: 0,
            crashes: Vec::new(),
            plan,
        }
    }

    /// Tasks counted again after all the crashes.
    pub fn recomputed(&self) -> u64 {
        self.crashes.iter().map(|c| c.recomputed).sum()
    }

    /// Faults asked for but not done when the job finished (it ended
    /// before they were due), as a sentence, if any.
    pub fn not_done(&self) -> Option<String> {
        let workers = self.worker_kill_at.len();
        let redis = self.redis_plan.len();
        (workers + redis > 0).then(|| {
            format!(
                "the job finished before {workers} worker kill(s) and {redis} Redis kill(s) were due (use a bigger input)"
            )
        })
    }

    fn first_kill_pending(&self) -> bool {
        matches!(
            self.redis_plan.front(),
            Some((CrashKind::BeforeFirstCheckpoint, _))
        )
    }

    /// One round of the schedule, between two looks at the job.
    pub async fn step(
        &mut self,
        store: &mut Store,
        keys: &JobKeys,
        committed: u64,
        supervisor: &mut Supervisor,
        server: Option<&mut RedisServer>,
        say: &dyn Fn(String),
    ) -> Result<()> {
        self.checkpoint_step(store, keys).await?;
        if self.worker_kill_at.is_empty() && self.redis_plan.is_empty() {
            return Ok(());
        }
        // Tasks handed out: committed, or held (being counted, or counted
        // and waiting for a merged commit: a task is pending until then).
        let holders = job::holders(store, keys).await?;
        let delivered = committed + holders.iter().map(|(_, n)| n).sum::<u64>();
        self.handed_out = self.handed_out.max(delivered);
        if self
            .worker_kill_at
            .front()
            .is_some_and(|&at| self.handed_out >= at)
        {
            self.kill_a_worker(&holders, supervisor, self.handed_out, say);
        }
        let Some(server) = server else {
            return Ok(());
        };
        let Some(&(kind, at)) = self.redis_plan.front() else {
            return Ok(());
        };
        if delivered < at || self.bgsave_running.is_some() {
            return Ok(());
        }
        let due = match kind {
            CrashKind::BeforeFirstCheckpoint | CrashKind::NoCheckpoint => committed >= 1,
            CrashKind::BetweenCheckpoints => self
                .done_at_last_checkpoint
                .is_some_and(|done| committed > done),
            CrashKind::DuringBgsave => self.start_slow_bgsave(store).await?,
        };
        if due {
            self.redis_plan.pop_front();
            self.crash(kind, store, keys, server, supervisor, say)
                .await?;
        }
        Ok(())
    }

    /// Kills one of our workers among `holders` (consumers and the tasks
    /// they hold): killing an idle one shows nothing.
    fn kill_a_worker(
        &mut self,
        holders: &[(String, u64)],
        supervisor: &mut Supervisor,
        delivered: u64,
        say: &dyn Fn(String),
    ) {
        let ours = supervisor.live_pids();
        let mut holding: Vec<u32> = holders
            .iter()
            .filter(|(_, n)| *n > 0)
            .filter_map(|(consumer, _)| wclab_worker::consumer_pid(consumer))
            .filter(|pid| ours.contains(pid))
            .collect();
        holding.sort_unstable();
        if holding.is_empty() {
            return; // next round
        }
        let pid = holding[self.rng.random_range(0..holding.len())];
        if supervisor.kill_pid(pid) {
            self.worker_kill_at.pop_front();
            self.workers_killed += 1;
            say(format!(
                "chaos: kill -9 worker {pid}, which holds a task ({delivered} tasks handed out; kill {} of {})",
                self.workers_killed, self.plan.worker_kills
            ));
        }
    }

    async fn checkpoint_step(&mut self, store: &mut Store, keys: &JobKeys) -> Result<()> {
        let Some(every) = self.checkpoint_every else {
            return Ok(());
        };
        if let Some(done_then) = self.bgsave_running {
            let p = checkpoint::persistence(store).await?;
            if !p.bgsave_in_progress {
                self.bgsave_running = None;
                if p.saves > self.saves_seen && p.last_bgsave_ok {
                    self.checkpoints += 1;
                    self.done_at_last_checkpoint = Some(done_then);
                    tracing::info!(
                        checkpoints = self.checkpoints,
                        tasks_at_most = done_then,
                        "checkpoint written"
                    );
                } else {
                    tracing::warn!("a BGSAVE failed; see the Redis log");
                }
                self.saves_seen = p.saves;
            }
            return Ok(());
        }
        // The first crash comes before any checkpoint, so that its restore
        // starts from nothing: hold the first BGSAVE back until then.
        if Instant::now() < self.next_checkpoint || self.first_kill_pending() {
            return Ok(());
        }
        self.next_checkpoint = Instant::now() + every;
        if checkpoint::bgsave(store).await? == Bgsave::Started {
            // Read after BGSAVE answered, i.e. after its fork: the snapshot
            // holds at most this many committed tasks.
            self.bgsave_running = Some(job::status(store, keys).await?.files_done);
        }
        Ok(())
    }

    /// Starts a BGSAVE slowed down enough to be killed while it runs;
    /// true once one is running.
    async fn start_slow_bgsave(&mut self, store: &mut Store) -> Result<bool> {
        let slow = redis::cmd("CONFIG")
            .arg("SET")
            .arg("rdb-key-save-delay")
            .arg(SLOW_SAVE_US_PER_KEY)
            .to_owned();
        store.call::<()>("slow the next BGSAVE down", &slow).await?;
        if checkpoint::bgsave(store).await? == Bgsave::Skipped {
            return Ok(false);
        }
        Ok(checkpoint::persistence(store).await?.bgsave_in_progress)
    }

    async fn crash(
        &mut self,
        kind: CrashKind,
        store: &mut Store,
        keys: &JobKeys,
        server: &mut RedisServer,
        supervisor: &mut Supervisor,
        say: &dyn Fn(String),
    ) -> Result<()> {
        let bgsave_in_progress = checkpoint::persistence(store).await?.bgsave_in_progress;
        // Freeze every commit, so that this count is exactly what dies.
        let pause = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(30_000)
            .arg("WRITE")
            .to_owned();
        store.call::<()>("pause commits", &pause).await?;
        let before = job::status(store, keys).await?.files_done;
        server.kill();
        let down = Instant::now();
        say(format!(
            "chaos: kill -9 redis-server ({}; {before} tasks committed){}",
            kind.describe(),
            if bgsave_in_progress {
                ", its BGSAVE child with it"
            } else {
                ""
            }
        ));
        // The workers ride the outage out on their own...
        tokio::time::sleep(self.downtime).await;
        // ...but are frozen for the instant of the restart, so that what
        // the restored Redis remembers is read before any new commit.
        supervisor.signal_all(nix::sys::signal::Signal::SIGSTOP);
        let restarted = tokio::task::block_in_place(|| server.restart());
        let measured = async {
            restarted?;
            // A restored Redis has the functions of its dump, or none:
            // make sure it runs exactly ours (FUNCTION LOAD REPLACE).
            store.load_library().await?;
            anyhow::Ok(job::status(store, keys).await?.files_done)
        }
        .await;
        supervisor.signal_all(nix::sys::signal::Signal::SIGCONT);
        let after = measured?;
        let down_ms = down.elapsed().as_millis() as u64;
        self.bgsave_running = None;
        self.saves_seen = 0;
        let crash = RedisCrash {
            kind,
            committed_before: before,
            committed_after_restore: after,
            recomputed: before.saturating_sub(after),
            bgsave_in_progress,
            down_ms,
        };
        say(format!(
            "chaos: redis-server back after {down_ms} ms on port {}, from {}: it remembers {after} committed tasks, {} to count again",
            server.port(),
            server.dir().join("dump.rdb").display(),
            crash.recomputed
        ));
        self.crashes.push(crash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_every_kind_of_crash_and_is_seeded() {
        let plan = ChaosPlan {
            worker_kills: 5,
            redis_kills: 4,
            checkpoint_every: Some(Duration::from_millis(250)),
            seed: 7,
            ..Default::default()
        };
        let a = Chaos::new(plan.clone(), 100);
        let b = Chaos::new(plan.clone(), 100);
        assert_eq!(a.redis_plan, b.redis_plan);
        assert_eq!(a.worker_kill_at, b.worker_kill_at);
        let kinds: Vec<CrashKind> = a.redis_plan.iter().map(|k| k.0).collect();
        assert_eq!(kinds[0], CrashKind::BeforeFirstCheckpoint);
        assert!(kinds.contains(&CrashKind::DuringBgsave));
        assert!(kinds.contains(&CrashKind::BetweenCheckpoints));
        assert!(a.worker_kill_at.iter().all(|&t| (1..=90).contains(&t)));
        assert_eq!(plan.max_deliveries(5), 12);
        assert_eq!(ChaosPlan::default().max_deliveries(5), 5);
    }
}
