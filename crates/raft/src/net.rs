//! Raft RPCs between sidecars: openraft's [`RaftNetworkFactory`], and the
//! receiving side ([`serve`]).
//!
//! A peer is reached on the same RESP port as clients: an RPC is the
//! command `RAFT.RPC <kind> <from-id> <payload> <to-incarnation>
//! <from-incarnation> <to-id>`, payload and reply in bincode. One
//! connection per peer, re-opened after any error.
//!
//! Every RPC names the node it is meant for, and a node that is not that
//! one refuses it with `-WRONGNODE <its own id>`: a configuration that
//! gives two members one address (a typo, a port taken over, a name that
//! moved) must not let one process answer, vote and count in a quorum as
//! two. Every RPC also names the incarnation the sender's configuration
//! has for the receiver, and a receiver whose own incarnation differs
//! refuses it with
//! `-INCARNATION <its own>` (see [`crate::incarnation`]); the sender
//! records that answer ([`PeerState::refusals`]) so that its leader can take
//! the node back in. A vote or pre-vote from a node whose incarnation is
//! not the one the receiver's configuration has for it is refused too.
//!
//! With TLS ([`crate::tls`]), peers connect in mutual TLS: each end's
//! certificate must name the node it stands for, and the receiver serves
//! an RPC only if the sender's certificate names the `<from-id>` it
//! claims.
//!
//! Partitions for tests and the lab: a node can be told (`RAFT.PARTITION`)
//! to drop all traffic to and from some peers: its outgoing RPCs fail as
//! unreachable, incoming ones from them are refused, and it does not proxy
//! clients to them. Deterministic, and needs no root.

use crate::resp::{Conn, Dial, Frame};
use crate::types::{Node, NodeId, TypeConfig};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{LogId, OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Peers this node is cut off from (test partitions).
#[derive(Clone, Default)]
pub struct Partition(Arc<RwLock<BTreeSet<NodeId>>>);

impl Partition {
    /// Is traffic with `peer` dropped?
    pub fn blocks(&self, peer: NodeId) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer)
    }

    /// Replaces the set of cut-off peers (empty: healed).
    pub fn set(&self, peers: BTreeSet<NodeId>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = peers;
    }

    /// The cut-off peers.
    pub fn peers(&self) -> BTreeSet<NodeId> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What this node learnt from its RPCs about its peers.
#[derive(Clone, Default)]
pub struct PeerState(Arc<Mutex<PeerFacts>>);

#[derive(Default)]
struct PeerFacts {
    /// When each peer last answered an append (or granted a vote).
    contact: HashMap<NodeId, Instant>,
    /// Peers that refused an RPC because they are another incarnation
    /// than the one named: their actual incarnation.
    refusals: BTreeMap<NodeId, u64>,
    /// Connections to peers that a dropped [`Peer`] left idle, by peer
    /// and address: see [`PeerState::take_idle`].
    idle: HashMap<(NodeId, String), Vec<Conn>>,
}

/// Idle connections kept per peer and address, at most: as many as reads
/// may check the leadership at once, give or take.
const IDLE_PER_PEER: usize = 4;

impl PeerState {
    fn facts(&self) -> std::sync::MutexGuard<'_, PeerFacts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn contacted(&self, peer: NodeId) {
        self.facts().contact.insert(peer, Instant::now());
    }

    /// When `peer` last answered an append or granted a vote.
    pub fn last_contact(&self, peer: NodeId) -> Option<Instant> {
        self.facts().contact.get(&peer).copied()
    }

    fn refused(&self, peer: NodeId, incarnation: u64) {
        self.facts().refusals.insert(peer, incarnation);
    }

    /// Peers that said they are another incarnation than the one our
    /// configuration names, with the incarnation they said.
    pub fn refusals(&self) -> BTreeMap<NodeId, u64> {
        self.facts().refusals.clone()
    }

    /// Forgets a refusal (once the configuration records that incarnation).
    pub fn forget_refusal(&self, peer: NodeId) {
        self.facts().refusals.remove(&peer);
    }

    /// An idle connection to `peer` at `addr` that an earlier [`Peer`]
    /// left, if any.
    ///
    /// openraft 0.9 asks for a new client for every voter on every
    /// linearizable read (`ensure_linearizable`, one heartbeat round each:
    /// `handle_check_is_leader_request` in its `core/raft_core.rs`), and
    /// drops it after the one RPC. Each used to open its own connection:
    /// a job's progress polling made ~180 connections to each follower
    /// per job (TCP handshake, AUTH, a session on the follower), a cost
    /// every read paid and both cores shared with the commits.
    fn take_idle(&self, peer: NodeId, addr: &str) -> Option<Conn> {
        let mut f = self.facts();
        let conns = f.idle.get_mut(&(peer, addr.to_owned()))?;
        conns.pop()
    }

    /// Keeps `conn`, idle and between two RPCs, for the next client of
    /// `peer` at `addr`.
    fn give_back(&self, peer: NodeId, addr: &str, conn: Conn) {
        let mut f = self.facts();
        let conns = f.idle.entry((peer, addr.to_owned())).or_default();
        if conns.len() < IDLE_PER_PEER {
            conns.push(conn);
        }
    }
}

