//! The leader takes back nodes that came back as a new incarnation (an
//! empty data directory), and finishes interrupted joins.
//!
//! A node in a new incarnation refuses every RPC that names its old one
//! (see [`crate::incarnation`]), answering with its new incarnation, which
//! the RPC's sender records ([`crate::net::PeerState::refusals`]). The
//! leader then, each step a configuration change committed by the others
//! (joint consensus where the voters change):
//!
//! 1. removes it as a voter, keeping it as a learner: from then on no
//!    quorum needs it, and nothing it acknowledged before it lost its
//!    directory is counted on;
//! 2. records its new incarnation (`SetNodes` on a learner, which neither
//!    votes nor counts): the node now takes the leader's appends (or a
//!    snapshot) and catches up;
//! 3. once it has caught up with the leader's commit index, makes it a
//!    voter again.
//!
//! Step 3 also applies to any learner that has caught up: a `RAFT.JOIN`
//! whose leader died between adding the learner and promoting it is
//! finished by the next leader. (wclab has no other use for learners:
//! `RAFT.REMOVE` removes a node altogether.)

use crate::admin::Cluster;
use crate::types::{Member, NodeId};
use openraft::{ChangeMembers, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long one configuration change may take before the next round retries.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs for the life of the node, acting only while it leads.
pub async fn run(cluster: Cluster, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if cluster.raft.metrics().borrow().state != ServerState::Leader {
            continue;
        }
        if let Err(e) = round(&cluster).await {
            tracing::info!(error = %e, "taking a node back in: will retry");
        }
    }
}

async fn change(cluster: &Cluster, what: ChangeMembers<NodeId, Member>) -> Result<(), String> {
    tracing::info!(change = ?what, "configuration change");
    match tokio::time::timeout(CHANGE_TIMEOUT, cluster.raft.change_membership(what, true)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("not committed within {CHANGE_TIMEOUT:?}")),
    }
}

async fn round(cluster: &Cluster) -> Result<(), String> {
    let m = cluster.membership();
    for (id, incarnation) in cluster.network.peers.refusals() {
        let Some(node) = m.get_node(&id).cloned() else {
            cluster.network.peers.forget_refusal(id);
            continue;
        };
        if node.incarnation == incarnation {
            cluster.network.peers.forget_refusal(id);
            continue;
        }
        tracing::warn!(
            node = id,
            old = format!("{:016x}", node.incarnation),
            new = format!("{incarnation:016x}"),
            "a node came back as a new incarnation (its directory was lost): taking it back in as a learner"
        );
        if m.voter_ids().any(|v| v == id) {
            change(cluster, ChangeMembers::RemoveVoters(BTreeSet::from([id]))).await?;
        }
        let renewed = BTreeMap::from([(id, Member::new(node.addr, incarnation))]);
        change(cluster, ChangeMembers::SetNodes(renewed)).await?;
        cluster.network.peers.forget_refusal(id);
        return Ok(()); // one change at a time; the next round goes on
    }
    let metrics = cluster.raft.metrics().borrow().clone();
    let committed = cluster
        .raft
        .with_raft_state(|st| st.committed)
        .await
        .map_err(|e| e.to_string())?;
    let matched = metrics.replication.unwrap_or_default();
    let refusing = cluster.network.peers.refusals();
    for learner in m.learner_ids() {
        let caught_up = matched
            .get(&learner)
            .is_some_and(|at| *at >= committed && committed.is_some());
        if caught_up && !refusing.contains_key(&learner) {
            tracing::info!(node = learner, "a learner caught up: making it a voter");
            change(
                cluster,
                ChangeMembers::AddVoterIds(BTreeSet::from([learner])),
            )
            .await?;
            return Ok(());
        }
    }
    Ok(())
}
