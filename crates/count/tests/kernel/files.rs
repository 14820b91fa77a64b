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

/// Files of the given sizes of varied text, in a temporary directory.
fn text_files(sizes: &[usize]) -> (tempfile::TempDir, Vec<std::path::PathBuf>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut paths = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let text: Vec<u8> = format!("file{i} and its words\tcome{i} again,\r\nand again. ")
            .bytes()
            .cycle()
            .take(size)
            .collect();
        let path = dir.path().join(format!("f{i}.txt"));
        std::fs::write(&path, &text).unwrap();
        // Files are counted apart: a word cannot run from one into the next.
        all.extend_from_slice(&text);
        all.push(b'\n');
        paths.push(path);
    }
    (dir, paths, all)
}

#[test]
fn many_files_counted_together_match_the_oracle() {
    // Small files, an empty one, and one big enough to be cut into ranges.
    let (_dir, paths, all) = text_files(&[10, 0, 70_000, 1 << 20, 9 << 20, 333]);
    let expected = oracle(&all);
    for threads in [1, 2, 3, 8] {
        let counts = Counter::new()
            .threads(Some(threads))
            .count_files(&paths)
            .unwrap();
        assert_same(&counts, &expected, &format!("{threads} threads"));
    }
    // One file, more threads than files: it is cut in ranges.
    let one = &paths[4..5];
    let counts = Counter::new().threads(Some(4)).count_files(one).unwrap();
    assert_same(
        &counts,
        &oracle(&std::fs::read(&one[0]).unwrap()),
        "one big",
    );
    assert!(Counter::new()
        .count_files::<&std::path::Path>(&[])
        .unwrap()
        .is_empty());
}

#[test]
fn count_files_fails_with_the_first_bad_file_in_order() {
    let (dir, mut paths, _) = text_files(&[100, 100]);
    paths.insert(1, dir.path().join("missing-1.txt"));
    paths.push(dir.path().join("missing-2.txt"));
    let err = Counter::new()
        .threads(Some(1))
        .count_files(&paths)
        .unwrap_err();
    assert!(err.to_string().contains("missing-1.txt"), "{err}");
    let err = Counter::new().count_files(&[dir.path()]).unwrap_err();
    assert!(matches!(err, CountError::NotRegularFile { .. }), "{err:?}");
}

#[test]
fn count_files_counts_csv_files_whole_and_refuses_a_malformed_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&good, "text\n\"a, b\"\nc\n").unwrap();
    std::fs::write(&bad, "text\nfine\n\"x\"y\n").unwrap();
    let counter = Counter::new().format(Format::Csv {
        column: "text".into(),
    });
    let c = counter.count_files(&[&good, &good]).unwrap();
    assert_eq!((c.get(b"a,"), c.total()), (2, 6));
    let err = counter.count_files(&[&good, &bad]).unwrap_err();
    assert!(matches!(err, CountError::Csv { line: 3, .. }), "{err:?}");
}

#[test]
fn counting_into_a_result_adds_whole_files_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let texts: [&[u8]; 3] = [b"a b c a\n", b"b \x0bc\td a", b"zz a\r\n"];
    let mut all = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.txt")), t).unwrap();
        all.extend_from_slice(t);
        all.push(b'\n');
    }
    for threads in [Some(1), Some(2)] {
        let counter = Counter::new().threads(threads);
        let mut acc = wclab_count::Counts::new();
        for i in 0..texts.len() {
            let path = dir.path().join(format!("{i}.txt"));
            counter.count_file_into(&mut acc, &path, None).unwrap();
        }
        let missing = dir.path().join("missing.txt");
        assert!(counter.count_file_into(&mut acc, &missing, None).is_err());
        assert_same(&acc, &oracle(&all), "three files, then a missing one");
    }
    // A malformed CSV file adds nothing, not the rows before the problem.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "text\nfine row\n\"never closed\n").unwrap();
    let csv = Counter::new().threads(Some(1)).format(Format::Csv {
        column: "text".into(),
    });
    let mut acc = wclab_count::Counts::new();
    assert!(csv.count_file_into(&mut acc, &bad, None).is_err());
    assert!(acc.is_empty());
}

#[test]
fn an_empty_result_answers_every_question() {
    let mut c = wclab_count::Counts::new();
    for w in [
        &b"a"[..],
        b"twelve bytes",
        b"a word longer than sixteen bytes",
    ] {
        assert_eq!(c.get(w), 0);
    }
    assert_eq!((c.distinct(), c.total(), c.iter().count()), (0, 0, 0));
    c.merge(wclab_count::Counts::new());
    c.add(b"a word longer than sixteen bytes", 2);
    c.add(b"twelve bytes", 1);
    c.add(b"a", 3);
    assert_eq!(c.get(b"a word longer than sixteen bytes"), 2);
    assert_eq!((c.distinct(), c.total()), (3, 6));
}
