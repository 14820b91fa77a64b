//! Turning PATH arguments into the job's tasks and input roots.
//!
//! Every path is made canonical here, once: workers then accept only
//! canonical paths under these roots (see `wclab_worker::guard`). A PATH
//! that names nothing is an error before anything starts; a file that
//! exists but cannot be read becomes a task anyway, so that it is reported
//! with its reason at the end instead of being dropped silently.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use wclab_coord::submit::TaskSpec;

/// A resolved input: the files to count, their tasks, and the roots.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Canonical roots (the PATH arguments, resolved).
    pub roots: Vec<PathBuf>,
    /// Distinct canonical files with their sizes, sorted by path.
    pub files: Vec<(PathBuf, u64)>,
    /// Tasks in deterministic order, with deterministic IDs.
    pub tasks: Vec<TaskSpec>,
}

impl Inputs {
    /// Total bytes of input.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|(_, s)| s).sum()
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Resolves PATH arguments. `split_size` > 0 splits bigger text files into
/// byte ranges of about that size.
pub fn resolve(args: &[String], split_size: u64) -> Result<Inputs> {
    let mut roots = Vec::new();
    let mut files = Vec::new();
    for arg in args {
        let matches: Vec<PathBuf> = if Path::new(arg).exists() || !is_glob(arg) {
            vec![PathBuf::from(arg)]
        } else {
            let found = glob::glob(arg)
                .with_context(|| format!("invalid glob pattern {arg:?}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("cannot expand {arg:?}"))?;
            if found.is_empty() {
                bail!("{arg}: the pattern matches no file");
            }
            found
        };
        for path in matches {
            let root = path.canonicalize().map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    anyhow::anyhow!("{}: no such file or directory", path.display())
                }
                _ => anyhow::anyhow!("{}: {e}", path.display()),
            })?;
            collect(&root, &mut files)?;
            roots.push(root);
        }
    }
    files.sort();
    files.dedup();
    let mut tasks = Vec::new();
    for (path, size) in &files {
        let path_text = path.to_str().with_context(|| {
            format!(
                "{}: the path is not valid UTF-8, which wclab cannot put in a task; rename the file (e.g. with convmv) or leave it out",
                path.display()
            )
        })?;
        let mut push = |start: u64, end: u64| {
            tasks.push(TaskSpec {
                id: TaskSpec::id_for(tasks.len()),
                path: path_text.to_owned(),
                start,
                end,
            });
        };
        if split_size > 0 && *size > split_size {
            let mut start = 0;
            while start < *size {
                let end = (start + split_size).min(*size);
                push(start, end);
                start = end;
            }
        } else {
            push(0, *size);
        }
    }
    roots.sort();
    roots.dedup();
    Ok(Inputs {
        roots,
        files,
        tasks,
    })
}

/// Adds the regular files at or under `root`.
fn collect(root: &Path, files: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    let meta = root
        .metadata()
        .with_context(|| format!("{}: cannot read its metadata", root.display()))?;
    if meta.is_file() {
        files.push((root.to_owned(), meta.len()));
        return Ok(());
    }
    if !meta.is_dir() {
        bail!("{}: not a regular file or directory", root.display());
    }
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let at = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            anyhow::anyhow!(
                "{at}: cannot read this directory ({}); fix its permissions or leave it out",
                e.io_error().map(|e| e.to_string()).unwrap_or_default()
            )
        })?;
        let ft = entry.file_type();
        if ft.is_file() {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push((entry.path().to_owned(), len));
        } else if ft.is_symlink() {
            tracing::warn!(path = %entry.path().display(), "skipping a symbolic link inside an input directory (name its target directly to count it)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_globs_and_files_resolve_to_sorted_canonical_tasks() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::write(base.join("a/b/x.txt"), "x y").unwrap();
        std::fs::write(base.join("a/y.txt"), "y").unwrap();
        std::fs::write(base.join("z.log"), "z").unwrap();
        let args = vec![
            base.join("a").display().to_string(),
            format!("{}/*.log", base.display()),
        ];
        let inputs = resolve(&args, 0).unwrap();
        let paths: Vec<_> = inputs.files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            paths,
            vec![
                base.join("a/b/x.txt"),
                base.join("a/y.txt"),
                base.join("z.log")
            ]
        );
        assert_eq!(inputs.tasks[0].id, "0-1");
        assert_eq!(inputs.tasks[2].id, "0-3");
        assert_eq!(inputs.total_bytes(), 5);
    }

    #[test]
    fn missing_paths_and_empty_globs_are_errors() {
        let e = resolve(&["/no/such/place".into()], 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/place") && e.contains("no such file"),
            "{e}"
        );
        let e = resolve(&["/no/such/*.txt".into()], 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches no file"), "{e}");
    }

    #[test]
    fn big_files_are_split_into_ranges_that_cover_them() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("big.txt");
        std::fs::write(&f, vec![b'a'; 10]).unwrap();
        let inputs = resolve(&[f.display().to_string()], 4).unwrap();
        let ranges: Vec<_> = inputs.tasks.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(ranges, vec![(0, 4), (4, 8), (8, 10)]);
    }
}
