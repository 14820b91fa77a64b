//! Memory is bounded by the distinct words, not by the file size.
//!
//! A binary of its own, with one test, so that the process's anonymous
//! memory (`RssAnon` in /proc/self/status: heap and stacks, not the page
//! cache of a mapped file) is this test's alone. A sampling thread records
//! its peak while a 1 GiB file is counted on every path: mapped, read in
//! pieces (the fallback for files that cannot be mapped), by ranges, and
//! shared among threads. This is a bound on memory, not on time.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use wclab_count::testing::count_file_read;
use wclab_count::{Counter, Counts};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Anonymous resident memory of this process, in bytes.
fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .expect("RssAnon in /proc/self/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Runs `f` while sampling `RssAnon`; returns its result and the peak.
fn peak_while<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_anon()));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed).max(rss_anon()))
}

/// A sparse 1 GiB file: a line of text at every MiB, NUL bytes (a hole,
/// no disk) in between. NUL is not whitespace, so each hole is one word of
/// about a MiB, the same word every time.
fn sparse_file() -> (tempfile::NamedTempFile, u64) {
    use std::os::unix::fs::FileExt;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().set_len(GIB).unwrap();
    let line = b"\nthe quick brown fox jumps over the lazy dog\n";
    for k in 0..GIB / MIB {
        f.as_file().write_all_at(line, k * MIB).unwrap();
    }
    (f, GIB / MIB)
}

#[test]
fn counting_a_1_gib_file_keeps_anonymous_memory_small() {
    let (f, lines) = sparse_file();
    let path = f.path();
    let check = |c: &Counts, what: &str| {
        assert_eq!(c.get(b"the"), 2 * lines, "{what}");
        assert_eq!(c.get(b"dog"), lines, "{what}");
        // The NUL runs after each line, all the same word.
        assert_eq!(c.distinct(), 8 + 1, "{what}");
        assert_eq!(c.total(), 9 * lines + lines, "{what}");
    };
    let base = rss_anon();
    // A bound far below the file (1 GiB), above what the counting needs:
    // a few small tables, the one MiB-long NUL word kept in the arena, the
    // read fallback's buffer of about two such words, thread stacks.
    let limit = 64 * MIB;
    type Run<'a> = (&'a str, Box<dyn Fn() -> Counts + 'a>);
    let runs: Vec<Run> = vec![
        (
            "mapped, 1 thread",
            Box::new(|| {
                Counter::new()
                    .threads(Some(1))
                    .count_file(path, None)
                    .unwrap()
            }),
        ),
        (
            "mapped, 2 threads",
            Box::new(|| {
                Counter::new()
                    .threads(Some(2))
                    .count_file(path, None)
                    .unwrap()
            }),
        ),
        (
            "count_files, 2 threads",
            Box::new(|| {
                Counter::new()
                    .threads(Some(2))
                    .count_files(&[path])
                    .unwrap()
            }),
        ),
        (
            "read in pieces",
            Box::new(|| count_file_read(&Counter::new(), path, None).unwrap()),
        ),
        (
            "read in pieces, two ranges",
            Box::new(|| {
                let counter = Counter::new();
                let mut c = count_file_read(&counter, path, Some(0..GIB / 3)).unwrap();
                c.merge(count_file_read(&counter, path, Some(GIB / 3..GIB)).unwrap());
                c
            }),
        ),
    ];
    for (what, run) in &runs {
        let (counts, peak) = peak_while(run);
        check(&counts, what);
        let grew = peak.saturating_sub(base);
        assert!(
            grew < limit,
            "{what}: anonymous memory grew by {} MiB counting a 1 GiB file",
            grew / MIB
        );
        eprintln!("{what}: peak RssAnon {} MiB above the start", grew / MIB);
    }
}