/// Makes peer clients.
#[derive(Clone)]
pub struct Network {
    /// This node.
    pub id: NodeId,
    /// This node's incarnation.
    pub incarnation: u64,
    /// Cluster password (the sidecars' AUTH), if any; sent to peers only
    /// in plain text: over mutual TLS the certificate is the credential.
    pub password: Option<String>,
    /// The administrator's password, if any: in plain text peers
    /// authenticate as the administrator with it, so that a client's
    /// password opens no peer command ([`crate::session`]).
    pub admin_password: Option<String>,
    /// How peers are dialled: plain text, or mutual TLS.
    pub dial: Dial,
    /// Test partitions.
    pub partition: Partition,
    /// What the RPCs found out about peers.
    pub peers: PeerState,
}

impl Network {
    /// What to AUTH with on a connection to a peer: nothing over mutual
    /// TLS, where the certificate is the credential; in plain text the
    /// administrator's password if there is one, else the cluster's.
    pub fn peer_auth(&self) -> Option<crate::resp::Auth> {
        match (&self.dial, &self.admin_password, &self.password) {
            (Dial::Peer(_), _, _) => None,
            (_, Some(admin), _) => Some(crate::resp::Auth::admin(admin)),
            (_, None, Some(pw)) => Some(crate::resp::Auth::password(pw)),
            (_, None, None) => None,
        }
    }

    /// A client for `target`, described by `node` (from a configuration).
    pub fn peer(&self, target: NodeId, node: &Node) -> Peer {
        Peer {
            net: self.clone(),
            target,
            node: node.clone(),
            conn: self.peers.take_idle(target, &node.addr),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        self.peer(target, node)
    }
}

/// The connection to one peer, as one configuration describes it.
pub struct Peer {
    net: Network,
    target: NodeId,
    node: Node,
    conn: Option<Conn>,
}

impl Drop for Peer {
    /// The connection, if any, is idle (it is taken out during an RPC and
    /// put back only after a whole reply): the next client of this peer
    /// may use it.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.net.peers.give_back(self.target, &self.node.addr, conn);
        }
    }
}

/// Why an RPC got no answer from openraft on the other side.
#[derive(Debug)]
pub enum CallError {
    /// Not delivered: cut off, refused, or another incarnation.
    Unreachable(io::Error),
    /// Lost on the way, or a bad reply.
    Network(io::Error),
}

/// A pre-vote: "would you vote for me in the next term?", asked before a
/// node campaigns, so that a node that cannot win (a healed follower next to
/// a healthy leader) never raises the term. See [`crate::election`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVoteRequest {
    /// The candidate's current term (it would campaign in the next).
    pub term: u64,
    /// The candidate's last log entry.
    pub last_log_id: Option<LogId<NodeId>>,
}

/// The answer to a [`PreVoteRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVoteResponse {
    /// Whether this node would vote for the candidate now.
    pub granted: bool,
}

