//! Strict RFC 4180 CSV: the named column of a file with a header row.
//!
//! A small hand-written tokenizer rather than the `csv` crate, because that
//! crate is lenient where a word count must not be: it reads an unclosed
//! quote to the end of the file as one field, takes `"x"y` as `xy`, and
//! keeps a stray `"` inside an unquoted field as data. Here each of those
//! is an error that names the line, and a file with an error is not counted
//! at all (the caller drops the partial counts).
//!
//! What is accepted, per RFC 4180:
//!
//! * records end with LF or CRLF (the last one may end without either);
//!   a CR anywhere else outside quotes is an error;
//! * fields are separated by commas; a field is either unquoted (no `"`,
//!   CR or LF in it), or quoted whole: `"` … `"`, with commas, CR and LF
//!   allowed inside, and a `"` in the value written as `""`;
//! * the first record is the header; every record has as many fields as
//!   the header.
//!
//! Beyond the RFC, and as the `csv` crate does: a UTF-8 byte order mark
//! before the header is skipped, and empty lines (no byte at all before
//! the line end) are skipped, not read as records of one empty field. No
//! character set is enforced: fields are bytes, tokenised like text.
//!
//! The tokenizer is fed the file in pieces ([`CsvCounter::feed`]), so the
//! fallback for files that cannot be mapped reads them in bounded pieces
//! too; a field's bytes are buffered only for the counted column.

use crate::word::is_word_byte;
use crate::{CountError, Counts};
use std::path::Path;

/// Where the tokenizer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a field (or of a record).
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: it either doubles a quote
    /// (another `"` follows) or closes the field.
    QuoteInQuoted,
    /// After a CR outside quotes: only LF may follow.
    Cr,
}

