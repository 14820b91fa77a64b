//! Tokenising plain text (fast, in parallel) and CSV columns.

use crate::scan::{is_word_byte, scan_words, Isa, WordSink};
use crate::table::{hash_short, load_short_key, Table, INLINE};
use crate::{CountError, Counts};
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Below this many bytes a range is counted on the calling thread: a
/// rayon hand-off and a merge cost more than they save.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Distinct words a kernel table is sized for up front. Text has thousands
/// at least; starting there skips the first few (cheap, but pointless)
/// doublings.
const INITIAL_WORDS: usize = 1 << 12;

pub(crate) fn count_range(data: &[u8], range: Range<usize>, threads: Option<usize>) -> Counts {
    count_range_with(Isa::detect(), data, range, threads)
}

/// [`count_range`] with a forced classifier.
pub(crate) fn count_range_with(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    threads: Option<usize>,
) -> Counts {
    let end = range.end.min(data.len());
    let start = range.start.min(end);
    let len = end - start;
    let parts = threads.unwrap_or_else(rayon::current_num_threads).max(1);
    if len < PARALLEL_THRESHOLD || parts == 1 {
        return count_serial(isa, data, start..end);
    }
    // Each part owns the words starting in it (see `Counter`), so the parts
    // can be cut anywhere and their counts simply added.
    let step = len.div_ceil(parts);
    (0..parts)
        .into_par_iter()
        .map(|i| {
            let s = (start + i * step).min(end);
            let e = (s + step).min(end);
            count_serial(isa, data, s..e)
        })
        .reduce_with(|mut a, b| {
            a.merge(b);
            a
        })
        .unwrap_or_default()
}

/// Counts the words of `data` whose first byte lies in `range`, on this
/// thread: the scanner finds them, a table keyed by offsets into `data`
/// counts them, and only the distinct words are copied out at the end.
fn count_serial(isa: Isa, data: &[u8], range: Range<usize>) -> Counts {
    let mut kernel = Kernel {
        table: Table::with_capacity(INITIAL_WORDS),
        keys: Vec::new(),
    };
    scan_words(isa, data, range, &mut kernel);
    Counts::from_table(kernel.table, data)
}

/// How many words ahead of the one being counted the kernel prefetches its
/// table slot: enough to cover a miss to L3 (~70 cycles at a few cycles per
/// word), few enough that the line is still in L1 when it is used.
const PREFETCH_AHEAD: usize = 16;

/// The kernel's [`WordSink`]: counts words into a table keyed by offsets into
/// the input.
struct Kernel {
    table: Table,
    /// Per word of the current batch: key, length and hash (length 0 marks
    /// a long word, counted separately). Reused across batches.
    keys: Vec<((u64, u64), usize, u64)>,
}

impl WordSink for Kernel {
    #[inline]
    fn batch(&mut self, data: &[u8], base: usize, starts: &[u32], ends: &[u32]) {
        // Pass 1: keys and hashes, independent per word so they pipeline.
        self.keys.clear();
        self.keys.extend(starts.iter().zip(ends).map(|(&s, &e)| {
            let (s, len) = (base + s as usize, (e - s) as usize);
            if len <= INLINE {
                let key = load_short_key(data, s, len);
                (key, len, hash_short(key.0, key.1, len))
            } else {
                ((s as u64, 0), 0, 0)
            }
        }));
        // Pass 2: count, with the slot of a later word already on its way.
        for (i, &(key, len, hash)) in self.keys.iter().enumerate() {
            if let Some(&(_, _, ahead)) = self.keys.get(i + PREFETCH_AHEAD) {
                self.table.prefetch(ahead);
            }
            if len != 0 {
                self.table.add_short_hashed(data, key, len, hash, 1);
            } else {
                let s = key.0 as usize;
                let e = base + ends[i] as usize;
                self.table.add_long_in_store(data, s, e - s, 1);
            }
        }
    }

    #[inline(always)]
    fn word(&mut self, data: &[u8], start: usize, end: usize) {
        let len = end - start;
        if len <= INLINE {
            self.table
                .add_short(data, load_short_key(data, start, len), len, 1);
        } else {
            self.table.add_long_in_store(data, start, len, 1);
        }
    }
}

pub(crate) fn count_csv(data: &[u8], column: &str, origin: &Path) -> Result<Counts, CountError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let headers = reader
        .byte_headers()
        .map_err(|e| csv_error(e, origin))?
        .clone();
    let Some(index) = headers.iter().position(|h| h == column.as_bytes()) else {
        return Err(CountError::MissingColumn {
            path: origin.to_owned(),
            column: column.to_owned(),
            found: headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        });
    };
    // CSV is not on the hot path the kernel is tuned for (fields are short
    // and unescaped by the csv crate first), so words go straight into the
    // owned result.
    let mut counts = Counts::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let field = record.get(index).unwrap_or_default();
                field
                    .split(|&b| !is_word_byte(b))
                    .filter(|w| !w.is_empty())
                    .for_each(|w| counts.add(w, 1));
            }
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, origin)),
        }
    }
    Ok(counts)
}

fn csv_error(e: csv::Error, origin: &Path) -> CountError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    CountError::Csv {
        path: origin.to_owned(),
        line,
        message: e.to_string(),
    }
}
