//! A client's connection to a sidecar: parse, authenticate, route.
//!
//! * A write goes into the Raft log on the leader; its reply is the result
//!   of applying it to the leader's Redis, sent after the commit.
//! * A read is answered by the leader after openraft's read-index check
//!   (`ensure_linearizable`), never from a follower's possibly stale Redis.
//! * A follower forwards both to the leader (one hop at most: a forwarded
//!   command is marked `RAFT.PROXIED` and never forwarded again), like
//!   RedisRaft's follower proxy. While there is no leader, or the leader
//!   cannot be reached, the request waits for one, up to the request
//!   timeout.
//!
//! Every request is answered within the request timeout (about; a
//! forwarded one gets a little more for the hop). When a write fails, the
//! error code says what the client may do (docs/raft.md):
//!
//! * `-TRYAGAIN`: the write is known not to be in any log (no leader, the
//!   leader unreachable before the request was sent, a leader that has not
//!   heard from a majority lately, a forwarded request that found no
//!   leader). Retrying cannot apply it twice.
//! * `-UNKNOWN`: it may or may not have been applied (the connection to the
//!   leader lost after sending, no commit within the timeout after openraft
//!   took the entry, leadership lost after the entry entered the log).
//!   Retry only what is safe to repeat, or read to find out.

use crate::admin::Admin;
use crate::admin::Cluster;
use crate::command::{self, Command, Kind, Name};
use crate::election::{PreVoter, Timing};
use crate::propose::Proposer;
use crate::resp::{read_request, write_frame, Auth, Conn, Frame};
use crate::sm::StateMachine;
use crate::tls::Identity;
use crate::types::{NodeId, Write};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::time::Instant;

/// Extra time a forwarded request gets beyond its own deadline, for the
/// hop itself.
const HOP: Duration = Duration::from_millis(500);

/// How long a forwarded administration command may take.
const ADMIN: Duration = Duration::from_secs(60);

/// How long to wait for a connection to the leader.
const CONNECT: Duration = Duration::from_secs(1);

fn tryagain(why: &str) -> Frame {
    Frame::err(format!("TRYAGAIN wclab-raft: {why}"))
}

fn unknown(why: &str) -> Frame {
    Frame::err(format!("UNKNOWN wclab-raft: {why}"))
}

fn is_tryagain(f: &Frame) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with("TRYAGAIN"))
}

/// What became of a request forwarded to the leader.
enum Forwarded {
    /// The leader's reply.
    Reply(Frame),
    /// Not sent: the leader could not be reached.
    NotSent(String),
    /// Sent, and then the answer was lost.
    Unknown(String),
}

/// What became of a write handed to openraft on this node.
enum Submitted {
    /// The reply to give.
    Done(Frame),
    /// Refused before it entered the log: another node leads now.
    NotAppended,
}

/// What every session of a node shares.
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) cluster: Cluster,
    pub(crate) sm: StateMachine,
    pub(crate) prevote: Arc<PreVoter>,
    pub(crate) timing: Timing,
    pub(crate) password: Option<String>,
    /// The administrator's password (`AUTH admin PASSWORD`), if any.
    pub(crate) admin_password: Option<String>,
    /// The node speaks TLS, and peers must prove who they are with their
    /// certificates ([`crate::tls`]).
    pub(crate) mutual_tls: bool,
    pub(crate) redis_addr: String,
    pub(crate) redis_password: String,
    pub(crate) request_timeout: Duration,
    /// Largest `now_ms` this node handed out as leader.
    pub(crate) last_now: AtomicU64,
    /// The last `CLIENT ID` given out.
    pub(crate) client_ids: AtomicU64,
    pub(crate) nonce_base: u64,
    pub(crate) nonces: AtomicU64,
    /// Where this node's writes go when it leads (group commit).
    pub(crate) proposer: Proposer,
}

impl Shared {
    /// A nonce for a write this node submits (see [`crate::types::Write`]).
    pub(crate) fn next_nonce(&self) -> u64 {
        self.nonce_base
            .wrapping_add(self.nonces.fetch_add(1, Ordering::SeqCst))
    }
}

