//! The data-parallel steps of the kernel, once per instruction set.
//!
//! [`Simd`] gathers every step whose best code depends on the CPU:
//! classifying 64 bytes as whitespace or not, turning a bit mask into
//! positions, and the kernel's first pass over a chunk's words (load each
//! word's first 8 bytes, hash them, sort short words from long ones).
//! Each has a portable version, used by [`Scalar`] (and by SSE2 and AVX2
//! where nothing better pays), and x86_64 versions for SSE2, AVX2 and
//! AVX-512. The scanner is generic over the implementation and compiled
//! once per instruction set with its features enabled (see `scan`), so
//! the portable versions get `tzcnt`, `blsr` and `popcnt` where the CPU has
//! them.
//!
//! Every implementation must give the same results bit for bit: the word
//! definition (a unit test checks all 256 bytes on each), and the same
//! keys and hashes, since one table may be filled by several.
//!
//! aarch64 has a NEON `block` (the classifier, where most of the gain is);
//! its other steps are the portable ones. It is compiled and tested on
//! x86_64 machines with a cross toolchain and qemu (`just test-aarch64`),
//! since NEON is part of the aarch64 baseline and cannot be switched off.

use crate::table::{first_bytes, load8, tag, SHORT};
use crate::word::{is_word_byte, POSITIONS};

/// One instruction set's version of each data-parallel step.
///
/// # Safety
///
/// Every method may use CPU features beyond the x86_64 baseline: callers
/// must make sure that the CPU supports the implementation's features (the
/// scanner's entry points are reached only through [`crate::scan::Isa`]'s
/// check).
pub(crate) trait Simd {
    /// The whitespace mask of `data[at..at + 64]`: bit `j` set when byte
    /// `at + j` is whitespace.
    ///
    /// # Safety
    ///
    /// `at + 64 <= data.len()` (not checked); the CPU has the features.
    unsafe fn block(data: &[u8], at: usize) -> u64;

    /// Appends `at + j` for each set bit `j` of `bits`, in order, to `out`
    /// from `*n` on, and advances `*n`. May write up to 64 entries past
    /// `*n` (garbage past the new `*n`).
    ///
    /// # Safety
    ///
    /// `*n + 64 <= POSITIONS`; the CPU has the features.
    #[inline(always)]
    unsafe fn flatten(bits: u64, at: u32, out: &mut [u32; POSITIONS], n: &mut usize) {
        flatten_portable(bits, at, out, n)
    }

    /// The kernel's first pass over a chunk's words, `data[base + starts[i]
    /// ..base + ends[i]]`: the key ([`first_bytes`]) and [`tag`] of each
    /// word of at most [`SHORT`] bytes, packed into `keys` and `tags` in
    /// order, and the indexes of the longer ones in `long`. Returns how
    /// many of each. May write up to 16 entries past the end of each.
    ///
    /// # Safety
    ///
    /// `starts` and `ends` have the same length `n`, the slices have room
    /// for `n + 16` entries, and the CPU has the features.
    #[inline(always)]
    unsafe fn prepare(
        data: &[u8],
        base: usize,
        starts: &[u32],
        ends: &[u32],
        keys: &mut [u64],
        tags: &mut [u64],
        long: &mut [u32],
    ) -> (usize, usize) {
        prepare_portable(data, base, starts, ends, keys, tags, long)
    }
}

