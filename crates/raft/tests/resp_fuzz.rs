//! Fuzzing the sidecar's RESP codec, which parses bytes from anyone who
//! can open a TCP connection to a node (issue 17: 800 KB of nested array
//! headers once overflowed its stack and killed the node).
//!
//! Two parts:
//!
//! * **The corpus** (`tests/resp-corpus/`): inputs that once broke a RESP
//!   parser or sit on one of its limits, kept as files and replayed by
//!   [`the_corpus_replays_with_the_outcome_its_name_says`]. A file's name
//!   says what [`read_request`] must make of it: `ok-` parses to the end,
//!   `bad-` ends in a protocol error, `eof-` ends in an error (the stream
//!   ended inside a request); `reply-ok-`/`reply-bad-` say the same of
//!   [`read_frame`]. An input the fuzzer finds is added here as a file.
//! * **The fuzz target** ([`check`]), run by proptest on generated inputs
//!   (RESP tokens with lengths at and past the limits, corpus files
//!   mutated, raw bytes), read in chunks of random sizes: neither parser may
//!   panic, every frame it returns must be within [`limits`] and survive
//!   re-encoding, every error must be a protocol error or an early end of
//!   stream, and the heap it uses must be bounded by the input's size, not
//!   by the lengths the input announces. `PROPTEST_CASES=N` runs more cases
//!   than the default; a failure's seed is kept by proptest in
//!   `proptest-regressions/`, and its shrunk input belongs in the corpus.

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, BufReader, ReadBuf};
use wclab_raft::resp::{limits, read_frame, read_request, Frame};

/// Counts the heap this thread holds, so that a parse's peak use can be
/// measured while other tests run on other threads.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(by: usize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(by);
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrank(by: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(by)));
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// bookkeeping only reads sizes and touches const-initialised thread-locals,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The heap a parse of `input` may hold at its peak. The constant covers
/// the buffers a parser may reserve ahead of the bytes (a line, 64 KiB of
/// a bulk string, 1024 slots of each array level down to the nesting
/// limit); the rest must be paid for with input bytes. A parser that
/// reserved what a header announces (`*2147483647`, `$99999999999`) would
/// pass it with a few bytes.
fn heap_bound(input: usize) -> usize {
    4 * 1024 * 1024 + 64 * input
}