/// Per-connection state.
pub(crate) struct Session {
    shared: Arc<Shared>,
    authed: bool,
    /// Authenticated as the administrator (`AUTH admin PASSWORD`).
    admin: bool,
    /// Who the other end proved to be (its TLS certificate).
    identity: Identity,
    /// `CLIENT ID`: unique among this sidecar's connections.
    client_id: u64,
    /// `CLIENT SETNAME`.
    client_name: Option<Vec<u8>>,
    redis: Option<Conn>,
    proxy: Option<(NodeId, Conn)>,
    /// Inside a MULTI, which is refused: every command up to EXEC or
    /// DISCARD is refused too, so that no part of the client's transaction
    /// runs on its own.
    refused_multi: bool,
    /// When the current request's first byte arrived and when it was
    /// parsed (for [`crate::trace`]).
    arrived: (std::time::Instant, std::time::Instant),
    /// The nonce of the write the current request became, if traced.
    traced: Option<u64>,
}

/// Serves one client connection until it closes.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    identity: Identity,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::new(rd);
    let mut s = Session {
        // A peer's certificate is its credential: it holds no password.
        authed: shared.password.is_none() || identity.is_peer(),
        admin: false,
        identity,
        client_id: shared.client_ids.fetch_add(1, Ordering::SeqCst) + 1,
        client_name: None,
        shared,
        redis: None,
        proxy: None,
        refused_multi: false,
        arrived: (std::time::Instant::now(), std::time::Instant::now()),
        traced: None,
    };
    loop {
        if crate::trace::on() {
            use tokio::io::AsyncBufReadExt;
            rd.fill_buf().await?;
        }
        let received = std::time::Instant::now();
        let frame = match read_request(&mut rd).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // As Redis does: say why, then hang up (the stream is out of
            // step, or the request is past the limits).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let reply = Frame::err(format!("ERR Protocol error: {e}"));
                let _ = write_frame(&mut wr, &reply).await;
                break;
            }
            Err(e) => return Err(e),
        };
        s.arrived = (received, std::time::Instant::now());
        let Some(args) = frame.into_args() else {
            write_frame(
                &mut wr,
                &Frame::err("ERR protocol error: expected an array of strings"),
            )
            .await?;
            continue;
        };
        if args.is_empty() {
            continue;
        }
        let quit = args[0].eq_ignore_ascii_case(b"QUIT");
        let deadline = Instant::now() + s.shared.request_timeout;
        let reply = s.handle(args, deadline, false).await;
        write_frame(&mut wr, &reply).await?;
        if let Some(nonce) = s.traced.take() {
            crate::trace::mark(nonce, crate::trace::Mark::Replied);
        }
        if quit {
            break;
        }
    }
    Ok(())
}

impl Session {
    /// Answers one command by `deadline`; `proxied` when another sidecar
    /// forwarded it.
    async fn handle(&mut self, args: Vec<Vec<u8>>, deadline: Instant, proxied: bool) -> Frame {
        let first = &args[0];
        if !self.authed
            && ![&b"AUTH"[..], b"HELLO", b"QUIT"]
                .iter()
                .any(|n| first.eq_ignore_ascii_case(n))
        {
            return Frame::err("NOAUTH Authentication required.");
        }
        if self.refused_multi || first.eq_ignore_ascii_case(b"MULTI") {
            let name = String::from_utf8_lossy(first).to_ascii_uppercase();
            return self.refuse_transaction(&name);
        }
        let cmd = match Command::parse(args) {
            Ok(c) => c,
            Err(refusal) => return Frame::err(refusal.to_string()),
        };
        match cmd.kind {
            Kind::Transaction => self.refuse_transaction(cmd.name.as_str()),
            Kind::Local => self.local(&cmd),
            Kind::Admin => self.admin(cmd, deadline, proxied).await,
            Kind::Write => self.write(cmd.args, deadline, proxied).await,
            Kind::Read => self.read(cmd, deadline, proxied).await,
        }
    }

    /// MULTI and what follows it until EXEC or DISCARD. A transaction
    /// cannot be one entry of the log, so it is refused the way Redis
    /// refuses one with a bad command in it: MULTI is accepted, every
    /// command after it is refused, and EXEC aborts. (An error reply to
    /// MULTI itself trips the redis crate's pipeline bookkeeping.) Clients
    /// fall back to single commands on this refusal.
    fn refuse_transaction(&mut self, name: &str) -> Frame {
        const WHY: &str = "MULTI is not supported on a Raft cluster (each command is one entry of the replicated log)";
        match name {
            "MULTI" if self.refused_multi => Frame::err("ERR MULTI calls can not be nested"),
            "MULTI" => {
                self.refused_multi = true;
                Frame::Simple("OK".into())
            }
            "EXEC" => {
                self.refused_multi = false;
                Frame::err(format!("EXECABORT Transaction discarded: {WHY}"))
            }
            "DISCARD" => {
                self.refused_multi = false;
                Frame::Simple("OK".into())
            }
            _ => Frame::err(format!("WCLABNOMULTI wclab-raft: {name} refused: {WHY}")),
        }
    }

