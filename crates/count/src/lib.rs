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
//!   [`Format`], threads) with `count_*` methods for a buffer, a file or
//!   many files.
//! * [`Counts`] is the result: word → count plus totals.
//! * A byte range of a file owns the words that *start* inside it, so that a
//!   large file can be split into tasks without counting a boundary-straddling
//!   word twice or not at all.
//!
//! Inside, `scan` finds words (SIMD whitespace masks chosen at run time:
//! AVX-512, AVX2, SSE2, or a portable lookup table), `table` holds the
//! hash tables that `Counts` is made of, `text` is the kernel that joins
//! the two and splits a buffer among threads, `file` maps files (or reads
//! them in bounded pieces) and shares many among threads, and `csv` is a
//! strict RFC 4180 tokenizer for the CSV format.
//!
//! There is no Redis in this crate: it is the pure, testable core.

mod counts;
mod csv;
mod error;
mod file;
mod scan;
mod simd;
mod table;
mod text;
mod word;

pub use counts::Counts;
pub use error::CountError;
pub use word::is_word_byte;

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

    /// [`crate::Counter::count_file`] on the fallback path for files that
    /// cannot be memory-mapped (read in bounded pieces), so that tests can
    /// reach it with ordinary files.
    pub fn count_file_read(
        counter: &crate::Counter,
        path: &std::path::Path,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<crate::Counts, crate::CountError> {
        crate::file::count_file_as(counter, path, range, true)
    }

    /// Bytes the read fallback reads at a time.
    pub const READ_CHUNK: usize = crate::file::READ_CHUNK;

    /// The scanner alone on `data` (whitespace masks, word boundaries, no
    /// table); with `first_pass`, also the kernel's first pass over each
    /// chunk's words (keys, hashes, short/long split). Returns the number
    /// of words. For benchmarks that split the kernel's cost by stage.
    pub fn scan_only(isa: Isa, data: &[u8], first_pass: bool) -> u64 {
        assert!(isa.is_available(), "{isa:?} is not supported by this CPU");
        crate::text::stages::scan_only(isa, data, first_pass)
    }

    /// The short words (at most 8 bytes) of a buffer, keyed and hashed, so
    /// that a benchmark can time the hash table alone
    /// ([`ShortWords::count`]).
    pub struct ShortWords(crate::text::stages::ShortWords);

    impl ShortWords {
        /// Splits and hashes `data`'s short words.
        pub fn new(data: &[u8]) -> Self {
            ShortWords(crate::text::stages::ShortWords::new(data))
        }

        /// How many (with repetitions).
        pub fn len(&self) -> usize {
            self.0.len()
        }

        /// True when there are none.
        pub fn is_empty(&self) -> bool {
            self.0.len() == 0
        }

        /// Counts them into a fresh table with the kernel's hot loop;
        /// returns the number of distinct words.
        pub fn count(&self) -> usize {
            self.0.count()
        }
    }
}

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
            Format::Csv { column } => csv::CsvCounter::count(column, origin, data),
        }
    }

    /// Counts a file, or the part of it that `range` (in bytes) owns.
    ///
    /// The file is memory-mapped; an empty file, or one that cannot be
    /// mapped, is read in pieces instead (never whole into memory). CSV
    /// files are always counted whole: a byte range cannot know whether it
    /// starts inside a quoted field.
    pub fn count_file(&self, path: &Path, range: Option<Range<u64>>) -> Result<Counts, CountError> {
        file::count_file(self, path, range)
    }

    /// Counts a file (or the part of it that `range` owns) like
    /// [`Counter::count_file`], adding its words to `counts`.
    ///
    /// All or nothing: on an error nothing was added. With one thread and
    /// plain text the words go straight into `counts`' tables, which is
    /// faster than counting into a fresh result and merging it (no table
    /// to grow, the common words found rather than inserted): that is how
    /// a worker accumulates the tasks of one merged commit.
    pub fn count_file_into(
        &self,
        counts: &mut Counts,
        path: &Path,
        range: Option<Range<u64>>,
    ) -> Result<(), CountError> {
        file::count_file_into(self, counts, path, range)
    }

    /// Counts several whole files into one result, sharing them among the
    /// threads (`threads`, or rayon's pool).
    ///
    /// Each thread keeps one table for all the files it counts, so the
    /// words common to every file are inserted once per thread, not once
    /// per file, and only one table per thread is merged at the end. A text
    /// file larger than a share of the total is cut into byte ranges, so
    /// that fewer files than threads, or one big file, still keep every
    /// thread busy. On an error the result is the error of the first
    /// failing file in `paths` order among those tried (after an error,
    /// threads stop taking new files).
    pub fn count_files<P: AsRef<Path> + Sync>(&self, paths: &[P]) -> Result<Counts, CountError> {
        file::count_files(self, paths)
    }
}
