//! The local redis-server's health check.
//!
//! Without it, a node noticed a dead redis-server only when it next applied
//! an entry, and a hung one (SIGSTOP, a stuck disk) never: a leader whose
//! Redis hung kept its leadership, its heartbeats kept the followers from
//! electing another, and every write timed out (issue 21: 12 s without
//! writes and no election). Now a dedicated connection PINGs the Redis
//! every [`Health::every`]; no connection, a lost one or an error reply
//! stops the node ([`Exit::RedisLost`]); a PING unanswered for
//! [`Health::deadline`] stops it ([`Exit::RedisHung`]) unless the process
//! used CPU meanwhile: Redis runs one command at a time, so a PING waits
//! behind a long legitimate command (a big commit), and that command
//! burns CPU, while a stopped or stuck process burns none. A leader that
//! stops is replaced by an election after its lease.

use crate::fatal::{self, Exit};
use crate::resp::{Conn, Frame};
use std::time::Duration;

/// How the health check runs.
#[derive(Debug, Clone)]
pub struct Health {
    /// The redis-server's address.
    pub addr: String,
    /// Its password.
    pub password: String,
    /// Its PID (for its CPU time and state).
    pub pid: Option<u32>,
    /// Time between PINGs.
    pub every: Duration,
    /// How long a PING may go unanswered with no CPU used by Redis.
    pub deadline: Duration,
}

/// The CPU time (clock ticks) and state letter of `pid`, from /proc.
fn cpu_and_state(pid: u32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: comm may hold spaces, so split after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime, state))
}

impl Health {
    /// Checks for the life of the node; returns only by stopping it.
    pub async fn run(self) -> ! {
        let connect = tokio::time::timeout(
            self.deadline,
            Conn::connect(&self.addr, Some(&self.password)),
        )
        .await;
        let mut conn = match connect {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => fatal::die(
                Exit::RedisLost,
                &format!("cannot connect to the local redis-server: {e}"),
            ),
            Err(_) => fatal::die(
                Exit::RedisHung,
                "the local redis-server does not accept a connection",
            ),
        };
        loop {
            tokio::time::sleep(self.every).await;
            self.ping(&mut conn).await;
        }
    }

    async fn ping(&self, conn: &mut Conn) {
        let mut cpu = self.pid.and_then(cpu_and_state).map(|c| c.0);
        let ping = conn.call(&["PING"]);
        tokio::pin!(ping);
        loop {
            match tokio::time::timeout(self.deadline, &mut ping).await {
                Ok(Ok(Frame::Simple(s))) if s == "PONG" => return,
                // A script past its time limit: Redis is alive, and busy.
                Ok(Ok(Frame::Error(e))) if e.starts_with("BUSY") => return,
                Ok(Ok(other)) => fatal::die(
                    Exit::RedisLost,
                    &format!("the local redis-server answered PING with {other:?}"),
                ),
                Ok(Err(e)) => fatal::die(
                    Exit::RedisLost,
                    &format!("lost the local redis-server: {e}"),
                ),
                Err(_) => {
                    let now = self.pid.and_then(cpu_and_state);
                    match (cpu, now) {
                        (Some(before), Some((after, state)))
                            if after > before && !matches!(state, 'T' | 't' | 'Z' | 'X') =>
                        {
                            tracing::info!(
                                waited = ?self.deadline,
                                "the local redis-server is busy (a long command): still waiting for PING"
                            );
                            cpu = Some(after);
                        }
                        _ => fatal::die(
                            Exit::RedisHung,
                            &format!(
                                "the local redis-server did not answer PING within {:?} and did no work meanwhile",
                                self.deadline
                            ),
                        ),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_and_state;

    #[test]
    fn a_stopped_process_is_told_from_a_sleeping_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let state = || cpu_and_state(pid).unwrap().1;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while state() != 'S' && std::time::Instant::now() < deadline {}
        assert_eq!(state(), 'S');
        crate::fatal::stop(pid as i32);
        while state() != 'T' && std::time::Instant::now() < deadline {}
        assert_eq!(state(), 'T');
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(cpu_and_state(pid).is_none(), "reaped: no /proc entry");
    }
}
