//! The word → count hash table shared by the kernel and [`crate::Counts`].
//!
//! Open addressing with linear probing over 32-byte slots. A word of up to
//! [`INLINE`] bytes is stored *in* its slot, zero-padded, so the hot path
//! (English words are short) compares two `u64`s and a length and never
//! touches the input again. A longer word keeps its first 8 bytes in the slot
//! (a cheap first check) and an offset into a *store*: the counted input
//! while the kernel runs, an owned arena once the table belongs to a
//! `Counts`. Handing a table from one store to the other copies the long
//! words and leaves every slot where it is, because hashes depend on the
//! bytes only; that is what makes the kernel's result cheap to keep after
//! the input is unmapped.
//!
//! Memory is proportional to the distinct words, never to the input size.
//!
//! The hash is a folded 64×64→128 multiply of the (zero-padded) first 16
//! bytes, and of every 16 bytes for longer words: fast, and well spread on
//! text. It is not keyed, so crafted input could make it collide; inputs to
//! a word count are the submitter's own files, and collisions only cost
//! time, never correctness.

/// Words up to this many bytes live inside their slot.
pub(crate) const INLINE: usize = 16;

/// `Slot::len` of an unused slot (a real word has `len <= isize::MAX`).
const EMPTY: u64 = u64::MAX;

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xD6E8_FEB8_6659_FD93;
const K2: u64 = 0xA076_1D64_78BD_642F;
const K3: u64 = 0xE703_7ED1_A0B4_28DB;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Slot {
    /// A short word's bytes, zero-padded; for a long word, its first 8 bytes
    /// then its offset in the store (little-endian).
    key: [u8; INLINE],
    len: u64,
    count: u64,
}

impl Slot {
    const VACANT: Slot = Slot {
        key: [0; INLINE],
        len: EMPTY,
        count: 0,
    };

    #[inline(always)]
    fn w0(&self) -> u64 {
        u64::from_le_bytes(self.key[..8].try_into().unwrap())
    }

    #[inline(always)]
    fn w1(&self) -> u64 {
        u64::from_le_bytes(self.key[8..].try_into().unwrap())
    }

    fn is_vacant(&self) -> bool {
        self.len == EMPTY
    }

    /// The word's bytes; `store` is the table's store.
    pub(crate) fn word<'a>(&'a self, store: &'a [u8]) -> &'a [u8] {
        let len = self.len as usize;
        if len <= INLINE {
            &self.key[..len]
        } else {
            let at = self.w1() as usize;
            &store[at..at + len]
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Points a long word's slot at `offset` in the store.
    fn set_offset(&mut self, offset: usize) {
        self.key[8..].copy_from_slice(&(offset as u64).to_le_bytes());
    }
}

/// Multiplies and folds the 128-bit product: the mixing step of the hash.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    p as u64 ^ (p >> 64) as u64
}

/// The hash of a word of at most [`INLINE`] bytes, from its key.
#[inline(always)]
pub(crate) fn hash_short(w0: u64, w1: u64, len: usize) -> u64 {
    fold(w0 ^ K0, w1 ^ K1 ^ len as u64)
}

fn hash_long(word: &[u8]) -> u64 {
    let read = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
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

/// The key of a word of at most [`INLINE`] bytes: its bytes, zero-padded.
#[inline]
pub(crate) fn short_key(word: &[u8]) -> (u64, u64) {
    let mut key = [0u8; INLINE];
    key[..word.len()].copy_from_slice(word);
    (
        u64::from_le_bytes(key[..8].try_into().unwrap()),
        u64::from_le_bytes(key[8..].try_into().unwrap()),
    )
}

/// The key of `data[at..at + len]`, `1 <= len <= 16`, as [`short_key`]
/// would give it, with two plain loads when 16 bytes are readable.
#[inline(always)]
pub(crate) fn load_short_key(data: &[u8], at: usize, len: usize) -> (u64, u64) {
    debug_assert!((1..=INLINE).contains(&len));
    let (w0, w1) = match data.get(at..at + 16) {
        Some(b) => (
            u64::from_le_bytes(b[..8].try_into().unwrap()),
            u64::from_le_bytes(b[8..].try_into().unwrap()),
        ),
        None => return short_key(&data[at..at + len]),
    };
    let (m0, m1) = KEY_MASKS[len];
    (w0 & m0, w1 & m1)
}

/// `KEY_MASKS[len]` keeps the first `len` bytes of a 16-byte load: a table
/// lookup is cheaper than the variable 128-bit shift it replaces.
static KEY_MASKS: [(u64, u64); INLINE + 1] = {
    let mut t = [(0, 0); INLINE + 1];
    let mut len = 1;
    while len <= INLINE {
        let m = u128::MAX >> (128 - 8 * len);
        t[len] = (m as u64, (m >> 64) as u64);
        len += 1;
    }
    t
};

/// An open-addressing word table. Long words point into a store the caller
/// passes to every call (the same one each time).
#[derive(Clone, Default)]
pub(crate) struct Table {
    /// A power of two many slots, or none before the first insert.
    slots: Vec<Slot>,
    used: usize,
}

impl Table {
    /// A table that holds `n` words before it first grows.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Table {
            slots: vacant_slots(Self::slots_for(n)),
            used: 0,
        }
    }

