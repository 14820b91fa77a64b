//! A private `redis-server`, started and stopped by wclab.
//!
//! `wclab run` without `--redis`, every test and every lab use one: a real
//! Redis (Debian's package), on a free loopback port, protected by a random
//! password, with its data in a directory of its own. The password is put
//! in a config file readable by the owner only, never on the command line,
//! because `ps` shows command lines to every user.
//!
//! The server can be killed (SIGKILL, as a crash) and restarted on the same
//! port, with the same password and directory, so that it reloads its
//! `dump.rdb`: that is lab 4's checkpoint recovery.
//!
//! It dies with the process that started it ([`tied`]), however that
//! process ends.
//!
//! Least privilege (issue 17): besides its administrator (Redis's `default`
//! user, with `requirepass`), a server may have ACL users, each with its
//! own random password and the rules its caller gives (wclab's roles:
//! `wclab_coord::acl`). They are written into the config file, so that a
//! restart after a crash (lab 4a) has them again. With [`ServerTls`] the
//! server speaks TLS only, with certificates made at start ([`tls`]) or
//! given.

pub mod tied;
pub mod tls;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No `redis-server` binary on PATH (or where WCLAB_REDIS_SERVER says).
    #[error("redis-server not found ({searched}). Install it with: sudo apt-get install redis-server (Debian/Ubuntu), or point WCLAB_REDIS_SERVER at the binary, or pass --redis URL to use a running server")]
    NotInstalled {
        /// Where we looked.
        searched: String,
    },
    /// The requested port is taken by another process.
    #[error("port {port} on 127.0.0.1 is already in use. Choose another port, or omit it to let wclab pick a free one")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Setting up the directory or config failed.
    #[error("cannot prepare the Redis directory {}: {source}", dir.display())]
    Setup {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificates could not be made or read.
    #[error("TLS set-up of the private Redis failed: {0}")]
    Tls(#[from] tls::TlsError),
    /// The server exited or did not answer in time.
    #[error("redis-server did not start: {reason}. Its log is {}", log.display())]
    DidNotStart {
        /// What happened.
        reason: String,
        /// The server's log file.
        log: PathBuf,
    },
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Port; `None` picks a free one.
    pub port: Option<u16>,
    /// Password; `None` makes a random one.
    pub password: Option<String>,
    /// Data directory; `None` makes a temporary one, deleted on drop.
    pub dir: Option<PathBuf>,
    /// Extra `redis.conf` lines, e.g. `appendonly yes`.
    pub extra_config: Vec<String>,
    /// ACL users besides the administrator (`default`), each given a random
    /// password of its own.
    pub users: Vec<AclUser>,
    /// TLS only (no plain-text port), when set.
    pub tls: Option<ServerTls>,
}

/// An ACL user of a private server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUser {
    /// The user name (`worker`, ...).
    pub name: String,
    /// Its ACL rules after `on` and the password, e.g. `-@all`, `+xlen`,
    /// `~wclab:*` (one rule per element).
    pub rules: Vec<String>,
}

/// Where a TLS server's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTls {
    /// A new CA and server certificate for 127.0.0.1 and localhost, made at
    /// start in the server's directory (`tls/`).
    Generate,
    /// Files made elsewhere; the certificate must be valid for 127.0.0.1.
    Files(tls::TlsFiles),
}

/// A running `redis-server` child process. Killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: String,
    dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    binary: PathBuf,
    config: PathBuf,
    /// The config as the caller gave it (with `users` and `tls`), for
    /// rewriting the file on a restart with another password.
    settings: Settings,
}

