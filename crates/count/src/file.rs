//! Counting files: mapping them (or reading them in bounded pieces when
//! they cannot be mapped), and sharing many files among threads.
//!
//! Nothing here reads a whole file into memory: a mapped file is paged in
//! and out by the OS (a file larger than RAM works), and the read fallback
//! keeps a buffer of about [`READ_CHUNK`] bytes, more only while one word
//! (or one CSV field) is longer than that.

use crate::csv::CsvCounter;
use crate::scan::Isa;
use crate::text::{self, Scratch, INITIAL_WORDS};
use crate::word::is_word_byte;
use crate::{CountError, Counter, Counts, Format};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Bytes read at a time when a file cannot be mapped.
pub(crate) const READ_CHUNK: usize = 1 << 20;

/// Smallest piece a file is cut into when [`Counter::count_files`] shares
/// files among threads, and the largest: pieces are sized so that each
/// thread gets several, for balance, but not so small that opening and
/// mapping them shows.
const MIN_PIECE: u64 = 1 << 20;
const MAX_PIECE: u64 = 64 << 20;

/// An open regular file.
struct Input {
    file: File,
    len: u64,
}

fn open(path: &Path) -> Result<Input, CountError> {
    let file = File::open(path).map_err(|e| CountError::io(path, e))?;
    let meta = file.metadata().map_err(|e| CountError::io(path, e))?;
    if !meta.is_file() {
        return Err(CountError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    Ok(Input {
        file,
        len: meta.len(),
    })
}

/// Maps `input`, or returns `None` when it is empty or cannot be mapped
/// (then it is read instead).
fn map(input: &Input) -> Option<memmap2::Mmap> {
    if input.len == 0 {
        return None;
    }
    // SAFETY: the map is read-only and private to this process. If
    // another process truncates the file while we read it, the kernel
    // raises SIGBUS; wclab's inputs are files a job submitted and must not
    // change during the job, which docs/cli.md states.
    unsafe { memmap2::Mmap::map(&input.file) }.ok()
}

/// Ranges at least this big are marked for sequential access.
const SEQUENTIAL_MIN: usize = MAX_PIECE as usize;

/// Tells the OS how `range` of `map` is about to be read: a big range is
/// marked sequential, for read-ahead and early reclaim, since it may not
/// fit in memory. Best effort: errors are ignored. (Populating smaller
/// ranges up front, `MADV_POPULATE_READ`, made no measurable difference on
/// page-cached files, so faults are left to the OS's fault-around.)
fn prepare_map(map: &memmap2::Mmap, range: &Range<usize>) {
    #[cfg(unix)]
    if range.len() >= SEQUENTIAL_MIN {
        let _ = map.advise_range(memmap2::Advice::Sequential, range.start, range.len());
    }
    #[cfg(not(unix))]
    let _ = (map, range);
}

/// Clamps a byte range of a file to its length.
fn clamp(range: Option<Range<u64>>, len: u64) -> Range<u64> {
    match range {
        Some(r) => r.start.min(len)..r.end.min(len),
        None => 0..len,
    }
}

/// [`Counter::count_file`].
pub(crate) fn count_file(
    counter: &Counter,
    path: &Path,
    range: Option<Range<u64>>,
) -> Result<Counts, CountError> {
    count_file_as(counter, path, range, false)
}

/// [`count_file`], optionally forced to read instead of mapping (for
/// tests of the fallback).
pub(crate) fn count_file_as(
    counter: &Counter,
    path: &Path,
    range: Option<Range<u64>>,
    force_read: bool,
) -> Result<Counts, CountError> {
    let input = open(path)?;
    let map = if force_read { None } else { map(&input) };
    match (&counter.format, map) {
        (Format::Text, Some(map)) => {
            let r = clamp(range, input.len);
            let r = r.start as usize..r.end as usize;
            prepare_map(&map, &r);
            Ok(text::count_range(&map, r, counter.threads))
        }
        (Format::Text, None) => {
            let mut counts = Counts::with_capacity(INITIAL_WORDS);
            read_text(
                Isa::detect(),
                &input.file,
                clamp(range, input.len),
                &mut counts,
                &mut Scratch::new(),
            )
            .map_err(|e| CountError::io(path, e))?;
            Ok(counts)
        }
        // A CSV file is always counted whole: a byte range cannot know
        // whether it starts inside a quoted field.
        (Format::Csv { column }, Some(map)) => CsvCounter::count(column, path, &map),
        (Format::Csv { column }, None) => read_csv(&input.file, column, path),
    }
}

/// [`Counter::count_file_into`].
pub(crate) fn count_file_into(
    counter: &Counter,
    counts: &mut Counts,
    path: &Path,
    range: Option<Range<u64>>,
) -> Result<(), CountError> {
    if counter.format == Format::Text {
        let input = open(path)?;
        if let Some(map) = map(&input) {
            let r = clamp(range, input.len);
            let r = r.start as usize..r.end as usize;
            prepare_map(&map, &r);
            // Nothing past this point can fail: the words go straight in.
            text::count_range_into(Isa::detect(), &map, r, counter.threads, counts);
            return Ok(());
        }
    }
    // Paths that can fail half-way (a read error, malformed CSV) count on
    // their own, then merge: all or nothing.
    let c = count_file(counter, path, range)?;
    counts.merge(c);
    Ok(())
}

/// A piece of work of [`count_files`]: a file, or a byte range of one.
struct Piece {
    file: usize,
    range: Option<Range<u64>>,
}

/// [`Counter::count_files`].
pub(crate) fn count_files<P: AsRef<Path> + Sync>(
    counter: &Counter,
    paths: &[P],
) -> Result<Counts, CountError> {
    let threads = counter
        .threads
        .unwrap_or_else(rayon::current_num_threads)
        .max(1);
    let (pieces, total) = plan(counter, paths, threads)?;
    // Big inputs have many distinct words (some 87 k in 300 MB of English):
    // size the tables for them up front rather than grow them from a few
    // thousand, rehashing all along. The memory is the OS's zeroed pages,
    // touched only where words land.
    let capacity = ((total / 4096) as usize).clamp(INITIAL_WORDS, 1 << 16);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // One table per thread for all its pieces: no per-file table to grow
    // and merge, and the words common to every file are found, not
    // inserted, after the first.
    let work = || -> Result<Counts, (usize, CountError)> {
        let mut counts = Counts::with_capacity(capacity);
        let mut scratch = Scratch::new();
        let isa = Isa::detect();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(piece) = pieces.get(i) else { break };
            let path = paths[piece.file].as_ref();
            if let Err(e) = count_piece(counter, isa, path, piece, &mut counts, &mut scratch) {
                failed.store(true, Ordering::Relaxed);
                return Err((i, e));
            }
        }
        Ok(counts)
    };
    let results: Vec<_> = if threads == 1 || pieces.len() <= 1 {
        vec![work()]
    } else {
        (0..threads.min(pieces.len()))
            .into_par_iter()
            .map(|_| work())
            .collect()
    };
    let mut total = Counts::new();
    let mut first_error: Option<(usize, CountError)> = None;
    for r in results {
        match r {
            Ok(c) => total.merge(c),
            Err((i, e)) => {
                if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(total),
    }
}

/// Cuts the files into pieces: whole files, but a text file larger than a
/// share of the total is cut in ranges, so that one big file (or fewer
/// files than threads) still keeps every thread busy. Ranges need no merge
/// of their own: a thread adds each piece to its one table. Also returns
/// the total size.
fn plan<P: AsRef<Path>>(
    counter: &Counter,
    paths: &[P],
    threads: usize,
) -> Result<(Vec<Piece>, u64), CountError> {
    let mut lens = Vec::with_capacity(paths.len());
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|e| CountError::io(p, e))?;
        lens.push(meta.len());
    }
    let total: u64 = lens.iter().sum();
    let piece = (total / (4 * threads as u64)).clamp(MIN_PIECE, MAX_PIECE);
    let splittable = counter.format == Format::Text && threads > 1;
    let mut pieces = Vec::new();
    for (file, &len) in lens.iter().enumerate() {
        if splittable && len > piece + piece / 2 {
            let n = len.div_ceil(piece);
            let step = len.div_ceil(n);
            for k in 0..n {
                let start = k * step;
                pieces.push(Piece {
                    file,
                    range: Some(start..(start + step).min(len)),
                });
            }
        } else {
            pieces.push(Piece { file, range: None });
        }
    }
    Ok((pieces, total))
}

/// Adds one piece to a thread's counts. A CSV file is counted on its own
/// first, so that a malformed one adds nothing.
fn count_piece(
    counter: &Counter,
    isa: Isa,
    path: &Path,
    piece: &Piece,
    counts: &mut Counts,
    scratch: &mut Scratch,
) -> Result<(), CountError> {
    let input = open(path)?;
    let range = clamp(piece.range.clone(), input.len);
    match (&counter.format, map(&input)) {
        (Format::Text, Some(map)) => {
            let r = range.start as usize..range.end as usize;
            prepare_map(&map, &r);
            text::count_into(isa, &map, r, counts, scratch);
            Ok(())
        }
        (Format::Text, None) => {
            read_text(isa, &input.file, range, counts, scratch).map_err(|e| CountError::io(path, e))
        }
        (Format::Csv { column }, map) => {
            let c = match map {
                Some(map) => CsvCounter::count(column, path, &map)?,
                None => read_csv(&input.file, column, path)?,
            };
            counts.merge(c);
            Ok(())
        }
    }
}

/// Reads up to `want` more bytes onto the end of `buf`; fewer only at the
/// end of the file. Returns how many.
fn read_more(mut file: &File, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let old = buf.len();
    buf.resize(old + want, 0);
    let mut got = 0;
    while got < want {
        match file.read(&mut buf[old + got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(old + got);
                return Err(e);
            }
        }
    }
    buf.truncate(old + got);
    Ok(got)
}

/// Counts the words starting in `range` of a file that cannot be mapped,
/// reading it in pieces of [`READ_CHUNK`] bytes.
///
/// The buffer holds the bytes not yet counted plus one byte of context
/// before them (so the scanner knows whether a word continues); it grows
/// past [`READ_CHUNK`] only while one word is longer than that, since a
/// word must be whole to be counted. A word that began before the range
/// (not ours) is skipped without being kept.
pub(crate) fn read_text(
    isa: Isa,
    mut file: &File,
    range: Range<u64>,
    counts: &mut Counts,
    scratch: &mut Scratch,
) -> io::Result<()> {
    let Range { start, end } = range;
    if start >= end {
        return Ok(());
    }
    // `buf[0]` is at file offset `base`; words starting in `start..done`
    // are counted, and `done - base` is 0 or 1 (the context byte).
    let mut base = start.saturating_sub(1);
    let mut done = start;
    file.seek(SeekFrom::Start(base))?;
    let mut buf = Vec::with_capacity(READ_CHUNK + 1);
    // While true, every byte since `start` continues a word that began
    // before it.
    let mut foreign = start > 0;
    loop {
        let old = buf.len();
        let got = read_more(file, &mut buf, READ_CHUNK)?;
        if foreign && old == 0 && !buf.is_empty() {
            foreign = is_word_byte(buf[0]);
        }
        let at = |offset: u64| (offset - base) as usize;
        if got == 0 {
            // End of file: every word in the buffer is whole.
            let stop = end.min(base + buf.len() as u64);
            if done < stop {
                text::count_into(isa, &buf, at(done)..at(stop), counts, scratch);
            }
            return Ok(());
        }
        // The last whitespace among the new bytes: every word starting
        // before it ends before it.
        let Some(ws) = buf[old..].iter().rposition(|&b| !is_word_byte(b)) else {
            if foreign {
                // Still inside the foreign word: keep only the last byte.
                let keep = buf.len() - 1;
                buf.drain(..keep);
                base += keep as u64;
                done = base + 1;
                if done >= end {
                    return Ok(());
                }
            }
            continue;
        };
        foreign = false;
        let ws = (old + ws) as u64 + base;
        let stop = end.min(ws + 1);
        if done < stop {
            text::count_into(isa, &buf, at(done)..at(stop), counts, scratch);
        }
        done = stop;
        if done >= end {
            return Ok(());
        }
        // Keep the whitespace byte as context and what follows it.
        let keep_from = at(ws);
        buf.drain(..keep_from);
        base = ws;
    }
}

/// Counts a CSV file that cannot be mapped, reading it in pieces.
fn read_csv(file: &File, column: &str, path: &Path) -> Result<Counts, CountError> {
    let mut csv = CsvCounter::new(column, path);
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        buf.clear();
        let got = read_more(file, &mut buf, READ_CHUNK).map_err(|e| CountError::io(path, e))?;
        if got == 0 {
            return csv.finish();
        }
        csv.feed(&buf)?;
    }
}
