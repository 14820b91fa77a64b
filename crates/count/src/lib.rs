//! The counting kernel of wclab: bytes in, exact word frequencies out.
//!
//! A *word* is a maximal run of bytes that are not ASCII whitespace
//! (0x09–0x0D and 0x20), exactly Python's `bytes.split()`. Words are compared
//! as bytes: case-sensitive, no Unicode normalisation, invalid UTF-8 counted
//! like anything else. Note that [`u8::is_ascii_whitespace`] leaves out 0x0B
//! and [`str::split_whitespace`] splits on Unicode spaces too; neither is used.
//!
//! # Layout
//!
//! * [`Counter`] is the entry point: a builder for the options (input
//!   [`Format`], threads) with `count_*` methods for a buffer or a file.
//! * [`Counts`] is the result: word → count plus totals.
//! * A byte range of a file owns the words that *start* inside it, so that a
//!   large file can be split into tasks without counting a boundary-straddling
//!   word twice or not at all.
//!
//! There is no Redis in this crate: it is the pure, testable core.

mod counts;
mod error;
mod scan;
mod table;
mod text;

pub use counts::Counts;
pub use error::CountError;
pub use scan::is_word_byte;

/// Hooks for this crate's tests and benchmarks to force a code path. Not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::scan::{whitespace_masks, Isa};

    /// [`crate::Counter::count_text_range`] with a forced byte classifier,
    /// so that every path (the scalar fallback included) is tested on every
    /// machine that can run it.
    pub fn count_text_range_with(
        isa: Isa,
        data: &[u8],
        range: std::ops::Range<usize>,
        threads: Option<usize>,
    ) -> crate::Counts {
        assert!(isa.is_available(), "{isa:?} is not supported by this CPU");
        crate::text::count_range_with(isa, data, range, threads)
    }
}

use std::fs::File;
use std::ops::Range;
use std::path::Path;

/// How a file's bytes are turned into words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Format {
    /// Every byte of the file is text.
    #[default]
    Text,
    /// RFC 4180 CSV with a header row; only the named column is tokenised.
    Csv {
        /// Header name of the column whose fields are counted.
        column: String,
    },
}

/// Counts words in buffers and files. Cheap to clone; build once, reuse.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    format: Format,
    threads: Option<usize>,
}

impl Counter {
    /// A counter for plain text using every core rayon offers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the input format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Limits the number of threads used for one buffer (`None`: rayon's pool).
    pub fn threads(mut self, threads: Option<usize>) -> Self {
        self.threads = threads;
        self
    }

    /// The configured format.
    pub fn input_format(&self) -> &Format {
        &self.format
    }

    /// Counts the words of a whole in-memory buffer of plain text.
    pub fn count_text(&self, data: &[u8]) -> Counts {
        self.count_text_range(data, 0..data.len())
    }

    /// Counts the words that start inside `range` of `data` (plain text).
    ///
    /// A word starting in the range but running past its end is counted
    /// whole; a word that started before the range is left to the range that
    /// owns its first byte.
    pub fn count_text_range(&self, data: &[u8], range: Range<usize>) -> Counts {
        text::count_range(data, range, self.threads)
    }

    /// Counts a buffer in the configured format. `origin` names the source in
    /// errors (a path, usually).
    pub fn count_buffer(&self, data: &[u8], origin: &Path) -> Result<Counts, CountError> {
        match &self.format {
            Format::Text => Ok(self.count_text(data)),
            Format::Csv { column } => text::count_csv(data, column, origin),
        }
    }

    /// Counts a file, or the part of it that `range` (in bytes) owns.
    ///
    /// The file is memory-mapped; an empty file, or one that cannot be
    /// mapped (a pipe, say), is read normally instead. CSV files are always
    /// counted whole: a byte range cannot know whether it starts inside a
    /// quoted field.
    pub fn count_file(&self, path: &Path, range: Option<Range<u64>>) -> Result<Counts, CountError> {
        let file = File::open(path).map_err(|e| CountError::io(path, e))?;
        let meta = file.metadata().map_err(|e| CountError::io(path, e))?;
        if !meta.is_file() {
            return Err(CountError::NotRegularFile {
                path: path.to_owned(),
            });
        }
        let data = Mapped::open(&file, meta.len()).map_err(|e| CountError::io(path, e))?;
        let bytes = data.as_bytes();
        match (&self.format, range) {
            (Format::Text, Some(r)) => {
                let len = bytes.len() as u64;
                let start = r.start.min(len) as usize;
                let end = r.end.min(len) as usize;
                Ok(self.count_text_range(bytes, start..end))
            }
            _ => self.count_buffer(bytes, path),
        }
    }
}

/// A file's bytes: memory-mapped when possible, read into memory otherwise.
enum Mapped {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    fn open(file: &File, len: u64) -> std::io::Result<Self> {
        if len == 0 {
            return Ok(Mapped::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and private to this process. If
        // another process truncates the file while we read it, the kernel
        // raises SIGBUS; wclab's inputs are files a job submitted and must not
        // change during the job, which the README states.
        match unsafe { memmap2::Mmap::map(file) } {
            Ok(map) => Ok(Mapped::Map(map)),
            Err(_) => {
                use std::io::Read;
                let mut buf = Vec::with_capacity(len as usize);
                (&*file).read_to_end(&mut buf)?;
                Ok(Mapped::Owned(buf))
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Mapped::Map(m) => m,
            Mapped::Owned(v) => v,
        }
    }
}
