//! Counting files: mapping, ranges and errors that name the file.

use crate::oracle::{assert_same, oracle, oracle_range};
use std::io::Write;
use wclab_count::{CountError, Counter, Format};

#[test]
fn a_file_and_its_ranges_match_the_oracle() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let text: Vec<u8> = b"the quick brown\tfox\r\njumps over \x0bthe lazy dog \xa0 "
        .iter()
        .copied()
        .cycle()
        .take(3 << 20)
        .collect();
    f.write_all(&text).unwrap();
    let counter = Counter::new();
    assert_same(
        &counter.count_file(f.path(), None).unwrap(),
        &oracle(&text),
        "whole",
    );
    let (a, b) = (1_000_003u64, 2_000_001u64);
    let part = counter.count_file(f.path(), Some(a..b)).unwrap();
    assert_same(&part, &oracle_range(&text, a as usize..b as usize), "range");
    let past = counter.count_file(f.path(), Some(b..u64::MAX)).unwrap();
    assert_same(
        &past,
        &oracle_range(&text, b as usize..text.len()),
        "past end",
    );
}

#[test]
fn an_empty_file_counts_nothing() {
    let f = tempfile::NamedTempFile::new().unwrap();
    assert!(Counter::new()
        .count_file(f.path(), None)
        .unwrap()
        .is_empty());
}

#[test]
fn a_missing_file_is_a_permanent_io_error_naming_it() {
    let err = Counter::new()
        .count_file(std::path::Path::new("/no/such/file.txt"), None)
        .unwrap_err();
    assert!(matches!(err, CountError::Io { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("/no/such/file.txt"));
}

#[test]
fn a_directory_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Counter::new().count_file(dir.path(), None).unwrap_err();
    assert!(matches!(err, CountError::NotRegularFile { .. }), "{err:?}");
}

#[test]
fn a_csv_file_is_counted_whole_even_with_a_range() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"text\n\"a b\"\nc\n").unwrap();
    let counter = Counter::new().format(Format::Csv {
        column: "text".into(),
    });
    let c = counter.count_file(f.path(), Some(5..6)).unwrap();
    assert_eq!(c.total(), 3);
}

#[test]
fn counts_outlive_the_mapped_file() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let long = "x".repeat(100);
    f.write_all(format!("{long} short {long}").as_bytes())
        .unwrap();
    let counts = Counter::new().count_file(f.path(), None).unwrap();
    drop(f);
    let handle = std::thread::spawn(move || counts.get(long.as_bytes()));
    assert_eq!(handle.join().unwrap(), 2);
}
