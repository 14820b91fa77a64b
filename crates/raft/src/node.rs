//! A node: its redis-server, its Raft, and the tasks around them, wired
//! together.
//!
//! [`run`] starts the redis-server (persistence off), takes it over as the
//! state machine, opens the log, starts openraft with its election timer
//! off, and then runs, for the life of the node:
//!
//! * the listener: one [`crate::session`] per client (peers are clients
//!   too: their RPCs are `RAFT.RPC` commands);
//! * the election driver ([`crate::election`]): pre-vote, then elect;
//! * the rejoin task ([`crate::rejoin`]): the leader takes back nodes that
//!   lost their directory;
//! * the Redis health check ([`crate::health`]);
//! * the watchdog: a Raft core that stops (or panics) stops the node
//!   ([`crate::fatal`]).

use crate::admin::Cluster;
use crate::election::{Driver, PreVoter, Timing};
use crate::fatal::{self, Exit};
use crate::health::Health;
use crate::log::LogStore;
use crate::net::{Network, Partition, PeerState};
use crate::resp::Dial;
use crate::session::Shared;
use crate::sm::StateMachine;
use crate::tls::Identity;
use crate::types::{NodeId, Raft};
use openraft::{Config, SnapshotPolicy};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::Instrument;
use wclab_server::{RedisServer, ServerOptions};

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's ID (unique in the cluster, > 0).
    pub id: NodeId,
    /// Address the sidecar listens on (clients and peers), `host:port`.
    pub listen: String,
    /// Data directory: Raft log, vote, snapshot, incarnation, and the
    /// Redis's own directory.
    pub dir: PathBuf,
    /// Password that clients and peers must AUTH with (none: open).
    pub password: Option<String>,
    /// The administrator's password (`AUTH admin PASSWORD`): needed for
    /// cluster administration and, in plain text, by peers. None: in plain
    /// text every client may administer; with TLS only a node's
    /// certificate may (see [`crate::session`]).
    pub admin_password: Option<String>,
    /// Leader heartbeat.
    pub heartbeat: Duration,
    /// The leader lease: followers campaign after a random 1 to 1.5 times
    /// this without a leader (see [`crate::election`]).
    pub election_timeout: Duration,
    /// A request not answered within this is answered `-TRYAGAIN` or
    /// `-UNKNOWN` (see [`crate::session`]).
    pub request_timeout: Duration,
    /// Take a snapshot every this many log entries.
    pub snapshot_every: u64,
    /// TLS on the port, for clients and (mutual) for peers; none: plain
    /// text (see [`crate::tls`]).
    pub tls: Option<crate::tls::TlsPaths>,
}

impl NodeConfig {
    /// Defaults for node `id` listening on `listen` with data in `dir`.
    pub fn new(id: NodeId, listen: &str, dir: PathBuf) -> Self {
        NodeConfig {
            id,
            listen: listen.to_owned(),
            dir,
            password: None,
            admin_password: None,
            heartbeat: DEFAULT_HEARTBEAT,
            election_timeout: DEFAULT_HEARTBEAT * LEASE_HEARTBEATS,
            request_timeout: Duration::from_secs(4),
            snapshot_every: 500,
            tls: None,
        }
    }
}

/// The default heartbeat (openraft's own default).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(50);

/// The default election timeout (the lease), in heartbeats.
pub const LEASE_HEARTBEATS: u32 = 4;

