//! The nemesis: faults at seeded random moments against a live cluster.
//!
//! A schedule is quiet time (1–2 s), a fault, its duration, its heal,
//! again, until the run's time is up; then everything is healed (stopped
//! nodes resumed, dead ones restarted, links restored). Which fault, which
//! follower, how long: all drawn from the seed. Which node leads is the
//! cluster's doing, so a schedule replays the same choices, not
//! necessarily the same history.

use crate::cluster::Cluster;
use crate::history::{Fault, Recorder};
use crate::partition::Partitioner;
use anyhow::Result;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A kind of fault.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Nemesis {
    /// No faults (a baseline).
    None,
    /// SIGKILL of the leader (sidecar and redis-server), restarted from its directory after 1–3 s.
    KillLeader,
    /// SIGKILL of a follower, restarted after 1–3 s.
    KillFollower,
    /// SIGKILL of two nodes, the leader among them (on 5 nodes: f = 2), restarted after 1–3 s.
    KillTwo,
    /// SIGSTOP of the leader's sidecar for 2–6 s.
    PauseLeader,
    /// The leader cut off from every other node for 2–5 s.
    PartitionLeader,
    /// A follower cut off from every other node for 2–5 s.
    PartitionFollower,
    /// The nodes split at random into a minority and a majority for 2–5 s.
    PartitionMinority,
    /// SIGKILL of the leader's redis-server alone; the node restarted if it stopped.
    KillRedis,
    /// A node killed, its directory deleted, restarted empty at once.
    WipeNode,
    /// A spare node started and joined (`wclab raft join`) during load.
    Membership,
    /// Issue 21's scenario: a minority of followers cut off while writes
    /// commit on the rest; the rest killed, one of them wiped and restarted
    /// empty, the minority healed; the others restarted 2 s later.
    LostDisk,
    /// A random fault of the above (all but none and lost-disk) each time.
    Mix,
}

impl Nemesis {
    /// Every nemesis, in the matrix's order.
    pub const ALL: [Nemesis; 13] = [
        Nemesis::None,
        Nemesis::KillLeader,
        Nemesis::KillFollower,
        Nemesis::KillTwo,
        Nemesis::PauseLeader,
        Nemesis::PartitionLeader,
        Nemesis::PartitionFollower,
        Nemesis::PartitionMinority,
        Nemesis::KillRedis,
        Nemesis::WipeNode,
        Nemesis::Membership,
        Nemesis::LostDisk,
        Nemesis::Mix,
    ];

    /// The kebab-case name.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// How many spare nodes a run with this nemesis needs.
    pub fn spares(self) -> usize {
        match self {
            Nemesis::Membership => 2,
            Nemesis::Mix => 1,
            _ => 0,
        }
    }
}

/// What to undo when a fault ends.
enum Undo {
    Nothing,
    Restart(Vec<u64>),
    Resume(u64),
    Heal,
    /// Restart these after healing the partition.
    HealThenRestart(Vec<u64>),
}

/// Runs faults until `stop_at`, then heals everything. Returns the faults,
/// stamped with the recorder's clock.
pub fn run(
    nemesis: Nemesis,
    cluster: &mut Cluster,
    partitioner: &mut dyn Partitioner,
    rng: &mut ChaCha8Rng,
    clock: &Recorder,
    stop_at: Instant,
) -> Vec<Fault> {
    let mut faults = Vec::new();
    let quiet = |rng: &mut ChaCha8Rng| Duration::from_millis(rng.random_range(1000..2000));
    std::thread::sleep(quiet(rng).min(stop_at.saturating_duration_since(Instant::now())));
    while nemesis != Nemesis::None && Instant::now() + Duration::from_millis(500) < stop_at {
        let kind = match nemesis {
            Nemesis::Mix => *[
                Nemesis::KillLeader,
                Nemesis::KillFollower,
                Nemesis::KillTwo,
                Nemesis::PauseLeader,
                Nemesis::PartitionLeader,
                Nemesis::PartitionFollower,
                Nemesis::PartitionMinority,
                Nemesis::KillRedis,
                Nemesis::WipeNode,
                Nemesis::Membership,
            ]
            .choose(rng)
            .expect("non-empty"),
            k => k,
        };
        cluster.reap();
        let start = clock.now();
        let (nodes, detail, hold, undo) = match inject(kind, cluster, partitioner, rng) {
            Ok(x) => x,
            Err(e) => (
                Vec::new(),
                format!("not injected: {e:#}"),
                Duration::ZERO,
                Undo::Nothing,
            ),
        };
        tracing::info!(fault = %kind.name(), ?nodes, %detail, "fault");
        std::thread::sleep(hold);
        let detail = match heal(undo, cluster, partitioner) {
            Ok(()) => detail,
            Err(e) => format!("{detail}; heal: {e:#}"),
        };
        faults.push(Fault {
            fault: kind.name(),
            start,
            end: Some(clock.now()),
            nodes,
            detail,
        });
        std::thread::sleep(quiet(rng).min(stop_at.saturating_duration_since(Instant::now())));
    }
    heal_all(cluster, partitioner);
    faults
}

