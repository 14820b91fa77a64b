//! Finding words: whitespace bitmasks 64 bytes at a time, then bit tricks.
//!
//! Scanning is split in two passes over a small chunk (16 KiB, so it stays in
//! L1): first every byte is classified as whitespace or not, 64 at a time,
//! into one `u64` per 64 bytes; then word starts and ends are read off those
//! masks with shifts and `trailing_zeros`, so the cost per word is a handful
//! of instructions however long the word is. Only the first pass depends on
//! the CPU, which keeps the `unsafe` SIMD code down to three tiny functions
//! with no control flow of their own; the word loop is safe, portable code.
//!
//! Which classifier runs is an [`Isa`], chosen once per call by
//! [`Isa::detect`]. Tests force each one in turn, so the scalar fallback is
//! exercised on machines that would never pick it.

use std::ops::Range;

/// True for bytes that belong to words: everything but 0x09–0x0D and 0x20.
///
/// This is the whole word definition; every classifier below must agree
/// with it bit for bit (a unit test checks all 256 bytes on each).
#[inline]
pub const fn is_word_byte(b: u8) -> bool {
    !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// A byte classifier: how the whitespace masks are computed.
///
/// Hidden from the docs: it exists so that tests and benchmarks can force a
/// path; normal callers get [`Isa::detect`] through [`crate::Counter`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// A 256-entry lookup table, one byte at a time. Runs anywhere.
    Scalar,
    /// SSE2, 16 bytes per compare. Part of the x86_64 baseline.
    Sse2,
    /// AVX2, 32 bytes per `vpshufb` lookup. Detected at run time.
    Avx2,
}

impl Isa {
    /// The fastest classifier this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                Isa::Avx2
            } else {
                Isa::Sse2
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Isa::Scalar
        }
    }

    /// Every classifier this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Sse2, Isa::Avx2]
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// True when this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Bytes classified per pass. A multiple of 64, small enough that the chunk
/// is still in L1 when the word loop and the hash table read it again.
const CHUNK: usize = 4 * 1024;

