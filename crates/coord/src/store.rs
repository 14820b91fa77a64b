use crate::{CoordError, RedisTarget, FUNCTION_LIBRARY};
use backon::BackoffBuilder;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value};
use std::time::{Duration, Instant};

/// How long to keep retrying while Redis is unreachable.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Give up after this long without a working connection; `None`: never
    /// (workers wait for Redis to come back for as long as they live).
    pub give_up_after: Option<Duration>,
}

impl RetryPolicy {
    /// Retry forever: for workers, which have nothing better to do.
    pub const FOREVER: RetryPolicy = RetryPolicy {
        give_up_after: None,
    };

    /// Fail fast: for a first contact, where "unreachable" is most likely a
    /// wrong address and the user wants to hear it at once.
    pub const FAIL_FAST: RetryPolicy = RetryPolicy {
        give_up_after: Some(Duration::from_secs(2)),
    };

    /// Retry for `d`.
    pub fn for_duration(d: Duration) -> Self {
        RetryPolicy {
            give_up_after: Some(d),
        }
    }
}

/// How an error from Redis is handled.
enum Disposition {
    /// Connection lost, refused, timed out, or Redis still loading its
    /// dataset: reconnect and try again.
    Transient,
    /// A Raft cluster's `-UNKNOWN`: the write may or may not have been
    /// applied. Every call of ours is safe to repeat (see [`Store::call`]):
    /// try again, like a transient error, and remember that the outcome of
    /// the earlier try is not known ([`Store::last_call_uncertain`]).
    Unknown,
    /// Our function library is not loaded (Redis restarted without it).
    LibraryMissing,
    /// Redis's generic `ERR`: among others its "Function not found", which
    /// has no code of its own, so the library is looked for (FUNCTION LIST)
    /// rather than the message read.
    GenericErr,
    /// The password is wrong.
    Auth,
    /// The user may not run this command (`NOPERM`).
    Forbidden,
    /// The TLS handshake failed for good (certificate, or no TLS there).
    Tls(String),
    /// Anything else: a bug or an unexpected server.
    Fatal,
}

/// The error codes of `e`: its own, or those of the commands of a failed
/// pipeline or transaction (for which redis-rs gives no code of its own).
pub(crate) fn error_codes(e: &RedisError) -> Vec<(String, Option<String>)> {
    match e.clone().into_server_errors() {
        Some(errors) => errors
            .iter()
            .map(|(_, s)| (s.code().to_owned(), s.details().map(str::to_owned)))
            .collect(),
        None => e
            .code()
            .map(|c| (c.to_owned(), e.detail().map(str::to_owned)))
            .into_iter()
            .collect(),
    }
}

fn classify(e: &RedisError) -> Disposition {
    let codes = error_codes(e);
    let has = |code: &str| codes.iter().any(|(c, _)| c == code);
    if e.kind() == ErrorKind::AuthenticationFailed || has("WRONGPASS") || has("NOAUTH") {
        return Disposition::Auth;
    }
    if has("NOPERM") {
        return Disposition::Forbidden;
    }
    if let Some(problem) = tls_problem(e) {
        return Disposition::Tls(problem);
    }
    if e.code() == Some("UNKNOWN") {
        return Disposition::Unknown;
    }
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        )
    {
        return Disposition::Transient;
    }
    // A long script (a big merged commit of another worker) is running:
    // Redis answers BUSY until it ends.
    if has("BUSY") {
        return Disposition::Transient;
    }
    if has("ERR") {
        return Disposition::GenericErr;
    }
    Disposition::Fatal
}

