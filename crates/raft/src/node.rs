//! The sidecar: one per node, next to its own redis-server.
//!
//! It speaks RESP to clients (the `redis` crate, redis-cli) and to its
//! peers. A client may connect to any node:
//!
//! * a write goes into the Raft log on the leader; its reply is the result
//!   of applying it to the leader's Redis, sent after the commit;
//! * a read is answered by the leader after openraft's read-index check
//!   (`ensure_linearizable`), never from a follower's possibly stale Redis;
//! * a follower proxies both to the leader (one hop at most: a proxied
//!   command is marked and never proxied again), like RedisRaft's
//!   follower-proxy; without a reachable leader the answer is `-TRYAGAIN`,
//!   which clients treat as "retry, maybe elsewhere".

use crate::command::{self, Kind};
use crate::log::LogStore;
use crate::net::{self, Network, Partition};
use crate::resp::{read_frame, write_frame, Conn, Frame};
use crate::sm::StateMachine;
use crate::types::{Node, NodeId, Raft, Request};
use anyhow::{Context, Result};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use wclab_server::{RedisServer, ServerOptions};

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's ID (unique in the cluster, > 0).
    pub id: NodeId,
    /// Address the sidecar listens on (clients and peers), `host:port`.
    pub listen: String,
    /// Data directory: Raft log, vote, snapshot, and the Redis's own directory.
    pub dir: PathBuf,
    /// Password that clients and peers must AUTH with (none: open).
    pub password: Option<String>,
    /// Leader heartbeat; elections time out after 5 to 10 heartbeats.
    pub heartbeat: Duration,
    /// A write or read not done within this is answered `-TRYAGAIN`.
    pub request_timeout: Duration,
    /// Take a snapshot every this many log entries.
    pub snapshot_every: u64,
}

impl NodeConfig {
    /// Defaults for node `id` listening on `listen` with data in `dir`.
    pub fn new(id: NodeId, listen: &str, dir: PathBuf) -> Self {
        NodeConfig {
            id,
            listen: listen.to_owned(),
            dir,
            password: None,
            heartbeat: Duration::from_millis(150),
            request_timeout: Duration::from_secs(5),
            snapshot_every: 500,
        }
    }
}

struct Shared {
    id: NodeId,
    raft: Raft,
    sm: StateMachine,
    log: LogStore,
    partition: Partition,
    password: Option<String>,
    redis_addr: String,
    redis_password: String,
    request_timeout: Duration,
    /// Largest `now_ms` this node handed out as leader.
    last_now: AtomicU64,
}

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(cfg: NodeConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.dir)
        .with_context(|| format!("cannot create {}", cfg.dir.display()))?;
    let raft_dir = cfg.dir.join("raft");
    let redis_dir = cfg.dir.join("redis");
    kill_stale_redis(&cfg.dir);
    let server = tokio::task::spawn_blocking(move || {
        RedisServer::start(ServerOptions {
            dir: Some(redis_dir),
            ..Default::default()
        })
    })
    .await??;
    if let Some(pid) = server.pid() {
        let _ = std::fs::write(cfg.dir.join("redis-server.pid"), pid.to_string());
        let _ = REDIS_PID.set(pid);
    }
    let redis_addr = format!("127.0.0.1:{}", server.port());
    let sm = StateMachine::open(&raft_dir, &redis_addr, server.password())
        .await
        .context("cannot take over the local redis-server")?;
    let log = LogStore::open(&raft_dir)
        .with_context(|| format!("cannot open the Raft log in {}", raft_dir.display()))?;
    let hb = cfg.heartbeat.as_millis() as u64;
    let config = Config {
        cluster_name: "wclab".into(),
        heartbeat_interval: hb,
        election_timeout_min: hb * 5,
        election_timeout_max: hb * 10,
        install_snapshot_timeout: 30_000,
        max_payload_entries: 16,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
        max_in_snapshot_log_to_keep: cfg.snapshot_every / 2,
        ..Default::default()
    }
    .validate()?;
    let partition = Partition::default();
    let network = Network {
        id: cfg.id,
        password: cfg.password.clone(),
        partition: partition.clone(),
    };
    let raft = Raft::new(cfg.id, Arc::new(config), network, log.clone(), sm.clone()).await?;
    let shared = Arc::new(Shared {
        id: cfg.id,
        raft: raft.clone(),
        sm,
        log,
        partition,
        password: cfg.password.clone(),
        redis_addr,
        redis_password: server.password().to_owned(),
        request_timeout: cfg.request_timeout,
        last_now: AtomicU64::new(0),
    });
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    tracing::info!(id = cfg.id, listen = %cfg.listen, redis = %shared.redis_addr, "raft node up");
    eprintln!(
        "wclab raft node {} listening on {} (redis-server on {})",
        cfg.id, cfg.listen, shared.redis_addr
    );

    // A stopped Raft core (storage failure, a bug) leaves a node that
    // cannot do anything right: crash, so that it is restarted from disk.
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let state = metrics.borrow().running_state.clone();
            match state {
                Err(openraft::error::Fatal::Stopped) => break, // our own shutdown
                Err(e) => die(71, &format!("the Raft core stopped: {e}")),
                Ok(()) => {}
            }
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_conn(shared, stream).await {
                        tracing::debug!(error = %e, "client connection ended");
                    }
                });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = raft.shutdown().await;
    drop(server);
    let _ = std::fs::remove_file(cfg.dir.join("redis-server.pid"));
    Ok(())
}