impl Peer {
    /// Sends one RPC and decodes its reply; `Ok(Err(bytes))` is an error
    /// openraft returned on the other side (bincode).
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Result<Resp, Vec<u8>>, CallError> {
        if self.net.partition.blocks(self.target) {
            return Err(CallError::Unreachable(io::Error::other(
                "partitioned (test)",
            )));
        }
        let payload =
            bincode::serialize(req).map_err(|e| CallError::Network(io::Error::other(e)))?;
        let from = self.net.id.to_string();
        let to = self.target.to_string();
        let to_incarnation = format!("{:x}", self.node.incarnation);
        let from_incarnation = format!("{:x}", self.net.incarnation);
        let frame = Frame::command(&[
            b"RAFT.RPC".as_slice(),
            kind.as_bytes(),
            from.as_bytes(),
            &payload,
            to_incarnation.as_bytes(),
            from_incarnation.as_bytes(),
            to.as_bytes(),
        ]);
        // The connection is taken out while in use: if openraft drops this
        // future half-way (its own timeout), a half-written request must
        // not stay on a connection that would be used again.
        let conn = match self.conn.take() {
            Some(c) => Ok(c),
            None => Err(self.dial()),
        };
        let attempt = async move {
            let mut conn = match conn {
                Ok(c) => c,
                Err(dialled) => dialled
                    .await
                    .map_err(|_| CallError::Unreachable(io::Error::other("dial task lost")))?
                    .map_err(CallError::Unreachable)?,
            };
            let reply = conn.send(&frame).await.map_err(CallError::Network)?;
            Ok::<_, CallError>((conn, reply))
        };
        let reply = match tokio::time::timeout(ttl, attempt).await {
            Ok(Ok((conn, r))) => {
                self.conn = Some(conn);
                r
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(CallError::Network(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "RPC timed out",
                )));
            }
        };
        match reply {
            Frame::Bulk(Some(b)) => bincode::deserialize::<Result<Resp, Vec<u8>>>(&b)
                .map_err(|e| CallError::Network(io::Error::other(e))),
            Frame::Error(e) => {
                if let Some(other) = e.strip_prefix("WRONGNODE ") {
                    tracing::warn!(target = self.target, addr = %self.node.addr, answered_by = other.trim(),
                        "another node answers at this member's address: not counted as this member");
                } else if let Some(inc) = e
                    .strip_prefix("INCARNATION ")
                    .and_then(|i| u64::from_str_radix(i.trim(), 16).ok())
                {
                    self.net.peers.refused(self.target, inc);
                }
                Err(CallError::Unreachable(io::Error::other(e)))
            }
            other => Err(CallError::Network(io::Error::other(format!(
                "unexpected RPC reply {other:?}"
            )))),
        }
    }

    /// Opens a new connection to the peer in a task of its own, whose
    /// result comes back on the channel.
    ///
    /// Why not in the RPC's future: openraft gives an AppendEntries or a
    /// heartbeat the heartbeat interval (50 ms) and drops the future when
    /// it runs out. A dial is a TCP handshake, AUTH or a TLS handshake with
    /// certificates checked both ways, and on a loaded machine that took
    /// longer: every RPC then started a handshake and abandoned it, the
    /// peers logged hundreds of half-done handshakes a second, and a new
    /// leader never reached its followers ("no quorum confirmed this
    /// leader" for two minutes in lab 4b in TLS). The dial now finishes
    /// whatever the RPC's deadline; if that RPC gave up meanwhile, the new
    /// connection, on which nothing was written, waits in the idle pool for
    /// the next client of this peer.
    fn dial(&self) -> oneshot::Receiver<io::Result<Conn>> {
        let (tx, rx) = oneshot::channel();
        let (addr, dial) = (self.node.addr.clone(), self.net.dial.clone());
        let password = self.net.peer_auth();
        let (target, peers) = (self.target, self.net.peers.clone());
        tokio::spawn(async move {
            let dialled = Conn::dial(&addr, &dial, target, password.as_ref()).await;
            if let Err(Ok(conn)) = tx.send(dialled) {
                peers.give_back(target, &addr, conn);
            }
        });
        rx
    }

    async fn raft_rpc<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self.call::<Req, Resp>(kind, req, option.hard_ttl()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(remote)) => {
                let e: RaftError<NodeId> = bincode::deserialize(&remote)
                    .map_err(|e| RPCError::Network(NetworkError::new(&io::Error::other(e))))?;
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Err(CallError::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(CallError::Network(e)) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        crate::trace::mark_entries(&rpc.entries, crate::trace::Mark::Sent);
        let r = self.raft_rpc("append", &rpc, &option).await;
        if matches!(&r, Ok(resp) if !matches!(resp, AppendEntriesResponse::HigherVote(_))) {
            self.net.peers.contacted(self.target);
            crate::trace::mark_entries(&rpc.entries, crate::trace::Mark::Acked);
        }
        r
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let r = self
            .raft_rpc::<_, VoteResponse<NodeId>>("vote", &rpc, &option)
            .await;
        if matches!(&r, Ok(resp) if resp.vote_granted) {
            // A leader's quorum contact starts with its election.
            self.net.peers.contacted(self.target);
        }
        r
    }

    #[allow(deprecated)]
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        unreachable!("snapshots are sent whole (full_snapshot)")
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let req = (vote, snapshot.meta, *snapshot.snapshot);
        match self
            .call::<_, SnapshotResponse<NodeId>>(
                "snapshot",
                &req,
                option.hard_ttl().max(Duration::from_secs(30)),
            )
            .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(remote)) => {
                let e: Fatal<NodeId> = bincode::deserialize(&remote).unwrap_or(Fatal::Stopped);
                Err(StreamingError::RemoteError(RemoteError::new(
                    self.target,
                    e,
                )))
            }
            Err(CallError::Unreachable(e)) => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(CallError::Network(e)) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}

