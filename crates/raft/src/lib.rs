//! Lab 4b: 2f+1 Redis replicas kept consistent by Raft.
//!
//! Each node is a sidecar ([`node`]) next to its own redis-server, which
//! runs with persistence off. Clients speak RESP to any sidecar. Writes go
//! through a Raft log replicated by [openraft](https://docs.rs/openraft)
//! (consensus is not ours: we own storage, transport and apply), and are
//! answered after a majority has them; reads are linearizable.
//!
//! # Layout
//!
//! * [`types`]: the Raft type configuration (a log entry is a Redis command).
//! * [`command`]: which commands are writes, reads, local or refused, and
//!   how the leader puts its clock into a wclab function call.
//! * [`log`]: the durable log and vote (checksummed, fsynced file).
//! * [`sm`]: the state machine, i.e. the local Redis; snapshots; digests.
//! * [`net`]: Raft RPCs between sidecars over RESP; test partitions.
//! * [`node`]: the sidecar itself: handshake, routing, follower proxy,
//!   cluster administration (`RAFT.INIT`, `RAFT.JOIN`, `RAFT.INFO`, ...).
//! * [`resp`]: the RESP2 codec.
//!
//! # Determinism
//!
//! Every replica applies the same log and must reach the same dataset, so
//! a command whose effect depends on the replica (its clock, randomness,
//! blocking) is refused ([`command::classify`]), and wclab's functions get
//! the leader's time as their `now_ms` argument ([`command::fill_now`]).

pub mod command;
pub mod log;
pub mod net;
pub mod node;
pub mod resp;
pub mod sm;
pub mod types;

pub use node::{run, NodeConfig};