/// The local redis-server's PID, for [`die`].
static REDIS_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Stops the node at once (after a failure that leaves its state unknown),
/// with its redis-server: a restart rebuilds both from the log.
pub(crate) fn die(code: i32, why: &str) -> ! {
    tracing::error!(why, "stopping the node");
    eprintln!("wclab raft node: {why}; stopping (restart the node to rebuild it from its log)");
    if let Some(pid) = REDIS_PID.get() {
        let _ = nix_kill(*pid as i32);
    }
    std::process::exit(code)
}

/// A node killed with SIGKILL leaves its redis-server behind: stop it.
fn kill_stale_redis(dir: &std::path::Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join("redis-server.pid")) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    let is_redis = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.starts_with("redis-server") || c.starts_with("redis-check"))
        .unwrap_or(false);
    if is_redis {
        tracing::info!(pid, "stopping the redis-server left by a crashed node");
        let _ = nix_kill(pid);
    }
}

fn nix_kill(pid: i32) -> nix::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
}

/// Per-connection state.
struct Session {
    shared: Arc<Shared>,
    authed: bool,
    redis: Option<Conn>,
    proxy: Option<(NodeId, Conn)>,
    /// Inside a MULTI, which is refused: every command up to EXEC or
    /// DISCARD is refused too, so that no part of the client's transaction
    /// runs on its own.
    refused_multi: bool,
}

async fn serve_conn(shared: Arc<Shared>, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut s = Session {
        authed: shared.password.is_none(),
        shared,
        redis: None,
        proxy: None,
        refused_multi: false,
    };
    while let Some(frame) = read_frame(&mut rd).await? {
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
        let reply = s.handle(args, false).await;
        write_frame(&mut wr, &reply).await?;
        if quit {
            break;
        }
    }
    Ok(())
}