/// Why a node could not start (or stopped serving).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Timers that cannot work.
    #[error("the election timeout ({timeout:?}) must be more than two heartbeats ({heartbeat:?})")]
    Timers {
        /// The election timeout given.
        timeout: Duration,
        /// The heartbeat given.
        heartbeat: Duration,
    },
    /// The data directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory's incarnation.
    #[error(transparent)]
    Incarnation(#[from] crate::incarnation::IncarnationError),
    /// The local redis-server did not start.
    #[error("cannot start the local redis-server: {0}")]
    Redis(String),
    /// The local redis-server could not be taken over (flushed, restored).
    #[error("cannot take over the local redis-server: {0}")]
    StateMachine(#[source] std::io::Error),
    /// The Raft log could not be opened.
    #[error("cannot open the Raft log in {path}: {source}")]
    Log {
        /// The Raft directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// openraft refused the configuration.
    #[error("bad Raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    /// openraft did not start.
    #[error("cannot start Raft: {0}")]
    Raft(String),
    /// The address is taken, or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Signals or the listener failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Set on SIGTERM: the Raft core stopping then is no failure.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(cfg: NodeConfig) -> Result<(), NodeError> {
    if cfg.election_timeout <= cfg.heartbeat * 2 {
        return Err(NodeError::Timers {
            timeout: cfg.election_timeout,
            heartbeat: cfg.heartbeat,
        });
    }
    std::fs::create_dir_all(&cfg.dir).map_err(|source| NodeError::Dir {
        path: cfg.dir.display().to_string(),
        source,
    })?;
    let tls = match &cfg.tls {
        Some(paths) => Some(Arc::new(crate::tls::NodeTls::load(paths, cfg.id)?)),
        None => None,
    };
    let raft_dir = cfg.dir.join("raft");
    let redis_dir = cfg.dir.join("redis");
    kill_stale_redis(&cfg.dir);
    // Before the log is opened (which creates it): a directory with a log
    // and no incarnation lost part of itself.
    let incarnation = crate::incarnation::load_or_create(&raft_dir)?;
    fatal::stop_on_panic();
    let server = tokio::task::spawn_blocking(move || {
        RedisServer::start(ServerOptions {
            dir: Some(redis_dir),
            ..Default::default()
        })
    })
    .await
    .map_err(|e| NodeError::Redis(e.to_string()))?
    .map_err(|e| NodeError::Redis(e.to_string()))?;
    if let Some(pid) = server.pid() {
        let _ = std::fs::write(cfg.dir.join("redis-server.pid"), pid.to_string());
        fatal::set_redis_pid(pid);
    }
    let redis_addr = format!("127.0.0.1:{}", server.port());
    let sm = StateMachine::open(&raft_dir, &redis_addr, server.password())
        .await
        .map_err(NodeError::StateMachine)?;
    let log = LogStore::open(&raft_dir).map_err(|source| NodeError::Log {
        path: raft_dir.display().to_string(),
        source,
    })?;
    let removed = Arc::new(
        crate::removed::Removed::load(raft_dir.clone()).map_err(|source| NodeError::Log {
            path: raft_dir.display().to_string(),
            source,
        })?,
    );
    if log.forget_leadership(cfg.id) {
        tracing::info!("was the leader before this restart: starts as a follower");
    }
    let timing = Timing {
        heartbeat: cfg.heartbeat,
        lease: cfg.election_timeout,
    };
    let hb = cfg.heartbeat.as_millis() as u64;
    let lease = cfg.election_timeout.as_millis() as u64;
    let config = Config {
        cluster_name: "wclab".into(),
        heartbeat_interval: hb,
        // openraft's lease is its election_timeout_max; its minimum only
        // bounds how long a vote request may take. Its election timer is
        // off: elections are driven by crate::election, after a pre-vote.
        election_timeout_min: (lease / 2).max(hb + 1),
        election_timeout_max: lease,
        enable_elect: false,
        install_snapshot_timeout: 30_000,
        max_payload_entries: 16,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
        max_in_snapshot_log_to_keep: cfg.snapshot_every / 2,
        ..Default::default()
    }
    .validate()?;
    let network = Network {
        id: cfg.id,
        incarnation,
        password: cfg.password.clone(),
        admin_password: cfg.admin_password.clone(),
        dial: match &tls {
            Some(t) => Dial::Peer(t.clone()),
            None => Dial::Plain,
        },
        partition: Partition::default(),
        peers: PeerState::default(),
    };
    let raft = Raft::new(
        cfg.id,
        Arc::new(config),
        network.clone(),
        log.clone(),
        sm.clone(),
    )
    .await
    .map_err(|e| NodeError::Raft(e.to_string()))?;
    tokio::spawn(removed.clone().watch(raft.clone()));
    let cluster = Cluster {
        id: cfg.id,
        incarnation,
        raft: raft.clone(),
        log: log.clone(),
        sm: sm.clone(),
        network: network.clone(),
        redis_addr: redis_addr.clone(),
        refusals: Arc::default(),
        removed: removed.clone(),
    };
    let heard = Arc::new(crate::election::Heard::default());
    let prevoter = Arc::new(PreVoter {
        raft: raft.clone(),
        log: log.clone(),
        timing,
        heard: heard.clone(),
        granted: Default::default(),
    });
    let shared = Arc::new(Shared {
        id: cfg.id,
        cluster: cluster.clone(),
        sm,
        prevote: prevoter.clone(),
        timing,
        password: cfg.password.clone(),
        admin_password: cfg.admin_password.clone(),
        mutual_tls: tls.is_some(),
        redis_addr: redis_addr.clone(),
        redis_password: server.password().to_owned(),
        request_timeout: cfg.request_timeout,
        last_now: AtomicU64::new(0),
        client_ids: AtomicU64::new(0),
        nonce_base: rand::random(),
        nonces: AtomicU64::new(0),
        proposer: crate::propose::Proposer::start(raft.clone()),
    });
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.listen.clone(),
            source,
        })?;
    tracing::info!(id = cfg.id, listen = %cfg.listen, redis = %redis_addr,
        incarnation = format!("{incarnation:016x}"), tls = tls.is_some(), "raft node up");
    eprintln!(
        "wclab raft node {} (incarnation {incarnation:016x}) listening on {}{} (redis-server on {redis_addr})",
        cfg.id,
        cfg.listen,
        if tls.is_some() { " in TLS only, peers in mutual TLS" } else { "" }
    );

    tokio::spawn(watchdog(raft.clone()));
    tokio::spawn(
        Health {
            addr: redis_addr,
            password: server.password().to_owned(),
            pid: server.pid(),
            every: Duration::from_millis(150),
            deadline: Duration::from_secs(1),
        }
        .run(),
    );
    tokio::spawn(
        Driver {
            id: cfg.id,
            incarnation,
            raft: raft.clone(),
            log,
            network,
            timing,
            heard,
            prevoter,
        }
        .run(),
    );
    tokio::spawn(crate::rejoin::run(cluster, cfg.election_timeout));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, from) = accepted?;
                // Replies are small and waited for: no Nagle delay.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%from, error = %e, "connection lost at once");
                    continue;
                }
                let shared = shared.clone();
                let tls = tls.clone();
                // Every line logged about the connection names its remote
                // address.
                let span = tracing::info_span!("conn", remote = %from);
                // The handshake in the connection's own task: a client
                // that never finishes one holds up nobody else.
                tokio::spawn(async move {
                    let ended = match tls {
                        None => crate::session::serve(shared, stream, Identity::Plain).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok((stream, identity)) => {
                                crate::session::serve(shared, stream, identity).await
                            }
                            Err(e) => {
                                tracing::warn!(%from, error = %e,
                                    "connection refused: no TLS handshake (a plain-text client or peer, a certificate not from the cluster's CA, or a timeout)");
                                return;
                            }
                        },
                    };
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "client connection ended");
                    }
                }.instrument(span));
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    let _ = raft.shutdown().await;
    drop(server);
    let _ = std::fs::remove_file(cfg.dir.join("redis-server.pid"));
    Ok(())
}

/// A stopped Raft core (a storage failure, a panic inside it) leaves a node
/// that cannot do anything right: stop it, so that it is restarted from
/// its disk. Before, a core that panicked closed the metrics channel and
/// this loop simply ended, leaving a zombie (issue 21).
async fn watchdog(raft: Raft) {
    let mut metrics = raft.metrics();
    loop {
        let changed = metrics.changed().await;
        if SHUTTING_DOWN.load(Ordering::SeqCst) {
            return;
        }
        if changed.is_err() {
            fatal::die(
                Exit::CoreStopped,
                "the Raft core ended (its metrics channel closed)",
            );
        }
        let state = metrics.borrow().running_state.clone();
        if let Err(e) = state {
            fatal::die(Exit::CoreStopped, &format!("the Raft core stopped: {e}"));
        }
    }
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
        let _ = fatal::kill9(pid);
    }
}
