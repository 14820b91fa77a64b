//! Elections, driven by us: pre-vote first, then openraft's election.
//!
//! openraft 0.9 has no pre-vote. A follower cut off from the leader keeps
//! campaigning, raising its term each time; when the link heals, the
//! leader's next append meets that higher term and the leader steps down,
//! though it was healthy all along (issue 21: 7 to 13 term changes per
//! 30 s of partition and heal, writes stalled for ~2 s). openraft also makes
//! a follower wait out the leader lease (its `election_timeout_max`) *plus*
//! an election timeout after the last heartbeat before it campaigns (see
//! `handle_tick_election` in openraft's `raft_core.rs`), which with
//! issue 21's timers cost 2.25–3 s per leader crash.
//!
//! So openraft's own election timer is off (`Config::enable_elect = false`)
//! and this module decides when to campaign, the way etcd/raft's PreVote
//! does: a voter that has not heard from a leader for a random time in
//! `[lease, 1.5 × lease)` first asks the other voters whether they would
//! vote for it ([`PreVoteRequest`]). Each answers yes only if it is not the
//! leader, its own lease has run out (no leader heard from for `lease`,
//! the same test openraft applies to a real vote request), and the
//! candidate's log is at least as up to date as its own. Only with a
//! majority of yes (in every half of a joint configuration) does the node
//! call `raft.trigger().elect()`, and openraft runs the real, term-raising
//! election. A healed follower's pre-votes are refused by voters that hear
//! the leader, so it never raises the term. A pre-vote changes nothing on
//! either side: safety is still openraft's election alone.
//!
//! A node also never campaigns while it is not a voter of its own
//! configuration in its own incarnation (a node back with an empty
//! directory, see [`crate::incarnation`]).

use crate::log::LogStore;
use crate::net::{Network, PreVoteRequest, PreVoteResponse};
use crate::types::{Membership, NodeId, Raft};
use openraft::ServerState;
use rand::Rng;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// The timers of a node.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// The leader lease: a voter that heard from a leader within it refuses
    /// (pre-)votes; a follower campaigns after a random `[lease, 1.5 × lease)`
    /// without hearing from one.
    pub lease: Duration,
}

impl Timing {
    /// A random time to wait without a leader before campaigning.
    fn election_timeout(&self) -> Duration {
        let ms = self.lease.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms..ms + ms / 2))
    }
}

/// When this node last heard from its leader, as the network sees it: an
/// append from the current leader arriving, or being processed.
///
/// openraft's own record (the vote's last-modified time) is updated only
/// when its core gets to the append, and the leader sends nothing more to a
/// follower (not even a heartbeat) while an append to it is unanswered; a
/// slow fsync on the follower, or a busy core, then looks like a dead
/// leader. Counting an append being processed as "heard now" keeps a slow
/// but healthy cluster from electing a new leader.
#[derive(Default)]
pub struct Heard(std::sync::Mutex<(Option<Instant>, usize)>);

impl Heard {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, usize)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An append from the leader arrived; it is being processed until the
    /// guard is dropped.
    pub fn append(&self) -> HeardGuard<'_> {
        let mut g = self.lock();
        g.0 = Some(Instant::now());
        g.1 += 1;
        HeardGuard(self)
    }

    /// How long since the leader was last heard from (zero while one of
    /// its appends is being processed); `None` if never.
    pub fn silent_for(&self) -> Option<Duration> {
        let g = self.lock();
        if g.1 > 0 {
            return Some(Duration::ZERO);
        }
        g.0.map(|t| t.elapsed())
    }
}

/// Ends the processing of an append ([`Heard::append`]).
pub struct HeardGuard<'a>(&'a Heard);

impl Drop for HeardGuard<'_> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.0 = Some(Instant::now());
        g.1 -= 1;
    }
}

/// The shorter of two silences (`None`: never heard).
fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Answers pre-votes (the receiving side).
pub struct PreVoter {
    /// This node's Raft.
    pub raft: Raft,
    /// This node's log.
    pub log: LogStore,
    /// The timers.
    pub timing: Timing,
    /// When the leader was last heard from.
    pub heard: std::sync::Arc<Heard>,
    /// The last candidate this node granted a pre-vote to, and when.
    pub granted: std::sync::Mutex<Option<(NodeId, Instant)>>,
}

impl PreVoter {
    /// Would this node vote for `candidate` now?
    pub async fn judge(&self, candidate: NodeId, req: &PreVoteRequest) -> PreVoteResponse {
        let lease = self.timing.lease;
        let state = self
            .raft
            .with_raft_state(move |st| {
                // A leader heard from, or an election under way (this node's
                // vote changed, for itself or another, within the lease).
                let busy = st
                    .vote_last_modified()
                    .is_some_and(|t| t.elapsed() <= lease);
                (st.server_state, busy)
            })
            .await;
        let heard = self.heard.silent_for().is_some_and(|s| s <= lease);
        let granted = match state {
            Ok((ServerState::Leader, _)) | Ok((_, true)) | Err(_) => false,
            Ok(_) if heard => false,
            Ok(_) => req.last_log_id >= self.log.last_log_id(),
        };
        if granted {
            *self.granted.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((candidate, Instant::now()));
        }
        tracing::info!(candidate, granted, term = req.term, "pre-vote asked");
        PreVoteResponse { granted }
    }

