//! Finding words: whitespace bitmasks 64 bytes at a time, then bit tricks.
//!
//! Scanning is split in two passes over a chunk ([`CHUNK`] bytes): first
//! every byte is classified as whitespace or not, 64 at a time, into one
//! `u64` per 64 bytes; then word starts and ends are
//! read off those masks with shifts and `trailing_zeros` (or `vpcompressd`),
//! so the cost per word is a handful of instructions however long the word
//! is.
//!
//! Which instruction set runs is an [`Isa`], chosen once per call by
//! [`Isa::detect`]. The whole scan loop, and the word sink inlined into it
//! (the kernel's hash table), is compiled once per instruction set with its
//! CPU features enabled (`#[target_feature]`), over that set's
//! [`Simd`](crate::simd::Simd) steps; the check that the CPU supports it is
//! made once per call, not once per chunk. Tests force each one in turn,
//! so the scalar fallback is exercised on machines that would never pick
//! it. (SIMD paths exist for x86_64 and aarch64; elsewhere the scalar one
//! runs.)

use crate::simd::{Scalar, Simd};
use crate::word::{is_word_byte, CHUNK, POSITIONS};
use std::ops::Range;

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
    /// AVX2, 32 bytes per `vpshufb` lookup, with BMI1/BMI2/POPCNT for the
    /// bit tricks. Detected at run time.
    Avx2,
    /// AVX-512 (F, BW, DQ, VL): one 64-byte `vpshufb` and a compare
    /// straight into a mask register, which is the `u64` mask; word
    /// positions packed with `vpcompressd`; eight words hashed at a time.
    /// Detected at run time.
    Avx512,
    /// NEON, part of the aarch64 baseline: 16 bytes per compare, the four
    /// compares of a 64-byte block folded into its `u64` mask by pairwise
    /// adds (NEON has no `movemask`).
    Neon,
}

impl Isa {
    /// The fastest classifier this CPU supports.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Sse2, Isa::Neon]
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// Every classifier this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512, Isa::Neon]
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
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("bmi1")
                    && is_x86_feature_detected!("bmi2")
                    && is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            _ => false,
        }
    }
}

/// Fills `out[i]` with the whitespace mask of `chunk[64 * i..][..64]`,
/// bits past the end of `chunk` set, as if it were padded with spaces.
///
/// # Safety
///
/// The CPU supports `C`'s features; `out.len() == chunk.len().div_ceil(64)`.
#[inline(always)]
unsafe fn classify<C: Simd>(chunk: &[u8], out: &mut [u64]) {
    debug_assert_eq!(out.len(), chunk.len().div_ceil(64));
    let full = chunk.len() / 64;
    for (k, m) in out[..full].iter_mut().enumerate() {
        // SAFETY: block `k < full` lies inside `chunk`; the caller vouches
        // for the CPU.
        *m = unsafe { C::block(chunk, 64 * k) };
    }
    let tail = &chunk[full * 64..];
    if !tail.is_empty() {
        let mut padded = [b' '; 64];
        padded[..tail.len()].copy_from_slice(tail);
        // SAFETY: `padded` is 64 bytes; the caller vouches for the CPU.
        out[full] = unsafe { C::block(&padded, 0) };
    }
}