/// Heals everything: links restored, stopped nodes resumed, dead ones
/// restarted; waits for a leader.
pub fn heal_all(cluster: &mut Cluster, partitioner: &mut dyn Partitioner) {
    if let Err(e) = cluster.ensure_up() {
        tracing::warn!(error = %e, "restarting nodes at the end");
    }
    if let Err(e) = partitioner.heal(cluster) {
        tracing::warn!(error = %e, "healing partitions at the end");
    }
    if cluster.wait_leader(Duration::from_secs(30)).is_none() {
        tracing::warn!("no leader 30 s after the final heal");
    }
}

fn leader_or_any(cluster: &Cluster, rng: &mut ChaCha8Rng) -> (u64, bool) {
    match cluster.wait_leader(Duration::from_secs(10)) {
        Some(l) => (l, true),
        None => {
            let ids = cluster.member_ids();
            (*ids.choose(rng).expect("members"), false)
        }
    }
}

fn followers(cluster: &Cluster, leader: u64) -> Vec<u64> {
    cluster
        .member_ids()
        .into_iter()
        .filter(|&i| i != leader)
        .collect()
}

type Injected = (Vec<u64>, String, Duration, Undo);

fn inject(
    kind: Nemesis,
    cluster: &mut Cluster,
    partitioner: &mut dyn Partitioner,
    rng: &mut ChaCha8Rng,
) -> Result<Injected> {
    let ms =
        |rng: &mut ChaCha8Rng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..hi));
    let who = |l: bool| {
        if l {
            "leader"
        } else {
            "no leader found; a random node"
        }
    };
    Ok(match kind {
        Nemesis::None | Nemesis::Mix => (vec![], String::new(), Duration::ZERO, Undo::Nothing),
        Nemesis::KillLeader => {
            let (l, found) = leader_or_any(cluster, rng);
            cluster.kill(l);
            (
                vec![l],
                format!("SIGKILL of node {l} ({})", who(found)),
                ms(rng, 1000, 3000),
                Undo::Restart(vec![l]),
            )
        }
        Nemesis::KillFollower => {
            let (l, _) = leader_or_any(cluster, rng);
            let f = *followers(cluster, l).choose(rng).expect("a follower");
            cluster.kill(f);
            (
                vec![f],
                format!("SIGKILL of follower {f}"),
                ms(rng, 1000, 3000),
                Undo::Restart(vec![f]),
            )
        }
        Nemesis::KillTwo => {
            let (l, found) = leader_or_any(cluster, rng);
            let f = *followers(cluster, l).choose(rng).expect("a follower");
            cluster.kill(l);
            cluster.kill(f);
            (
                vec![l, f],
                format!("SIGKILL of node {l} ({}) and follower {f}", who(found)),
                ms(rng, 1000, 3000),
                Undo::Restart(vec![l, f]),
            )
        }
        Nemesis::PauseLeader => {
            let (l, found) = leader_or_any(cluster, rng);
            cluster.pause(l);
            let d = ms(rng, 2000, 6000);
            (
                vec![l],
                format!("SIGSTOP of node {l} ({}) for {d:?}", who(found)),
                d,
                Undo::Resume(l),
            )
        }
        Nemesis::PartitionLeader | Nemesis::PartitionFollower => {
            let (l, found) = leader_or_any(cluster, rng);
            let (x, what) = if kind == Nemesis::PartitionLeader {
                (l, who(found).to_owned())
            } else {
                (
                    *followers(cluster, l).choose(rng).expect("a follower"),
                    "a follower".to_owned(),
                )
            };
            let rest: BTreeSet<u64> = cluster
                .member_ids()
                .into_iter()
                .filter(|&i| i != x)
                .collect();
            partitioner.cut(cluster, &[BTreeSet::from([x]), rest])?;
            (
                vec![x],
                format!("node {x} ({what}) cut off from the others"),
                ms(rng, 2000, 5000),
                Undo::Heal,
            )
        }
        Nemesis::PartitionMinority => {
            let mut ids = cluster.member_ids();
            ids.shuffle(rng);
            let small = (ids.len() - 1) / 2;
            let minority: BTreeSet<u64> = ids[..small.max(1)].iter().copied().collect();
            let majority: BTreeSet<u64> = ids[small.max(1)..].iter().copied().collect();
            partitioner.cut(cluster, &[minority.clone(), majority.clone()])?;
            (
                minority.iter().copied().collect(),
                format!("minority {minority:?} | majority {majority:?}"),
                ms(rng, 2000, 5000),
                Undo::Heal,
            )
        }
        Nemesis::KillRedis => {
            let (l, found) = leader_or_any(cluster, rng);
            let pid = cluster.kill_redis(l);
            (
                vec![l],
                format!(
                    "SIGKILL of the redis-server (pid {pid:?}) of node {l} ({})",
                    who(found)
                ),
                ms(rng, 1000, 3000),
                Undo::Restart(vec![l]),
            )
        }
        Nemesis::WipeNode => {
            let ids = cluster.member_ids();
            let x = *ids.choose(rng).expect("members");
            cluster.kill(x);
            cluster.wipe(x)?;
            cluster.start_node(x)?;
            (
                vec![x],
                format!("node {x} killed, its directory deleted, restarted empty"),
                ms(rng, 1000, 3000),
                Undo::Nothing,
            )
        }
        Nemesis::Membership => {
            let Some(spare) = cluster.spare() else {
                return Ok((
                    vec![],
                    "no spare node left to join (there is no remove)".into(),
                    Duration::ZERO,
                    Undo::Nothing,
                ));
            };
            let via = *cluster.member_ids().choose(rng).expect("members");
            let started = Instant::now();
            cluster.join(spare, via)?;
            (
                vec![spare],
                format!(
                    "node {spare} joined through node {via} in {:?}",
                    started.elapsed()
                ),
                Duration::ZERO,
                Undo::Nothing,
            )
        }
        Nemesis::LostDisk => {
            let (l, _) = leader_or_any(cluster, rng);
            let ids = cluster.member_ids();
            let f = (ids.len() - 1) / 2;
            let mut others = followers(cluster, l);
            others.shuffle(rng);
            let minority: BTreeSet<u64> = others[..f].iter().copied().collect();
            let rest: Vec<u64> = others[f..].to_vec();
            let mut majority: BTreeSet<u64> = rest.iter().copied().collect();
            majority.insert(l);
            partitioner.cut(cluster, &[minority.clone(), majority.clone()])?;
            // Writes commit on the majority alone.
            std::thread::sleep(Duration::from_millis(1500));
            for &m in &majority {
                cluster.kill(m);
            }
            let wiped = rest[0];
            cluster.wipe(wiped)?;
            cluster.start_node(wiped)?;
            partitioner.heal(cluster)?;
            let later: Vec<u64> = majority.iter().copied().filter(|&m| m != wiped).collect();
            (
                majority.iter().copied().collect(),
                format!(
                    "followers {minority:?} cut off while writes committed on {majority:?} (leader {l}); {majority:?} killed, node {wiped} wiped and restarted empty, {minority:?} healed; {later:?} restarted 2 s later"
                ),
                Duration::from_secs(2),
                Undo::HealThenRestart(later),
            )
        }
    })
}

fn heal(undo: Undo, cluster: &mut Cluster, partitioner: &mut dyn Partitioner) -> Result<()> {
    match undo {
        Undo::Nothing => Ok(()),
        Undo::Restart(ids) => {
            cluster.reap();
            for id in ids {
                // A node whose redis-server was killed may still run (it
                // stops at its next apply): a restart rebuilds it.
                cluster.kill(id);
                cluster.start_node(id)?;
            }
            Ok(())
        }
        Undo::Resume(id) => {
            cluster.resume(id);
            Ok(())
        }
        Undo::Heal => partitioner.heal(cluster),
        Undo::HealThenRestart(ids) => {
            partitioner.heal(cluster)?;
            for id in ids {
                cluster.start_node(id)?;
            }
            Ok(())
        }
    }
}
