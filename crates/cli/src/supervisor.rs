//! Keeps N `wclab worker` processes alive.
//!
//! Each worker is a real OS process (so `ps` lists it and a user can
//! `kill -9` it). The Redis URL, password included, reaches it through its
//! environment, never its command line. A worker that dies while the job
//! runs is replaced.

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one worker process.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The `wclab` executable.
    pub program: std::path::PathBuf,
    /// Arguments after `worker` (job, lease...; never the password).
    pub args: Vec<String>,
    /// Environment to add (the Redis URL).
    pub env: Vec<(String, String)>,
}

impl WorkerCommand {
    fn spawn(&self) -> Result<Child> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("worker")
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // A supervisor that dies (even by SIGKILL) takes its workers along.
        wclab_server::tied::spawn_tied(cmd, Signal::SIGKILL)
            .with_context(|| format!("cannot start a worker process ({})", self.program.display()))
    }
}

/// N worker processes, kept alive until [`Supervisor::stop`].
pub struct Supervisor {
    command: WorkerCommand,
    children: Vec<Child>,
    children_wanted: usize,
    /// Workers in a row that exited with a configuration error.
    config_failures: u64,
    /// Workers that died and were replaced.
    pub replaced: u64,
    /// PIDs this supervisor has sent SIGKILL to. A killed worker stays a
    /// child (a zombie) until [`Supervisor::keep_alive`] reaps it, and its
    /// consumer keeps holding its tasks until they are stolen: without this
    /// set, the next round of chaos would find it "holding a task" and
    /// kill, and count, the same dead process again.
    killed: std::collections::HashSet<u32>,
}

impl Supervisor {
    /// Starts `n` workers.
    pub fn start(command: WorkerCommand, n: usize) -> Result<Self> {
        let children = (0..n).map(|_| command.spawn()).collect::<Result<_>>()?;
        Ok(Supervisor {
            command,
            children,
            children_wanted: n,
            config_failures: 0,
            replaced: 0,
            killed: Default::default(),
        })
    }

    /// PIDs of the current workers.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// PIDs of the workers that are alive and were not sent SIGKILL: the
    /// ones a crash can still be inflicted on.
    pub fn live_pids(&mut self) -> Vec<u32> {
        let killed = &self.killed;
        self.children
            .iter_mut()
            .filter_map(|c| {
                let alive = matches!(c.try_wait(), Ok(None));
                (alive && !killed.contains(&c.id())).then(|| c.id())
            })
            .collect()
    }

    /// Kills the `index % n`-th worker with SIGKILL (a crash);
    /// [`Supervisor::keep_alive`] will replace it. Returns its PID.
    pub fn kill_one(&mut self, index: usize) -> Option<u32> {
        let n = self.children.len();
        let child = self.children.get(index % n.max(1))?;
        let pid = child.id();
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        Some(pid)
    }

    /// Kills worker `pid` with SIGKILL (a crash, for lab 2);
    /// [`Supervisor::keep_alive`] will replace it. True only when `pid` is
    /// one of ours, alive, not already killed, and the signal was sent: a
    /// caller counts kills by it.
    pub fn kill_pid(&mut self, pid: u32) -> bool {
        if !self.live_pids().contains(&pid) {
            return false;
        }
        let sent = kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok();
        if sent {
            self.killed.insert(pid);
        }
        sent
    }

    /// Sends `sig` to every worker (SIGSTOP / SIGCONT to freeze and thaw
    /// them for an instant).
    pub fn signal_all(&self, sig: Signal) {
        for c in &self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// Replaces every worker that has exited; returns how many were.
    ///
    /// A worker that exits with status 2 (a configuration error: wrong
    /// password, Redis unreachable for a minute) would only fail again:
    /// once every worker has, that is the job's error, not something to
    /// retry forever.
    pub fn keep_alive(&mut self) -> Result<usize> {
        let mut n = 0;
        for child in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let old = child.id();
                if status.code() == Some(2) {
                    self.config_failures += 1;
                    if self.config_failures >= self.children_wanted.max(2) as u64 {
                        anyhow::bail!(
                            "workers keep exiting with a configuration error (their message is above); giving up"
                        );
                    }
                } else {
                    self.config_failures = 0;
                }
                *child = self.command.spawn()?;
                tracing::warn!(pid = old, %status, new_pid = child.id(), "worker died; started a replacement");
                n += 1;
            }
        }
        self.replaced += n as u64;
        Ok(n)
    }

    /// Asks every worker to stop (SIGTERM), then kills the ones still
    /// running after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for c in &self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for c in &mut self.children {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Ok(None) => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A supervisor of `n` real processes that ignore their arguments and
    /// wait, standing in for workers (the `worker` subcommand needs Redis).
    fn sleepers(dir: &std::path::Path, n: usize) -> Supervisor {
        let program = dir.join("sleeper");
        std::fs::write(&program, "#!/bin/sh\nexec sleep 60\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = WorkerCommand {
            program,
            args: Vec::new(),
            env: Vec::new(),
        };
        Supervisor::start(command, n).unwrap()
    }

    #[test]
    fn a_worker_is_killed_and_counted_once_even_before_it_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = sleepers(dir.path(), 2);
        let pid = sup.pids()[0];
        assert!(sup.kill_pid(pid));
        // Dead (or dying) but not reaped: still a child, no longer a target.
        std::thread::sleep(Duration::from_millis(100));
        assert!(sup.pids().contains(&pid));
        assert!(!sup.kill_pid(pid), "a dead worker was killed again");
        assert!(!sup.live_pids().contains(&pid));
        assert!(!sup.kill_pid(1), "not ours");
        assert_eq!(sup.keep_alive().unwrap(), 1);
        assert_eq!(sup.live_pids().len(), 2);
    }
}
