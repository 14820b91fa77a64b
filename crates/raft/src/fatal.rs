//! Stopping a node that can no longer trust its own state.
//!
//! A node whose Raft core stopped, whose apply panicked, or whose
//! redis-server died or hangs would otherwise live on as a zombie: it
//! answers clients, proxies, maybe votes, with a dataset nobody keeps up to
//! date. Instead it exits at once, non-zero, taking its redis-server with
//! it; its supervisor restarts it, and the restart rebuilds the dataset
//! from the log (snapshot, then replay). Nothing acknowledged is lost: what
//! was acknowledged is in the log of a majority.

use std::sync::OnceLock;

/// Why a node stopped; the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// The local redis-server is gone (connection lost while applying, or
    /// its health check found it dead).
    RedisLost = 70,
    /// The Raft core stopped (a storage error, or a panic inside it).
    CoreStopped = 71,
    /// The local redis-server hangs: no answer and no progress.
    RedisHung = 72,
    /// A panic anywhere in the node.
    Panic = 73,
    /// The node found that the cluster broke a safety property (a committed
    /// entry would have been truncated): it refuses to go on with that state.
    SafetyViolation = 74,
}

/// The local redis-server's PID, killed with the node.
static REDIS_PID: OnceLock<u32> = OnceLock::new();

/// Records the PID of the node's redis-server, for [`die`].
pub fn set_redis_pid(pid: u32) {
    let _ = REDIS_PID.set(pid);
}

/// Stops the node at once, with its redis-server: a restart rebuilds both
/// from the log.
pub fn die(exit: Exit, why: &str) -> ! {
    tracing::error!(why, ?exit, "stopping the node");
    eprintln!(
        "wclab raft node: {why}; stopping (exit {}; restart the node to rebuild it from its log)",
        exit as i32
    );
    if let Some(pid) = REDIS_PID.get() {
        let _ = kill9(*pid as i32);
    }
    std::process::exit(exit as i32)
}

/// Makes any panic, in any thread or task, stop the node (after the usual
/// panic message). A task that panicked leaves its part of the node dead
/// while the rest goes on: the state machine without apply, the Raft core
/// without its storage, a session's connection half-handled.
pub fn stop_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        die(Exit::Panic, &format!("panic: {info}"));
    }));
}

/// SIGKILL to `pid`.
pub fn kill9(pid: i32) -> nix::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
}

/// SIGSTOP to `pid` (tests of the health check).
#[cfg(test)]
pub(crate) fn stop(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    );
}
