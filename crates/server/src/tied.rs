//! Child processes that die with this process.
//!
//! A `wclab run` killed with SIGKILL (or a test binary that panics) must not
//! leave its redis-server and workers running, holding ports and a
//! password-bearing config. Linux's `PR_SET_PDEATHSIG` makes the kernel
//! signal a child when its parent dies, but "parent" means the *thread*
//! that forked it: a child spawned from a tokio blocking thread would be
//! killed when that thread is retired after a few idle seconds. So every
//! tied child is forked by one thread that lives as long as the process.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("wclab-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `cmd` so that it receives `signal` when this process dies, for
/// whatever reason (SIGKILL included).
pub fn spawn_tied(mut cmd: Command, signal: nix::sys::signal::Signal) -> io::Result<Child> {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid, kill).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid().as_raw() != parent {
                let _ = nix::sys::signal::raise(signal);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tx))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn a_tied_child_outlives_the_thread_that_asked_for_it() {
        let child = std::thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            spawn_tied(cmd, Signal::SIGKILL).unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut child = child;
        assert!(
            child.try_wait().unwrap().is_none(),
            "killed with the thread"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
