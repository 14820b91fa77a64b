use std::path::PathBuf;

/// Why a lab-3 file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Creating, reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file (latency.csv, events.csv) is malformed or cannot be written.
    #[error("{}: {source} (is it a latency.csv / events.csv written by `wclab stream`?)", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV reader or writer said.
        #[source]
        source: csv::Error,
    },
    /// The JSON summary cannot be written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// Drawing or encoding the PNG failed.
    #[error("{}: cannot draw the plot: {message}", path.display())]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What plotters said.
        message: String,
    },
}