/// Counts the words of one column of a CSV file, fed in pieces.
pub(crate) struct CsvCounter<'a> {
    column: &'a str,
    origin: &'a Path,
    state: State,
    /// 1-based line of the byte being read.
    line: u64,
    /// Line where the current record began.
    record_line: u64,
    /// Line of the opening quote of the current quoted field.
    quote_line: u64,
    /// True once a byte of the current record (its terminator aside) has
    /// been read: an empty line is not a record.
    in_record: bool,
    /// Index of the current field in its record.
    field: usize,
    /// `None` while the header is read; then the counted column's index
    /// and the number of fields.
    layout: Option<(usize, usize)>,
    /// The header's fields, while it is read.
    header: Vec<Vec<u8>>,
    /// The bytes of the current field, kept for the header and the
    /// counted column only.
    value: Vec<u8>,
    /// True once the first byte was fed (a byte order mark is skipped
    /// before it only).
    started: bool,
    counts: Counts,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<'a> CsvCounter<'a> {
    /// A counter for the column named `column`; `origin` names the file in
    /// errors.
    pub(crate) fn new(column: &'a str, origin: &'a Path) -> Self {
        CsvCounter {
            column,
            origin,
            state: State::FieldStart,
            line: 1,
            record_line: 1,
            quote_line: 1,
            in_record: false,
            field: 0,
            layout: None,
            header: Vec::new(),
            value: Vec::new(),
            started: false,
            counts: Counts::new(),
        }
    }

    /// Counts a whole in-memory file.
    pub(crate) fn count(column: &str, origin: &Path, data: &[u8]) -> Result<Counts, CountError> {
        let mut c = CsvCounter::new(column, origin);
        c.feed(data)?;
        c.finish()
    }

    fn error(&self, line: u64, message: impl Into<String>) -> CountError {
        CountError::Csv {
            path: self.origin.to_owned(),
            line,
            message: message.into(),
        }
    }

    /// True when the current field's bytes are kept.
    #[inline]
    fn keeping(&self) -> bool {
        match self.layout {
            None => true,
            Some((column, _)) => self.field == column,
        }
    }

    /// Reads the next piece of the file. The first piece must hold the
    /// first 3 bytes, if the file has them, for a byte order mark to be
    /// skipped.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(), CountError> {
        if data.is_empty() {
            return Ok(());
        }
        let data = if self.started {
            data
        } else {
            self.started = true;
            data.strip_prefix(BOM).unwrap_or(data)
        };
        self.feed_bytes(data)
    }

    fn feed_bytes(&mut self, data: &[u8]) -> Result<(), CountError> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                State::FieldStart | State::Unquoted => {
                    if !self.in_record && b != b'\n' && b != b'\r' {
                        self.in_record = true;
                        self.record_line = self.line;
                    }
                    match b {
                        b'"' if self.state == State::FieldStart => {
                            self.state = State::Quoted;
                            self.quote_line = self.line;
                        }
                        b'"' => {
                            return Err(self.error(
                                self.line,
                                "a quote inside an unquoted field (a field holding quotes \
                                 must be quoted whole, its quotes doubled)",
                            ))
                        }
                        b',' => {
                            self.end_field();
                            self.state = State::FieldStart;
                        }
                        b'\n' => {
                            // Not in a record: an empty line, skipped.
                            if self.in_record {
                                self.end_record()?;
                            }
                            self.line += 1;
                        }
                        b'\r' => self.state = State::Cr,
                        _ => {
                            // The rest of an unquoted field in one go.
                            let rest = &data[i..];
                            let len = rest
                                .iter()
                                .position(|&c| matches!(c, b',' | b'\n' | b'\r' | b'"'))
                                .unwrap_or(rest.len());
                            if self.keeping() {
                                self.value.extend_from_slice(&rest[..len]);
                            }
                            self.state = State::Unquoted;
                            i += len;
                            continue;
                        }
                    }
                }
                State::Quoted => {
                    // Everything up to the next quote is the value.
                    let rest = &data[i..];
                    let len = memchr::memchr(b'"', rest).unwrap_or(rest.len());
                    let (text, after) = rest.split_at(len);
                    self.line += memchr::memchr_iter(b'\n', text).count() as u64;
                    if self.keeping() {
                        self.value.extend_from_slice(text);
                    }
                    if !after.is_empty() {
                        self.state = State::QuoteInQuoted;
                    }
                    i += len + after.len().min(1);
                    continue;
                }
                State::QuoteInQuoted => match b {
                    b'"' => {
                        if self.keeping() {
                            self.value.push(b'"');
                        }
                        self.state = State::Quoted;
                    }
                    b',' => {
                        self.end_field();
                        self.state = State::FieldStart;
                    }
                    b'\n' => {
                        self.end_record()?;
                        self.line += 1;
                    }
                    b'\r' => self.state = State::Cr,
                    _ => {
                        return Err(self.error(
                            self.line,
                            "text after the closing quote of a field (a quote inside a \
                             quoted field must be doubled)",
                        ))
                    }
                },
                State::Cr => {
                    if b != b'\n' {
                        return Err(self.error(
                            self.line,
                            "a carriage return outside quotes that does not end the line \
                             (records end with LF or CRLF)",
                        ));
                    }
                    if self.in_record {
                        self.end_record()?;
                    } else {
                        self.state = State::FieldStart;
                    }
                    self.line += 1;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// The end of the file: returns the counts, or the error that an
    /// unfinished quote or record makes.
    pub(crate) fn finish(mut self) -> Result<Counts, CountError> {
        match self.state {
            State::Quoted => {
                return Err(self.error(
                    self.quote_line,
                    "a quoted field is never closed (its opening quote is on this line)",
                ))
            }
            State::Cr => {
                return Err(self.error(
                    self.line,
                    "a carriage return outside quotes that does not end the line \
                     (records end with LF or CRLF)",
                ))
            }
            // A last record without a line end, or just after one.
            _ if self.in_record => self.end_record()?,
            _ => {}
        }
        if self.layout.is_none() {
            // Not even a header.
            return Err(self.missing_column());
        }
        Ok(self.counts)
    }

    fn end_field(&mut self) {
        match self.layout {
            None => self.header.push(std::mem::take(&mut self.value)),
            Some((column, _)) if self.field == column => {
                let counts = &mut self.counts;
                self.value
                    .split(|&b| !is_word_byte(b))
                    .filter(|w| !w.is_empty())
                    .for_each(|w| counts.add(w, 1));
                self.value.clear();
            }
            Some(_) => {}
        }
        self.field += 1;
    }

    fn end_record(&mut self) -> Result<(), CountError> {
        self.end_field();
        match self.layout {
            None => {
                let Some(column) = self.header.iter().position(|h| h == self.column.as_bytes())
                else {
                    return Err(self.missing_column());
                };
                self.layout = Some((column, self.header.len()));
            }
            Some((_, fields)) if self.field != fields => {
                return Err(self.error(
                    self.record_line,
                    format!(
                        "a record of {} fields where the header has {fields}",
                        self.field
                    ),
                ));
            }
            Some(_) => {}
        }
        self.field = 0;
        self.in_record = false;
        self.state = State::FieldStart;
        Ok(())
    }

    fn missing_column(&self) -> CountError {
        CountError::MissingColumn {
            path: self.origin.to_owned(),
            column: self.column.to_owned(),
            found: header_for_people(&self.header),
        }
    }
}

/// The columns of a header as an error message shows them: a file that is
/// not CSV at all (binary, or text without commas) has a "header" of
/// garbage, which must not reach a terminal raw (control bytes, escape
/// sequences) nor whole (a file without a newline is all header). Columns
/// are shown up to [`SHOWN_COLUMNS`], each up to [`SHOWN_CHARS`]
/// characters, with anything unprintable escaped.
fn header_for_people(header: &[Vec<u8>]) -> String {
    let mut shown: Vec<String> = header
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|h| {
            let text = String::from_utf8_lossy(h);
            let mut col: String = text
                .chars()
                .take(SHOWN_CHARS)
                .flat_map(|c| {
                    let printable = !c.is_control() && c != '\u{fffd}';
                    let escaped: String = if printable {
                        c.to_string()
                    } else {
                        c.escape_default().collect()
                    };
                    escaped.chars().collect::<Vec<_>>()
                })
                .collect();
            if text.chars().count() > SHOWN_CHARS {
                col.push('…');
            }
            col
        })
        .collect();
    if header.len() > SHOWN_COLUMNS {
        shown.push(format!("… ({} columns)", header.len()));
    }
    shown.join(",")
}

/// Columns of a header an error message shows.
const SHOWN_COLUMNS: usize = 12;
/// Characters of one header column an error message shows.
const SHOWN_CHARS: usize = 32;
