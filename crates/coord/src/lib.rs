//! wclab's coordination protocol on Redis: the only code that talks to it.
//!
//! Redis plays the master of the job: it holds the queue of tasks, the
//! counts, and the progress. Workers are stateless; everything they change
//! goes through one of the Redis Functions in `lua/wclab.lua`, so that each
//! change is atomic (see that file for the keys and the exact semantics).
//!
//! # Layout
//!
//! * [`RedisTarget`]: a parsed `redis://` URL that never prints its password.
//! * [`Store`]: a connection that reconnects with backoff, classifies errors
//!   (retry, wrong password, bug) and makes sure the function library is
//!   loaded, also after Redis was restarted without it.
//! * One module per operation of the protocol, each a thin typed wrapper of
//!   one function: [`submit`], [`claim`], [`renew`], [`commit`],
//!   [`dead_letter`], [`release`], and [`speculate`] (backup copies of stragglers,
//!   lab 3); then [`job`] (the job's description and progress) and
//!   [`results`] (top words, all counts, dead letters).
//!
//! Expected outcomes are values, not errors: "no task waiting" is
//! `Claim::Idle`, "somebody else committed it first" is
//! `CommitOutcome::NotPending`.

pub mod checkpoint;
pub mod claim;
pub mod commit;
pub mod dead_letter;
mod error;
pub mod job;
mod keys;
pub mod release;
pub mod renew;
pub mod results;
pub mod speculate;
mod store;
pub mod submit;
mod target;

pub use error::CoordError;
pub use keys::JobKeys;
pub use store::{RetryPolicy, Store};
pub use target::RedisTarget;

/// The Lua source of the function library, loaded into Redis on connect.
pub const FUNCTION_LIBRARY: &str = include_str!("../../../lua/wclab.lua");

/// Name of the consumer group that hands out tasks.
pub const GROUP: &str = "workers";

/// `FCALL name numkeys keys... now_ms group`: the head that every call of
/// the protocol shares (every function takes the time, then the group, as
/// its first arguments); the caller adds the rest.
pub(crate) fn function_call(store: &Store, name: &str, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(name)
        .arg(keys.len())
        .arg(keys)
        .arg(store.now_arg())
        .arg(GROUP);
    cmd
}