    fn local(&mut self, cmd: &Command) -> Frame {
        let args = &cmd.args;
        match cmd.name {
            Name::Ping => match args.get(1) {
                Some(m) => Frame::bulk(m.clone()),
                None => Frame::Simple("PONG".into()),
            },
            Name::Echo => Frame::Bulk(args.get(1).cloned()),
            Name::Auth
                if args.len() == 3 && args[1].eq_ignore_ascii_case(Auth::ADMIN.as_bytes()) =>
            {
                match &self.shared.admin_password {
                    Some(pw) if pw.as_bytes() == args[2].as_slice() => {
                        self.authed = true;
                        self.admin = true;
                        Frame::ok()
                    }
                    _ => {
                        Frame::err("WRONGPASS invalid username-password pair or user is disabled.")
                    }
                }
            }
            Name::Auth => {
                let given = args.last().map(|a| a.as_slice()).unwrap_or_default();
                match &self.shared.password {
                    Some(pw) if pw.as_bytes() != given => {
                        Frame::err("WRONGPASS invalid username-password pair or user is disabled.")
                    }
                    _ => {
                        self.authed = true;
                        Frame::ok()
                    }
                }
            }
            Name::Hello => Frame::err("NOPROTO wclab-raft speaks RESP2 only"),
            Name::Select if args.get(1).map(|a| a.as_slice()) == Some(b"0") => Frame::ok(),
            Name::Select => Frame::err("ERR wclab-raft has database 0 only"),
            Name::CommandDocs => Frame::Array(Some(Vec::new())),
            Name::Client => self.client(cmd),
            _ => Frame::ok(), // QUIT, RESET, READONLY, READWRITE
        }
    }

    /// `CLIENT`: the truth about this connection to the sidecar, or a
    /// refusal (the sidecar's own connection to Redis is not the client's).
    fn client(&mut self, cmd: &Command) -> Frame {
        match (cmd.sub().as_str(), cmd.args.len()) {
            ("ID", 2) => Frame::Int(self.client_id as i64),
            ("GETNAME", 2) => Frame::Bulk(self.client_name.clone()),
            ("SETNAME", 3) => {
                let name = &cmd.args[2];
                if name.iter().any(|&b| b <= b' ' || b > b'~') {
                    return Frame::err("ERR Client names cannot contain spaces, newlines or special characters.");
                }
                self.client_name = (!name.is_empty()).then(|| name.clone());
                Frame::ok()
            }
            // The library's name and version: accepted, not used.
            ("SETINFO", 4) => Frame::ok(),
            (sub, _) => Frame::err(format!(
                "ERR wclab-raft: CLIENT {sub} is not supported by the sidecar (supported: ID, GETNAME, SETNAME, SETINFO)"
            )),
        }
    }

    async fn admin(&mut self, cmd: Command, deadline: Instant, proxied: bool) -> Frame {
        if let Some(refusal) = self.not_a_peer(&cmd) {
            return refusal;
        }
        if cmd.name.changes_the_cluster() && !self.is_admin() {
            return self.refuse(
                &cmd,
                "NOADMIN",
                "cluster administration needs the administrator (AUTH admin PASSWORD, the password in WCLAB_RAFT_ADMIN_PASSWORD where the node runs) or a node's certificate".into(),
            );
        }
        match cmd.name {
            // A forwarded command is one client request, forwarded once:
            // never a peer RPC, never forwarded again. Without this rule a
            // few KB of `RAFT.PROXIED RAFT.PROXIED ...` recursed here until
            // the node's stack overflowed (a remote crash).
            Name::RaftRpc | Name::RaftProxied if proxied => Frame::err(format!(
                "ERR wclab-raft: {} inside RAFT.PROXIED is refused (a proxied command is a client's request)",
                cmd.name.as_str()
            )),
            Name::RaftRpc => {
                let rx = crate::rpc::Receiver {
                    id: self.shared.id,
                    raft: &self.shared.cluster.raft,
                    incarnation: self.shared.cluster.incarnation,
                    partition: &self.shared.cluster.network.partition,
                    prevote: &self.shared.prevote,
                    refusals: &self.shared.cluster.refusals,
                    removed: &self.shared.cluster.removed,
                };
                crate::rpc::serve(&rx, &cmd.args[1..]).await
            }
            Name::RaftProxied => {
                // RAFT.PROXIED budget-ms command...: forwarded by a follower.
                let budget = cmd.text(1).parse::<u64>().ok();
                let (Some(budget), true) = (budget, cmd.args.len() > 2) else {
                    return Frame::err("ERR RAFT.PROXIED budget-ms command ...");
                };
                let deadline = deadline.min(Instant::now() + Duration::from_millis(budget));
                Box::pin(self.handle(cmd.args[2..].to_vec(), deadline, true)).await
            }
            _ => match self.shared.cluster.handle(&cmd).await {
                Admin::Reply(f) => f,
                Admin::NoLeader => tryagain("no leader elected"),
                Admin::Forward(leader) if proxied => tryagain(&format!(
                    "not the leader (node {leader} is; a forwarded command is not forwarded again)"
                )),
                // Administration (a join waits for the new node to catch up)
                // may take longer than a request.
                Admin::Forward(leader) => match self
                    .forward(leader, &cmd.args, Instant::now() + ADMIN)
                    .await
                {
                    Forwarded::Reply(f) => f,
                    Forwarded::NotSent(why) => tryagain(&why),
                    Forwarded::Unknown(why) => unknown(&why),
                },
            },
        }
    }