/// Branch-free for up to 16 bits, the common case (text has ~12 words per
/// 64 bytes): it always writes 16 positions, the extra ones garbage that the
/// next call or the caller's `*n` ignores. A loop that stopped at the last
/// bit would mispredict its exit once per block.
#[inline(always)]
fn flatten_portable(mut bits: u64, at: u32, out: &mut [u32; POSITIONS], n: &mut usize) {
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

/// [`Simd::prepare`] in plain code. Short words are packed with no branch:
/// each word is written to both lists, and only one of the two ends moves
/// past it.
#[inline(always)]
fn prepare_portable(
    data: &[u8],
    base: usize,
    starts: &[u32],
    ends: &[u32],
    keys: &mut [u64],
    tags: &mut [u64],
    long: &mut [u32],
) -> (usize, usize) {
    let n = starts.len();
    assert!(ends.len() == n && keys.len() >= n && tags.len() >= n && long.len() >= n);
    let (mut n_short, mut n_long) = (0, 0);
    let mut put = |i: usize, w: u64, len: u32| {
        let key = first_bytes(w, len);
        let is_short = (len as usize <= SHORT) as usize;
        // SAFETY: `n_short + n_long == i < n`, and the slices hold `n`
        // (asserted above).
        unsafe {
            *keys.get_unchecked_mut(n_short) = key;
            *tags.get_unchecked_mut(n_short) = tag(key, len);
            *long.get_unchecked_mut(n_long) = i as u32;
        }
        n_short += is_short;
        n_long += 1 - is_short;
    };
    match starts.last() {
        // Starts rise, so one check covers the 8-byte loads of all.
        Some(&last) if base + last as usize + 8 <= data.len() => {
            let p = data[base..].as_ptr();
            for (i, (&s, &e)) in starts.iter().zip(ends).enumerate() {
                // SAFETY: `base + s + 8 <= base + last + 8 <= data.len()`,
                // checked above, so the 8 bytes are inside `data`.
                let w = unsafe { p.add(s as usize).cast::<u64>().read_unaligned() };
                put(i, w, e - s);
            }
        }
        _ => {
            for (i, (&s, &e)) in starts.iter().zip(ends).enumerate() {
                put(i, load8(data, base + s as usize), e - s);
            }
        }
    }
    (n_short, n_long)
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

/// The portable implementation: a lookup per byte. Runs anywhere.
pub(crate) struct Scalar;

impl Simd for Scalar {
    #[inline(always)]
    unsafe fn block(data: &[u8], at: usize) -> u64 {
        data[at..at + 64]
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | (IS_SPACE[b as usize] as u64) << i)
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    /// NEON, with the portable position and hashing steps.
    pub(crate) struct Neon;

    impl Simd for Neon {
        #[inline(always)]
        unsafe fn block(data: &[u8], at: usize) -> u64 {
            // SAFETY: forwarded from the caller.
            unsafe { block_neon(data.as_ptr().add(at)) }
        }
    }

    /// Four 16-byte compares, `b == 0x20 || b - 9 <= 4` (unsigned), each
    /// lane ANDed with its bit's weight within its half (1, 2, 4 … 128
    /// twice); three rounds of pairwise adds then sum each run of eight
    /// lanes into one byte, so the low 8 bytes are the 64-bit mask, bit `j`
    /// for byte `j` (the weights are distinct powers of two: no carries).
    ///
    /// # Safety
    ///
    /// `p..p + 64` is readable; the CPU supports NEON.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn block_neon(p: *const u8) -> u64 {
        const WEIGHTS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        let space = vdupq_n_u8(0x20);
        let tab = vdupq_n_u8(0x09);
        let four = vdupq_n_u8(4);
        // SAFETY: `WEIGHTS` is 16 bytes.
        let weights = unsafe { vld1q_u8(WEIGHTS.as_ptr()) };
        let weighted = |k: usize| {
            // SAFETY: the 16 bytes at `p + 16k` are inside the 64 readable.
            let v = unsafe { vld1q_u8(p.add(16 * k)) };
            let ws = vorrq_u8(vceqq_u8(v, space), vcleq_u8(vsubq_u8(v, tab), four));
            vandq_u8(ws, weights)
        };
        let (m0, m1, m2, m3) = (weighted(0), weighted(1), weighted(2), weighted(3));
        let halves = vpaddq_u8(vpaddq_u8(m0, m1), vpaddq_u8(m2, m3));
        let bytes = vpaddq_u8(halves, halves);
        vgetq_lane_u64::<0>(vreinterpretq_u64_u8(bytes))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{prepare_portable, Simd};
    use crate::table::{HASH_K0, HASH_K1, HASH_K2, SHORT};
    use crate::word::POSITIONS;
    use std::arch::x86_64::*;

    /// `vpshufb` table indexed by a byte's low nibble: the one whitespace
    /// byte with that nibble (0x20 for 0, 0x09–0x0D for 9–13), or 0 where
    /// there is none. A byte is whitespace iff it equals its table entry:
    /// 0x00 (nibble 0) looks up 0x20, and bytes ≥ 0x80 look up 0 because
    /// `vpshufb` zeroes lanes whose index has the high bit set.
    const NIBBLE_TABLE: [u8; 16] = [0x20, 0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 11, 12, 13, 0, 0];

    /// SSE2 (the x86_64 baseline): 16 bytes per compare.
    pub(crate) struct Sse2;
    /// AVX2 with BMI1, BMI2 and POPCNT.
    pub(crate) struct Avx2;
    /// AVX-512 F, BW, DQ and VL, with AVX2, BMI1, BMI2 and POPCNT.
    pub(crate) struct Avx512;

    impl Simd for Sse2 {
        #[inline(always)]
        unsafe fn block(data: &[u8], at: usize) -> u64 {
            // SAFETY: forwarded from the caller.
            unsafe { block_sse2(data.as_ptr().add(at)) }
        }
    }

    impl Simd for Avx2 {
        #[inline(always)]
        unsafe fn block(data: &[u8], at: usize) -> u64 {
            // SAFETY: forwarded from the caller.
            unsafe { block_avx2(data.as_ptr().add(at)) }
        }
    }

    impl Simd for Avx512 {
        #[inline(always)]
        unsafe fn block(data: &[u8], at: usize) -> u64 {
            // SAFETY: forwarded from the caller.
            unsafe { block_avx512(data.as_ptr().add(at)) }
        }

        #[inline(always)]
        unsafe fn flatten(bits: u64, at: u32, out: &mut [u32; POSITIONS], n: &mut usize) {
            // SAFETY: forwarded from the caller.
            unsafe { flatten_avx512(bits, at, out, n) }
        }

        #[inline(always)]
        unsafe fn prepare(
            data: &[u8],
            base: usize,
            starts: &[u32],
            ends: &[u32],
            keys: &mut [u64],
            tags: &mut [u64],
            long: &mut [u32],
        ) -> (usize, usize) {
            match starts.last() {
                // SAFETY: the 8-byte loads of every word are inside `data`
                // (starts rise); the rest is forwarded from the caller.
                Some(&last) if base + last as usize + 8 <= data.len() => unsafe {
                    prepare_avx512(data, base, starts, ends, keys, tags, long)
                },
                // Near the end of the data: the few last words.
                _ => prepare_portable(data, base, starts, ends, keys, tags, long),
            }
        }
    }

    /// SSE2 has no byte shuffle, so a byte is tested as `b == 0x20 ||
    /// b - 9 <= 4 (unsigned)`; the unsigned range check is a signed compare
    /// after adding 0x77, which maps 0x09..=0x0D to -128..=-124 and
    /// everything else to -123 or above.
    ///
    /// # Safety
    ///
    /// `p..p + 64` is readable.
    #[target_feature(enable = "sse2")]
    #[inline]
    unsafe fn block_sse2(p: *const u8) -> u64 {
        let space = _mm_set1_epi8(0x20);
        let bias = _mm_set1_epi8(0x77);
        let limit = _mm_set1_epi8(-123);
        let mut mask = 0u64;
        for k in 0..4 {
            // SAFETY: the 16 bytes at `p + 16k` are inside the 64 readable.
            let v = unsafe { _mm_loadu_si128(p.add(16 * k).cast()) };
            let control = _mm_cmpgt_epi8(limit, _mm_add_epi8(v, bias));
            let ws = _mm_or_si128(control, _mm_cmpeq_epi8(v, space));
            mask |= (_mm_movemask_epi8(ws) as u32 as u64) << (16 * k);
        }
        mask
    }

    /// Two 32-byte table lookups per 64-byte block.
    ///
    /// # Safety
    ///
    /// `p..p + 64` is readable; the CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block_avx2(p: *const u8) -> u64 {
        let t = NIBBLE_TABLE;
        // SAFETY: `[t, t]` is 32 bytes; `p..p + 64` is readable.
        let (table, lo, hi) = unsafe {
            (
                _mm256_loadu_si256([t, t].as_ptr().cast()),
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        let ws_lo = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, lo), lo);
        let ws_hi = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, hi), hi);
        let lo = _mm256_movemask_epi8(ws_lo) as u32 as u64;
        let hi = _mm256_movemask_epi8(ws_hi) as u32 as u64;
        lo | hi << 32
    }

    /// One 64-byte table lookup (`vpshufb` looks up within each 16-byte
    /// lane, so the table is repeated in all four) and a compare whose
    /// result is the mask.
    ///
    /// # Safety
    ///
    /// `p..p + 64` is readable; the CPU supports AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    unsafe fn block_avx512(p: *const u8) -> u64 {
        let t = NIBBLE_TABLE;
        // SAFETY: `t` is 16 bytes; `p..p + 64` is readable.
        let (table, v) = unsafe {
            (
                _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast())),
                _mm512_loadu_si512(p.cast()),
            )
        };
        _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(table, v), v)
    }

    /// Positions of the set bits, 16 at a time: `vpcompressd` packs the
    /// lanes of `at + 0..16` whose bit is set, and all 16 lanes are stored
    /// (the ones past the set bits are garbage the next store overwrites).
    ///
    /// # Safety
    ///
    /// `*n + 64 <= POSITIONS`; the CPU supports AVX-512F.
    #[target_feature(enable = "avx512f,popcnt")]
    #[inline]
    unsafe fn flatten_avx512(bits: u64, at: u32, out: &mut [u32; POSITIONS], n: &mut usize) {
        debug_assert!(*n + 64 <= POSITIONS);
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut lanes = _mm512_add_epi32(iota, _mm512_set1_epi32(at as i32));
        let sixteen = _mm512_set1_epi32(16);
        let mut w = *n;
        for q in 0..4 {
            let k = (bits >> (16 * q)) as u16;
            let packed = _mm512_maskz_compress_epi32(k, lanes);
            // SAFETY: `w <= *n + 48`, so the 16 lanes end by `*n + 64`,
            // inside `out` (the caller's bound).
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(w).cast(), packed) };
            w += k.count_ones() as usize;
            lanes = _mm512_add_epi32(lanes, sixteen);
        }
        *n = w;
    }

    /// [`Simd::prepare`], eight words at a time: gather each word's first 8
    /// bytes, keep `len` of them, hash (the same 64-bit arithmetic as
    /// `hash8`, with `vpmullq`), and pack short and long words apart with
    /// `vpcompressq`/`vpcompressd`.
    ///
    /// # Safety
    ///
    /// `base + starts[i] + 8 <= data.len()` for every `i`; `ends` is as long
    /// as `starts`, the outputs have room for `starts.len() + 16`; the CPU
    /// supports AVX-512 F, DQ, VL and POPCNT.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,popcnt")]
    #[inline]
    unsafe fn prepare_avx512(
        data: &[u8],
        base: usize,
        starts: &[u32],
        ends: &[u32],
        keys: &mut [u64],
        tags: &mut [u64],
        long: &mut [u32],
    ) -> (usize, usize) {
        let n = starts.len();
        debug_assert!(ends.len() == n && keys.len() >= n + 16);
        debug_assert!(tags.len() >= n + 16 && long.len() >= n + 16);
        let p = data[base..].as_ptr().cast::<i64>();
        let ones = _mm512_set1_epi64(-1);
        let sixty_four = _mm512_set1_epi64(64);
        let short = _mm512_set1_epi64(SHORT as i64);
        let cap = _mm512_set1_epi64(255);
        let low_byte = _mm512_set1_epi64(0xFF);
        let k0 = _mm512_set1_epi64(HASH_K0 as i64);
        let k1 = _mm512_set1_epi64(HASH_K1 as i64);
        let k2 = _mm512_set1_epi64(HASH_K2 as i64);
        let mut index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let eight = _mm256_set1_epi32(8);
        let (mut n_short, mut n_long) = (0usize, 0usize);
        let mut i = 0;
        while i < n {
            let live: __mmask8 = if n - i >= 8 {
                0xFF
            } else {
                (1u8 << (n - i)) - 1
            };
            // SAFETY: the live lanes of the loads are inside `starts` and
            // `ends`; the gathered lanes are the 8 bytes at the start of
            // live words, inside `data` (the caller's bound); the stores
            // write 8 lanes from `n_short <= i` or `n_long <= i`, inside
            // the outputs' `n + 16`.
            unsafe {
                let s = _mm256_maskz_loadu_epi32(live, starts.as_ptr().add(i).cast());
                let e = _mm256_maskz_loadu_epi32(live, ends.as_ptr().add(i).cast());
                let len = _mm512_cvtepu32_epi64(_mm256_sub_epi32(e, s));
                let w = _mm512_mask_i32gather_epi64::<1>(_mm512_setzero_si512(), live, s, p);
                // Keep the first `len` bytes: all-ones shifted right by
                // 64 - 8 len (a shift of 64 or more gives 0, and lengths
                // over 8 give garbage keys that are not used).
                let drop = _mm512_sub_epi64(sixty_four, _mm512_slli_epi64::<3>(len));
                let key = _mm512_and_si512(w, _mm512_srlv_epi64(ones, drop));
                let h = _mm512_mullo_epi64(_mm512_xor_si512(key, k0), k1);
                let h = _mm512_xor_si512(h, _mm512_srli_epi64::<29>(h));
                let h = _mm512_mullo_epi64(h, k2);
                let tag =
                    _mm512_or_si512(_mm512_andnot_si512(low_byte, h), _mm512_min_epu64(len, cap));
                let is_short = _mm512_mask_cmple_epu64_mask(live, len, short);
                let is_long = live & !is_short;
                _mm512_storeu_si512(
                    keys.as_mut_ptr().add(n_short).cast(),
                    _mm512_maskz_compress_epi64(is_short, key),
                );
                _mm512_storeu_si512(
                    tags.as_mut_ptr().add(n_short).cast(),
                    _mm512_maskz_compress_epi64(is_short, tag),
                );
                _mm256_storeu_si256(
                    long.as_mut_ptr().add(n_long).cast(),
                    _mm256_maskz_compress_epi32(is_long, index),
                );
                n_short += is_short.count_ones() as usize;
                n_long += is_long.count_ones() as usize;
            }
            index = _mm256_add_epi32(index, eight);
            i += 8;
        }
        (n_short, n_long)
    }
}
