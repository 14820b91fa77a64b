//! Counting plain text: the kernel (the scanner feeding the hash tables)
//! and its parallel split of one buffer.

use crate::scan::{scan_words, Isa, WordSink};
use crate::simd::Simd;
use crate::table::{first_bytes, hash16, load8, LongTable, INLINE};
use crate::word::POSITIONS;
use crate::Counts;
use std::ops::Range;

/// Below this many bytes a range is counted on the calling thread: a
/// rayon hand-off and a merge cost more than they save.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Distinct words a fresh kernel table is sized for up front. Text has
/// thousands at least; starting there skips the first few (cheap, but
/// pointless) doublings.
pub(crate) const INITIAL_WORDS: usize = 1 << 12;

/// How many words ahead of the one being counted the kernel prefetches its
/// table entry: enough to cover a miss to L3 (~50 cycles at a few cycles
/// per word), few enough that the line is still in L1 when it is used.
const PREFETCH_AHEAD: usize = 32;

pub(crate) fn count_range(data: &[u8], range: Range<usize>, threads: Option<usize>) -> Counts {
    count_range_with(Isa::detect(), data, range, threads)
}

/// [`count_range`] with a forced classifier.
pub(crate) fn count_range_with(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    threads: Option<usize>,
) -> Counts {
    let mut counts = Counts::with_capacity(INITIAL_WORDS);
    count_range_into(isa, data, range, threads, &mut counts);
    counts
}

/// Adds the words of `data` whose first byte lies in `range` to `counts`,
/// on up to `threads` threads: this one counts the first part straight
/// into `counts`, the others count the rest into a table of their own,
/// merged in at the end.
pub(crate) fn count_range_into(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    threads: Option<usize>,
    counts: &mut Counts,
) {
    let end = range.end.min(data.len());
    let start = range.start.min(end);
    let len = end - start;
    let parts = threads.unwrap_or_else(rayon::current_num_threads).max(1);
    if len < PARALLEL_THRESHOLD || parts == 1 {
        count_into(isa, data, start..end, counts, &mut Scratch::new());
        return;
    }
    // Each part owns the words starting in it (see `Counter`), so the parts
    // can be cut anywhere and their counts simply added.
    let split = start + len.div_ceil(parts);
    let (_, rest) = rayon::join(
        || count_into(isa, data, start..split, counts, &mut Scratch::new()),
        || count_range_with(isa, data, split..end, Some(parts - 1)),
    );
    counts.merge(rest);
}

/// Adds the words of `data` whose first byte lies in `range` to `counts`,
/// on this thread. `scratch` is reused across calls by callers that count
/// many ranges.
pub(crate) fn count_into(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    counts: &mut Counts,
    scratch: &mut Scratch,
) {
    scan_words(isa, data, range, &mut Kernel { counts, scratch });
}

/// The kernel's per-chunk buffers: the key and hash of each word.
pub(crate) struct Scratch {
    keys: Vec<u64>,
    /// [`PREFETCH_AHEAD`] longer than `keys`, so that the prefetch of a
    /// later word needs no bounds check (entries past the chunk's words are
    /// stale, and prefetching them is harmless).
    tags: Vec<u64>,
    /// Indexes (in the chunk's batch) of the words longer than 8 bytes.
    long: Vec<u32>,
    /// The words of 9 to 16 bytes: `[w0, w1, len, hash]`.
    mids: Vec<[u64; 4]>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            keys: vec![0; POSITIONS + 16],
            tags: vec![0; POSITIONS + 16 + PREFETCH_AHEAD],
            long: vec![0; POSITIONS + 16],
            mids: vec![[0; 4]; POSITIONS],
        }
    }
}

/// The kernel's [`WordSink`]: counts words into a [`Counts`].
struct Kernel<'a> {
    counts: &'a mut Counts,
    scratch: &'a mut Scratch,
}