    /// With mutual TLS, the peer commands are served only to peers: a
    /// `RAFT.RPC` only on a connection whose certificate names the node it
    /// claims to come from, a `RAFT.PROXIED` only on one from a node. A
    /// client (no certificate, a client's certificate, the cluster
    /// password) is refused, and the refusal logged.
    fn not_a_peer(&self, cmd: &Command) -> Option<Frame> {
        let refuse = |why: String| Some(self.refuse(cmd, "NOTPEER", why));
        if !self.shared.mutual_tls {
            // In plain text, peers authenticate as the administrator when
            // there is one: a client's password opens no peer command.
            let peer_command = matches!(cmd.name, Name::RaftRpc | Name::RaftProxied);
            return (peer_command && self.shared.admin_password.is_some() && !self.admin)
                .then(|| {
                    refuse(
                        "a peer command on a connection not authenticated as the administrator"
                            .into(),
                    )
                })
                .flatten();
        }
        match cmd.name {
            Name::RaftRpc => {
                let claimed = cmd.text(2).parse::<NodeId>().ok();
                match (&self.identity, claimed) {
                    (_, Some(from)) if self.identity.is_node(from) => None,
                    (Identity::Certified(ids), Some(from)) if !ids.is_empty() => refuse(format!(
                        "an RPC from node {from} on a connection whose certificate names node(s) {ids:?}"
                    )),
                    (Identity::Certified(_), _) => refuse(
                        "a peer RPC on a connection whose certificate names no node (a client's certificate)".into(),
                    ),
                    _ => refuse("a peer RPC on a connection without a node's certificate".into()),
                }
            }
            Name::RaftProxied if !self.identity.is_peer() => {
                refuse("a proxied command on a connection without a node's certificate".into())
            }
            _ => None,
        }
    }

    /// Whether this connection may administer the cluster: a node's
    /// certificate, or `AUTH admin` with the administrator's password; on
    /// a node in plain text without an administrator's password, every
    /// authenticated client (the labs' default, docs/security.md).
    fn is_admin(&self) -> bool {
        self.identity.is_peer()
            || self.admin
            || (self.shared.admin_password.is_none() && !self.shared.mutual_tls && self.authed)
    }

    /// Refuses `cmd` with `code`, counting the refusal and logging it (at
    /// most a few lines a second, [`crate::tls::Refusals`]); the log line
    /// carries the connection's remote address (its span).
    fn refuse(&self, cmd: &Command, code: &str, why: String) -> Frame {
        if let Some(unlogged) = self.shared.cluster.refusals.count() {
            tracing::warn!(command = cmd.name.as_str(), identity = ?self.identity, unlogged, "peer command refused: {why}");
        }
        Frame::err(format!("{code} wclab-raft: {why}"))
    }

    fn leader(&self) -> Option<NodeId> {
        self.shared.cluster.leader()
    }

    /// Waits (a little) for the leader to differ from `stale`; false once
    /// `deadline` has passed.
    async fn wait_for_leader(&self, stale: Option<NodeId>, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut metrics = self.shared.cluster.raft.metrics();
        let _ = tokio::time::timeout(
            left.min(Duration::from_millis(100)),
            metrics.wait_for(|m| m.current_leader != stale && m.current_leader.is_some()),
        )
        .await;
        Instant::now() < deadline
    }