/// An input handed over at most `chunk` bytes at a time, as a socket might.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
    /// Bytes handed over so far.
    pos: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .chunk
            .min(buf.remaining())
            .min(self.data.len() - self.pos);
        let from = self.pos;
        buf.put_slice(&self.data[from..from + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Which parser.
#[derive(Debug, Clone, Copy)]
enum Parser {
    Request,
    Reply,
}

/// How a parse of a whole input ended.
#[derive(Debug)]
enum End {
    /// At a clean end of stream, after this many frames.
    Clean(usize),
    /// With an error, after this many frames.
    Error(io::ErrorKind, String),
}

/// The fuzz target: parses `input` with `parser`, frame after frame until
/// the input ends or an error, read `chunk` bytes at a time through a
/// buffer of `buffer` bytes, and checks what must hold whatever the bytes.
fn check(parser: Parser, input: &[u8], chunk: usize, buffer: usize) -> End {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let end = rt.block_on(async {
        let mut r = BufReader::with_capacity(
            buffer,
            Chunked {
                data: input,
                chunk,
                pos: 0,
            },
        );
        let mut frames = 0;
        loop {
            let got = match parser {
                Parser::Request => read_request(&mut r).await,
                Parser::Reply => read_frame(&mut r).await,
            };
            match got {
                Ok(Some(f)) => {
                    within_limits(parser, &f, 0);
                    reencodes(parser, &f).await;
                    frames += 1;
                }
                Ok(None) => {
                    let consumed = r.get_ref().pos - r.buffer().len();
                    assert_eq!(consumed, input.len(), "a clean end before the input's end");
                    return End::Clean(frames);
                }
                Err(e) => return End::Error(e.kind(), e.to_string()),
            }
        }
    });
    let peak = PEAK.with(Cell::get) - base;
    assert!(
        peak <= heap_bound(input.len()),
        "{parser:?} held {peak} bytes of heap for {} bytes of input",
        input.len()
    );
    if let End::Error(kind, msg) = &end {
        assert!(
            matches!(
                kind,
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ),
            "{parser:?}: an error that is neither a protocol error nor an early end: {kind:?} {msg}"
        );
    }
    end
}

/// A frame returned is within the limits the parser enforces.
fn within_limits(parser: Parser, f: &Frame, depth: usize) {
    match f {
        Frame::Bulk(Some(b)) => assert!(b.len() <= limits::BULK),
        // A line's invalid UTF-8 comes back as U+FFFD, three bytes each.
        Frame::Simple(s) | Frame::Error(s) => assert!(s.len() <= 3 * limits::LINE),
        Frame::Array(Some(items)) => {
            assert!(items.len() <= limits::ARGS, "{} items", items.len());
            match parser {
                Parser::Request => {
                    assert_eq!(depth, 0);
                    let bytes: usize = items
                        .iter()
                        .map(|i| match i {
                            Frame::Bulk(Some(b)) => b.len() + limits::ARG_OVERHEAD,
                            other => panic!("a request holding {other:?}"),
                        })
                        .sum();
                    assert!(bytes <= limits::REQUEST);
                }
                Parser::Reply => {
                    assert!(depth <= limits::DEPTH, "arrays {depth} deep");
                    for i in items {
                        within_limits(parser, i, depth + 1);
                    }
                }
            }
        }
        _ => {}
    }
}

/// What the parser returned, encoded, parses back to itself (a request
/// read inline comes back as the array it stands for).
async fn reencodes(parser: Parser, f: &Frame) {
    let mut bytes = Vec::new();
    f.encode(&mut bytes);
    let mut r = BufReader::new(bytes.as_slice());
    let again = match parser {
        Parser::Request => read_request(&mut r).await,
        Parser::Reply => read_frame(&mut r).await,
    };
    assert_eq!(again.unwrap().as_ref(), Some(f), "re-encoded as {bytes:?}");
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resp-corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus is in {}", dir.display());
    files
}

#[test]
fn the_corpus_replays_with_the_outcome_its_name_says() {
    for (name, input) in corpus() {
        for (chunk, buffer) in [(input.len().max(1), 8192), (1, 1), (3, 7), (4096, 64)] {
            let request = check(Parser::Request, &input, chunk, buffer);
            let reply = check(Parser::Reply, &input, chunk, buffer);
            let what = format!(
                "{name} read {chunk} bytes at a time: request {request:?}, reply {reply:?}"
            );
            let is = |e: &End, kind| matches!(e, End::Error(k, _) if *k == kind);
            if name.starts_with("ok-") {
                assert!(matches!(request, End::Clean(n) if n > 0), "{what}");
            } else if name.starts_with("bad-") {
                assert!(is(&request, io::ErrorKind::InvalidData), "{what}");
            } else if name.starts_with("eof-") {
                assert!(matches!(request, End::Error(..)), "{what}");
            } else if name.starts_with("reply-ok-") {
                assert!(matches!(reply, End::Clean(n) if n > 0), "{what}");
            } else if name.starts_with("reply-bad-") {
                assert!(is(&reply, io::ErrorKind::InvalidData), "{what}");
            } else {
                panic!("{name}: a corpus file's name starts with ok-, bad-, eof-, reply-ok- or reply-bad-");
            }
        }
    }
}

/// Numbers a RESP header may carry: ordinary ones, each limit and one past
/// it, and ones no integer type holds.
fn length() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..40).prop_map(|n| n.to_string()),
        Just("-1".to_owned()),
        Just("-2".to_owned()),
        Just(limits::ARGS.to_string()),
        Just((limits::ARGS + 1).to_string()),
        Just(limits::BULK.to_string()),
        Just((limits::BULK + 1).to_string()),
        Just("2147483647".to_owned()),
        Just("99999999999".to_owned()),
        Just(i64::MAX.to_string()),
        Just("99999999999999999999999".to_owned()),
        Just("+3".to_owned()),
        Just(" 3".to_owned()),
        Just(String::new()),
    ]
}

/// One piece of RESP, well-formed or not.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let line_end = prop_oneof![
        4 => Just(&b"\r\n"[..]),
        1 => Just(&b"\n"[..]),
        1 => Just(&b"\r"[..]),
        1 => Just(&b""[..]),
    ];
    prop_oneof![
        (
            prop::sample::select(&b"*$+-:%_"[..]),
            length(),
            line_end.clone()
        )
            .prop_map(|(kind, n, end)| {
                let mut t = vec![kind];
                t.extend_from_slice(n.as_bytes());
                t.extend_from_slice(end);
                t
            }),
        (prop::collection::vec(any::<u8>(), 0..12), line_end).prop_map(|(mut b, end)| {
            b.extend_from_slice(end);
            b
        }),
        (1usize..200).prop_map(|n| b"*1\r\n".repeat(n)),
        Just(b"PING\r\n".to_vec()),
    ]
}

/// A corpus file, mutated: bytes replaced, the end cut off, a range
/// repeated, a token spliced in.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let files: Vec<Vec<u8>> = corpus()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b.len() <= 4096)
        .collect();
    (
        prop::sample::select(files),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, token()), 0..4),
    )
        .prop_map(|(mut bytes, edits)| {
            for (at, edit, token) in edits {
                if bytes.is_empty() {
                    bytes = token;
                    continue;
                }
                let i = at.index(bytes.len());
                match edit {
                    0 => bytes[i] ^= 1 << (i % 8),
                    1 => bytes.truncate(i),
                    2 => {
                        let part = bytes[i..].iter().take(16).copied().collect::<Vec<_>>();
                        bytes.splice(i..i, part.repeat(8));
                    }
                    _ => {
                        bytes.splice(i..i, token);
                    }
                }
            }
            bytes
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(token(), 0..24).prop_map(|t| t.concat()),
        3 => mutated(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Bounded, so that `cargo test` stays quick; PROPTEST_CASES=N for a
        // longer run (see docs/security.md for the figures of one).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_input_panics_a_parser_or_escapes_its_limits(
        input in input(),
        chunk in 1usize..64,
        buffer in 1usize..128,
    ) {
        check(Parser::Request, &input, chunk, buffer);
        check(Parser::Reply, &input, chunk, buffer);
    }
}