/// The `RAFT.RPC` kind that asks a node for its incarnation (to add it to
/// a configuration); it names no incarnation of the receiver, but names
/// the node, so that an address answered by another node is refused.
pub const HELLO: &str = "hello";

/// Asks node `target`, at `addr`, for its incarnation; an error of kind
/// `InvalidInput` when another node answers there.
pub async fn hello(net: &Network, target: NodeId, addr: &str) -> io::Result<u64> {
    let mut peer = net.peer(target, &Node::new(addr, 0));
    match peer
        .call::<(), u64>(HELLO, &(), Duration::from_secs(5))
        .await
    {
        Ok(Ok(incarnation)) => Ok(incarnation),
        Ok(Err(_)) => Err(io::Error::other("bad reply")),
        Err(CallError::Unreachable(e)) => match e.to_string().strip_prefix("WRONGNODE ") {
            Some(other) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the node answering at {addr} is node {}, not node {target}",
                    other.trim()
                ),
            )),
            None => Err(e),
        },
        Err(CallError::Network(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{read_request, write_frame};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::BufReader;
    use tokio::net::TcpListener;

    /// A peer that answers every `RAFT.RPC hello` with incarnation 7 and
    /// counts the connections it accepts.
    async fn counting_peer() -> (String, Arc<AtomicUsize>) {
        slow_peer(Duration::ZERO).await
    }

    /// [`counting_peer`], answering the first request of each connection
    /// (the AUTH of a dial with a password) only after `first`: a dial
    /// slower than an RPC's deadline.
    async fn slow_peer(first: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut r = BufReader::new(r);
                    let mut delay = first;
                    while let Ok(Some(_)) = read_request(&mut r).await {
                        tokio::time::sleep(std::mem::take(&mut delay)).await;
                        let reply = bincode::serialize(&Ok::<u64, Vec<u8>>(7)).unwrap();
                        if write_frame(&mut w, &Frame::bulk(reply)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn network() -> Network {
        Network {
            id: 1,
            incarnation: 1,
            password: None,
            admin_password: None,
            dial: Dial::Plain,
            partition: Partition::default(),
            peers: PeerState::default(),
        }
    }

    #[tokio::test]
    async fn a_dial_slower_than_the_rpc_deadline_still_serves_the_next_rpc() {
        // Each dial takes 300 ms (its AUTH is answered that late), each
        // RPC may take 50 ms, as openraft's heartbeats: the RPCs that open
        // connections time out, but the connection they opened is kept,
        // and a later RPC uses it. Dialled inside the RPC, every dial was
        // cut short and no RPC ever got through.
        let (addr, accepted) = slow_peer(Duration::from_millis(300)).await;
        let net = Network {
            password: Some("pw".into()),
            ..network()
        };
        let node = Node::new(&addr, 0);
        let ttl = Duration::from_millis(50);
        let mut answered = false;
        for _ in 0..40 {
            let mut peer = net.peer(2, &node);
            if let Ok(Ok(7)) = peer.call::<(), u64>(HELLO, &(), ttl).await {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            answered,
            "no RPC got through a dial slower than its deadline"
        );
        // A dial per RPC that found no idle connection: a few, not one per
        // attempt for ever.
        assert!(accepted.load(Ordering::SeqCst) <= 8);
    }

    #[tokio::test]
    async fn clients_of_one_peer_made_one_after_the_other_share_a_connection() {
        let (addr, accepted) = counting_peer().await;
        let net = network();
        // What openraft does on every linearizable read: a new client per
        // voter, one RPC, dropped.
        for _ in 0..20 {
            assert_eq!(hello(&net, 2, &addr).await.unwrap(), 7);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Clients alive at once each have their own connection.
        let node = Node::new(&addr, 0);
        let (mut a, mut b) = (net.peer(2, &node), net.peer(2, &node));
        let ttl = Duration::from_secs(5);
        let (ra, rb) = tokio::join!(
            a.call::<(), u64>(HELLO, &(), ttl),
            b.call::<(), u64>(HELLO, &(), ttl)
        );
        assert_eq!((ra.unwrap().unwrap(), rb.unwrap().unwrap()), (7, 7));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // Another address of the same node id is another connection.
        let (other, other_accepted) = counting_peer().await;
        assert_eq!(hello(&net, 2, &other).await.unwrap(), 7);
        assert_eq!(other_accepted.load(Ordering::SeqCst), 1);
    }
}
