//! The lab scripts themselves: they fail loudly, naming the cause.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's `scripts/` directory.
fn scripts() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

#[test]
fn lab4_raft_with_a_port_taken_fails_at_once_naming_the_port_and_the_fix() {
    // Something that is not a node (nor Redis) listens where node 2 would.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::write(corpus.join("a.txt"), "a few words").unwrap();
    let started = Instant::now();
    let child = Command::new("bash")
        .arg(scripts().join("lab4-raft.sh"))
        .arg("1")
        .arg(env!("CARGO_BIN_EXE_wclab"))
        .arg(&corpus)
        .current_dir(dir.path())
        .env("WCLAB_RAFT_BASE_PORT", (port - 2).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_output(child, Duration::from_secs(60));
    let e = stderr(&o);
    assert!(!o.status.success(), "the lab went on: {e}");
    // Node 1's port (port - 1) may be taken too, by chance: either names
    // its port.
    assert!(
        e.contains(&format!("port {port}")) || e.contains(&format!("port {}", port - 1)),
        "{e}"
    );
    assert!(e.contains("WCLAB_RAFT_BASE_PORT"), "{e}");
    eprintln!("failed after {:?}: {e}", started.elapsed());
    drop(taken);
}