    fn slots_for(n: usize) -> usize {
        (n.max(8) * 2).next_power_of_two()
    }

    /// Distinct words.
    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// The occupied slots, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.slots.iter().filter(|s| !s.is_vacant())
    }

    /// Adds `n` to a word of at most [`INLINE`] bytes given by its key.
    #[inline]
    pub(crate) fn add_short(&mut self, store: &[u8], key: (u64, u64), len: usize, n: u64) {
        let hash = hash_short(key.0, key.1, len);
        self.add_short_hashed(store, key, len, hash, n);
    }

    /// Hints the CPU to fetch the slot where a word of hash `hash` would be
    /// probed first. The kernel calls it a few words ahead, so that the
    /// cache misses on rare words overlap instead of stalling one by one.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some(slot) = self
            .slots
            .get(hash as usize & self.slots.len().wrapping_sub(1))
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: a prefetch is only a hint and cannot fault; the
            // pointer is to a live slot anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((slot as *const Slot).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// [`Table::add_short`] with the hash already computed by
    /// [`hash_short`]. The hot path of the kernel.
    #[inline(always)]
    pub(crate) fn add_short_hashed(
        &mut self,
        store: &[u8],
        (w0, w1): (u64, u64),
        len: usize,
        hash: u64,
        n: u64,
    ) {
        debug_assert!(len <= INLINE);
        if self.slots.is_empty() {
            self.grow(store);
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.len == len as u64 && slot.w0() == w0 && slot.w1() == w1 {
                slot.count += n;
                return;
            }
            if slot.is_vacant() {
                slot.key[..8].copy_from_slice(&w0.to_le_bytes());
                slot.key[8..].copy_from_slice(&w1.to_le_bytes());
                slot.len = len as u64;
                slot.count = n;
                self.used += 1;
                if self.used * 2 > self.slots.len() {
                    self.grow(store);
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Finds the slot of a word longer than [`INLINE`] bytes, or makes one
    /// with count 0. A new slot's offset is unset: the caller must call
    /// `set_offset` on it (the `bool` is true) before using the table again.
    fn entry_long(&mut self, store: &[u8], word: &[u8]) -> (&mut Slot, bool) {
        debug_assert!(word.len() > INLINE);
        // Grow first: growing rehashes long words through their offsets, and
        // the new slot has none yet.
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow(store);
        }
        let w0 = u64::from_le_bytes(word[..8].try_into().unwrap());
        let mask = self.slots.len() - 1;
        let mut i = hash_long(word) as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.is_vacant() {
                break;
            }
            if slot.len == word.len() as u64 && slot.w0() == w0 && slot.word(store) == word {
                return (&mut self.slots[i], false);
            }
            i = (i + 1) & mask;
        }
        self.used += 1;
        let slot = &mut self.slots[i];
        slot.key[..8].copy_from_slice(&word[..8]);
        slot.len = word.len() as u64;
        slot.count = 0;
        (slot, true)
    }

    /// Adds `n` to `store[at..at + len]`, `len > INLINE`, which stays in
    /// `store` for as long as the table uses it.
    pub(crate) fn add_long_in_store(&mut self, store: &[u8], at: usize, len: usize, n: u64) {
        let (slot, new) = self.entry_long(store, &store[at..at + len]);
        if new {
            slot.set_offset(at);
        }
        slot.count += n;
    }

    /// Adds `n` to `word`, `word.len() > INLINE`, appending it to `arena`
    /// (the store) if it is new.
    pub(crate) fn add_long_owned(&mut self, arena: &mut Vec<u8>, word: &[u8], n: u64) {
        let (slot, new) = self.entry_long(arena, word);
        if new {
            slot.set_offset(arena.len());
            arena.extend_from_slice(word);
        }
        slot.count += n;
    }

    /// The count of `word`, 0 when absent.
    pub(crate) fn get(&self, store: &[u8], word: &[u8]) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.slots.len() - 1;
        let (mut i, w0, w1) = if word.len() <= INLINE {
            let (w0, w1) = short_key(word);
            (hash_short(w0, w1, word.len()) as usize & mask, w0, w1)
        } else {
            let w0 = u64::from_le_bytes(word[..8].try_into().unwrap());
            (hash_long(word) as usize & mask, w0, 0)
        };
        loop {
            let slot = &self.slots[i];
            if slot.is_vacant() {
                return 0;
            }
            if slot.len == word.len() as u64
                && slot.w0() == w0
                && (if word.len() <= INLINE {
                    slot.w1() == w1
                } else {
                    slot.word(store) == word
                })
            {
                return slot.count;
            }
            i = (i + 1) & mask;
        }
    }

    /// Moves every long word of a table whose store is `from` into `arena`
    /// (and points the slots there). Slots keep their places.
    pub(crate) fn rehome(&mut self, from: &[u8], arena: &mut Vec<u8>) {
        for slot in &mut self.slots {
            if !slot.is_vacant() && slot.len as usize > INLINE {
                let at = arena.len();
                arena.extend_from_slice(slot.word(from));
                slot.set_offset(at);
            }
        }
    }

    /// Doubles the slots (or makes the first ones) and reinserts every word.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, store: &[u8]) {
        let size = if self.slots.is_empty() {
            Self::slots_for(0)
        } else {
            self.slots.len() * 2
        };
        let old = std::mem::replace(&mut self.slots, vacant_slots(size));
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| !s.is_vacant()) {
            let len = slot.len as usize;
            let h = if len <= INLINE {
                hash_short(slot.w0(), slot.w1(), len)
            } else {
                hash_long(slot.word(store))
            };
            let mut i = h as usize & mask;
            while !self.slots[i].is_vacant() {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

/// `n` vacant slots. A big table is asked to be backed by 2 MiB pages: its
/// accesses are random, and with 4 KiB pages nearly each one would also miss
/// the TLB (under virtualisation a TLB miss costs a two-level page walk).
fn vacant_slots(n: usize) -> Vec<Slot> {
    let mut v = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    advise_huge_pages(v.spare_capacity_mut());
    v.resize(n, Slot::VACANT);
    v
}

/// Marks the 2 MiB-aligned part of `memory` for transparent huge pages,
/// before it is first touched (pages are chosen when they first fault).
/// Best effort: errors (no THP support, say) are ignored.
#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(memory: &mut [std::mem::MaybeUninit<T>]) {
    const HUGE: usize = 2 << 20;
    let start = memory.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(memory);
    let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
    if lo < hi {
        // SAFETY: `lo..hi` lies inside `memory`, which this function borrows
        // mutably, so no one else uses it; MADV_HUGEPAGE changes how the
        // memory is backed, never its contents or validity.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
    }
}