/// Fills `out[i]` with the whitespace mask of `chunk[64 * i..][..64]`: bit
/// `j` set when byte `64 * i + j` is whitespace. Bits past the end of
/// `chunk` are set, as if the chunk were padded with spaces.
///
/// The classifier alone, for tests and benchmarks; the kernel runs the same
/// code inlined into its scan loop.
///
/// # Panics
///
/// If `out.len() != chunk.len().div_ceil(64)`, or `isa` is not available.
#[doc(hidden)]
pub fn whitespace_masks(isa: Isa, chunk: &[u8], out: &mut [u64]) {
    assert_eq!(out.len(), chunk.len().div_ceil(64));
    assert!(isa.is_available(), "{isa:?} is not supported by this CPU");
    match isa {
        // SAFETY (all arms): the CPU supports `isa` (asserted above), and
        // `out` has the length `classify` wants (asserted above).
        Isa::Scalar => unsafe { classify::<Scalar>(chunk, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2 => unsafe { x86::masks_sse2(chunk, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::masks_avx2(chunk, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::masks_avx512(chunk, out) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { arm::masks_neon(chunk, out) },
        _ => unreachable!("checked by is_available"),
    }
}

/// The scanner's entry points for each x86_64 instruction set: the scan
/// loop and the masks alone, compiled with its CPU features.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{classify, scan, WordSink};
    use crate::simd::x86::{Avx2, Avx512, Sse2};
    use std::ops::Range;

    macro_rules! entry_points {
        ($simd:ty, $features:literal, $scan:ident, $masks:ident) => {
            /// [`super::scan`] compiled for this instruction set.
            ///
            /// # Safety
            ///
            /// The CPU supports it ([`super::Isa::is_available`]).
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $scan<S: WordSink>(
                data: &[u8],
                range: Range<usize>,
                sink: &mut S,
            ) -> usize {
                // SAFETY: forwarded from the caller.
                unsafe { scan::<$simd, S>(data, range, sink) }
            }

            /// [`super::classify`] compiled for this instruction set.
            ///
            /// # Safety
            ///
            /// As for [`super::classify`].
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $masks(chunk: &[u8], out: &mut [u64]) {
                // SAFETY: forwarded from the caller.
                unsafe { classify::<$simd>(chunk, out) }
            }
        };
    }

    entry_points!(Sse2, "sse2", scan_sse2, masks_sse2);
    entry_points!(Avx2, "avx2,bmi1,bmi2,popcnt", scan_avx2, masks_avx2);
    entry_points!(
        Avx512,
        "avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi1,bmi2,popcnt",
        scan_avx512,
        masks_avx512
    );
}

/// The scanner's entry points for aarch64, as for x86_64.
#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{classify, scan, WordSink};
    use crate::simd::arm::Neon;
    use std::ops::Range;

    /// [`super::scan`] compiled with NEON.
    ///
    /// # Safety
    ///
    /// The CPU supports NEON ([`super::Isa::is_available`]).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn scan_neon<S: WordSink>(
        data: &[u8],
        range: Range<usize>,
        sink: &mut S,
    ) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { scan::<Neon, S>(data, range, sink) }
    }

    /// [`super::classify`] compiled with NEON.
    ///
    /// # Safety
    ///
    /// As for [`super::classify`].
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn masks_neon(chunk: &[u8], out: &mut [u64]) {
        // SAFETY: forwarded from the caller.
        unsafe { classify::<Neon>(chunk, out) }
    }
}

/// Receives the words the scanner finds, in order.
///
/// Words come in batches, one per chunk, as offsets from `base`: that lets
/// the receiver work on a whole chunk at once (the kernel computes all the
/// hashes first, then prefetches table slots a few words ahead). A word
/// that crosses a chunk boundary comes alone through [`WordSink::word`].
pub(crate) trait WordSink {
    /// The words `data[base + starts[i] as usize..base + ends[i] as usize]`,
    /// `starts.len() == ends.len()`, at most [`CHUNK`]` / 2 + 1` of them;
    /// `V` is the instruction set the scanner runs with, for the sink's own
    /// data-parallel steps.
    ///
    /// # Safety
    ///
    /// The CPU supports `V`'s features.
    unsafe fn batch<V: Simd>(&mut self, data: &[u8], base: usize, starts: &[u32], ends: &[u32]);
    /// The word `data[start..end]`.
    fn word(&mut self, data: &[u8], start: usize, end: usize);
}

/// A [`WordSink`] calling a closure for each word (for tests).
#[cfg(test)]
pub(crate) struct EachWord<F>(pub F);

#[cfg(test)]
impl<F: FnMut(usize, usize)> WordSink for EachWord<F> {
    #[inline(always)]
    unsafe fn batch<V: Simd>(&mut self, _: &[u8], base: usize, starts: &[u32], ends: &[u32]) {
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

/// Hands `sink` every word of `data` whose first byte lies in `range`, in
/// order. A word that starts in the range runs to its real end even past
/// `range.end`; a word that began before `range.start` is skipped (it is
/// the previous range's). `range` is clamped to `data`.
///
/// Returns the offset where scanning stopped: at most a chunk past the end
/// of the last word that starts in the range (or past `range.end`).
///
/// # Panics
///
/// If this CPU does not support `isa`.
#[inline]
pub(crate) fn scan_words<S: WordSink>(
    isa: Isa,
    data: &[u8],
    range: Range<usize>,
    sink: &mut S,
) -> usize {
    assert!(isa.is_available(), "{isa:?} is not supported by this CPU");
    match isa {
        // SAFETY (all arms): the CPU supports `isa` (asserted above).
        Isa::Scalar => unsafe { scan::<Scalar, S>(data, range, sink) },
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2 => unsafe { x86::scan_sse2(data, range, sink) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::scan_avx2(data, range, sink) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::scan_avx512(data, range, sink) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { arm::scan_neon(data, range, sink) },
        _ => unreachable!("checked by is_available"),
    }
}

/// [`scan_words`] with classifier `C`, inlined into its entry point.
///
/// # Safety
///
/// The CPU supports `C`'s features.
#[inline(always)]
unsafe fn scan<C: Simd, S: WordSink>(data: &[u8], range: Range<usize>, sink: &mut S) -> usize {
    let end = range.end.min(data.len());
    let start = range.start.min(end);
    if start == end {
        return start;
    }
    let mut masks = [0u64; CHUNK / 64];
    // On the heap: 2 x 64 KiB is a lot of stack for a thread of a pool.
    let mut positions = vec![0u32; 2 * POSITIONS];
    let (starts, ends) = positions.split_at_mut(POSITIONS);
    let starts: &mut [u32; POSITIONS] = starts.try_into().unwrap();
    let ends: &mut [u32; POSITIONS] = ends.try_into().unwrap();
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
        // SAFETY: the caller vouches for the CPU; `masks` fits `chunk`.
        unsafe { classify::<C>(chunk, masks) };
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
            // SAFETY: `n_starts` and `n_ends` are at most the word starts
            // before this block, < CHUNK / 2 + 1, so 64 more fit in
            // POSITIONS; the caller vouches for the CPU.
            unsafe {
                C::flatten(s, at as u32, starts, &mut n_starts);
                C::flatten(ws & prev, at as u32, ends, &mut n_ends);
            }
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
        // SAFETY: the caller vouches for the CPU.
        unsafe { sink.batch::<C>(data, pos, &starts[..closed], &ends[..closed]) };
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
    #[cfg(target_arch = "aarch64")]
    fn neon_is_what_aarch64_runs() {
        assert!(Isa::Neon.is_available());
        assert_eq!(Isa::detect(), Isa::Neon);
        assert_eq!(Isa::available(), [Isa::Scalar, Isa::Neon]);
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