    /// Sends `args` to the leader `id` and relays its reply.
    async fn forward(&mut self, id: NodeId, args: &[Vec<u8>], deadline: Instant) -> Forwarded {
        if id == self.shared.id {
            return Forwarded::NotSent("leadership is changing".into());
        }
        if self.shared.cluster.network.partition.blocks(id) {
            return Forwarded::NotSent(format!(
                "the leader (node {id}) is unreachable from this node"
            ));
        }
        let Some(addr) = self.shared.cluster.addr_of(id) else {
            return Forwarded::NotSent(format!(
                "the leader (node {id}) is not in the configuration known here"
            ));
        };
        let cached = match self.proxy.take() {
            Some((l, c)) if l == id && !c.is_dead() => Some(c),
            _ => None,
        };
        let mut conn = match cached {
            Some(c) => c,
            None => {
                let net = &self.shared.cluster.network;
                let (dial, pw) = (net.dial.clone(), net.peer_auth());
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(
                    left.min(CONNECT),
                    Conn::dial(&addr, &dial, id, pw.as_ref()),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        return Forwarded::NotSent(format!(
                            "cannot reach the leader (node {id}): {e}"
                        ))
                    }
                    Err(_) => {
                        return Forwarded::NotSent(format!(
                            "the leader (node {id}) did not accept a connection in time"
                        ))
                    }
                }
            }
        };
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        let mut wrapped: Vec<Vec<u8>> = Vec::with_capacity(args.len() + 2);
        wrapped.push(b"RAFT.PROXIED".to_vec());
        wrapped.push(budget.to_string().into_bytes());
        wrapped.extend(args.iter().cloned());
        if let Err(e) = conn.write(&Frame::command(&wrapped)).await {
            // A request written in part is not a command the leader runs.
            return Forwarded::NotSent(format!("cannot reach the leader (node {id}): {e}"));
        }
        match tokio::time::timeout_at(deadline + HOP, conn.read()).await {
            Ok(Ok(reply)) => {
                self.proxy = Some((id, conn));
                Forwarded::Reply(reply)
            }
            Ok(Err(e)) => Forwarded::Unknown(format!(
                "the connection to the leader (node {id}) was lost after the request was sent: {e}"
            )),
            Err(_) => Forwarded::Unknown(format!("the leader (node {id}) did not answer in time")),
        }
    }

    async fn write(&mut self, args: Vec<Vec<u8>>, deadline: Instant, proxied: bool) -> Frame {
        loop {
            match self.leader() {
                Some(l) if l == self.shared.id => {
                    if !self.shared.cluster.quorum_recent(self.shared.timing.lease) {
                        if self.wait_for_leader(Some(l), deadline).await {
                            continue;
                        }
                        return tryagain(
                            "this leader has not heard from a majority lately; the write was not appended",
                        );
                    }
                    match self.submit(&args, deadline).await {
                        Submitted::Done(f) => return f,
                        Submitted::NotAppended => {
                            if !self.wait_for_leader(Some(l), deadline).await {
                                return tryagain(
                                    "leadership is changing; the write was not appended",
                                );
                            }
                        }
                    }
                }
                Some(l) if proxied => {
                    return tryagain(&format!(
                        "not the leader (node {l} is; a forwarded command is not forwarded again)"
                    ))
                }
                Some(l) => match self.forward(l, &args, deadline).await {
                    Forwarded::Reply(f) if is_tryagain(&f) => {
                        if !self.wait_for_leader(Some(l), deadline).await {
                            return f;
                        }
                    }
                    Forwarded::Reply(f) => return f,
                    Forwarded::NotSent(why) => {
                        if !self.wait_for_leader(Some(l), deadline).await {
                            return tryagain(&why);
                        }
                    }
                    Forwarded::Unknown(why) => return unknown(&why),
                },
                None => {
                    if !self.wait_for_leader(None, deadline).await {
                        return tryagain("no leader elected");
                    }
                }
            }
        }
    }

    /// Hands a write to openraft on this node, the leader.
    async fn submit(&mut self, original: &[Vec<u8>], deadline: Instant) -> Submitted {
        let shared = &self.shared;
        let mut args = original.to_vec();
        // The leader's clock, never behind what was already applied or issued.
        let now = now_ms()
            .max(shared.sm.shared.max_now_ms.load(Ordering::SeqCst))
            .max(shared.last_now.load(Ordering::SeqCst));
        if command::fill_now(&mut args, now) {
            shared.last_now.fetch_max(now, Ordering::SeqCst);
        }
        let nonce = shared.next_nonce();
        if crate::trace::on() {
            use crate::trace::{mark, mark_at, Mark};
            mark_at(nonce, Mark::Received, self.arrived.0);
            mark_at(nonce, Mark::Parsed, self.arrived.1);
            crate::trace::name(nonce, &args);
            mark(nonce, Mark::Submitted);
            self.traced = Some(nonce);
        }
        let write = shared.proposer.propose(Write { nonce, args });
        let appended = || shared.cluster.log.appended(nonce);
        let timeout = shared.request_timeout;
        let result = tokio::time::timeout_at(deadline, write).await;
        crate::trace::mark(nonce, crate::trace::Mark::Answered);
        let result = match result {
            Ok(Ok(outcome)) => Ok(outcome),
            // The proposer is gone (the node is stopping), maybe after
            // handing the write to openraft.
            Ok(Err(_closed)) => {
                return Submitted::Done(unknown(
                    "the node is stopping; the write may or may not commit",
                ))
            }
            Err(elapsed) => Err(elapsed),
        };
        match result {
            Ok(Ok(_)) if crate::testing::unknown_reply(original) => Submitted::Done(unknown(
                "test fault: the reply to a committed write was dropped",
            )),
            Ok(Ok(reply)) => Submitted::Done(reply),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) if !appended() => {
                Submitted::NotAppended
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Submitted::Done(unknown(
                    "leadership changed after the write entered the log; it may or may not commit",
                ))
            }
            Ok(Err(e)) if !appended() => {
                Submitted::Done(tryagain(&format!("write refused before the log: {e}")))
            }
            Ok(Err(e)) => {
                Submitted::Done(unknown(&format!("the write entered the log, then: {e}")))
            }
            // Once openraft has the request, it may still append and commit
            // it after this answer.
            Err(_) => Submitted::Done(unknown(&format!(
                "not committed within {timeout:?} (a leader without a quorum?); it may still commit"
            ))),
        }
    }

    async fn read(&mut self, cmd: Command, deadline: Instant, proxied: bool) -> Frame {
        if cmd.name == Name::Info && cmd.sub() == "RAFT" {
            return Frame::bulk(self.shared.cluster.status().await);
        }
        loop {
            match self.leader() {
                Some(l) if l == self.shared.id => {
                    let check = self.shared.cluster.raft.ensure_linearizable();
                    match tokio::time::timeout_at(deadline, check).await {
                        Ok(Ok(_)) => return self.local_redis(&cmd.args).await,
                        Ok(Err(e)) if e.forward_to_leader().is_some() => {
                            if !self.wait_for_leader(Some(l), deadline).await {
                                return tryagain(&format!("read index check failed: {e}"));
                            }
                        }
                        Ok(Err(e)) => return tryagain(&format!("read index check failed: {e}")),
                        Err(_) => return tryagain("no quorum confirmed this leader in time"),
                    }
                }
                Some(l) if proxied => {
                    return tryagain(&format!(
                        "not the leader (node {l} is; a forwarded command is not forwarded again)"
                    ))
                }
                // A read is safe to repeat: whatever became of a forwarded
                // one, try again while there is time.
                Some(l) => {
                    let failed = match self.forward(l, &cmd.args, deadline).await {
                        Forwarded::Reply(f) if !is_tryagain(&f) => return f,
                        Forwarded::Reply(f) => f,
                        Forwarded::NotSent(why) | Forwarded::Unknown(why) => tryagain(&why),
                    };
                    if !self.wait_for_leader(Some(l), deadline).await {
                        return failed;
                    }
                }
                None => {
                    if !self.wait_for_leader(None, deadline).await {
                        return tryagain("no leader elected");
                    }
                }
            }
        }
    }

    async fn local_redis(&mut self, args: &[Vec<u8>]) -> Frame {
        for _ in 0..2 {
            if self.redis.is_none() {
                match Conn::connect(&self.shared.redis_addr, Some(&self.shared.redis_password))
                    .await
                {
                    Ok(c) => self.redis = Some(c),
                    Err(e) => return tryagain(&format!("local redis-server unreachable: {e}")),
                }
            }
            let c = self.redis.as_mut().expect("connected");
            match c.call(args).await {
                Ok(f) => return f,
                Err(_) => self.redis = None,
            }
        }
        tryagain("local redis-server connection lost")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
