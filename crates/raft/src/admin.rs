//! Cluster administration: `RAFT.INIT`, `RAFT.JOIN`, `RAFT.REMOVE`,
//! `RAFT.INFO`, `RAFT.LEADER`, `RAFT.DIGEST`, `RAFT.SNAPSHOT`,
//! `RAFT.PARTITION`, `RAFT.FAULT`, `RAFT.TRACE`.
//!
//! It sees the cluster through [`Cluster`]: the Raft handle (membership,
//! leader, metrics), the log, the state machine's digests and the peer
//! network. It never sees a client session: a command that only the leader
//! can run is handed back as [`Admin::Forward`], and the session forwards
//! it as it forwards a write.

use crate::command::{Command, Name};
use crate::election::is_quorum;
use crate::log::LogStore;
use crate::net::{self, Network};
use crate::resp::Frame;
use crate::sm::StateMachine;
use crate::types::{Member, NodeId, Raft};
use openraft::{ChangeMembers, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What administration sees of the node and its cluster.
#[derive(Clone)]
pub struct Cluster {
    /// This node.
    pub id: NodeId,
    /// This node's incarnation.
    pub incarnation: u64,
    /// This node's Raft.
    pub raft: Raft,
    /// This node's log.
    pub log: LogStore,
    /// This node's state machine (for digests and status).
    pub sm: StateMachine,
    /// Peer clients, partitions, what peers said.
    pub network: Network,
    /// The local redis-server's address (for status).
    pub redis_addr: String,
    /// Peer commands refused on this node.
    pub refusals: std::sync::Arc<crate::tls::Refusals>,
    /// Nodes seen removed, whose RPCs are refused.
    pub removed: std::sync::Arc<crate::removed::Removed>,
}

/// The outcome of an administration command.
pub enum Admin {
    /// The reply.
    Reply(Frame),
    /// Only the leader can do it: this node is not the leader, `leader` is.
    Forward(NodeId),
    /// Only the leader can do it, and there is none.
    NoLeader,
}

fn err(msg: impl Into<String>) -> Admin {
    Admin::Reply(Frame::err(msg))
}

/// `RAFT.TRACE START`: record every write's stages on this node (forgetting
/// earlier records); `RAFT.TRACE STOP`: stop, and return one line per
/// write (see [`crate::trace`]).
fn trace(cmd: &Command) -> Frame {
    match (cmd.text(1).to_ascii_uppercase().as_str(), cmd.args.len()) {
        ("START", 2) => {
            crate::trace::start();
            Frame::ok()
        }
        ("STOP", 2) => Frame::Array(Some(
            crate::trace::stop()
                .iter()
                .map(|(nonce, t)| Frame::bulk(t.render(*nonce)))
                .collect(),
        )),
        _ => Frame::err("ERR RAFT.TRACE START | STOP"),
    }
}

impl Cluster {
    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The configuration this node knows (the last one in its log).
    pub fn membership(&self) -> crate::types::Membership {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone()
    }

    /// Where node `id` listens, from the configuration.
    pub fn addr_of(&self, id: NodeId) -> Option<String> {
        self.membership().get_node(&id).map(|n| n.addr.clone())
    }

    /// Whether this node, as leader, heard from a majority of voters (in
    /// every half of a joint configuration) within `lease`. A leader that
    /// has not does not append writes: they could not commit, and their
    /// client could only be told "unknown".
    pub fn quorum_recent(&self, lease: Duration) -> bool {
        let m = self.membership();
        let now = Instant::now();
        let heard: BTreeSet<NodeId> = m
            .voter_ids()
            .filter(|&v| {
                v == self.id
                    || self
                        .network
                        .peers
                        .last_contact(v)
                        .is_some_and(|t| now.duration_since(t) <= lease)
            })
            .collect();
        is_quorum(&m, &heard)
    }

    /// Runs an administration command (not `RAFT.RPC` or `RAFT.PROXIED`,
    /// which belong to the network and the session).
    pub async fn handle(&self, cmd: &Command) -> Admin {
        match cmd.name {
            Name::RaftInfo => Admin::Reply(Frame::bulk(self.status().await)),
            Name::RaftLeader => Admin::Reply(match self.leader() {
                Some(l) => Frame::Array(Some(vec![
                    Frame::Int(l as i64),
                    Frame::bulk(self.addr_of(l).unwrap_or_default()),
                ])),
                None => Frame::Array(None),
            }),
            Name::RaftInit => self.init(&cmd.args[1..]).await,
            Name::RaftJoin => self.join(cmd).await,
            Name::RaftRemove => self.remove(cmd).await,
            Name::RaftPartition if !crate::testing::enabled() => err(format!(
                "ERR RAFT.PARTITION is a test switch: start the node with {}=1 to use it",
                crate::testing::ENV
            )),
            Name::RaftPartition => {
                // RAFT.PARTITION [id ...]: drop traffic with these peers; no ids: heal.
                let mut peers = BTreeSet::new();
                for a in &cmd.args[1..] {
                    match String::from_utf8_lossy(a).parse::<NodeId>() {
                        Ok(id) => {
                            peers.insert(id);
                        }
                        Err(_) => return err("ERR RAFT.PARTITION [node-id ...]"),
                    }
                }
                self.network.partition.set(peers);
                Admin::Reply(Frame::ok())
            }
            Name::RaftDigest if cmd.text(1).eq_ignore_ascii_case("FULL") => {
                Admin::Reply(match self.sm.canonical().await {
                    Ok((applied, _, canon)) => {
                        Frame::Array(Some(vec![Frame::Int(applied as i64), Frame::bulk(canon)]))
                    }
                    Err(e) => Frame::err(format!("ERR digest: {e}")),
                })
            }
            Name::RaftDigest => Admin::Reply(match self.sm.digest().await {
                Ok((applied, digest, keys)) => Frame::Array(Some(vec![
                    Frame::Int(applied as i64),
                    Frame::bulk(digest),
                    Frame::Int(keys as i64),
                ])),
                Err(e) => Frame::err(format!("ERR digest: {e}")),
            }),
            Name::RaftSnapshot => Admin::Reply(match self.raft.trigger().snapshot().await {
                Ok(()) => Frame::ok(),
                Err(e) => Frame::err(format!("ERR {e}")),
            }),
            Name::RaftFault => Admin::Reply(match crate::testing::arm(&cmd.args[1..]) {
                Ok(()) => Frame::ok(),
                Err(e) => Frame::err(format!("ERR {e}")),
            }),
            Name::RaftTrace => Admin::Reply(trace(cmd)),
            other => err(format!("ERR unknown or malformed {}", other.as_str())),
        }
    }

    /// `RAFT.INIT id=host:port ...`: the first configuration, on one node,
    /// once. Each member is asked for its incarnation, so all must be up.
    async fn init(&self, args: &[Vec<u8>]) -> Admin {
        let mut members = BTreeMap::new();
        for a in args {
            let a = String::from_utf8_lossy(a);
            let Some((id, addr)) = a.split_once('=') else {
                return err(format!("ERR RAFT.INIT wants id=host:port, got {a}"));
            };
            let Ok(id) = id.parse::<NodeId>() else {
                return err(format!("ERR bad node id in {a}"));
            };
            let incarnation = if id == self.id {
                self.incarnation
            } else {
                match net::hello(&self.network, id, addr).await {
                    Ok(i) => i,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                        return err(format!("ERR RAFT.INIT: {e}"))
                    }
                    Err(e) => {
                        return err(format!(
                            "ERR RAFT.INIT: cannot ask node {id} at {addr} for its incarnation ({e}); start every member first"
                        ))
                    }
                }
            };
            members.insert(id, Member::new(addr, incarnation));
        }
        if members.is_empty() {
            return err("ERR RAFT.INIT id=host:port ... (this node among them)");
        }
        Admin::Reply(match self.raft.initialize(members).await {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::err(format!("ERR {e}")),
        })
    }

    fn leader_or_forward(&self) -> Option<Admin> {
        match self.leader() {
            Some(l) if l == self.id => None,
            Some(l) => Some(Admin::Forward(l)),
            None => Some(Admin::NoLeader),
        }
    }

    /// `RAFT.JOIN id host:port`: add a learner (with the incarnation it
    /// reports), wait until it has caught up, make it a voter.
    async fn join(&self, cmd: &Command) -> Admin {
        let (Ok(id), addr) = (cmd.text(1).parse::<NodeId>(), cmd.text(2)) else {
            return err("ERR RAFT.JOIN id host:port");
        };
        if cmd.args.len() != 3 {
            return err("ERR RAFT.JOIN id host:port");
        }
        if let Some(a) = self.leader_or_forward() {
            return a;
        }
        let incarnation = match net::hello(&self.network, id, &addr).await {
            Ok(i) => i,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return err(format!("ERR RAFT.JOIN: {e}"))
            }
            Err(e) => {
                return err(format!(
                    "ERR RAFT.JOIN: cannot ask node {id} at {addr} for its incarnation ({e}); is it running?"
                ))
            }
        };
        if let Err(e) = self
            .raft
            .add_learner(id, Member::new(addr, incarnation), true)
            .await
        {
            return err(format!("ERR add learner: {e}"));
        }
        let voters = BTreeSet::from([id]);
        match self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(voters), true)
            .await
        {
            Ok(_) => Admin::Reply(Frame::ok()),
            // The leader's own rejoin task may have promoted it meanwhile.
            Err(_) if self.membership().voter_ids().any(|v| v == id) => Admin::Reply(Frame::ok()),
            Err(e) => err(format!("ERR change membership: {e}")),
        }
    }

    /// `RAFT.REMOVE id`: remove a node from the cluster (voter or learner).
    async fn remove(&self, cmd: &Command) -> Admin {
        let Ok(id) = cmd.text(1).parse::<NodeId>() else {
            return err("ERR RAFT.REMOVE id");
        };
        if let Some(a) = self.leader_or_forward() {
            return a;
        }
        let m = self.membership();
        let change = if m.voter_ids().any(|v| v == id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if m.get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return err(format!("ERR node {id} is not a member"));
        };
        match self.raft.change_membership(change, false).await {
            Ok(_) => Admin::Reply(Frame::ok()),
            Err(e) => err(format!("ERR change membership: {e}")),
        }
    }

    /// The INFO-style status of this node.
    pub async fn status(&self) -> String {
        let m = self.raft.metrics().borrow().clone();
        let committed = self
            .raft
            .with_raft_state(|st| st.committed.map(|c| c.index))
            .await
            .ok()
            .flatten();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let membership = m.membership_config.membership();
        let members: Vec<String> = membership
            .nodes()
            .map(|(id, n)| format!("{id}={}", n.addr))
            .collect();
        let incarnations: Vec<String> = membership
            .nodes()
            .map(|(id, n)| format!("{id}={:016x}", n.incarnation))
            .collect();
        let ids = |it: &mut dyn Iterator<Item = NodeId>| {
            it.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
        };
        let voters = ids(&mut membership.voter_ids());
        let learners = ids(&mut membership.learner_ids());
        let leader_addr = m
            .current_leader
            .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()))
            .unwrap_or_default();
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let partitioned = ids(&mut self.network.partition.peers().into_iter());
        let refused: Vec<String> = self
            .network
            .peers
            .refusals()
            .iter()
            .map(|(id, i)| format!("{id}={i:016x}"))
            .collect();
        format!(
            "# Raft\r\nnode_id:{}\r\nincarnation:{:016x}\r\nrole:{role}\r\nterm:{}\r\nleader_id:{}\r\n\
             leader_addr:{leader_addr}\r\ncommit_index:{}\r\napplied_index:{}\r\nlast_log_index:{}\r\n\
             snapshot_index:{}\r\nsnapshots_installed:{}\r\nmembers:{}\r\nincarnations:{}\r\n\
             voters:{voters}\r\nlearners:{learners}\r\nrefused_by:{}\r\npartitioned_from:{partitioned}\r\n\
             redis_addr:{}\r\nfaults_fired:{}\r\npeer_refusals:{}\r\n",
            self.id,
            self.incarnation,
            m.current_term,
            opt(m.current_leader),
            opt(committed),
            opt(m.last_applied.map(|l| l.index)),
            opt(self.log.last_index()),
            opt(m.snapshot.map(|l| l.index)),
            self.sm.shared.installed.load(Ordering::SeqCst),
            members.join(","),
            incarnations.join(","),
            refused.join(","),
            self.redis_addr,
            crate::testing::fired(),
            self.refusals.total(),
        )
    }
}
