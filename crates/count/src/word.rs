//! The word definition and the sizes every scanner shares: a leaf that
//! both the scan loop (`scan`) and the instruction-set steps (`simd`)
//! import, so that neither imports the other's module for them.

/// True for bytes that belong to words: everything but 0x09–0x0D and 0x20.
///
/// This is the whole word definition; every classifier (`scan::Isa`) must agree
/// with it bit for bit (a unit test checks all 256 bytes on each).
#[inline]
pub const fn is_word_byte(b: u8) -> bool {
    !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Bytes classified per pass, a multiple of 64: the unit of the kernel's
/// batches. Measured rather than derived: on the speed issue's kind of
/// corpus, 32 KiB was ~8 % faster than 4 KiB (which kept a chunk and its
/// word positions in L1) and a little faster than 8 or 16; each chunk has
/// fixed costs (loop exits, a call per table, a look-ahead that restarts),
/// and the data and positions stream well enough from L2.
pub(crate) const CHUNK: usize = 32 * 1024;

/// Most word starts (or ends) one chunk can hold, plus room for
/// [`crate::simd::Simd::flatten`]'s unconditional writes past the last one.
pub(crate) const POSITIONS: usize = CHUNK / 2 + 1 + 64;
