//! Which files a worker may open.
//!
//! A stream entry is only data: anyone with access to Redis can write one
//! by hand. A worker therefore opens a path only if it is canonical (no
//! `..`, no symlink hop) and lies under one of the roots the job's
//! submitter recorded. Anything else is dead-lettered, never read.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a task's path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The path is relative.
    NotAbsolute(String),
    /// The file does not exist (any more).
    Missing(String),
    /// The path is not what it resolves to (symlink, `..`).
    NotCanonical(String, PathBuf),
    /// The path is outside every input root of the job.
    OutsideRoots(String),
    /// The path names a directory, device, socket...
    NotRegularFile(String),
    /// Stat failed for another reason (permissions on a parent, say).
    Inaccessible(String, String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NotAbsolute(p) => write!(f, "{p}: not an absolute path; refusing to open it"),
            Refused::Missing(p) => {
                write!(f, "{p}: no such file (deleted or moved after submission?)")
            }
            Refused::NotCanonical(p, real) => {
                write!(
                    f,
                    "{p}: resolves to {}; only canonical paths submitted by the job are opened",
                    real.display()
                )
            }
            Refused::OutsideRoots(p) => {
                write!(f, "{p}: outside the job's input roots; refusing to open it (stream entry not written by the submitter?)")
            }
            Refused::NotRegularFile(p) => write!(f, "{p}: not a regular file"),
            Refused::Inaccessible(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

/// Checks that `path` may be opened for a job with input `roots`.
pub fn check(roots: &[PathBuf], path: &str) -> Result<PathBuf, Refused> {
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(Refused::NotAbsolute(path.into()));
    }
    let real = match given.canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Refused::Missing(path.into()))
        }
        Err(e) => return Err(Refused::Inaccessible(path.into(), e.to_string())),
    };
    if real != given {
        return Err(Refused::NotCanonical(path.into(), real));
    }
    if !roots.iter().any(|root| real.starts_with(root)) {
        return Err(Refused::OutsideRoots(path.into()));
    }
    match real.metadata() {
        Ok(m) if m.is_file() => Ok(real),
        Ok(_) => Err(Refused::NotRegularFile(path.into())),
        Err(e) => Err(Refused::Inaccessible(path.into(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_files_under_a_root_are_allowed() {
        let dir = std::env::temp_dir().join(format!("wclab-guard-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("link.txt")).unwrap();
        let root = root.canonicalize().unwrap();
        let roots = vec![root.clone()];
        let ok = root.join("sub/a.txt");
        assert_eq!(check(&roots, ok.to_str().unwrap()), Ok(ok.clone()));
        let outside = dir.canonicalize().unwrap().join("secret.txt");
        assert!(matches!(
            check(&roots, outside.to_str().unwrap()),
            Err(Refused::OutsideRoots(_))
        ));
        let link = root.join("link.txt");
        assert!(matches!(
            check(&roots, link.to_str().unwrap()),
            Err(Refused::NotCanonical(..))
        ));
        let dotdot = format!("{}/sub/../sub/a.txt", root.display());
        assert!(matches!(
            check(&roots, &dotdot),
            Err(Refused::NotCanonical(..))
        ));
        assert!(matches!(
            check(&roots, "relative.txt"),
            Err(Refused::NotAbsolute(_))
        ));
        assert!(matches!(
            check(&roots, root.join("sub").to_str().unwrap()),
            Err(Refused::NotRegularFile(_))
        ));
        assert!(matches!(
            check(&roots, root.join("gone").to_str().unwrap()),
            Err(Refused::Missing(_))
        ));
        // A root that is a prefix as a string but not as a path.
        let sibling = PathBuf::from(format!("{}x/a.txt", root.display()));
        assert!(matches!(
            check(&roots, sibling.to_str().unwrap()),
            Err(Refused::Missing(_) | Refused::OutsideRoots(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
