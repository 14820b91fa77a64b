//! Tokenising plain text and CSV columns.

use crate::{CountError, Counts};
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;

/// True for bytes that belong to words: everything but 0x09–0x0D and 0x20.
#[inline]
pub fn is_word_byte(b: u8) -> bool {
    !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Below this many bytes a range is counted on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 20;

pub(crate) fn count_range(data: &[u8], range: Range<usize>, threads: Option<usize>) -> Counts {
    let Range { start, end } = range;
    let len = end.saturating_sub(start);
    let parts = threads.unwrap_or_else(rayon::current_num_threads).max(1);
    if len < PARALLEL_THRESHOLD || parts == 1 {
        return count_serial(data, start, end);
    }
    let step = len.div_ceil(parts);
    (0..parts)
        .into_par_iter()
        .map(|i| {
            let s = (start + i * step).min(end);
            let e = (s + step).min(end);
            count_serial(data, s, e)
        })
        .reduce(Counts::new, |mut a, b| {
            a.merge(b);
            a
        })
}

/// Counts the words of `data` whose first byte lies in `start..end`.
fn count_serial(data: &[u8], start: usize, end: usize) -> Counts {
    let mut counts = Counts::new();
    let mut i = start;
    // A word that began before `start` belongs to the previous range.
    if i > 0 && i < data.len() && is_word_byte(data[i - 1]) {
        while i < end && is_word_byte(data[i]) {
            i += 1;
        }
    }
    while i < end {
        while i < end && !is_word_byte(data[i]) {
            i += 1;
        }
        if i >= end {
            break;
        }
        let w = i;
        // The word may run past `end`: it is ours because it starts here.
        while i < data.len() && is_word_byte(data[i]) {
            i += 1;
        }
        counts.add(&data[w..i], 1);
    }
    counts
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
    let mut counts = Counts::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let field = record.get(index).unwrap_or_default();
                counts.merge(count_serial(field, 0, field.len()));
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