impl WordSink for Kernel<'_> {
    #[inline(always)]
    unsafe fn batch<V: Simd>(&mut self, data: &[u8], base: usize, starts: &[u32], ends: &[u32]) {
        let Scratch {
            keys,
            tags,
            long,
            mids,
        } = &mut *self.scratch;
        // Pass 1: key and tag (hash and length) of every word from its
        // first 8 bytes; the short ones packed in `keys` and `tags`, the
        // others' indexes in `long`.
        // SAFETY: the scratch buffers hold POSITIONS + 16 or more, and a
        // chunk has at most POSITIONS - 64 words; the caller vouches for
        // the CPU.
        let (n_short, n_long) = unsafe { V::prepare(data, base, starts, ends, keys, tags, long) };
        // Pass 2: count, with the entry of a later word already on its way.
        let Counts {
            short,
            long: table,
            arena,
            ..
        } = &mut *self.counts;
        short.count_batch(
            &keys[..n_short],
            &tags[..n_short + PREFETCH_AHEAD],
            PREFETCH_AHEAD,
        );
        // Pass 3: the longer words (5 % of English), nearly all of at most
        // 16 bytes, the same way in their own table.
        let mut n_mid = 0;
        table.reserve(arena, n_long);
        for &i in &long[..n_long] {
            let (s, e) = (
                base + starts[i as usize] as usize,
                base + ends[i as usize] as usize,
            );
            let len = e - s;
            if len <= INLINE {
                let w0 = load8(data, s);
                let w1 = first_bytes(load8(data, s + 8), (len - 8) as u32);
                let hash = hash16(w0, w1, len);
                table.prefetch(hash);
                mids[n_mid] = [w0, w1, len as u64, hash];
                n_mid += 1;
            } else {
                add_longer(table, arena, &data[s..e]);
            }
        }
        table.count_batch(arena, &mids[..n_mid]);
        self.counts.words += starts.len() as u64;
    }

    #[inline(always)]
    fn word(&mut self, data: &[u8], start: usize, end: usize) {
        self.counts.add(&data[start..end], 1);
    }
}

/// Counts a word longer than [`INLINE`] bytes (rare in text: URLs, long
/// compounds), copying it into the arena if new.
#[inline(never)]
fn add_longer(long: &mut LongTable, arena: &mut Vec<u8>, word: &[u8]) {
    long.add(arena, word, 1);
}

/// The kernel's stages alone, for benchmarks (see `crate::testing`).
pub(crate) mod stages {
    use super::{Scratch, PREFETCH_AHEAD};
    use crate::scan::{scan_words, Isa, WordSink};
    use crate::simd::Simd;
    use crate::table::ShortTable;

    /// Counts words without a table: the scanner alone, or the scanner and
    /// the kernel's first pass (keys, tags, short/long split).
    struct Tally {
        words: u64,
        first_pass: Option<Scratch>,
    }

    impl WordSink for Tally {
        #[inline(always)]
        unsafe fn batch<V: Simd>(
            &mut self,
            data: &[u8],
            base: usize,
            starts: &[u32],
            ends: &[u32],
        ) {
            self.words += starts.len() as u64;
            if let Some(Scratch {
                keys, tags, long, ..
            }) = &mut self.first_pass
            {
                // SAFETY: as in the kernel's `batch`.
                let (s, l) = unsafe { V::prepare(data, base, starts, ends, keys, tags, long) };
                // Keep the pass from being optimised away.
                std::hint::black_box((&tags[..s], &long[..l]));
            }
        }

        #[inline(always)]
        fn word(&mut self, _: &[u8], _: usize, _: usize) {
            self.words += 1;
        }
    }

    pub(crate) fn scan_only(isa: Isa, data: &[u8], first_pass: bool) -> u64 {
        let mut tally = Tally {
            words: 0,
            first_pass: first_pass.then(Scratch::new),
        };
        scan_words(isa, data, 0..data.len(), &mut tally);
        tally.words
    }

    /// The keys and tags of the short words of a buffer, ready for the
    /// table's hot loop.
    pub(crate) struct ShortWords {
        keys: Vec<u64>,
        tags: Vec<u64>,
    }

    impl ShortWords {
        pub(crate) fn new(data: &[u8]) -> Self {
            struct Collect(ShortWords, Scratch);
            impl WordSink for Collect {
                unsafe fn batch<V: Simd>(
                    &mut self,
                    data: &[u8],
                    base: usize,
                    starts: &[u32],
                    ends: &[u32],
                ) {
                    let Scratch {
                        keys, tags, long, ..
                    } = &mut self.1;
                    // SAFETY: forwarded from the caller.
                    let (s, _) = unsafe { V::prepare(data, base, starts, ends, keys, tags, long) };
                    self.0.keys.extend_from_slice(&keys[..s]);
                    self.0.tags.extend_from_slice(&tags[..s]);
                }
                fn word(&mut self, _: &[u8], _: usize, _: usize) {}
            }
            let mut c = Collect(
                ShortWords {
                    keys: Vec::new(),
                    tags: Vec::new(),
                },
                Scratch::new(),
            );
            scan_words(Isa::detect(), data, 0..data.len(), &mut c);
            c.0.tags.extend([0; PREFETCH_AHEAD]);
            c.0
        }

        pub(crate) fn len(&self) -> usize {
            self.keys.len()
        }

        /// Counts them into a fresh table; returns the distinct words.
        pub(crate) fn count(&self) -> usize {
            // In chunk-sized batches, as the kernel does.
            let mut t = ShortTable::with_capacity(super::INITIAL_WORDS);
            for (i, keys) in self.keys.chunks(1024).enumerate() {
                let tags = &self.tags[1024 * i..][..keys.len() + PREFETCH_AHEAD];
                t.count_batch(keys, tags, PREFETCH_AHEAD);
            }
            t.len()
        }
    }
}
