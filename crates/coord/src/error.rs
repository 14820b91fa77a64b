use crate::RedisTarget;
use std::time::Duration;

/// What can go wrong talking to Redis. Each variant names the server (with
/// its password masked) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The URL could not be parsed.
    #[error("invalid Redis URL {url:?}: {reason}. Expected redis://[user:password@]host:port[/db] (rediss:// for TLS)")]
    BadUrl {
        /// The URL as given, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file given for TLS cannot be used.
    #[error("cannot use {} as the CA to trust: {reason}. Give the PEM file of the CA that signed the server's certificate (wclab run --tls writes its CA to <redis dir>/tls/ca.pem)", path.display())]
    BadCa {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed for good: the server's certificate is not
    /// one we trust, or the server does not speak TLS.
    #[error("TLS with {target} failed: {problem}")]
    Tls {
        /// The server.
        target: RedisTarget,
        /// What went wrong and what to do, for people.
        problem: String,
    },
    /// Redis refused our password (or wants one we did not give).
    #[error("Redis at {target} rejected the user or password ({detail}). Check them in the URL (redis://user:password@host:port); if Redis was restarted, it must be started with the same requirepass and ACL users")]
    Auth {
        /// The server.
        target: RedisTarget,
        /// What Redis said.
        detail: String,
    },
    /// Redis could not be reached for longer than the retry policy allows.
    #[error("Redis at {target} is unreachable (gave up after {secs:.1} s): {source}. Is redis-server running there, and does it speak TLS (then use rediss:// or --tls) or not? Without --redis, wclab starts its own", secs = .waited.as_secs_f64())]
    Unreachable {
        /// The server.
        target: RedisTarget,
        /// How long we kept trying.
        waited: Duration,
        /// The last error.
        #[source]
        source: redis::RedisError,
    },
    /// The user of the URL may not run a command (Redis's `NOPERM`): it
    /// is not the user of this role, or the server's ACL lacks a command.
    #[error("Redis at {target} refused {op} to user {user:?} ({detail}). Each kind of process needs the user of its role (worker, submitter, observer; `wclab acl` creates them, docs/security.md lists what each may run)")]
    Forbidden {
        /// The server.
        target: RedisTarget,
        /// The user of the URL.
        user: String,
        /// What we were doing.
        op: &'static str,
        /// What Redis said.
        detail: String,
    },
    /// Our function library is not (exactly) loaded, and the user of the
    /// URL may not load it.
    #[error("the wclab function library on {target} is {state}, and user {user:?} may not load it (FUNCTION LOAD is the administrator's). Load it as the administrator: `wclab acl --apply` with the admin's URL in WCLAB_REDIS_URL")]
    LibraryNotLoaded {
        /// The server.
        target: RedisTarget,
        /// The user of the URL.
        user: String,
        /// "missing" or "of another version".
        state: &'static str,
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
