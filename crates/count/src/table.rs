//! The word → count hash tables that [`crate::Counts`] is made of, and that
//! the kernel counts into.
//!
//! Two open-addressing tables with linear probing, by word length:
//!
//! * [`ShortTable`], for words of up to [`SHORT`] (8) bytes — some 95 % of
//!   the words of English text — has 16-byte entries: the word's bytes,
//!   zero-padded, as one `u64`, and a `u64` holding the count above a
//!   length byte. Finding a word is one 64-bit load and mask of the input,
//!   two multiplies, and (nearly always) one compare of an entry that four
//!   share a cache line with. The home entry of a word is given by the
//!   *top* bits of its hash ([`hash8`]), which depend on all its bytes.
//! * [`LongTable`], for longer words, has 32-byte slots: a word of up to
//!   [`INLINE`] (16) bytes is stored in its slot; a longer one keeps its
//!   first 8 bytes there (a cheap first check) and an offset into an
//!   *arena* of word bytes that the caller owns and passes to every call.
//!   A long word is copied into the arena the first time it is seen, so a
//!   table never points into the input and can be kept, and reused for the
//!   next file, after the input is unmapped.
//!
//! Memory is proportional to the distinct words, never to the input size
//! (a single huge word is copied into the arena once, so it counts by its
//! length).
//!
//! Both are all-zero when empty (a zero length marks a vacant entry), so a
//! new table is `calloc`ed memory that the OS hands over lazily; both grow
//! when 3/4 full.
//!
//! The hashes are multiplies of the zero-padded bytes (16 at a time, folded
//! 128-bit products, for long words): fast, and well spread on text. They
//! are not keyed, so crafted input could make them collide; inputs to a
//! word count are the submitter's own files, and collisions only cost time,
//! never correctness.

/// Words up to this many bytes go to the [`ShortTable`].
pub(crate) const SHORT: usize = 8;

/// Words up to this many bytes (and over [`SHORT`]) live inside their
/// [`LongTable`] slot.
pub(crate) const INLINE: usize = 16;

/// Constants of the hashes (odd, well-mixed 64-bit numbers).
pub(crate) const HASH_K0: u64 = 0x9E37_79B9_7F4A_7C15;
pub(crate) const HASH_K1: u64 = 0xD6E8_FEB8_6659_FD93;
pub(crate) const HASH_K2: u64 = 0xA076_1D64_78BD_642F;
const K3: u64 = 0xE703_7ED1_A0B4_28DB;
use {HASH_K0 as K0, HASH_K1 as K1, HASH_K2 as K2};

/// Multiplies and folds the 128-bit product: the mixing step of the hash.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    p as u64 ^ (p >> 64) as u64
}

/// Keeps the first `len` bytes (in memory order) of `w`, a native-endian
/// load of 8 bytes, and zeroes the rest, for `1 <= len <= 8`. Other
/// lengths give an unspecified value (the kernel computes it for every
/// word, and uses it for the short ones only: no branch, no clamp).
#[inline(always)]
pub(crate) fn first_bytes(w: u64, len: u32) -> u64 {
    let drop = 64u32.wrapping_sub(len.wrapping_mul(8)) & 63;
    if cfg!(target_endian = "little") {
        w & u64::MAX >> drop
    } else {
        w & u64::MAX << drop
    }
}

