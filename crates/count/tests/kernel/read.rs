//! The fallback for files that cannot be mapped: read in bounded pieces,
//! with the same results as the mapped path, ranges included.

use crate::oracle::{assert_same, oracle, oracle_range};
use std::io::Write;
use wclab_count::testing::{count_file_read, READ_CHUNK};
use wclab_count::{Counter, Format};

fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f
}

/// Text whose words land on every side of the read pieces' boundaries,
/// with a few words longer than a piece.
fn awkward_text() -> Vec<u8> {
    let mut data = Vec::new();
    let mut i = 0u32;
    while data.len() < 3 * READ_CHUNK + 12_345 {
        let len = match i % 97 {
            0 => READ_CHUNK / 3 + i as usize,
            1 => READ_CHUNK + 17,
            _ => 1 + (i as usize * 7) % 23,
        };
        data.extend((0..len).map(|k| b'a' + ((k as u32 + i) % 5) as u8));
        data.extend_from_slice(if i.is_multiple_of(11) { b"\r\n" } else { b" " });
        i += 1;
    }
    data
}

#[test]
fn reading_gives_what_mapping_gives() {
    let data = awkward_text();
    let f = file_with(&data);
    let counter = Counter::new();
    assert_same(
        &count_file_read(&counter, f.path(), None).unwrap(),
        &oracle(&data),
        "whole",
    );
    let n = data.len() as u64;
    let cuts = [
        0,
        1,
        READ_CHUNK as u64 - 1,
        READ_CHUNK as u64,
        READ_CHUNK as u64 + 1,
        2 * READ_CHUNK as u64 + 333,
        n - 1,
        n,
    ];
    for &a in &cuts {
        for &b in cuts.iter().filter(|&&b| b >= a) {
            let got = count_file_read(&counter, f.path(), Some(a..b)).unwrap();
            let want = oracle_range(&data, a as usize..b as usize);
            assert_same(&got, &want, &format!("read {a}..{b}"));
            let mapped = counter.count_file(f.path(), Some(a..b)).unwrap();
            assert_eq!(got, mapped, "{a}..{b}");
        }
    }
}

#[test]
fn a_range_inside_a_huge_foreign_word_is_empty() {
    let mut data = b"x ".to_vec();
    data.extend(std::iter::repeat_n(b'y', 3 * READ_CHUNK));
    data.extend_from_slice(b" z");
    let f = file_with(&data);
    let counter = Counter::new();
    let inside = count_file_read(&counter, f.path(), Some(10..2 * READ_CHUNK as u64)).unwrap();
    assert!(inside.is_empty(), "{inside:?}");
    let tail = count_file_read(&counter, f.path(), Some(10..data.len() as u64)).unwrap();
    assert_eq!((tail.get(b"z"), tail.distinct()), (1, 1));
    let head = count_file_read(&counter, f.path(), Some(0..3)).unwrap();
    assert_eq!(head.get(&data[2..2 + 3 * READ_CHUNK]), 1);
    assert_eq!(head.total(), 2);
}

#[test]
fn a_csv_file_is_read_in_pieces_with_the_same_result_and_errors() {
    // Quoted fields, doubled quotes and CRLFs across piece boundaries.
    let mut data = b"id,text\r\n".to_vec();
    let mut i = 0;
    while data.len() < 2 * READ_CHUNK + 999 {
        let row = match i % 4 {
            0 => format!("{i},plain words {i}\r\n"),
            1 => format!("{i},\"quoted, \"\"with\"\" comma {i}\"\r\n"),
            2 => format!("{i},\"two\nlines {i}\"\n"),
            _ => format!("{i},\n"),
        };
        data.extend_from_slice(row.as_bytes());
        i += 1;
    }
    let f = file_with(&data);
    let counter = Counter::new().format(Format::Csv {
        column: "text".into(),
    });
    let mapped = counter.count_file(f.path(), None).unwrap();
    let read = count_file_read(&counter, f.path(), None).unwrap();
    assert_eq!(mapped, read);
    assert!(mapped.get(b"\"with\"") > 0);

    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    data.extend_from_slice(b"x,\"never closed\n");
    data.extend(std::iter::repeat_n(b'q', 2 * READ_CHUNK));
    let f = file_with(&data);
    for result in [
        counter.count_file(f.path(), None),
        count_file_read(&counter, f.path(), None),
    ] {
        match result {
            Err(wclab_count::CountError::Csv { line, .. }) => assert_eq!(line, lines + 1),
            other => panic!("expected a CSV error, got {other:?}"),
        }
    }
}
