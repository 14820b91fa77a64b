use crate::RedisTarget;
use std::time::Duration;

/// What can go wrong talking to Redis. Each variant names the server (with
/// its password masked) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The URL could not be parsed.
    #[error("invalid Redis URL {url:?}: {reason}. Expected redis://[:password@]host:port[/db]")]
    BadUrl {
        /// The URL as given, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis refused our password (or wants one we did not give).
    #[error("Redis at {target} rejected the password ({detail}). Check the password in the URL; if Redis was restarted, it must be started with the same requirepass")]
    Auth {
        /// The server.
        target: RedisTarget,
        /// What Redis said.
        detail: String,
    },
    /// Redis could not be reached for longer than the retry policy allows.
    #[error("Redis at {target} is unreachable (gave up after {waited:?}): {source}. Is redis-server running there? Without --redis, wclab starts its own")]
    Unreachable {
        /// The server.
        target: RedisTarget,
        /// How long we kept trying.
        waited: Duration,
        /// The last error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered with an error we do not expect: a bug, or a server
    /// that is not what we think (too old for Functions, say).
    #[error("Redis at {target} failed {op}: {source}")]
    Redis {
        /// The server.
        target: RedisTarget,
        /// What we were doing.
        op: &'static str,
        /// What Redis said.
        #[source]
        source: redis::RedisError,
    },
    /// A function of the protocol refused the call and changed nothing:
    /// `WCLABARG`, a malformed call (a bug of this client, or a function
    /// library of another version); `WCLABSTATE`, the job's keys do not
    /// allow it (changed by hand, or a count about to stop being exact).
    #[error("Redis at {target} refused {op} ({code}): {detail}. Nothing was changed (see docs/protocol.md, \"Errors\")")]
    Refused {
        /// The server.
        target: RedisTarget,
        /// What we were doing.
        op: &'static str,
        /// `WCLABARG` or `WCLABSTATE`.
        code: String,
        /// The function's message: which function, which argument or key.
        detail: String,
    },
    /// Redis answered something that does not fit the protocol.
    #[error("Redis at {target}: unexpected reply to {op}: {detail}")]
    Protocol {
        /// The server.
        target: RedisTarget,
        /// What we were doing.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}
