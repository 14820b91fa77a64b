//! wclab's coordination protocol on Redis: the only code that talks to it.
//!
//! Redis plays the master of the job: it holds the queue of tasks, the
//! counts, and the progress. Workers are stateless; everything they change
//! goes through one of the Redis Functions in `lua/wclab.lua`, so that each
//! change is atomic. The contract of those functions (keys, arguments,
//! replies, error codes) is `docs/protocol.md`; a test here checks that
//! this crate's calls, the Lua and that document agree.
//!
//! # Layout
//!
//! * [`RedisTarget`]: a parsed `redis://` URL that never prints its password.
//! * [`Store`]: a connection that reconnects with backoff, classifies errors
//!   (retry, wrong password, bug) and makes sure the function library is
//!   loaded, also after Redis was restarted without it.
//! * One module per operation of the protocol, each a thin typed wrapper of
//!   one function: [`submit`], [`claim`], [`renew`], [`commit`], [`fold`]
//!   (the commits' tallies into the counts' sorted set),
//!   [`dead_letter`], [`release`], and [`speculate`] (backup copies of stragglers,
//!   lab 3); [`wake`] (an idle worker's blocking wait for the next task); then [`job`] (the job's description and progress) and
//!   [`results`] (top words, all counts, dead letters).
//!
//! Expected outcomes are values, not errors: "no task waiting" is
//! `Claim::Idle`, "somebody else committed it first" is
//! `CommitOutcome::NotPending`. A call the functions refuse (it changed
//! nothing) is [`CoordError::Refused`], told apart by its error code.

pub mod acl;
pub mod checkpoint;
pub mod claim;
pub mod commit;
pub mod dead_letter;
mod error;
pub mod fold;
pub mod job;
mod keys;
pub mod release;
pub mod renew;
pub mod results;
#[cfg(test)]
mod spec;
pub mod speculate;
mod store;
pub mod submit;
mod target;
pub mod wake;

pub use error::CoordError;
pub use keys::JobKeys;
pub use store::{RetryPolicy, Store};
pub use target::RedisTarget;

/// The Lua source of the function library, loaded into Redis on connect.
pub const FUNCTION_LIBRARY: &str = include_str!("../../../lua/wclab.lua");

/// Name of the consumer group that hands out tasks.
pub const GROUP: &str = "workers";

/// The `now_ms` argument of every call: empty, meaning "the Redis server's
/// own clock". Also with a Raft cluster: there the leader's sidecar fills
/// an empty `now_ms` with its own clock before the call enters the log, so
/// every replica applies the same time.
pub(crate) const NOW_SERVER_CLOCK: &str = "";

/// `FCALL name numkeys keys... now_ms group`: the head that every call of
/// the protocol shares (every function takes the time, then the group, as
/// its first arguments); the caller adds the rest.
pub(crate) fn function_call(name: &str, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(name)
        .arg(keys.len())
        .arg(keys)
        .arg(NOW_SERVER_CLOCK)
        .arg(GROUP);
    cmd
}

/// Error codes of the protocol (docs/protocol.md, "Errors"): what clients
/// match with [`redis::RedisError::code`], never the message.
pub mod codes {
    /// A function refused a malformed call (KEYS, ARGV); nothing changed.
    pub const REFUSED_ARGUMENT: &str = "WCLABARG";
    /// A function refused a call because the job's keys do not allow it (a
    /// key of the wrong type, a counter that is not an integer, a count that
    /// would stop being exact); nothing changed.
    pub const REFUSED_STATE: &str = "WCLABSTATE";
    /// A Raft sidecar refuses MULTI/EXEC: send single commands.
    pub const NO_MULTI: &str = "WCLABNOMULTI";
    /// Reserved for the Raft sidecar: the write may or may not have been
    /// applied.
    pub const UNKNOWN: &str = "UNKNOWN";
}
