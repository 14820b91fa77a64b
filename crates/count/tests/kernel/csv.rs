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

/// The line of a `CountError::Csv`, or a panic naming what came instead.
#[track_caller]
fn error_line(data: &str) -> u64 {
    match count(data) {
        Err(CountError::Csv { line, .. }) => line,
        other => panic!("expected a CSV error for {data:?}, got {other:?}"),
    }
}

#[test]
fn a_quote_inside_an_unquoted_field_is_an_error_with_its_line() {
    // The csv crate keeps the stray quote as data; RFC 4180 does not allow
    // it: a field with quotes must be quoted whole.
    assert_eq!(error_line("text\nok\nab\"c d\n"), 3);
    assert_eq!(error_line("text,n\n1,x\"\n"), 2);
    assert_eq!(error_line("text,n\nx, \"y\"\n"), 2);
}

#[test]
fn text_after_a_closing_quote_is_an_error_with_its_line() {
    // `"x"y` is not `xy`.
    assert_eq!(error_line("text\nok\n\"x\"y z\n"), 3);
    assert_eq!(error_line("text,n\n\"a\nb\" ,1\n"), 3);
}

#[test]
fn an_unterminated_quote_is_an_error_at_the_line_of_the_opening_quote() {
    // The csv crate reads it to the end of the file as one field.
    assert_eq!(error_line("text\n\"never closed\nmore\n"), 2);
    assert_eq!(error_line("text,n\nok,1\nok,2\n\"a,3\nb,4\nc,5\n"), 4);
    assert_eq!(error_line("text\n\""), 2);
    // A doubled quote does not close the field.
    assert_eq!(error_line("text\n\"a \"\" b\n"), 2);
}

#[test]
fn a_carriage_return_must_end_a_line() {
    assert_eq!(error_line("text\na\rb\n"), 2);
    assert_eq!(error_line("text\r\nok\r"), 2);
    // Inside quotes it is data (and whitespace).
    let c = count("text\n\"a\rb\"\n").unwrap();
    assert_eq!((c.get(b"a"), c.get(b"b")), (1, 1));
}

#[test]
fn a_malformed_file_is_not_counted_at_all() {
    // Good rows before the error must not leak into any result.
    let mut data = String::from("text\n");
    for _ in 0..1000 {
        data.push_str("good words\n");
    }
    data.push_str("bad\"row\n");
    let err = count(&data).unwrap_err();
    assert!(matches!(err, CountError::Csv { line: 1002, .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("line 1002"), "{err}");
}

#[test]
fn what_rfc_4180_allows_is_accepted() {
    // A last record without a line end; CRLF inside quotes; a quoted field
    // that is only a doubled quote; empty fields, quoted or not.
    let c = count("n,text\r\n1,\"a\r\nb\"\r\n2,\"\"\"\"\r\n3,\"\"\r\n4,\r\n5,last").unwrap();
    assert_eq!(c.get(b"a"), 1);
    assert_eq!(c.get(b"b"), 1);
    assert_eq!(c.get(b"\""), 1);
    assert_eq!(c.get(b"last"), 1);
    assert_eq!(c.total(), 4);
    // A byte order mark before the header, and empty lines, are skipped.
    let c = count("\u{feff}text,n\n\nx y,1\r\n\r\n\nz,2\n\n").unwrap();
    assert_eq!(c.total(), 3);
    // Commas, quotes and newlines in other columns do not matter.
    let c = count("id,text,user\n\"1,\"\"2\"\"\",hi there,\"a\nb\"\n").unwrap();
    assert_eq!(c.total(), 2);
}

#[test]
fn an_empty_file_has_no_column() {
    let err = count("").unwrap_err();
    assert!(matches!(err, CountError::MissingColumn { .. }), "{err:?}");
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

#[test]
fn generated_tweets_count_as_the_csv_crate_reads_them() {
    // An independent reader of well-formed files: the csv crate, on the
    // lab's tweets (quoted commas, doubled quotes, newlines in fields).
    let dir = tempfile::tempdir().unwrap();
    let m = wclab_gen::tweet_corpus(&wclab_gen::TweetOptions {
        files: 2,
        rows: 3_000,
        seed: 5,
        ..wclab_gen::TweetOptions::new(dir.path())
    })
    .unwrap();
    let counter = Counter::new().format(Format::Csv {
        column: "text".into(),
    });
    for path in m.paths() {
        let mut expected = std::collections::HashMap::new();
        let mut r = ::csv::Reader::from_path(&path).unwrap();
        for rec in r.byte_records() {
            let rec = rec.unwrap();
            for w in rec[3].split(|&b| crate::oracle::is_space(b)) {
                if !w.is_empty() {
                    *expected.entry(w.to_vec()).or_insert(0) += 1;
                }
            }
        }
        let got = counter.count_file(&path, None).unwrap();
        crate::oracle::assert_same(&got, &expected, "mapped");
        let read = wclab_count::testing::count_file_read(&counter, &path, None).unwrap();
        crate::oracle::assert_same(&read, &expected, "read");
    }
}

#[test]
fn a_garbage_header_is_shown_short_and_escaped() {
    // Not CSV at all: control bytes, an escape sequence, invalid UTF-8, and
    // no newline, so that the whole file is the "header".
    let mut data = b"\x1b[2J\x00\x07\xff\xfe,".to_vec();
    data.extend(std::iter::repeat_n(b'z', 100_000));
    data.extend((0..1000).flat_map(|i| format!(",c{i}").into_bytes()));
    let err = Counter::new()
        .format(Format::Csv {
            column: "text".into(),
        })
        .count_buffer(&data, Path::new("in.csv"))
        .unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 1_000, "{} bytes", message.len());
    assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    assert!(message.contains(r"\u{1b}[2J"), "{message}");
    assert!(message.contains("(1002 columns)"), "{message}");
}
