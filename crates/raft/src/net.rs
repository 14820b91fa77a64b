//! Raft RPCs between sidecars: openraft's [`RaftNetworkFactory`].
//!
//! A peer is reached on the same RESP port as clients: an RPC is the
//! command `RAFT.RPC <kind> <from-id> <payload>`, payload and reply in
//! bincode. One connection per peer, re-opened after any error.
//!
//! Partitions for tests and the lab: a node can be told (`RAFT.PARTITION`)
//! to drop all traffic to and from some peers: its outgoing RPCs fail as
//! unreachable, incoming ones from them are refused, and it does not proxy
//! clients to them. Deterministic, and needs no root.

use crate::resp::{Conn, Frame};
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
use openraft::{OptionalSend, Snapshot, SnapshotMeta, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// Makes peer clients.
#[derive(Clone)]
pub struct Network {
    /// This node.
    pub id: NodeId,
    /// Cluster password (the sidecars' AUTH), if any.
    pub password: Option<String>,
    /// Test partitions.
    pub partition: Partition,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            net: self.clone(),
            target,
            addr: node.addr.clone(),
            conn: None,
        }
    }
}

/// The connection to one peer.
pub struct Peer {
    net: Network,
    target: NodeId,
    addr: String,
    conn: Option<Conn>,
}

enum CallError {
    Unreachable(io::Error),
    Network(io::Error),
}

impl Peer {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
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
        let frame = Frame::command(&[
            b"RAFT.RPC".as_slice(),
            kind.as_bytes(),
            from.as_bytes(),
            &payload,
        ]);
        // The connection is taken out while in use: if openraft drops this
        // future half-way (its own timeout), a half-written request must
        // not stay on a connection that would be used again.
        let conn = self.conn.take();
        let (addr, password) = (self.addr.clone(), self.net.password.clone());
        let attempt = async move {
            let mut conn = match conn {
                Some(c) => c,
                None => Conn::connect(&addr, password.as_deref())
                    .await
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
            Frame::Bulk(Some(b)) => {
                let r: Result<Resp, Vec<u8>> =
                    match bincode::deserialize::<Result<Resp, Vec<u8>>>(&b) {
                        Ok(r) => r,
                        Err(e) => return Err(CallError::Network(io::Error::other(e))),
                    };
                Ok(r)
            }
            Frame::Error(e) => Err(CallError::Unreachable(io::Error::other(e))),
            other => Err(CallError::Network(io::Error::other(format!(
                "unexpected RPC reply {other:?}"
            )))),
        }
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
        self.raft_rpc("append", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.raft_rpc("vote", &rpc, &option).await
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

/// Serves one incoming `RAFT.RPC`; returns the reply frame.
pub async fn serve(
    raft: &crate::types::Raft,
    partition: &Partition,
    kind: &[u8],
    from: &[u8],
    payload: &[u8],
) -> Frame {
    let from: NodeId = match std::str::from_utf8(from).ok().and_then(|s| s.parse().ok()) {
        Some(f) => f,
        None => return Frame::err("ERR bad RAFT.RPC sender"),
    };
    if partition.blocks(from) {
        return Frame::err("PARTITIONED dropped (test partition)");
    }
    fn reply<T: Serialize, E: Serialize>(r: Result<T, E>) -> Frame {
        let r: Result<T, Vec<u8>> =
            r.map_err(|e| bincode::serialize(&e).expect("error serialises"));
        Frame::bulk(bincode::serialize(&r).expect("reply serialises"))
    }
    let bad = |e: bincode::Error| Frame::err(format!("ERR bad RAFT.RPC payload: {e}"));
    match kind {
        b"append" => match bincode::deserialize::<AppendEntriesRequest<TypeConfig>>(payload) {
            Ok(req) => reply(raft.append_entries(req).await),
            Err(e) => bad(e),
        },
        b"vote" => match bincode::deserialize::<VoteRequest<NodeId>>(payload) {
            Ok(req) => reply(raft.vote(req).await),
            Err(e) => bad(e),
        },
        b"snapshot" => {
            match bincode::deserialize::<(Vote<NodeId>, SnapshotMeta<NodeId, Node>, Vec<u8>)>(
                payload,
            ) {
                Ok((vote, meta, data)) => {
                    let snap = Snapshot {
                        meta,
                        snapshot: Box::new(data),
                    };
                    reply(raft.install_full_snapshot(vote, snap).await)
                }
                Err(e) => bad(e),
            }
        }
        _ => Frame::err("ERR unknown RAFT.RPC kind"),
    }
}
