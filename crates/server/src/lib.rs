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

pub mod tied;

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
            let config = write_config(&dir, port, &password, &opts.extra_config)?;
            let mut server = RedisServer {
                child: None,
                port,
                password: password.clone(),
                dir: dir.clone(),
                _tempdir: None,
                binary: binary.clone(),
                config,
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
            match ping(self.port, &self.password) {
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

    /// `redis://:password@127.0.0.1:port` — contains the password: hand it
    /// to children through the environment only.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
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
        let extra = std::fs::read_to_string(&self.config).unwrap_or_default();
        let extra: Vec<String> = extra
            .lines()
            .skip_while(|l| !l.starts_with("protected-mode"))
            .skip(1)
            .map(str::to_owned)
            .collect();
        self.config = write_config(&self.dir, self.port, password, &extra)?;
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

fn write_config(
    dir: &Path,
    port: u16,
    password: &str,
    extra: &[String],
) -> Result<PathBuf, ServerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("redis.conf");
    let text = format!(
        "# Written by wclab. Contains the password: readable by its owner only.\n\
         bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {dir}\n\
         dbfilename dump.rdb\nlogfile {log}\nsave \"\"\nappendonly no\ndaemonize no\n\
         lazyfree-lazy-server-del yes\nprotected-mode yes\n{extra}\n",
        dir = dir.display(),
        log = dir.join("redis.log").display(),
        extra = extra.join("\n"),
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

/// `AUTH` + `PING` over a raw socket; `Ok(true)` once the server is ready
/// (not still loading its dataset).
fn ping(port: u16, password: &str) -> std::io::Result<bool> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    write!(s, "AUTH {password}\r\nPING\r\n")?;
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
        assert!(ping(s.port(), s.password()).unwrap());
        assert!(!ping(s.port(), "wrong").unwrap());
        let port = s.port();
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        assert!(ping(port, s.password()).unwrap());
        let mode = std::fs::metadata(s.dir().join("redis.conf")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o077,
            0,
            "config must not be readable by others"
        );
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