    /// Whether this node granted a pre-vote, within the lease, to a node
    /// with a higher ID than `me`: two nodes that asked each other at the
    /// same moment would otherwise both campaign and split the vote; the
    /// lower ID gives way.
    fn gives_way(&self, me: NodeId) -> bool {
        self.granted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|(c, t)| c > me && t.elapsed() <= self.timing.lease)
    }
}

/// What the election driver needs.
pub struct Driver {
    /// This node.
    pub id: NodeId,
    /// This node's incarnation.
    pub incarnation: u64,
    /// This node's Raft.
    pub raft: Raft,
    /// This node's log.
    pub log: LogStore,
    /// Peer clients.
    pub network: Network,
    /// The timers.
    pub timing: Timing,
    /// When the leader was last heard from.
    pub heard: std::sync::Arc<Heard>,
    /// This node's pre-vote answers (to give way to another candidate).
    pub prevoter: std::sync::Arc<PreVoter>,
}

/// Whether `granted` holds a majority of every configuration of `m` (two
/// during a joint change, one otherwise).
pub fn is_quorum(m: &Membership, granted: &BTreeSet<NodeId>) -> bool {
    m.get_joint_config()
        .iter()
        .all(|c| c.iter().filter(|id| granted.contains(id)).count() * 2 > c.len())
}

impl Driver {
    /// Runs for the life of the node.
    pub async fn run(self) {
        // Fine-grained, so that the random timeout is what decides.
        let tick = (self.timing.heartbeat / 2).min(Duration::from_millis(10));
        let mut timeout = self.timing.election_timeout();
        // A restarted node hears from the leader within a heartbeat: give it
        // a timeout's time before asking anyone.
        let mut not_before = Instant::now() + timeout;
        loop {
            tokio::time::sleep(tick).await;
            let metrics = self.raft.metrics().borrow().clone();
            if metrics.state == ServerState::Leader || metrics.running_state.is_err() {
                continue;
            }
            let membership = metrics.membership_config.membership().clone();
            if !self.may_campaign(&membership) {
                continue;
            }
            let Ok(last_heard) = self
                .raft
                .with_raft_state(|st| st.vote_last_modified())
                .await
            else {
                continue;
            };
            let now = Instant::now();
            let silent = shorter(
                last_heard.map(|t| now.duration_since(t)),
                self.heard.silent_for(),
            );
            if silent.is_some_and(|s| s < timeout) || now < not_before {
                continue;
            }
            tracing::info!(
                silent_ms = silent.map(|s| s.as_millis() as u64),
                "no leader heard from: pre-vote"
            );
            timeout = self.timing.election_timeout();
            not_before = now + timeout;
            if self.prevote(&membership, metrics.current_term).await
                && !self.prevoter.gives_way(self.id)
            {
                tracing::info!(term = metrics.current_term + 1, "pre-vote won: campaigning");
                if let Err(e) = self.raft.trigger().elect().await {
                    tracing::warn!(error = %e, "cannot start an election");
                }
            } else {
                tracing::debug!("pre-vote lost, or another candidate asked first: not campaigning");
            }
        }
    }

    /// A voter of its own configuration, in the incarnation it records.
    fn may_campaign(&self, m: &Membership) -> bool {
        m.voter_ids().any(|v| v == self.id)
            && m.get_node(&self.id)
                .is_some_and(|n| n.incarnation == self.incarnation)
    }

    /// Asks every other voter; true if a quorum (this node included) would
    /// vote for it.
    async fn prevote(&self, m: &Membership, term: u64) -> bool {
        let req = PreVoteRequest {
            term,
            last_log_id: self.log.last_log_id(),
        };
        let mut asks = tokio::task::JoinSet::new();
        for (&id, node) in m.nodes() {
            if id == self.id || !m.voter_ids().any(|v| v == id) {
                continue;
            }
            let mut peer = self.network.peer(id, node);
            let req = req.clone();
            let ttl = self.timing.lease / 2;
            asks.spawn(async move {
                let r = peer.call::<_, PreVoteResponse>("prevote", &req, ttl).await;
                (id, matches!(r, Ok(Ok(PreVoteResponse { granted: true }))))
            });
        }
        let mut granted = BTreeSet::from([self.id]);
        while let Some(r) = asks.join_next().await {
            if let Ok((id, true)) = r {
                granted.insert(id);
                if is_quorum(m, &granted) {
                    return true;
                }
            }
        }
        is_quorum(m, &granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Member;
    use std::collections::BTreeMap;

    fn granted(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_quorum_is_a_majority_of_every_half_of_a_joint_configuration() {
        let nodes: BTreeMap<NodeId, Member> = (1..=4)
            .map(|i| (i, Member::new(format!("n{i}"), i)))
            .collect();
        let one = Membership::new(vec![granted(&[1, 2, 3])], nodes.clone());
        assert!(is_quorum(&one, &granted(&[1, 3])));
        assert!(!is_quorum(&one, &granted(&[1])));
        assert!(!is_quorum(&one, &granted(&[1, 4])), "4 is not a voter");
        let joint = Membership::new(vec![granted(&[1, 2, 3]), granted(&[1, 2])], nodes);
        assert!(!is_quorum(&joint, &granted(&[1, 3])), "{{1, 2}} needs both");
        assert!(is_quorum(&joint, &granted(&[1, 2])));
    }
}
