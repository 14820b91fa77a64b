use std::path::{Path, PathBuf};

/// Why a file could not be counted. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    /// Opening, mapping or reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The path names a directory, socket, device or other non-file.
    #[error("{}: not a regular file", path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The CSV is malformed; nothing of the file is counted.
    #[error("{}: malformed CSV at line {line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the problem.
        line: u64,
        /// What is wrong there.
        message: String,
    },
    /// The CSV header has no column of the requested name.
    #[error("{}: no column named {column:?} in the CSV header (columns: {found})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The requested column.
        column: String,
        /// The header's columns, comma-separated.
        found: String,
    },
}

impl CountError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CountError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// True when retrying cannot help (the file is missing, not a file,
    /// unreadable, malformed); false for errors that may pass (EIO, ENOMEM).
    pub fn is_permanent(&self) -> bool {
        match self {
            CountError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::InvalidInput
            ),
            _ => true,
        }
    }
}
