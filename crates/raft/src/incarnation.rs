//! Incarnations: a node that lost its data directory never votes, nor is
//! counted in any quorum, as if it still held what it had acknowledged.
//!
//! Raft's safety rests on every voter keeping what it acknowledged (log
//! entries, its vote, the terms it has seen). A node restarted with an
//! empty directory has forgotten all three: if it votes, it can elect a
//! leader that lacks committed entries (issue 21: ten acknowledged pushes
//! gone); if its acknowledgements count, a stale leader can commit with it
//! in a term the lost directory had already promised away.
//!
//! So each data directory gets a random 64-bit *incarnation* when it is
//! first created, and the cluster's configuration records each member's
//! incarnation ([`crate::types::Member`]), learnt from the node itself when
//! it is added (`RAFT.INIT`, `RAFT.JOIN`). Every Raft RPC carries the
//! incarnation the sender's configuration has for the receiver, and a
//! receiver whose own incarnation differs refuses it — votes, appends and
//! snapshots alike — answering with its own (`-INCARNATION <id>`). To
//! the rest of the cluster the wiped node is a voter that is down. The
//! leader, told of the new incarnation, takes the node back in as a new
//! member: removed as a voter (joint consensus, committed by the others),
//! recorded with its new incarnation as a learner, caught up, then made a
//! voter again (joint consensus) — see [`crate::rejoin`]. docs/raft.md
//! has the argument for why this is safe, and why the simpler "keep it a
//! voter and record its new incarnation once it has caught up" is not.

use std::io;
use std::path::Path;

/// The file holding a directory's incarnation, next to the Raft log.
pub const FILE: &str = "incarnation";

/// The Raft state files whose presence means the directory was used.
const STATE: [&str; 2] = ["raft.log", "vote.bin"];

/// What can go wrong reading or creating an incarnation.
#[derive(Debug, thiserror::Error)]
pub enum IncarnationError {
    /// The file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file holds something else than an incarnation.
    #[error("{path} is corrupt ({content:?}); remove the whole data directory to rejoin the cluster as a new incarnation")]
    Corrupt {
        /// The file.
        path: String,
        /// What it holds.
        content: String,
    },
    /// Raft state without an incarnation: part of the directory was lost
    /// (or it was written by a wclab without incarnations).
    #[error("{dir} holds Raft state but no incarnation (part of the directory was lost?); remove the whole data directory to rejoin the cluster as a new incarnation")]
    Partial {
        /// The Raft directory.
        dir: String,
    },
}

/// The incarnation of the Raft directory `dir`, created (random, never 0)
/// if the directory has no Raft state yet.
pub fn load_or_create(dir: &Path) -> Result<u64, IncarnationError> {
    let path = dir.join(FILE);
    let io_err = |source| IncarnationError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return u64::from_str_radix(text.trim(), 16)
                .ok()
                .filter(|&i| i != 0)
                .ok_or_else(|| IncarnationError::Corrupt {
                    path: path.display().to_string(),
                    content: text.chars().take(40).collect(),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let used = STATE
        .iter()
        .any(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0));
    if used {
        return Err(IncarnationError::Partial {
            dir: dir.display().to_string(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let incarnation = loop {
        let i = rand::random::<u64>();
        if i != 0 {
            break i;
        }
    };
    crate::log::write_atomic(dir, FILE, format!("{incarnation:016x}\n").as_bytes())
        .map_err(io_err)?;
    Ok(incarnation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_its_incarnation_and_a_new_one_gets_another() {
        let a = tempfile::tempdir().unwrap();
        let first = load_or_create(a.path()).unwrap();
        assert_eq!(load_or_create(a.path()).unwrap(), first);
        let b = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(b.path()).unwrap(), first);
    }

    #[test]
    fn raft_state_without_an_incarnation_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("raft.log"), b"x").unwrap();
        assert!(matches!(
            load_or_create(d.path()),
            Err(IncarnationError::Partial { .. })
        ));
        std::fs::write(d.path().join(FILE), b"zz\n").unwrap();
        assert!(matches!(
            load_or_create(d.path()),
            Err(IncarnationError::Corrupt { .. })
        ));
    }
}
