//! Ports for servers that a test kills and restarts on the same port.
//!
//! A port picked by binding port 0 comes from the kernel's ephemeral range,
//! the range it also hands to every other test's port-0 listener and to
//! every outgoing connection. While a node is down (killed, about to be
//! restarted), its port is free in that pool: on a machine running many
//! tests at once another process took it, and the node could not listen
//! again (a Raft test failed with "node exited at start"). Ports below the
//! ephemeral range are handed out by nobody: picked at random there, and
//! checked free, they stay the node's.

use rand::Rng;
use std::net::TcpListener;

/// The kernel's ephemeral range (`ip_local_port_range`), or Linux's default.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `n` distinct free ports, none in `taken`, outside the ephemeral range
/// (below it when there is room, else above it).
pub fn restartable(n: usize, taken: &[u16]) -> Vec<u16> {
    let (low, high) = ephemeral_range();
    let range = if low > 11_000 {
        10_000..low
    } else {
        high.saturating_add(1).max(1024)..u16::MAX
    };
    let mut rng = rand::rng();
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    for _ in 0..100_000 {
        if ports.len() == n {
            break;
        }
        let p = rng.random_range(range.clone());
        if !ports.contains(&p) && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            ports.push(p);
        }
    }
    assert_eq!(ports.len(), n, "no {n} free ports in {range:?}");
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        let taken = restartable(3, &[]);
        let ports = restartable(20, &taken);
        assert_eq!(ports.len(), 20);
        for p in &ports {
            assert!(!(low..=high).contains(p), "{p} in {low}..={high}");
            assert!(!taken.contains(p));
            assert_eq!(ports.iter().filter(|q| *q == p).count(), 1);
        }
    }
}
