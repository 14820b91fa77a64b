//! Deterministic corpus generators for the wclab labs.
//!
//! A word-count lab needs input: big enough to be worth distributing, real
//! enough that word frequencies look like English, and *reproducible*, so that
//! a test, a benchmark or a student on another machine gets byte-for-byte the
//! same files from the same seed and can compare counts exactly. Nothing here
//! downloads anything: the source is a public-domain excerpt of the King James
//! Bible bundled in the crate (`data/kjv-excerpt.txt`, see `data/README.md`).
//!
//! # Layout
//!
//! * [`text_corpus`] writes plain-text files (`part-0000.txt`, ...) of whole
//!   verses, runs of verses and recombined clauses, one line each; with
//!   [`TextOptions::vocab`], mixed with sentences from a Zipf vocabulary of
//!   tens of thousands of words (`vocab`), for benchmarks that need a
//!   realistic number of distinct words.
//! * [`tweet_corpus`] writes CSV files (`tweets-0000.csv`, ...) whose `text`
//!   column deliberately holds the RFC 4180 hard cases: commas, doubled
//!   quotes, embedded newlines, plus hashtags, @mentions and non-ASCII text.
//! * Both return a [`Manifest`] of what they wrote, and fail with a
//!   [`GenError`] that names the path.
//!
//! # Determinism
//!
//! Output depends only on the options and the bundled text. Each file has its
//! own ChaCha8 stream (the seed, with the file number as the stream id), so a
//! file's bytes do not depend on how many other files are generated, and no
//! hash map ever decides an order.
//!
//! ```no_run
//! let opts = wclab_gen::TextOptions {
//!     files: 4,
//!     bytes_per_file: 1 << 20,
//!     ..wclab_gen::TextOptions::new("/tmp/corpus")
//! };
//! let manifest = wclab_gen::text_corpus(&opts)?;
//! assert_eq!(manifest.files.len(), 4);
//! # Ok::<(), wclab_gen::GenError>(())
//! ```

mod source;
mod text;
mod tweets;
mod vocab;

use std::io;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use source::source_text;
pub use text::{text_corpus, TextOptions};
pub use tweets::{tweet_corpus, TweetOptions, MAX_TWEET_CHARS, TWEET_HEADER};

/// What a generator wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The output directory the entries are relative to.
    pub root: PathBuf,
    /// The files in the order they were generated (file number order).
    pub files: Vec<FileEntry>,
    /// The sum of the files' sizes in bytes.
    pub total_bytes: u64,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Path relative to [`Manifest::root`].
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// Lines for text files; data rows (without the header) for CSV files.
    pub records: u64,
}

impl Manifest {
    fn new(root: &Path) -> Self {
        Manifest {
            root: root.to_path_buf(),
            files: Vec::new(),
            total_bytes: 0,
        }
    }

    fn push(&mut self, path: PathBuf, bytes: u64, records: u64) {
        self.total_bytes += bytes;
        self.files.push(FileEntry {
            path,
            bytes,
            records,
        });
    }

    /// The full paths of the files, in generation order.
    pub fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.files.iter().map(|f| self.root.join(&f.path))
    }
}

/// A generator failure; every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The output directory (or a subdirectory) could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    /// A file could not be created, written or flushed.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// The random stream for file number `index`: independent of the others.
fn file_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

fn create_dir(path: &Path) -> Result<(), GenError> {
    std::fs::create_dir_all(path).map_err(|source| GenError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}