fn tryagain(why: &str) -> Frame {
    Frame::err(format!("TRYAGAIN wclab-raft: {why}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Session {
    async fn handle(&mut self, args: Vec<Vec<u8>>, proxied: bool) -> Frame {
        let kind = command::classify(&args);
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if !self.authed && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
            return Frame::err("NOAUTH Authentication required.");
        }
        if self.refused_multi || name == "MULTI" {
            return self.refuse_transaction(&name);
        }
        match kind {
            Kind::Local => self.local(&name, &args),
            Kind::Admin => self.admin(&name, args).await,
            Kind::Reject(msg) => Frame::err(msg),
            Kind::Write => self.write(args, proxied).await,
            Kind::Read => self.read(args, proxied).await,
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

    fn local(&mut self, name: &str, args: &[Vec<u8>]) -> Frame {
        match name {
            "PING" => match args.get(1) {
                Some(m) => Frame::bulk(m.clone()),
                None => Frame::Simple("PONG".into()),
            },
            "ECHO" => Frame::Bulk(args.get(1).cloned()),
            "AUTH" => {
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
            "HELLO" => Frame::err("NOPROTO wclab-raft speaks RESP2 only"),
            "SELECT" if args.get(1).map(|a| a.as_slice()) == Some(b"0") => Frame::ok(),
            "SELECT" => Frame::err("ERR wclab-raft has database 0 only"),
            "COMMAND" => Frame::Array(Some(Vec::new())),
            _ => Frame::ok(), // CLIENT SETINFO, QUIT, RESET, READONLY...
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.shared.raft.metrics().borrow().current_leader
    }

    /// The membership this node knows (the last one in its log).
    fn membership(&self) -> Arc<openraft::StoredMembership<NodeId, Node>> {
        self.shared
            .raft
            .metrics()
            .borrow()
            .membership_config
            .clone()
    }

    fn addr_of(&self, id: NodeId) -> Option<String> {
        let m = self.membership();
        m.membership().get_node(&id).map(|n| n.addr.clone())
    }

    /// Sends `args` to the leader `id` and relays its reply.
    async fn proxy(&mut self, id: NodeId, args: &[Vec<u8>], proxied: bool) -> Frame {
        if proxied {
            return tryagain("not the leader any more (proxied command not forwarded again)");
        }
        if id == self.shared.id {
            return tryagain("leadership is changing");
        }
        if self.shared.partition.blocks(id) {
            return tryagain(&format!(
                "the leader (node {id}) is unreachable from this node"
            ));
        }
        let Some(addr) = self.addr_of(id) else {
            return tryagain(&format!(
                "the leader (node {id}) is not in the membership known here"
            ));
        };
        let conn = match self.proxy.take() {
            Some((l, c)) if l == id => Some(c),
            _ => None,
        };
        let mut wrapped: Vec<Vec<u8>> = Vec::with_capacity(args.len() + 1);
        wrapped.push(b"RAFT.PROXIED".to_vec());
        wrapped.extend(args.iter().cloned());
        let password = self.shared.password.clone();
        let attempt = async move {
            let mut c = match conn {
                Some(c) => c,
                None => Conn::connect(&addr, password.as_deref()).await?,
            };
            let r = c.call(&wrapped).await?;
            Ok::<_, std::io::Error>((c, r))
        };
        match tokio::time::timeout(
            self.shared.request_timeout + Duration::from_secs(1),
            attempt,
        )
        .await
        {
            Ok(Ok((c, r))) => {
                self.proxy = Some((id, c));
                r
            }
            Ok(Err(e)) => tryagain(&format!("cannot reach the leader (node {id}): {e}")),
            Err(_) => tryagain(&format!("the leader (node {id}) did not answer in time")),
        }
    }

    async fn write(&mut self, mut args: Vec<Vec<u8>>, proxied: bool) -> Frame {
        let leader = self.leader();
        match leader {
            Some(l) if l == self.shared.id => {}
            Some(l) => return self.proxy(l, &args, proxied).await,
            None => return tryagain("no leader elected yet"),
        }
        let original = args.clone();
        // The leader's clock, never behind what was already applied or issued.
        let now = now_ms()
            .max(self.shared.sm.shared.max_now_ms.load(Ordering::SeqCst))
            .max(self.shared.last_now.load(Ordering::SeqCst));
        if command::fill_now(&mut args, now) {
            self.shared.last_now.fetch_max(now, Ordering::SeqCst);
        }
        let write = self.shared.raft.client_write(Request { args });
        match tokio::time::timeout(self.shared.request_timeout, write).await {
            Ok(Ok(resp)) => resp.data,
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => match f.leader_id
            {
                Some(l) => self.proxy(l, &original, proxied).await,
                None => tryagain("no leader elected yet"),
            },
            Ok(Err(e)) => tryagain(&format!("write failed: {e}")),
            // The entry may still commit later: every wclab write is safe to repeat.
            Err(_) => tryagain("the write was not committed in time (leader without a quorum?)"),
        }
    }

    async fn read(&mut self, args: Vec<Vec<u8>>, proxied: bool) -> Frame {
        if args[0].eq_ignore_ascii_case(b"INFO")
            && args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"raft"))
        {
            return Frame::bulk(self.status().await);
        }
        match self.leader() {
            Some(l) if l == self.shared.id => {}
            Some(l) => return self.proxy(l, &args, proxied).await,
            None => return tryagain("no leader elected yet"),
        }
        let check = self.shared.raft.ensure_linearizable();
        match tokio::time::timeout(self.shared.request_timeout, check).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => match e.forward_to_leader().and_then(|f| f.leader_id) {
                Some(l) => return self.proxy(l, &args, proxied).await,
                None => return tryagain(&format!("read index check failed: {e}")),
            },
            Err(_) => return tryagain("no quorum confirmed this leader in time"),
        }
        self.local_redis(&args).await
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

    async fn admin(&mut self, name: &str, args: Vec<Vec<u8>>) -> Frame {
        let text = |i: usize| {
            args.get(i)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_default()
        };
        match name {
            "RAFT.RPC" if args.len() == 4 => {
                net::serve(
                    &self.shared.raft,
                    &self.shared.partition,
                    &args[1],
                    &args[2],
                    &args[3],
                )
                .await
            }
            "RAFT.PROXIED" if args.len() > 1 => {
                Box::pin(self.handle(args[1..].to_vec(), true)).await
            }
            "RAFT.INFO" => Frame::bulk(self.status().await),
            "RAFT.INIT" => {
                // RAFT.INIT id=host:port [id=host:port ...]; default: this node alone.
                let mut members = BTreeMap::new();
                for a in &args[1..] {
                    let a = String::from_utf8_lossy(a);
                    let Some((id, addr)) = a.split_once('=') else {
                        return Frame::err(format!("ERR RAFT.INIT wants id=host:port, got {a}"));
                    };
                    let Ok(id) = id.parse::<NodeId>() else {
                        return Frame::err(format!("ERR bad node id in {a}"));
                    };
                    members.insert(id, Node::new(addr));
                }
                if members.is_empty() {
                    return Frame::err("ERR RAFT.INIT id=host:port ... (this node among them)");
                }
                match self.shared.raft.initialize(members).await {
                    Ok(()) => Frame::ok(),
                    Err(e) => Frame::err(format!("ERR {e}")),
                }
            }
            "RAFT.JOIN" if args.len() == 3 => {
                // RAFT.JOIN id host:port: add a learner, wait until it caught up, make it a voter.
                let Ok(id) = text(1).parse::<NodeId>() else {
                    return Frame::err("ERR RAFT.JOIN id host:port");
                };
                match self.leader() {
                    Some(l) if l == self.shared.id => {}
                    Some(l) => return self.proxy(l, &args, false).await,
                    None => return tryagain("no leader elected yet"),
                }
                if let Err(e) = self
                    .shared
                    .raft
                    .add_learner(id, Node::new(text(2)), true)
                    .await
                {
                    return Frame::err(format!("ERR add learner: {e}"));
                }
                let m = self.membership();
                let mut voters: BTreeSet<NodeId> = m.membership().voter_ids().collect();
                voters.insert(id);
                match self.shared.raft.change_membership(voters, false).await {
                    Ok(_) => Frame::ok(),
                    Err(e) => Frame::err(format!("ERR change membership: {e}")),
                }
            }
            "RAFT.PARTITION" => {
                // RAFT.PARTITION [id ...]: drop traffic with these peers; no ids: heal.
                let mut peers = BTreeSet::new();
                for a in &args[1..] {
                    match String::from_utf8_lossy(a).parse::<NodeId>() {
                        Ok(id) => {
                            peers.insert(id);
                        }
                        Err(_) => return Frame::err("ERR RAFT.PARTITION [node-id ...]"),
                    }
                }
                self.proxy = None;
                self.shared.partition.set(peers);
                Frame::ok()
            }
            "RAFT.DIGEST" if text(1).eq_ignore_ascii_case("FULL") => {
                match self.shared.sm.canonical().await {
                    Ok((applied, _, canon)) => {
                        Frame::Array(Some(vec![Frame::Int(applied as i64), Frame::bulk(canon)]))
                    }
                    Err(e) => Frame::err(format!("ERR digest: {e}")),
                }
            }
            "RAFT.DIGEST" => match self.shared.sm.digest().await {
                Ok((applied, digest, keys)) => Frame::Array(Some(vec![
                    Frame::Int(applied as i64),
                    Frame::bulk(digest),
                    Frame::Int(keys as i64),
                ])),
                Err(e) => Frame::err(format!("ERR digest: {e}")),
            },
            "RAFT.SNAPSHOT" => match self.shared.raft.trigger().snapshot().await {
                Ok(()) => Frame::ok(),
                Err(e) => Frame::err(format!("ERR {e}")),
            },
            _ => Frame::err(format!("ERR unknown or malformed {name}")),
        }
    }

    /// The INFO-style status of this node.
    async fn status(&self) -> String {
        let m = self.shared.raft.metrics().borrow().clone();
        let committed = self
            .shared
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
        let voters: Vec<String> = membership.voter_ids().map(|v| v.to_string()).collect();
        let learners: Vec<String> = membership.learner_ids().map(|v| v.to_string()).collect();
        let leader_addr = m
            .current_leader
            .and_then(|l| self.addr_of(l))
            .unwrap_or_default();
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let partitioned: Vec<String> = self
            .shared
            .partition
            .peers()
            .iter()
            .map(|p| p.to_string())
            .collect();
        format!(
            "# Raft\r\nnode_id:{}\r\nrole:{role}\r\nterm:{}\r\nleader_id:{}\r\nleader_addr:{leader_addr}\r\n\
             commit_index:{}\r\napplied_index:{}\r\nlast_log_index:{}\r\nsnapshot_index:{}\r\n\
             snapshots_installed:{}\r\nmembers:{}\r\nvoters:{}\r\nlearners:{}\r\npartitioned_from:{}\r\n\
             redis_addr:{}\r\n",
            self.shared.id,
            m.current_term,
            opt(m.current_leader),
            opt(committed),
            opt(m.last_applied.map(|l| l.index)),
            opt(self.shared.log.last_index()),
            opt(m.snapshot.map(|l| l.index)),
            self.shared.sm.shared.installed.load(Ordering::SeqCst),
            members.join(","),
            voters.join(","),
            learners.join(","),
            partitioned.join(","),
            self.shared.redis_addr,
        )
    }
}
