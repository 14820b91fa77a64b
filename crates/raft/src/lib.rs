//! Lab 4b: 2f+1 Redis replicas kept consistent by Raft.
//!
//! Each node is a sidecar next to its own redis-server, which runs with
//! persistence off. Clients speak RESP to any sidecar. Writes go through a
//! Raft log replicated by [openraft](https://docs.rs/openraft) (consensus
//! is not ours: we own storage, transport, apply, and when to campaign),
//! and are answered after a majority has them; reads are linearizable.
//! docs/raft.md is the user's guide: error codes, the determinism rules,
//! the safety argument for nodes that lose their directory, failover.
//!
//! # Layout
//!
//! * [`node`]: wiring — starts the redis-server, the Raft, and the tasks
//!   below; [`NodeConfig`].
//! * [`session`]: a client's connection: parse, authenticate, route a
//!   write to the log, a read through the read index, forward to the
//!   leader; the `TRYAGAIN`/`UNKNOWN` error codes.
//! * [`command`]: commands parsed once into a typed [`command::Command`]:
//!   writes, reads, local, administration, or refused (not deterministic).
//! * [`admin`]: `RAFT.*` administration, through a narrow view of the
//!   cluster ([`admin::Cluster`]).
//! * [`election`]: pre-vote, then openraft's election (its own timer is off).
//! * [`incarnation`] and [`rejoin`]: a node that lost its directory neither
//!   votes nor counts until the leader has taken it back in.
//! * [`health`]: the redis-server's health check.
//! * [`fatal`]: stopping a node that cannot trust its state.
//! * [`types`]: the Raft type configuration (an entry is a Redis command;
//!   a member is an address and an incarnation).
//! * [`log`]: the durable log and vote (checksummed, fsynced file).
//! * [`sm`]: the state machine, i.e. the local Redis; snapshots; digests.
//! * [`net`]: Raft RPCs to peers over RESP (openraft's network); test partitions.
//! * [`propose`]: group commit: the leader's concurrent writes share a
//!   log entry (one fsync, one replication round).
//! * [`rpc`]: the receiving side of those RPCs: incarnation checks, pre-votes.
//! * [`resp`]: the RESP2 codec.
//! * [`tls`]: TLS for clients, and mutual TLS between peers (each node's
//!   certificate names its Raft ID).
//! * [`testing`]: test-only fault switches (`WCLAB_RAFT_TEST_FAULTS=1`).
//! * [`trace`]: where a write's time goes, per stage (`RAFT.TRACE`, for
//!   `wclab raft bench-commit`).
//! * [`failover`]: the failover benchmark (a local cluster of node processes).

pub mod admin;
pub mod command;
pub mod election;
pub mod failover;
pub mod fatal;
pub mod health;
pub mod incarnation;
pub mod log;
pub mod net;
pub mod node;
pub mod propose;
pub mod rejoin;
pub mod removed;
pub mod resp;
pub mod rpc;
mod session;
pub mod sm;
pub mod testing;
pub mod tls;
pub mod trace;
pub mod types;

pub use node::{run, NodeConfig};
