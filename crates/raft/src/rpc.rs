//! The receiving side of the Raft RPCs (`RAFT.RPC`): checks who is asking
//! and whom they mean (node ID, partitions, incarnations), then hands the request to
//! openraft, or answers a pre-vote or a hello itself. The sending side is
//! [`crate::net`].

use crate::net::{Partition, PreVoteRequest, HELLO};
use crate::resp::Frame;
use crate::types::{Node, NodeId, Raft, TypeConfig};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{Snapshot, SnapshotMeta, Vote};
use serde::Serialize;

/// What the receiving side of the RPCs needs.
pub struct Receiver<'a> {
    /// This node's ID.
    pub id: NodeId,
    /// This node's Raft.
    pub raft: &'a Raft,
    /// This node's incarnation.
    pub incarnation: u64,
    /// Test partitions.
    pub partition: &'a Partition,
    /// Answers pre-votes.
    pub prevote: &'a crate::election::PreVoter,
    /// Where refusals are counted.
    pub refusals: &'a crate::tls::Refusals,
    /// Nodes seen removed.
    pub removed: &'a crate::removed::Removed,
}

/// Serves one incoming `RAFT.RPC` (its arguments after the command name);
/// returns the reply frame.
pub async fn serve(rx: &Receiver<'_>, args: &[Vec<u8>]) -> Frame {
    let [kind, from, payload, to_incarnation, from_incarnation, to] = args else {
        return Frame::err("ERR RAFT.RPC kind from payload to-incarnation from-incarnation to");
    };
    let number = |b: &[u8], radix| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| u64::from_str_radix(s, radix).ok())
    };
    let (Some(from), Some(to_incarnation), Some(from_incarnation), Some(to)) = (
        number(from, 10),
        number(to_incarnation, 16),
        number(from_incarnation, 16),
        number(to, 10),
    ) else {
        return Frame::err("ERR bad RAFT.RPC sender, receiver or incarnation");
    };
    // Meant for another node: this address is configured for a member this
    // node is not. Answering would count this process twice.
    if to != rx.id {
        return Frame::err(format!("WRONGNODE {}", rx.id));
    }
    if rx.partition.blocks(from) {
        return Frame::err("PARTITIONED dropped (test partition)");
    }
    fn reply<T: Serialize, E: Serialize>(r: Result<T, E>) -> Frame {
        let r: Result<T, Vec<u8>> =
            r.map_err(|e| bincode::serialize(&e).expect("error serialises"));
        Frame::bulk(bincode::serialize(&r).expect("reply serialises"))
    }
    if kind.as_slice() == HELLO.as_bytes() {
        return reply::<u64, ()>(Ok(rx.incarnation));
    }
    let member = rx
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&from)
        .is_some();
    if !member && rx.removed.contains(from) {
        if let Some(unlogged) = rx.refusals.count() {
            tracing::warn!(
                from,
                unlogged,
                "RAFT.RPC refused: its sender was removed from the cluster"
            );
        }
        return Frame::err(format!("REMOVED node {from} was removed from the cluster"));
    }
    if to_incarnation != rx.incarnation {
        return Frame::err(format!("INCARNATION {:x}", rx.incarnation));
    }
    if matches!(kind.as_slice(), b"vote" | b"prevote") {
        let known = rx
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&from)
            .map(|n| n.incarnation);
        if known.is_some_and(|k| k != from_incarnation) {
            return Frame::err(format!(
                "STALEINCARNATION node {from} is {from_incarnation:x}, the configuration has {:x}",
                known.unwrap_or_default()
            ));
        }
    }
    let bad = |e: bincode::Error| Frame::err(format!("ERR bad RAFT.RPC payload: {e}"));
    match kind.as_slice() {
        b"append" => match bincode::deserialize::<AppendEntriesRequest<TypeConfig>>(payload) {
            Ok(req) if !speaks_for(&req.vote, from) => not_sender(rx, &req.vote, from),
            Ok(req) => {
                let traced = crate::trace::nonces(&req.entries);
                crate::trace::mark_all(&traced, crate::trace::Mark::RpcReceived);
                let mine = rx.raft.metrics().borrow().vote;
                let _heard = (req.vote.is_committed() && req.vote >= mine)
                    .then(|| rx.prevote.heard.append());
                let answer = rx.raft.append_entries(req).await;
                crate::trace::mark_all(&traced, crate::trace::Mark::RpcAnswered);
                reply(answer)
            }
            Err(e) => bad(e),
        },
        b"vote" => match bincode::deserialize::<VoteRequest<NodeId>>(payload) {
            Ok(req) if !speaks_for(&req.vote, from) => not_sender(rx, &req.vote, from),
            Ok(req) => reply(rx.raft.vote(req).await),
            Err(e) => bad(e),
        },
        b"prevote" => match bincode::deserialize::<PreVoteRequest>(payload) {
            Ok(req) => reply::<_, ()>(Ok(rx.prevote.judge(from, &req).await)),
            Err(e) => bad(e),
        },
        b"snapshot" => {
            match bincode::deserialize::<(Vote<NodeId>, SnapshotMeta<NodeId, Node>, Vec<u8>)>(
                payload,
            ) {
                Ok((vote, _, _)) if !speaks_for(&vote, from) => not_sender(rx, &vote, from),
                Ok((vote, meta, data)) => {
                    let mine = rx.raft.metrics().borrow().vote;
                    let _heard =
                        (vote.is_committed() && vote >= mine).then(|| rx.prevote.heard.append());
                    let snap = Snapshot {
                        meta,
                        snapshot: Box::new(data),
                    };
                    reply(rx.raft.install_full_snapshot(vote, snap).await)
                }
                Err(e) => bad(e),
            }
        }
        _ => Frame::err("ERR unknown RAFT.RPC kind"),
    }
}

/// Whether a request's vote is the sender's own: a leader's appends and
/// snapshots carry its vote, a candidate's vote request its candidacy. With
/// mutual TLS `from` is the certified sender, so a node's certificate
/// cannot speak as another leader or candidate.
fn speaks_for(vote: &Vote<NodeId>, from: NodeId) -> bool {
    vote.leader_id().voted_for() == Some(from)
}

fn not_sender(rx: &Receiver<'_>, vote: &Vote<NodeId>, from: NodeId) -> Frame {
    if let Some(unlogged) = rx.refusals.count() {
        tracing::warn!(
            from,
            ?vote,
            unlogged,
            "RAFT.RPC refused: its vote names another node than its sender"
        );
    }
    Frame::err(format!(
        "WRONGSENDER an RPC from node {from} carrying the vote of {:?}",
        vote.leader_id().voted_for()
    ))
}
