//! CSV input: the named column of an RFC 4180 file with a header row.

use std::path::Path;
use wclab_count::{CountError, Counter, Format};

fn count(data: &str) -> Result<wclab_count::Counts, CountError> {
    Counter::new()
        .format(Format::Csv {
            column: "text".into(),
        })
        .count_buffer(data.as_bytes(), Path::new("in.csv"))
}

#[test]
fn only_the_named_column_is_counted() {
    let c = count("id,text,other\n1,hello world,skip me\n2,hello,skip\n").unwrap();
    assert_eq!(c.get(b"hello"), 2);
    assert_eq!(c.get(b"world"), 1);
    assert_eq!(c.get(b"skip"), 0);
    assert_eq!(c.total(), 3);
}

#[test]
fn quoting_commas_doubled_quotes_and_newlines_in_fields() {
    let c = count(
        "text,n\r\n\"a, b\",1\r\n\"say \"\"hi\"\" now\",2\r\n\"line one\nline\r\ntwo\",3\r\n",
    )
    .unwrap();
    assert_eq!(c.get(b"a,"), 1);
    assert_eq!(c.get(b"b"), 1);
    assert_eq!(c.get(b"\"hi\""), 1);
    assert_eq!(c.get(b"line"), 2);
    assert_eq!(c.get(b"two"), 1);
    assert_eq!(c.total(), 9);
}

#[test]
fn a_row_with_the_wrong_number_of_fields_is_an_error_with_its_line() {
    // Line 3 (1-based) has three fields where the header has two.
    let err = count("text,n\nok,1\nbad,2,3\nok,4\n").unwrap_err();
    match &err {
        CountError::Csv { line, path, .. } => {
            assert_eq!(*line, 3, "{err}");
            assert_eq!(path, Path::new("in.csv"));
        }
        other => panic!("expected Csv, got {other:?}"),
    }
    assert!(err.is_permanent());
    assert!(err.to_string().contains("in.csv"), "{err}");
}

#[test]
fn the_line_of_an_error_counts_newlines_inside_quoted_fields() {
    // The record on line 2 spans lines 2-4; the bad record starts on line 5.
    let err = count("text,n\n\"a\nb\nc\",1\nbad\n").unwrap_err();
    assert!(matches!(err, CountError::Csv { line: 5, .. }), "{err:?}");
}

#[test]
fn what_the_csv_crate_accepts_stays_accepted() {
    // The csv crate is lenient about quotes: a stray quote inside an
    // unquoted field is kept as data, and text after a closing quote is
    // appended. Pin that, so a change of behaviour is noticed.
    let c = count("text\nab\"c d\n\"x\"y z\n").unwrap();
    assert_eq!(c.get(b"ab\"c"), 1);
    assert_eq!(c.get(b"xy"), 1);
    assert_eq!(c.total(), 4);
    // An unterminated quote runs to the end of the input: one field.
    let c = count("text\n\"never closed\nmore\n").unwrap();
    assert_eq!(c.total(), 3);
}

#[test]
fn a_missing_column_names_the_columns_found() {
    let err = Counter::new()
        .format(Format::Csv {
            column: "body".into(),
        })
        .count_buffer(b"id,text\n1,x\n", Path::new("in.csv"))
        .unwrap_err();
    match &err {
        CountError::MissingColumn { column, found, .. } => {
            assert_eq!(column, "body");
            assert_eq!(found, "id,text");
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
    assert!(err.is_permanent());
}

#[test]
fn fields_use_the_same_word_definition() {
    let c = count("text\n\"a\tb\x0bc\x0cd\u{a0}e\"\n").unwrap();
    assert_eq!(c.get(b"a"), 1);
    assert_eq!(c.get("d\u{a0}e".as_bytes()), 1);
    assert_eq!(c.total(), 4);
}

#[test]
fn header_only_and_empty_fields_count_nothing() {
    assert!(count("text\n").unwrap().is_empty());
    assert!(count("text,n\n,1\n\"\",2\n").unwrap().is_empty());
}