/// Fills `out[i]` with the whitespace mask of `chunk[64 * i..][..64]`: bit
/// `j` set when byte `64 * i + j` is whitespace. Bits past the end of
/// `chunk` are set, as if the chunk were padded with spaces.
///
/// # Panics
///
/// If `out.len() != chunk.len().div_ceil(64)`, or `isa` is not available.
#[doc(hidden)]
pub fn whitespace_masks(isa: Isa, chunk: &[u8], out: &mut [u64]) {
    assert_eq!(out.len(), chunk.len().div_ceil(64));
    assert!(isa.is_available(), "{isa:?} is not supported by this CPU");
    let full = chunk.len() / 64;
    let (body, tail) = chunk.split_at(full * 64);
    match isa {
        Isa::Scalar => body
            .chunks_exact(64)
            .zip(out.iter_mut())
            .for_each(|(block, m)| *m = mask_scalar(block)),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of the x86_64 baseline; `out` holds a mask
        // for each 64 bytes of `body` (checked above).
        Isa::Sse2 => unsafe { x86::masks_sse2(body, &mut out[..full]) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_available` checked that the CPU has AVX2 (asserted
        // above); `out` holds a mask for each 64 bytes of `body`.
        Isa::Avx2 => unsafe { x86::masks_avx2(body, &mut out[..full]) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
    if !tail.is_empty() {
        let mut padded = [b' '; 64];
        padded[..tail.len()].copy_from_slice(tail);
        out[full] = mask_scalar(&padded);
    }
}

/// Whitespace lookup table for the scalar path.
static IS_SPACE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = !is_word_byte(b as u8);
        b += 1;
    }
    t
};

/// The whitespace mask of one 64-byte block, portably.
#[inline]
fn mask_scalar(block: &[u8]) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (i, &b)| m | (IS_SPACE[b as usize] as u64) << i)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `vpshufb` table indexed by a byte's low nibble: the one whitespace
    /// byte with that nibble (0x20 for 0, 0x09–0x0D for 9–13), or 0 where
    /// there is none. A byte is whitespace iff it equals its table entry:
    /// 0x00 (nibble 0) looks up 0x20, and bytes ≥ 0x80 look up 0 because
    /// `vpshufb` zeroes lanes whose index has the high bit set.
    const NIBBLE_TABLE: [u8; 16] = [0x20, 0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 11, 12, 13, 0, 0];

    /// AVX2 whitespace masks: two 32-byte lookups per 64-byte block.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, and `out.len() >= body.len() / 64`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn masks_avx2(body: &[u8], out: &mut [u64]) {
        debug_assert!(out.len() >= body.len() / 64);
        let t = NIBBLE_TABLE;
        let table = _mm256_loadu_si256([t, t].as_ptr().cast());
        for (block, m) in body.chunks_exact(64).zip(out.iter_mut()) {
            // SAFETY: `block` is 64 readable bytes, so both unaligned
            // 32-byte loads stay inside it.
            let (lo, hi) = unsafe {
                let p = block.as_ptr();
                (
                    _mm256_loadu_si256(p.cast()),
                    _mm256_loadu_si256(p.add(32).cast()),
                )
            };
            let ws_lo = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, lo), lo);
            let ws_hi = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, hi), hi);
            let lo = _mm256_movemask_epi8(ws_lo) as u32 as u64;
            let hi = _mm256_movemask_epi8(ws_hi) as u32 as u64;
            *m = lo | hi << 32;
        }
    }

    /// SSE2 whitespace masks. SSE2 has no byte shuffle, so a byte is tested
    /// as `b == 0x20 || b - 9 <= 4 (unsigned)`; the unsigned range check is a
    /// signed compare after adding 0x77, which maps 0x09..=0x0D to
    /// -128..=-124 and everything else to -123 or above.
    ///
    /// # Safety
    ///
    /// The CPU must support SSE2 (every x86_64 does), and
    /// `out.len() >= body.len() / 64`.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn masks_sse2(body: &[u8], out: &mut [u64]) {
        debug_assert!(out.len() >= body.len() / 64);
        let space = _mm_set1_epi8(0x20);
        let bias = _mm_set1_epi8(0x77);
        let limit = _mm_set1_epi8(-123);
        for (block, m) in body.chunks_exact(64).zip(out.iter_mut()) {
            let mut mask = 0u64;
            for (k, quarter) in block.chunks_exact(16).enumerate() {
                // SAFETY: `quarter` is 16 readable bytes.
                let v = unsafe { _mm_loadu_si128(quarter.as_ptr().cast()) };
                let control = _mm_cmpgt_epi8(limit, _mm_add_epi8(v, bias));
                let ws = _mm_or_si128(control, _mm_cmpeq_epi8(v, space));
                mask |= (_mm_movemask_epi8(ws) as u32 as u64) << (16 * k);
            }
            *m = mask;
        }
    }
}

/// Receives the words the scanner finds, in order.
///
/// Words come in batches, one per chunk, as offsets from `base`: that lets
/// the receiver work on a whole chunk at once (the kernel computes all the
/// hashes first, then prefetches table slots a few words ahead). A word
/// that crosses a chunk boundary comes alone through [`WordSink::word`].
pub(crate) trait WordSink {
    /// The words `data[base + starts[i] as usize..base + ends[i] as usize]`.
    fn batch(&mut self, data: &[u8], base: usize, starts: &[u32], ends: &[u32]);
    /// The word `data[start..end]`.
    fn word(&mut self, data: &[u8], start: usize, end: usize);
}

/// A [`WordSink`] calling a closure for each word (for tests).
#[cfg(test)]
pub(crate) struct EachWord<F>(pub F);

#[cfg(test)]
impl<F: FnMut(usize, usize)> WordSink for EachWord<F> {
    #[inline(always)]
    fn batch(&mut self, _: &[u8], base: usize, starts: &[u32], ends: &[u32]) {
        for (&s, &e) in starts.iter().zip(ends) {
            (self.0)(base + s as usize, base + e as usize);
        }
    }

    #[inline(always)]
    fn word(&mut self, _: &[u8], start: usize, end: usize) {
        (self.0)(start, end);
    }
}

/// Calls `emit(start, end)` for every word of `data` whose first byte lies in
/// `range`; see [`scan_words`].
#[cfg(test)]
pub(crate) fn for_each_word<F: FnMut(usize, usize)>(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    emit: F,
) {
    scan_words(isa, data, range, &mut EachWord(emit));
}

/// [`for_each_word`], returning where the scan stopped.
#[cfg(test)]
pub(crate) fn for_each_word_until<F: FnMut(usize, usize)>(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    emit: F,
) -> usize {
    scan_words(isa, data, range, &mut EachWord(emit))
}

/// `open` when no word is open.
const NONE: usize = usize::MAX;
/// `open` when the open word started before the range and is not ours.
const FOREIGN: usize = usize::MAX - 1;

/// Most word starts (or ends) one chunk can hold, plus room for
/// [`flatten`]'s unconditional writes past the last one.
const POSITIONS: usize = CHUNK / 2 + 1 + 64;

/// Appends the positions of the set bits of `bits`, plus `at`, to `out`
/// from `*n` on, and advances `*n`.
///
/// Branch-free for up to 16 bits, the common case (text has ~12 words per
/// 64 bytes): it always writes 16 positions, the extra ones garbage that the
/// next call or the caller's `*n` ignores. A loop that stopped at the last
/// bit would mispredict its exit once per block.
#[inline(always)]
fn flatten(mut bits: u64, at: u32, out: &mut [u32; POSITIONS], n: &mut usize) {
    let count = bits.count_ones() as usize;
    let first: &mut [u32; 16] = (&mut out[*n..*n + 16]).try_into().unwrap();
    for slot in first.iter_mut() {
        *slot = at + bits.trailing_zeros();
        bits &= bits.wrapping_sub(1);
    }
    let mut i = *n + 16;
    while bits != 0 {
        out[i] = at + bits.trailing_zeros();
        bits &= bits.wrapping_sub(1);
        i += 1;
    }
    *n += count;
}

/// Hands `sink` every word of `data` whose first byte lies in `range`, in
/// order. A word that starts in the range runs to its real end even past
/// `range.end`; a word that began before `range.start` is skipped (it is
/// the previous range's). `range` is clamped to `data`.
///
/// Returns the offset where scanning stopped: at most a chunk past the end
/// of the last word that starts in the range (or past `range.end`).
pub(crate) fn scan_words<S: WordSink>(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    sink: &mut S,
) -> usize {
    let end = range.end.min(data.len());
    let start = range.start.min(end);
    if start == end {
        return start;
    }
    let mut masks = [0u64; CHUNK / 64];
    let mut starts = [0u32; POSITIONS];
    let mut ends = [0u32; POSITIONS];
    // Bit 0: the byte just before the current block belongs to a word.
    let mut prev_in_word = (start > 0 && is_word_byte(data[start - 1])) as u64;
    let mut open = if prev_in_word == 1 { FOREIGN } else { NONE };
    let mut pos = start;
    // Past `end`, only a word of ours is followed to its end: a foreign one
    // (begun before `start`) that runs through the whole range is not, or a
    // range inside a huge token would scan to the token's end, and k ranges
    // of one whitespace-free file would cost O(k * N).
    while pos < data.len() && (pos < end || (open != NONE && open != FOREIGN)) {
        // Up to `end`, classify in whole blocks (a short block is padded with
        // whitespace, which would cut a word that really goes on); past it,
        // only an open word is being followed to its end.
        let want = if pos < end {
            (end - pos).next_multiple_of(64).min(CHUNK)
        } else {
            CHUNK
        };
        let chunk = &data[pos..data.len().min(pos + want)];
        let masks = &mut masks[..chunk.len().div_ceil(64)];
        whitespace_masks(isa, chunk, masks);
        // Starts at or past `end` belong to the next range.
        let owned = end.saturating_sub(pos);
        let (mut n_starts, mut n_ends) = (0, 0);
        for (k, &ws) in masks.iter().enumerate() {
            let at = 64 * k;
            let in_word = !ws;
            let prev = in_word << 1 | prev_in_word;
            prev_in_word = in_word >> 63;
            // A start is a word byte after whitespace; an end is whitespace
            // after a word byte. They alternate: start, end, start, end…
            let mut s = in_word & !prev;
            if at + 64 > owned {
                s &= if at >= owned {
                    0
                } else {
                    (1u64 << (owned - at)) - 1
                };
            }
            flatten(s, at as u32, &mut starts, &mut n_starts);
            flatten(ws & prev, at as u32, &mut ends, &mut n_ends);
        }
        let (starts, mut ends) = (&starts[..n_starts], &ends[..n_ends]);
        if open != NONE {
            let Some((&e, rest)) = ends.split_first() else {
                // The open word runs through the whole chunk.
                pos += chunk.len();
                continue;
            };
            if open != FOREIGN {
                sink.word(data, open, pos + e as usize);
            }
            ends = rest;
            open = NONE;
        }
        // Every start has its end in this chunk but perhaps the last.
        let closed = starts.len().min(ends.len());
        sink.batch(data, pos, &starts[..closed], &ends[..closed]);
        if closed < starts.len() {
            open = pos + starts[closed] as usize;
        }
        pos += chunk.len();
    }
    // The data ended inside a word (its length was a multiple of 64, so no
    // padding closed it).
    if open != NONE && open != FOREIGN {
        sink.word(data, open, data.len());
    }
    pos.min(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_classifier_agrees_with_is_word_byte_on_all_bytes() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(256 * 3 + 17).collect();
        for isa in Isa::available() {
            for offset in 0..64 {
                let chunk = &bytes[offset..];
                let mut out = vec![0; chunk.len().div_ceil(64)];
                whitespace_masks(isa, chunk, &mut out);
                for (i, &b) in chunk.iter().enumerate() {
                    let bit = out[i / 64] >> (i % 64) & 1 == 1;
                    assert_eq!(bit, !is_word_byte(b), "{isa:?} byte {b:#04x}");
                }
                let pad = chunk.len() % 64;
                if pad != 0 {
                    assert_eq!(out.last().unwrap() >> pad, u64::MAX >> pad);
                }
            }
        }
    }

    #[test]
    fn the_six_whitespace_bytes_and_no_others() {
        let ws: Vec<u8> = (0..=255u8).filter(|&b| !is_word_byte(b)).collect();
        assert_eq!(ws, [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]);
    }

    fn words(isa: Isa, data: &[u8], range: Range<usize>) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for_each_word(isa, data, range, |s, e| v.push((s, e)));
        v
    }

    #[test]
    fn words_are_found_across_block_and_chunk_boundaries() {
        // Word lengths around 64 and CHUNK, so starts and ends land on
        // every side of every boundary.
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for len in (1..200).chain(CHUNK - 70..CHUNK + 70).step_by(7) {
            data.extend(std::iter::repeat_n(b' ', len % 3 + 1));
            let s = data.len();
            data.extend(std::iter::repeat_n(b'x', len));
            expected.push((s, data.len()));
        }
        for isa in Isa::available() {
            assert_eq!(words(isa, &data, 0..data.len()), expected, "{isa:?}");
            assert_eq!(
                words(isa, &data[1..], 0..data.len() - 1).len(),
                expected.len()
            );
        }
    }

    #[test]
    fn a_range_inside_a_huge_token_stops_near_its_end() {
        // Regression (audit item 3): a range whose first byte continues a
        // word begun before it used to follow that foreign word to its end,
        // so k ranges of a whitespace-free file each scanned to its end.
        let mut data = vec![b'x'; 4 << 20];
        data[0] = b' ';
        for isa in Isa::available() {
            for (a, b) in [(1000, 2000), (5 * CHUNK + 3, 9 * CHUNK), (2, 3)] {
                let mut n = 0;
                let stop = for_each_word_until(isa, &data, a..b, |_, _| n += 1);
                assert_eq!(n, 0, "{isa:?}");
                assert!(stop <= b + CHUNK, "{isa:?} {a}..{b} scanned to {stop}");
            }
            // The range that owns the token still reads it whole.
            let mut words = Vec::new();
            for_each_word(isa, &data, 0..2, |s, e| words.push((s, e)));
            assert_eq!(words, [(1, data.len())]);
        }
    }

    #[test]
    fn a_word_ending_exactly_at_the_end_of_a_64_multiple_is_closed() {
        for isa in Isa::available() {
            let data = [b'a'; 128];
            assert_eq!(words(isa, &data, 0..128), [(0, 128)]);
            assert_eq!(words(isa, &data, 1..128), []);
            assert_eq!(words(isa, &data, 0..1), [(0, 128)]);
        }
    }
}