/// The key of a word of at most 8 bytes: its bytes, zero-padded, read as a
/// native-endian `u64` (so the key's bytes in memory are the word's).
///
/// Built from two overlapping loads (or three single bytes), not a
/// variable-length copy, which would be a call to `memcpy`.
#[inline]
pub(crate) fn key8(word: &[u8]) -> u64 {
    let n = word.len();
    debug_assert!(n <= 8);
    // The bytes as a little-endian number: byte `i` at bits `8i..`.
    let le = if n >= 4 {
        let lo = u32::from_le_bytes(word[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(word[n - 4..].try_into().unwrap()) as u64;
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        let (a, b, c) = (word[0] as u64, word[n / 2] as u64, word[n - 1] as u64);
        a | b << (8 * (n / 2)) | c << (8 * (n - 1))
    } else {
        0
    };
    // Native-endian, so that the key's bytes in memory are the word's.
    u64::from_le(le)
}

/// `data[at..at + 8]` as a native-endian `u64`, or the zero-padded rest of
/// `data` near its end.
#[inline(always)]
pub(crate) fn load8(data: &[u8], at: usize) -> u64 {
    match data.get(at..at + 8) {
        Some(b) => u64::from_ne_bytes(b.try_into().unwrap()),
        None => key8(&data[at..]),
    }
}

/// The hash of a short word's key ([`key8`]). A multiply and a
/// xor-shift-multiply, all 64-bit wrapping arithmetic so that AVX-512
/// (`vpmullq`) computes the same values eight at a time; tables index
/// with its *top* bits, which depend on every bit of the key.
#[inline(always)]
pub(crate) fn hash8(key: u64) -> u64 {
    let h = (key ^ K0).wrapping_mul(K1);
    (h ^ h >> 29).wrapping_mul(K2)
}

/// A word's tag for [`ShortTable::count_batch`]: the hash of its key with
/// the length (capped at 255) in the low byte. Tags of words longer than
/// [`SHORT`] have a low byte above 8.
#[inline(always)]
pub(crate) fn tag(key: u64, len: u32) -> u64 {
    hash8(key) & !0xFF | len.min(255) as u64
}

/// One [`ShortTable`] entry: the key (the word's bytes, zero-padded) and
/// `count << 8 | len` (0: vacant). Byte arrays rather than `u64`s so that a
/// table is allocated zeroed (`vec![[0; 16]; n]` is a `calloc`) and the
/// key's bytes can be lent out as the word.
type Entry = [u8; 16];

#[inline(always)]
fn entry_key(e: &Entry) -> u64 {
    u64::from_ne_bytes(e[..8].try_into().unwrap())
}

#[inline(always)]
fn entry_meta(e: &Entry) -> u64 {
    u64::from_ne_bytes(e[8..].try_into().unwrap())
}

#[inline(always)]
fn set_entry(e: &mut Entry, key: u64, meta: u64) {
    e[..8].copy_from_slice(&key.to_ne_bytes());
    set_meta(e, meta);
}

#[inline(always)]
fn set_meta(e: &mut Entry, meta: u64) {
    e[8..].copy_from_slice(&meta.to_ne_bytes());
}

/// `meta` of an entry: the count above the length byte.
const COUNT_ONE: u64 = 1 << 8;

/// Words of at most [`SHORT`] bytes → counts. See the module doc.
#[derive(Clone, Default)]
pub(crate) struct ShortTable {
    /// A power of two many entries, or none before the first insert.
    entries: Vec<Entry>,
    /// `64 - log2(entries.len())`: a hash's home entry is `hash >> shift`.
    shift: u32,
    used: usize,
}

impl ShortTable {
    /// A table that holds `n` words before it first grows.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let size = slots_for(n);
        ShortTable {
            entries: zeroed(size),
            shift: 64 - size.trailing_zeros(),
            used: 0,
        }
    }

    /// Distinct words.
    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// Every word with its count.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.entries.iter().filter_map(|e| {
            let meta = entry_meta(e);
            (meta != 0).then(|| (&e[..(meta & 0xFF) as usize], meta >> 8))
        })
    }

    /// Counts a batch of short words, one occurrence each: word `i` has
    /// key `keys[i]` and tag `tags[i]` ([`tag`]). `tags` is `ahead` entries
    /// longer than `keys`: the entry of word `i + ahead` is prefetched
    /// while word `i` is counted, so that the cache misses on rare words
    /// overlap instead of stalling one by one (the extra tags may be
    /// stale: a prefetch is only a hint).
    ///
    /// The hot loop of the kernel. The table first makes room for every
    /// word of the batch being new, so that it cannot grow inside the loop
    /// and the entries' address and shift stay in registers. Not inlined
    /// into the scanner, whose many live values would push the loop's own
    /// into memory (one call per chunk of some 700 words costs nothing).
    #[inline(never)]
    pub(crate) fn count_batch(&mut self, keys: &[u64], tags: &[u64], ahead: usize) {
        assert_eq!(tags.len(), keys.len() + ahead);
        while too_full(self.used + keys.len(), self.entries.len()) {
            self.grow();
        }
        let base = self.entries.as_mut_ptr();
        let mask = self.entries.len() - 1;
        let shift = self.shift;
        let mut used = self.used;
        // The first `ahead` words' entries, which the loop's look-ahead
        // does not reach: without this, each batch would start with up to
        // `ahead` unprefetched misses.
        for &t in &tags[..ahead.min(keys.len())] {
            prefetch(base.wrapping_add((t >> shift) as usize));
        }
        for (&key, (&tag, &later)) in keys.iter().zip(tags.iter().zip(&tags[ahead..])) {
            debug_assert!(tag as u8 as usize <= SHORT && tag >> 8 == hash8(key) >> 8);
            prefetch(base.wrapping_add((later >> shift) as usize));
            let mut at = (tag >> shift) as usize;
            loop {
                // SAFETY: `base` points to `self.entries`, `mask + 1` of
                // them, a power of two, and `at <= mask`: a top-bits home
                // (`>> shift`) is below `2^(64 - shift) = mask + 1`, and a
                // probe is masked. No other reference to the entries is
                // alive, and the table does not grow in this loop.
                let e = unsafe { &mut *base.add(at) };
                let meta = entry_meta(e);
                if entry_key(e) == key && meta as u8 == tag as u8 {
                    set_meta(e, meta + COUNT_ONE);
                    break;
                }
                if meta == 0 {
                    set_entry(e, key, COUNT_ONE | (tag & 0xFF));
                    used += 1;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        self.used = used;
    }

    /// Adds `n >= 1` to the word of key `key` ([`key8`]) and length
    /// `1 <= len <= 8`.
    pub(crate) fn add(&mut self, key: u64, len: usize, n: u64) {
        debug_assert!((1..=SHORT).contains(&len) && n >= 1);
        if self.entries.is_empty() {
            self.grow();
        }
        let mask = self.entries.len() - 1;
        let mut at = (hash8(key) >> self.shift) as usize;
        loop {
            let e = &mut self.entries[at];
            let meta = entry_meta(e);
            if entry_key(e) == key && meta & 0xFF == len as u64 {
                set_meta(e, meta + n * COUNT_ONE);
                return;
            }
            if meta == 0 {
                set_entry(e, key, (n * COUNT_ONE) | len as u64);
                self.used += 1;
                if too_full(self.used, self.entries.len()) {
                    self.grow();
                }
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// The count of the word of key `key` and length `len`, 0 when absent.
    pub(crate) fn get(&self, key: u64, len: usize) -> u64 {
        if self.entries.is_empty() {
            return 0;
        }
        let mask = self.entries.len() - 1;
        let mut at = (hash8(key) >> self.shift) as usize;
        loop {
            let e = &self.entries[at];
            let meta = entry_meta(e);
            if meta == 0 {
                return 0;
            }
            if entry_key(e) == key && meta & 0xFF == len as u64 {
                return meta >> 8;
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds every word of `other`.
    pub(crate) fn merge(&mut self, other: &ShortTable) {
        for e in other.entries.iter().filter(|e| entry_meta(e) != 0) {
            let (key, meta) = (entry_key(e), entry_meta(e));
            self.add(key, (meta & 0xFF) as usize, meta >> 8);
        }
    }

    /// Doubles the entries (or makes the first ones) and reinserts every
    /// word.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(slots_for(0));
        let old = std::mem::replace(&mut self.entries, zeroed(size));
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for e in old.iter().filter(|e| entry_meta(e) != 0) {
            let mut at = (hash8(entry_key(e)) >> self.shift) as usize;
            while entry_meta(&self.entries[at]) != 0 {
                at = (at + 1) & mask;
            }
            self.entries[at] = *e;
        }
    }
}

/// One [`LongTable`] slot, four native-endian `u64`s: the first 8 bytes of
/// the word; the next 8 (a word of at most [`INLINE`] bytes, zero-padded)
/// or the word's offset in the arena; the length (0: vacant); the count.
type Slot = [u8; 32];

#[inline(always)]
fn word_at(s: &Slot, k: usize) -> u64 {
    u64::from_ne_bytes(s[8 * k..8 * k + 8].try_into().unwrap())
}

#[inline(always)]
fn set_word(s: &mut Slot, k: usize, v: u64) {
    s[8 * k..8 * k + 8].copy_from_slice(&v.to_ne_bytes());
}

/// The slot's word; `arena` is the table's arena.
fn slot_word<'a>(s: &'a Slot, arena: &'a [u8]) -> &'a [u8] {
    let len = word_at(s, 2) as usize;
    if len <= INLINE {
        &s[..len]
    } else {
        let at = word_at(s, 1) as usize;
        &arena[at..at + len]
    }
}

/// The hash of a word of `SHORT < len <= INLINE` bytes from its two words.
#[inline(always)]
pub(crate) fn hash16(w0: u64, w1: u64, len: usize) -> u64 {
    fold(w0 ^ K0, w1 ^ K1 ^ len as u64)
}

/// The hash of a word of more than [`INLINE`] bytes.
pub(crate) fn hash_long(word: &[u8]) -> u64 {
    let read = |b: &[u8], at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().unwrap());
    let mut h = K2 ^ word.len() as u64;
    let mut blocks = word.chunks_exact(16);
    for b in &mut blocks {
        h = fold(read(b, 0) ^ K0 ^ h, read(b, 8) ^ K1);
    }
    if !blocks.remainder().is_empty() {
        // The last 16 bytes, overlapping the previous block (len > 16).
        let last = &word[word.len() - 16..];
        h = fold(read(last, 0) ^ K3 ^ h, read(last, 8) ^ K1);
    }
    h
}

/// The hash of any word of the [`LongTable`].
fn hash_any_long(word: &[u8]) -> u64 {
    if word.len() <= INLINE {
        let w0 = load8(word, 0);
        let w1 = key8(&word[8..]);
        hash16(w0, w1, word.len())
    } else {
        hash_long(word)
    }
}

/// Words of more than [`SHORT`] bytes → counts. See the module doc.
#[derive(Clone, Default)]
pub(crate) struct LongTable {
    /// A power of two many slots, or none before the first insert.
    slots: Vec<Slot>,
    used: usize,
}

impl LongTable {
    /// A table that holds `n` words before it first grows.
    pub(crate) fn with_capacity(n: usize) -> Self {
        LongTable {
            slots: zeroed(slots_for(n)),
            used: 0,
        }
    }

    /// Distinct words.
    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// Every word with its count; `arena` is the table's.
    pub(crate) fn iter<'a>(&'a self, arena: &'a [u8]) -> impl Iterator<Item = (&'a [u8], u64)> {
        self.slots
            .iter()
            .filter(|s| word_at(s, 2) != 0)
            .map(move |s| (slot_word(s, arena), word_at(s, 3)))
    }

    /// Makes room for `n` more words, so that [`LongTable::count_batch`]
    /// of up to `n` words does not grow the table (and so that the slots a
    /// [`LongTable::prefetch`] fetched stay where they are).
    #[inline(always)]
    pub(crate) fn reserve(&mut self, arena: &[u8], n: usize) {
        while too_full(self.used + n, self.slots.len()) {
            self.grow(arena);
        }
    }

    /// Hints the CPU to fetch the slot where a word of hash `hash` is
    /// probed first.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        let mask = self.slots.len().wrapping_sub(1);
        prefetch(self.slots.as_ptr().wrapping_add(hash as usize & mask));
    }

    /// Counts a batch of words of `SHORT < len <= INLINE` bytes, one
    /// occurrence each: `words[i]` is `[w0, w1, len, hash]` (the first 8
    /// bytes, the rest zero-padded, the length, [`hash16`]). The caller has
    /// made room for them ([`LongTable::reserve`]) and, since there are
    /// few per chunk (5 % of English words), prefetched their slots as it
    /// made their hashes.
    #[inline(never)]
    pub(crate) fn count_batch(&mut self, arena: &[u8], words: &[[u64; 4]]) {
        self.reserve(arena, words.len());
        let base = self.slots.as_mut_ptr();
        let mask = self.slots.len() - 1;
        let mut used = self.used;
        for &[w0, w1, len, hash] in words {
            debug_assert!((SHORT as u64 + 1..=INLINE as u64).contains(&len));
            let mut at = hash as usize & mask;
            loop {
                // SAFETY: `base` points to `self.slots`, `mask + 1` of
                // them, and `at` is masked. No other reference to the slots
                // is alive, and the table does not grow in this loop.
                let s = unsafe { &mut *base.add(at) };
                let slen = word_at(s, 2);
                if slen == len && word_at(s, 0) == w0 && word_at(s, 1) == w1 {
                    set_word(s, 3, word_at(s, 3) + 1);
                    break;
                }
                if slen == 0 {
                    set_word(s, 0, w0);
                    set_word(s, 1, w1);
                    set_word(s, 2, len);
                    set_word(s, 3, 1);
                    used += 1;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        self.used = used;
    }

    /// Adds `n` to the word (`SHORT < len <= INLINE`) whose first 8 bytes
    /// are `w0` and the rest `w1`, zero-padded; `arena` is the table's.
    #[inline(always)]
    pub(crate) fn add_inline(&mut self, arena: &[u8], w0: u64, w1: u64, len: usize, n: u64) {
        debug_assert!((SHORT + 1..=INLINE).contains(&len));
        if self.needs_room() {
            self.grow(arena);
        }
        let mask = self.slots.len() - 1;
        let mut i = hash16(w0, w1, len) as usize & mask;
        loop {
            let s = &mut self.slots[i];
            let slen = word_at(s, 2);
            if slen == len as u64 && word_at(s, 0) == w0 && word_at(s, 1) == w1 {
                set_word(s, 3, word_at(s, 3) + n);
                return;
            }
            if slen == 0 {
                set_word(s, 0, w0);
                set_word(s, 1, w1);
                set_word(s, 2, len as u64);
                set_word(s, 3, n);
                self.used += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `n` to a word longer than [`SHORT`] bytes, copying it into
    /// `arena` if it is new and longer than [`INLINE`].
    pub(crate) fn add(&mut self, arena: &mut Vec<u8>, word: &[u8], n: u64) {
        let len = word.len();
        debug_assert!(len > SHORT);
        if len <= INLINE {
            return self.add_inline(arena, load8(word, 0), key8(&word[8..]), len, n);
        }
        // Grow first: growing rehashes long words through the arena, and a
        // new slot has no offset until the word is copied there.
        if self.needs_room() {
            self.grow(arena);
        }
        let w0 = load8(word, 0);
        let mask = self.slots.len() - 1;
        let mut i = hash_long(word) as usize & mask;
        loop {
            let s = &self.slots[i];
            let slen = word_at(s, 2);
            if slen == 0 {
                break;
            }
            if slen == len as u64 && word_at(s, 0) == w0 && slot_word(s, arena) == word {
                let s = &mut self.slots[i];
                set_word(s, 3, word_at(s, 3) + n);
                return;
            }
            i = (i + 1) & mask;
        }
        let s = &mut self.slots[i];
        set_word(s, 0, w0);
        set_word(s, 1, arena.len() as u64);
        set_word(s, 2, len as u64);
        set_word(s, 3, n);
        arena.extend_from_slice(word);
        self.used += 1;
    }

    /// True when one more word would make the table more than 3/4 full.
    #[inline(always)]
    fn needs_room(&self) -> bool {
        too_full(self.used + 1, self.slots.len())
    }

    /// The count of `word` (longer than [`SHORT`] bytes), 0 when absent.
    pub(crate) fn get(&self, arena: &[u8], word: &[u8]) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash_any_long(word) as usize & mask;
        loop {
            let s = &self.slots[i];
            let slen = word_at(s, 2);
            if slen == 0 {
                return 0;
            }
            if slen == word.len() as u64 && slot_word(s, arena) == word {
                return word_at(s, 3);
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the slots (or makes the first ones) and reinserts every word.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, arena: &[u8]) {
        let size = (self.slots.len() * 2).max(slots_for(0));
        let old = std::mem::replace(&mut self.slots, zeroed(size));
        let mask = size - 1;
        for s in old.iter().filter(|s| word_at(s, 2) != 0) {
            let mut i = hash_any_long(slot_word(s, arena)) as usize & mask;
            while word_at(&self.slots[i], 2) != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = *s;
        }
    }
}

/// Slots for a table that holds `n` words at most half full.
fn slots_for(n: usize) -> usize {
    (n.max(8) * 2).next_power_of_two()
}

/// True when `used` words are too many for `slots` slots: more than 3/4
/// full. Linear probing stays short at that load on text, where the
/// frequent words are inserted first and sit in their home slot, and the
/// table is half the size it would be at 1/2 (two megabytes rather than
/// four for 70 k short words), which matters more: its random accesses
/// miss the caches less.
#[inline(always)]
fn too_full(used: usize, slots: usize) -> bool {
    // An empty table (`Counts::new()`) has no slots at all: it must grow
    // before its first batch, even an empty one, whose mask would be -1.
    slots == 0 || used * 4 > slots * 3
}

/// Hints the CPU to bring the cache line at `p` into L1.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it cannot fault, whatever the
    // address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `n` zeroed entries: `calloc`, whose pages the OS zeroes when first
/// touched. A big table is asked to be backed by 2 MiB pages: its accesses
/// are random, and with 4 KiB pages nearly each one would also miss the TLB
/// (under virtualisation a TLB miss costs a two-level page walk).
fn zeroed<const N: usize>(n: usize) -> Vec<[u8; N]> {
    let v = vec![[0u8; N]; n];
    #[cfg(target_os = "linux")]
    advise_huge_pages(&v);
    v
}

/// Marks the 2 MiB-aligned part of `memory` for transparent huge pages.
/// Best effort: errors (no THP support, say) are ignored. Pages are chosen
/// when first touched, and `calloc`ed memory this large is fresh from the
/// OS, untouched.
#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(memory: &[T]) {
    const HUGE: usize = 2 << 20;
    let start = memory.as_ptr() as usize;
    let end = start + std::mem::size_of_val(memory);
    let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
    if lo < hi {
        // SAFETY: `lo..hi` lies inside `memory`, which is borrowed;
        // MADV_HUGEPAGE changes how the memory is backed, never its
        // contents or validity.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key as plainly as possible: the bytes, zero-padded.
    fn padded(word: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b[..word.len()].copy_from_slice(word);
        u64::from_ne_bytes(b)
    }

    #[test]
    fn keys_and_loads_are_the_zero_padded_bytes() {
        let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        for at in 0..bytes.len() {
            for len in 0..=8.min(bytes.len() - at) {
                let word = &bytes[at..at + len];
                assert_eq!(key8(word), padded(word), "key8 {word:?}");
                if len > 0 {
                    let w = load8(&bytes, at);
                    assert_eq!(first_bytes(w, len as u32), padded(word), "{word:?}");
                }
            }
        }
        // Near the end of the data, load8 pads with zeros.
        assert_eq!(load8(&bytes, 60), padded(&bytes[60..]));
    }

    #[test]
    fn tags_carry_the_length_and_the_hash() {
        for len in 1..=300u32 {
            let t = tag(0x1234, len);
            assert_eq!(t as u8 as u32, len.min(255));
            assert_eq!(t >> 8, hash8(0x1234) >> 8);
        }
    }

    #[test]
    fn the_short_table_counts_batches_and_single_words_alike() {
        let words: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes())
            .filter(|w| w.len() <= SHORT)
            .collect();
        let keys: Vec<u64> = words.iter().map(|w| key8(w)).collect();
        let mut tags: Vec<u64> = words
            .iter()
            .zip(&keys)
            .map(|(w, &k)| tag(k, w.len() as u32))
            .collect();
        tags.extend([0; 4]);
        let mut batched = ShortTable::default();
        for (i, k) in keys.chunks(777).enumerate() {
            batched.count_batch(k, &tags[777 * i..][..k.len() + 4], 4);
        }
        let mut single = ShortTable::with_capacity(3);
        for (w, &k) in words.iter().zip(&keys) {
            single.add(k, w.len(), 1);
        }
        assert_eq!(batched.len(), single.len());
        for (w, &k) in words.iter().zip(&keys) {
            assert_eq!(batched.get(k, w.len()), single.get(k, w.len()), "{w:?}");
        }
        let sorted = |t: &ShortTable| {
            let mut v: Vec<(Vec<u8>, u64)> = t.iter().map(|(w, n)| (w.to_vec(), n)).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&batched), sorted(&single));
    }
}