/// What goes into the config file besides port, password and directory.
#[derive(Clone)]
struct Settings {
    extra: Vec<String>,
    /// Each user with its password.
    users: Vec<(AclUser, String)>,
    tls: Option<tls::TlsFiles>,
    /// The client side of `tls`: trusts its CA only.
    client_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start(opts: ServerOptions) -> Result<Self, ServerError> {
        let binary = find_binary()?;
        let (dir, tempdir) = match &opts.dir {
            Some(d) => {
                let setup = |source| ServerError::Setup {
                    dir: d.clone(),
                    source,
                };
                std::fs::create_dir_all(d).map_err(setup)?;
                // Redis runs inside this directory: relative paths in its
                // config would resolve twice.
                (d.canonicalize().map_err(setup)?, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("wclab-redis-")
                    .tempdir()
                    .map_err(|source| ServerError::Setup {
                        dir: std::env::temp_dir(),
                        source,
                    })?;
                (t.path().to_owned(), Some(t))
            }
        };
        let password = opts.password.clone().unwrap_or_else(random_password);
        let settings = Settings::new(&opts, &dir)?;
        // With a free port picked for us there is a small race (another
        // process may take it between our probe and Redis's bind): retry.
        let attempts = if opts.port.is_some() { 1 } else { 5 };
        let mut last_err = None;
        for _ in 0..attempts {
            let port = match opts.port {
                Some(p) => p,
                None => free_port().map_err(|source| ServerError::Setup {
                    dir: dir.clone(),
                    source,
                })?,
            };
            let config = write_config(&dir, port, &password, &settings)?;
            let mut server = RedisServer {
                child: None,
                port,
                password: password.clone(),
                dir: dir.clone(),
                _tempdir: None,
                binary: binary.clone(),
                config,
                settings: settings.clone(),
            };
            match server.spawn() {
                Ok(()) => {
                    server._tempdir = tempdir;
                    return Ok(server);
                }
                Err(e @ ServerError::PortInUse { .. }) if opts.port.is_none() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let log = self.log_path();
        let mut cmd = Command::new(&self.binary);
        cmd.arg(&self.config)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a terminal's Ctrl-C is ours to handle,
            // and a crash takes its BGSAVE child along (see `kill`).
            .process_group(0);
        let mut child =
            tied::spawn_tied(cmd, Signal::SIGKILL).map_err(|e| ServerError::DidNotStart {
                reason: format!("cannot run {}: {e}", self.binary.display()),
                log: log.clone(),
            })?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Address already in use") {
                    return Err(ServerError::PortInUse { port: self.port });
                }
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_owned();
                return Err(ServerError::DidNotStart {
                    reason: format!("it exited with {status}: {last}"),
                    log,
                });
            }
            match ping(self.port, &self.password, self.settings.client_tls.as_ref()) {
                Ok(true) => break,
                Ok(false) | Err(_) if Instant::now() < deadline => {
                    // A fresh server answers within ~10 ms: poll finely at
                    // first (it is on the critical path of every `run`).
                    let step = if started.elapsed() < Duration::from_millis(200) {
                        2
                    } else {
                        20
                    };
                    std::thread::sleep(Duration::from_millis(step))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ServerError::DidNotStart {
                        reason: "it did not answer PING within 30 s".into(),
                        log,
                    });
                }
            }
        }
        tracing::debug!(port = self.port, dir = %self.dir.display(), "redis-server started");
        self.child = Some(child);
        Ok(())
    }

    /// `redis://:password@127.0.0.1:port` (`rediss://` with TLS), the
    /// administrator's URL — contains the password: hand it to children
    /// through the environment only.
    pub fn url(&self) -> String {
        format!(
            "{}://:{}@127.0.0.1:{}",
            self.scheme(),
            self.password,
            self.port
        )
    }

    /// The URL of ACL user `name` (with its password), if the server has it.
    pub fn url_as(&self, name: &str) -> Option<String> {
        let password = self.user_password(name)?;
        Some(format!(
            "{}://{name}:{password}@127.0.0.1:{}",
            self.scheme(),
            self.port
        ))
    }

    /// The password of ACL user `name`, if the server has it.
    pub fn user_password(&self, name: &str) -> Option<&str> {
        (self.settings.users.iter())
            .find(|(u, _)| u.name == name)
            .map(|(_, pw)| pw.as_str())
    }

    /// The certificates, when the server speaks TLS: clients need `ca`.
    pub fn tls(&self) -> Option<&tls::TlsFiles> {
        self.settings.tls.as_ref()
    }

    fn scheme(&self) -> &'static str {
        if self.settings.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The data directory (where `dump.rdb` lives).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// PID of the server process, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL, as a crash of its machine would: the
    /// whole process group, so that a BGSAVE child running at that moment
    /// dies too and its half-written file never replaces `dump.rdb`. (A
    /// SIGKILL of the parent alone leaves the child to finish the dump.)
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = Pid::from_raw(child.id() as i32);
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.wait();
            // Wait until the group is gone, so that a restart never races
            // a dying BGSAVE child for the directory.
            let deadline = Instant::now() + Duration::from_secs(5);
            while killpg(pgid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Starts the server again on the same port with another password (to
    /// test that clients notice), from the same directory.
    pub fn restart_with_password(&mut self, password: &str) -> Result<(), ServerError> {
        self.kill();
        self.password = password.to_owned();
        self.config = write_config(&self.dir, self.port, password, &self.settings)?;
        self.restart()
    }

    /// Starts the server again on the same port, password and directory, so
    /// that it loads the `dump.rdb` (or AOF) left there.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        // The old socket may linger briefly after SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Err(ServerError::PortInUse { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => return other,
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `WCLAB_REDIS_SERVER`, else `redis-server` on PATH, else Debian's path.
fn find_binary() -> Result<PathBuf, ServerError> {
    if let Some(p) = std::env::var_os("WCLAB_REDIS_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ServerError::NotInstalled {
                searched: format!("WCLAB_REDIS_SERVER={}", p.display()),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| ServerError::NotInstalled {
            searched: "searched PATH and /usr/bin".into(),
        })
}

impl Settings {
    /// Passwords for the users, certificates for TLS.
    fn new(opts: &ServerOptions, dir: &Path) -> Result<Settings, ServerError> {
        let users = (opts.users.iter())
            .map(|u| (u.clone(), random_password()))
            .collect();
        let tls = match &opts.tls {
            None => None,
            Some(ServerTls::Files(files)) => Some(files.clone()),
            Some(ServerTls::Generate) => {
                let names: Vec<String> = tls::LOOPBACK_NAMES.map(str::to_owned).to_vec();
                Some(tls::generate(&dir.join("tls"), &names)?)
            }
        };
        let client_tls = match &tls {
            None => None,
            Some(files) => {
                let pem = tls::read_ca(&files.ca)?;
                let config = tls::client_config(&pem).map_err(|reason| tls::TlsError::BadCa {
                    path: files.ca.clone(),
                    reason,
                })?;
                Some(config)
            }
        };
        Ok(Settings {
            extra: opts.extra_config.clone(),
            users,
            tls,
            client_tls,
        })
    }

    /// The config lines for TLS and the users.
    fn lines(&self, port: u16) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.tls {
            None => lines.push(format!("port {port}")),
            Some(files) => {
                // TLS only: no plain-text port at all. Clients are known by
                // their passwords (ACL users), not by certificates.
                lines.push("port 0".into());
                lines.push(format!("tls-port {port}"));
                lines.push(format!(
                    "tls-cert-file {}",
                    config_arg(&files.cert.to_string_lossy())
                ));
                lines.push(format!(
                    "tls-key-file {}",
                    config_arg(&files.key.to_string_lossy())
                ));
                lines.push(format!(
                    "tls-ca-cert-file {}",
                    config_arg(&files.ca.to_string_lossy())
                ));
                lines.push("tls-auth-clients no".into());
            }
        }
        for (user, password) in &self.users {
            let rules: Vec<String> = user.rules.iter().map(|r| config_arg(r)).collect();
            lines.push(format!(
                "user {} reset on >{password} {}",
                config_arg(&user.name),
                rules.join(" ")
            ));
        }
        lines
    }
}

/// An argument of a redis.conf line (or of a redis-cli command), quoted
/// when it must be (Redis splits lines like a shell, with `"..."` and
/// backslash escapes).
pub fn config_arg(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        return s.to_owned();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_config(
    dir: &Path,
    port: u16,
    password: &str,
    settings: &Settings,
) -> Result<PathBuf, ServerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("redis.conf");
    let text = format!(
        "# Written by wclab. Contains the passwords: readable by its owner only.\n\
         bind 127.0.0.1\n{listen}\nrequirepass {password}\ndir {dir}\n\
         dbfilename dump.rdb\nlogfile {log}\nsave \"\"\nappendonly no\ndaemonize no\n\
         lazyfree-lazy-server-del yes\nprotected-mode yes\n{extra}\n",
        listen = settings.lines(port).join("\n"),
        dir = dir.display(),
        log = dir.join("redis.log").display(),
        extra = settings.extra.join("\n"),
    );
    let setup = |source| ServerError::Setup {
        dir: dir.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(setup)?;
    f.write_all(text.as_bytes()).map_err(setup)?;
    Ok(path)
}

fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(l.local_addr()?.port())
}

fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// `AUTH` + `PING` over a raw socket (in TLS with `tls`); `Ok(true)` once
/// the server is ready (not still loading its dataset).
fn ping(
    port: u16,
    password: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> std::io::Result<bool> {
    let s = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    match tls {
        None => auth_and_ping(s, password),
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
            let conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(std::io::Error::other)?;
            auth_and_ping(rustls::StreamOwned::new(conn, s), password)
        }
    }
}

fn auth_and_ping(mut s: impl Read + Write, password: &str) -> std::io::Result<bool> {
    write!(s, "AUTH {password}\r\nPING\r\n")?;
    s.flush()?;
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n") || got.iter().filter(|&&b| b == b'\n').count() < 2 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got.ends_with(b"+PONG\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_restarts_on_the_same_port() {
        let mut s = RedisServer::start(ServerOptions::default()).unwrap();
        assert!(ping(s.port(), s.password(), None).unwrap());
        assert!(!ping(s.port(), "wrong", None).unwrap());
        let port = s.port();
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        assert!(ping(port, s.password(), None).unwrap());
        let mode = std::fs::metadata(s.dir().join("redis.conf")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o077,
            0,
            "config must not be readable by others"
        );
    }

    /// Sends `request` in plain text and returns what came back within 300 ms.
    fn talk(port: u16, request: &str) -> String {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn each_user_has_its_own_password_and_rules_also_after_a_restart() {
        let reader = AclUser {
            name: "reader".into(),
            rules: vec!["-@all".into(), "+get".into(), "~app:*".into()],
        };
        let mut s = RedisServer::start(ServerOptions {
            users: vec![reader],
            ..Default::default()
        })
        .unwrap();
        let pw = s.user_password("reader").unwrap().to_owned();
        assert_ne!(pw, s.password());
        assert_eq!(
            s.url_as("reader").unwrap(),
            format!("redis://reader:{pw}@127.0.0.1:{}", s.port())
        );
        assert!(s.url_as("nobody").is_none());
        for _ in 0..2 {
            let said = talk(
                s.port(),
                &format!("AUTH reader {pw}\r\nGET app:x\r\nGET other\r\nFLUSHALL\r\n"),
            );
            let lines: Vec<&str> = said.lines().collect();
            assert_eq!(lines[0], "+OK", "{said}");
            assert_eq!(lines[1], "$-1", "{said}");
            assert!(lines[2].starts_with("-NOPERM"), "{said}");
            assert!(lines[3].starts_with("-NOPERM"), "{said}");
            s.restart().unwrap();
        }
        let wrong = talk(s.port(), "AUTH reader wrong\r\n");
        assert!(wrong.starts_with("-WRONGPASS"), "{wrong}");
    }

    #[test]
    fn a_tls_server_speaks_tls_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedisServer::start(ServerOptions {
            dir: Some(dir.path().to_owned()),
            tls: Some(ServerTls::Generate),
            ..Default::default()
        })
        .unwrap();
        // It started: its PING went through TLS, checked against the CA.
        let files = s.tls().unwrap().clone();
        assert!(files.ca.starts_with(s.dir()), "{files:?}");
        assert!(s.url().starts_with("rediss://:"));
        let plain = talk(s.port(), &format!("AUTH {}\r\nPING\r\n", s.password()));
        assert!(!plain.contains("PONG"), "answered in plain text: {plain}");
        // Another CA is not trusted: the check is real.
        let other = tempfile::tempdir().unwrap();
        let other = tls::generate(other.path(), &["127.0.0.1".into()]).unwrap();
        let config = tls::client_config(&std::fs::read(&other.ca).unwrap()).unwrap();
        let e = ping(s.port(), s.password(), Some(&config)).unwrap_err();
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        // Given files are used as they are, on a restart too.
        let port = s.port();
        drop(s);
        let mut again = RedisServer::start(ServerOptions {
            port: Some(port),
            tls: Some(ServerTls::Files(files.clone())),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(again.tls(), Some(&files));
        again.restart().unwrap();
    }

    #[test]
    fn config_arguments_are_quoted_when_they_must_be() {
        assert_eq!(config_arg("~wclab:*"), "~wclab:*");
        assert_eq!(config_arg("~wclab:{a b}:*"), "\"~wclab:{a b}:*\"");
        assert_eq!(config_arg("x\"y\\"), "\"x\\\"y\\\\\"");
        assert_eq!(config_arg(""), "\"\"");
    }

    #[test]
    fn a_taken_port_is_reported_as_such() {
        let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = l.local_addr().unwrap().port();
        let e = RedisServer::start(ServerOptions {
            port: Some(port),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(
            matches!(e, ServerError::PortInUse { port: p } if p == port),
            "{e}"
        );
    }
}