/// What a failed TLS handshake means and what to do, if `e` is one: the
/// rustls error inside redis-rs's I/O error (tokio-rustls hands it over
/// whole). Such a failure is permanent: trying again meets the same
/// certificate.
fn tls_problem(e: &RedisError) -> Option<String> {
    use rustls::{CertificateError, Error as Tls};
    type Inner = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let inner = std::error::Error::source(e)?.downcast_ref::<Inner>()?;
    let io = inner.downcast_ref::<std::io::Error>()?;
    let tls = io.get_ref()?.downcast_ref::<Tls>()?;
    let fix_ca = "give the CA that signed the server's certificate with --tls-ca FILE (or WCLAB_TLS_CA); `wclab run --tls` writes its CA to <redis dir>/tls/ca.pem";
    Some(match tls {
        Tls::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!("the server's certificate is not signed by a CA we trust ({tls}): {fix_ca}"),
        Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("the server's certificate is not made out to the host of the URL ({tls}): connect by a name or address that it holds, or make one for this host (wclab tls-certs --host HOST)"),
        Tls::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!("the server's certificate is out of its validity period ({tls}): renew it, or check this machine's clock"),
        Tls::InvalidCertificate(_) => format!("the server's certificate was refused ({tls}): {fix_ca}"),
        Tls::InvalidMessage(_) | Tls::InappropriateMessage { .. } | Tls::InappropriateHandshakeMessage { .. } => format!(
            "the server does not speak TLS there ({tls}): use redis:// without --tls, or the server's TLS port"
        ),
        other => format!("the handshake failed ({other}); check the certificates (--tls-ca) and that the server speaks TLS there"),
    })
}

/// Makes rustls use ring, the one crypto provider wclab builds, whatever
/// features other crates turn on (with two, rustls would not pick one).
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether `conn`'s server has a library named wclab; `true` when that
/// cannot be told (the original error is then reported as it is).
async fn library_loaded(conn: &mut MultiplexedConnection) -> bool {
    let listed: Result<Value, _> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("wclab")
        .query_async(conn)
        .await;
    !matches!(listed, Ok(Value::Array(libs)) if libs.is_empty())
}

/// A connection to the job's Redis that survives Redis going away.
///
/// Every call goes through [`Store::call`], which reconnects with
/// exponential backoff on transient errors, reloads the function library if
/// a restarted Redis lost it, and turns a changed password into a clear
/// [`CoordError::Auth`] rather than an endless retry.
///
/// With several endpoints (a Raft cluster, lab 4b) a transient error also
/// moves the store to the next endpoint, so that workers and the submitter
/// find the new leader (or a follower that proxies to it) on their own.
pub struct Store {
    target: RedisTarget,
    clients: Vec<redis::Client>,
    /// Index in `clients` of the endpoint in use.
    current: usize,
    conn: Option<MultiplexedConnection>,
    policy: RetryPolicy,
    library_checked_once: bool,
    /// Whether the library was ever seen loaded (or loaded by us) on this
    /// server (for the logs).
    library_seen: bool,
    /// Whether we are waiting for an administrator to load the library
    /// (said once in the log, not at every try).
    library_awaited: bool,
    /// Whether the last call was retried after a try whose outcome is not
    /// known (`-UNKNOWN`, or the connection lost or timed out once the
    /// command was sent).
    uncertain: bool,
}

/// Whether a failed try may have been applied: the server said so
/// (`UNKNOWN`), or the command may have reached it before the connection
/// broke or the reply timed out. Refused connections, `TRYAGAIN`, `BUSY`
/// and `LOADING` mean it was not.
fn maybe_applied(e: &RedisError) -> bool {
    e.code() == Some("UNKNOWN")
        || ((e.is_io_error() || e.is_connection_dropped() || e.is_timeout())
            && !e.is_connection_refusal())
}

impl Store {
    /// Connects (retrying as `policy` allows) and loads the function library
    /// if it is missing or differs from ours.
    pub async fn connect(target: RedisTarget, policy: RetryPolicy) -> Result<Store, CoordError> {
        install_crypto_provider();
        let clients = (0..target.endpoints().len())
            .map(|i| {
                target.client(i).map_err(|e| CoordError::BadUrl {
                    url: target.to_string(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = Store {
            target,
            clients,
            current: 0,
            conn: None,
            policy,
            library_checked_once: false,
            library_seen: false,
            library_awaited: false,
            uncertain: false,
        };
        store.connection().await?;
        Ok(store)
    }

    /// The server this store talks to.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// Whether the last [`Store::call`] or [`Store::call_pipe`] succeeded
    /// only after a try whose outcome is unknown: its result may then
    /// describe a state that the unknown try itself made (a commit finding
    /// its own tasks already committed).
    pub fn last_call_uncertain(&self) -> bool {
        self.uncertain
    }

    /// Changes how long calls keep retrying.
    pub fn set_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
    }

    /// Moves to the next endpoint (a no-op with one).
    fn rotate(&mut self) {
        self.conn = None;
        if self.clients.len() > 1 {
            self.current = (self.current + 1) % self.clients.len();
            tracing::debug!(target = %self.target, endpoint = self.current, "trying the next endpoint");
        }
    }

    /// Runs `cmd`, retrying on transient errors and on unknown outcomes
    /// (`-UNKNOWN` from a Raft cluster, a connection lost after sending) as
    /// the policy allows.
    ///
    /// Only use this for commands that are safe to repeat. Every function of
    /// the protocol is (docs/raft.md has the details): a repeated commit,
    /// dead-letter or release is gated on the task still being pending (with
    /// its owner) and changes nothing the second time; a repeated submit
    /// skips existing IDs (it bumps the job's submission stamp, which only
    /// makes workers re-read the job's description); a repeated renew sets
    /// the same lease again; a repeated claim may leave the first try's task
    /// held by nobody working on it, so it is stolen after one lease (one
    /// delivery more on its count); a repeated speculate may leave a backup
    /// nobody runs (the owner still finishes the task).
    pub async fn call<T: FromRedisValue>(
        &mut self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, CoordError> {
        self.retrying(op, |mut conn| async move {
            cmd.query_async::<T>(&mut conn).await
        })
        .await
    }

    /// Runs a pipeline, retrying like [`Store::call`]; the same caveat on
    /// repeatable commands applies.
    pub async fn call_pipe<T: FromRedisValue>(
        &mut self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, CoordError> {
        self.retrying(op, |mut conn| async move {
            pipe.query_async::<T>(&mut conn).await
        })
        .await
    }

    async fn retrying<T, F, Fut>(&mut self, op: &'static str, attempt: F) -> Result<T, CoordError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let mut waits = backoff();
        let started = Instant::now();
        self.uncertain = false;
        loop {
            let mut conn = self.connection().await?;
            let err = match attempt(conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let mut disposition = classify(&err);
            if matches!(disposition, Disposition::GenericErr) {
                disposition = if library_loaded(&mut conn).await {
                    Disposition::Fatal
                } else {
                    Disposition::LibraryMissing
                };
            }
            self.uncertain |= maybe_applied(&err);
            match disposition {
                Disposition::Unknown => {
                    tracing::info!(target = %self.target, op, error = %err, "outcome unknown; trying again (safe to repeat)");
                    self.rotate();
                    self.wait(&mut waits, started, err).await?;
                }
                Disposition::Transient => {
                    tracing::debug!(target = %self.target, op, error = %err, "transient Redis error; reconnecting");
                    self.rotate();
                    self.wait(&mut waits, started, err).await?;
                }
                Disposition::LibraryMissing => {
                    tracing::warn!(target = %self.target, "the wclab function library is missing (Redis restarted without it?); loading it again");
                    self.conn = None;
                    self.library_checked_once = false;
                    // Loading it again should have been enough: if the
                    // call keeps failing, back off like any other error.
                    if started.elapsed() > Duration::from_millis(100) {
                        self.wait(&mut waits, started, err).await?;
                    }
                }
                Disposition::Auth => return Err(self.auth_error(&err)),
                Disposition::Forbidden => return Err(self.forbidden(op, &err)),
                Disposition::Tls(problem) => return Err(self.tls_error(problem)),
                Disposition::Fatal | Disposition::GenericErr => return Err(self.failed(op, err)),
            }
        }
    }

    fn forbidden(&self, op: &'static str, e: &RedisError) -> CoordError {
        CoordError::Forbidden {
            target: self.target.clone(),
            user: self.target.user().to_owned(),
            op,
            detail: e.to_string(),
        }
    }

    fn tls_error(&self, problem: String) -> CoordError {
        CoordError::Tls {
            target: self.target.clone(),
            problem,
        }
    }

    /// The error of a call that failed for good: a refusal of the
    /// protocol's functions (by its code), or anything else Redis said.
    pub(crate) fn failed(&self, op: &'static str, err: RedisError) -> CoordError {
        let refusal = error_codes(&err)
            .into_iter()
            .find(|(c, _)| c == crate::codes::REFUSED_ARGUMENT || c == crate::codes::REFUSED_STATE);
        match refusal {
            Some((code, detail)) => CoordError::Refused {
                target: self.target.clone(),
                op,
                code,
                detail: detail.unwrap_or_default(),
            },
            None => CoordError::Redis {
                target: self.target.clone(),
                op,
                source: err,
            },
        }
    }

    async fn wait(
        &self,
        waits: &mut impl Iterator<Item = Duration>,
        started: Instant,
        err: RedisError,
    ) -> Result<(), CoordError> {
        let waited = started.elapsed();
        if let Some(limit) = self.policy.give_up_after {
            if waited >= limit {
                return Err(CoordError::Unreachable {
                    target: self.target.clone(),
                    waited,
                    source: err,
                });
            }
        }
        tokio::time::sleep(waits.next().unwrap_or(Duration::from_secs(1))).await;
        Ok(())
    }

    fn auth_error(&self, e: &RedisError) -> CoordError {
        CoordError::Auth {
            target: self.target.clone(),
            detail: e.to_string(),
        }
    }

    /// The live connection, (re)connecting with backoff if there is none.
    async fn connection(&mut self) -> Result<MultiplexedConnection, CoordError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let mut waits = backoff();
        let started = Instant::now();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connection_timeout(&self.target)))
            .set_response_timeout(Some(response_timeout(&self.target)));
        loop {
            let attempt = async {
                let mut c = self.clients[self.current]
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(Setup::Redis)?;
                self.ensure_library(&mut c).await?;
                Ok::<_, Setup>(c)
            };
            let e = match attempt.await {
                Ok(c) => {
                    self.conn = Some(c.clone());
                    return Ok(c);
                }
                Err(Setup::Redis(e)) => e,
                Err(Setup::MayNotLoad { missing, refusal }) => {
                    let gave_up =
                        (self.policy.give_up_after).is_some_and(|d| started.elapsed() >= d);
                    if !missing || gave_up {
                        return Err(CoordError::LibraryNotLoaded {
                            target: self.target.clone(),
                            user: self.target.user().to_owned(),
                            state: if missing {
                                "missing"
                            } else {
                                "of another version"
                            },
                        });
                    }
                    // Missing: an administrator is about to load it (a
                    // Redis restarted without it, lab 4a; a worker started
                    // before the job's set-up).
                    if !std::mem::replace(&mut self.library_awaited, true) {
                        tracing::warn!(target = %self.target, user = self.target.user(), seen_before = self.library_seen,
                            "the wclab function library is not loaded and this user may not load it; waiting for an administrator to load it");
                    }
                    self.rotate();
                    self.wait(&mut waits, started, refusal).await?;
                    continue;
                }
            };
            {
                match classify(&e) {
                    Disposition::Auth => return Err(self.auth_error(&e)),
                    Disposition::Forbidden => {
                        return Err(self.forbidden("list the function library (FUNCTION LIST)", &e))
                    }
                    Disposition::Tls(problem) => return Err(self.tls_error(problem)),
                    Disposition::Fatal | Disposition::GenericErr => {
                        return Err(CoordError::Redis {
                            target: self.target.clone(),
                            op: "connect and load the function library",
                            source: e,
                        })
                    }
                    Disposition::Transient | Disposition::Unknown | Disposition::LibraryMissing => {
                        tracing::debug!(target = %self.target, error = %e, "cannot connect yet");
                        self.rotate();
                        self.wait(&mut waits, started, e).await?;
                    }
                }
            }
        }
    }

    /// Loads our function library with FUNCTION LOAD REPLACE, whatever the
    /// server has (after a restore, say).
    pub async fn load_library(&mut self) -> Result<(), CoordError> {
        let load = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(FUNCTION_LIBRARY)
            .clone();
        self.call::<String>("load the function library", &load)
            .await
            .map(|_| ())
    }

    /// Loads `lua/wclab.lua` unless Redis already has exactly that code.
    /// A user that may not load it (an ACL role) is told so.
    async fn ensure_library(&mut self, conn: &mut MultiplexedConnection) -> Result<(), Setup> {
        let listed: Value = redis::cmd("FUNCTION")
            .arg("LIST")
            .arg("LIBRARYNAME")
            .arg("wclab")
            .arg("WITHCODE")
            .query_async(conn)
            .await
            .map_err(Setup::Redis)?;
        let loaded = library_code(&listed);
        if loaded.as_deref() == Some(FUNCTION_LIBRARY.as_bytes()) {
            self.library_checked_once = true;
            self.library_seen = true;
            self.library_awaited = false;
            return Ok(());
        }
        match (&loaded, self.library_checked_once) {
            (None, true) => tracing::warn!(target = %self.target,
                "Redis came back without the wclab function library (restarted from a dump without functions?); loading it"),
            (Some(_), _) => tracing::warn!(target = %self.target,
                "Redis has a different version of the wclab function library; replacing it"),
            (None, false) => {
                tracing::info!(target = %self.target, "loading the wclab function library")
            }
        }
        let load = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(FUNCTION_LIBRARY)
            .query_async::<String>(conn)
            .await;
        match load {
            Ok(_) => {}
            Err(e) if matches!(classify(&e), Disposition::Forbidden) => {
                return Err(Setup::MayNotLoad {
                    missing: loaded.is_none(),
                    refusal: e,
                })
            }
            Err(e) => return Err(Setup::Redis(e)),
        }
        self.library_checked_once = true;
        self.library_seen = true;
        Ok(())
    }
}

/// Why setting up a connection failed.
enum Setup {
    /// Redis (or the network) said no.
    Redis(RedisError),
    /// The library is missing or differs, and FUNCTION LOAD was refused
    /// (`NOPERM`): the user is not the administrator.
    MayNotLoad { missing: bool, refusal: RedisError },
}

/// Finds `library_code` in a FUNCTION LIST reply (RESP2 flat arrays).
fn library_code(v: &Value) -> Option<Vec<u8>> {
    let Value::Array(libs) = v else { return None };
    libs.iter().find_map(|lib| {
        let Value::Array(fields) = lib else {
            return None;
        };
        fields.chunks_exact(2).find_map(|kv| match kv {
            [k, Value::BulkString(code)] if is_text(k, "library_code") => Some(code.clone()),
            _ => None,
        })
    })
}

fn is_text(v: &Value, s: &str) -> bool {
    match v {
        Value::BulkString(b) => b == s.as_bytes(),
        Value::SimpleString(x) => x == s,
        _ => false,
    }
}

/// How long a reply may take before the endpoint counts as gone.
///
/// A single Redis has nobody to fail over to, and a large merged commit may
/// take a while: a minute. A node of a Raft cluster answers every request
/// within its request timeout (4 s, and half a second more when it
/// forwards to the leader), with `TRYAGAIN` or `UNKNOWN` at worst, so a
/// longer silence means it is down or cut off from us without a word (a
/// partition drops packets: no reset, no error; a stopped process's kernel
/// still accepts the connection), and the next endpoint should be tried.
/// Measured on the hosts tests with 60 s: a worker attached to a node whose
/// link went down stalled for the whole minute; issue 21 with 10 s.
fn response_timeout(target: &RedisTarget) -> Duration {
    if target.is_cluster() {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(60)
    }
}

/// How long connecting may take: on loopback or a LAN, a live node accepts
/// in microseconds, so a cluster's client moves on after one second.
fn connection_timeout(target: &RedisTarget) -> Duration {
    if target.is_cluster() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(2)
    }
}

fn backoff() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_secs(1))
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_outcomes_are_retried_and_remembered_as_uncertain() {
        let unknown = redis::make_extension_error("UNKNOWN".into(), Some("x".into()));
        assert!(matches!(classify(&unknown), Disposition::Unknown));
        assert!(maybe_applied(&unknown));
        let tryagain =
            RedisError::from((ErrorKind::Server(ServerErrorKind::TryAgain), "not appended"));
        assert!(matches!(classify(&tryagain), Disposition::Transient));
        assert!(!maybe_applied(&tryagain));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!maybe_applied(&refused));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(maybe_applied(&reset));
    }
}
