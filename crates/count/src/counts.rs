use crate::table::{self, LongTable, ShortTable, SHORT};
use std::fmt;

/// Exact word frequencies of some input, plus its totals.
///
/// Owns its words: words of up to 8 bytes inside one hash table's entries,
/// up to 16 inside another's, longer ones in one arena, so a `Counts` made
/// from a memory-mapped file outlives the map and costs one allocation per
/// table growth rather than one per word. The kernel counts straight into
/// a `Counts` (one per thread, reused across the files it counts).
#[derive(Clone, Default)]
pub struct Counts {
    pub(crate) short: ShortTable,
    pub(crate) long: LongTable,
    /// Bytes of the words longer than 16 bytes.
    pub(crate) arena: Vec<u8>,
    /// Count of the empty word, which no input yields but `add` accepts.
    empty: u64,
    pub(crate) words: u64,
}

impl Counts {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty result with room for about `n` distinct words before its
    /// tables first grow.
    pub fn with_capacity(n: usize) -> Self {
        Counts {
            short: ShortTable::with_capacity(n),
            long: LongTable::with_capacity(n / 4),
            arena: Vec::new(),
            empty: 0,
            words: 0,
        }
    }

    /// Adds `n` occurrences of `word`.
    pub fn add(&mut self, word: &[u8], n: u64) {
        if n == 0 {
            return;
        }
        self.add_word(word, n);
        self.words += n;
    }

    /// [`Counts::add`] without the total.
    #[inline]
    pub(crate) fn add_word(&mut self, word: &[u8], n: u64) {
        match word.len() {
            0 => self.empty += n,
            len @ 1..=SHORT => self.short.add(table::key8(word), len, n),
            _ => self.long.add(&mut self.arena, word, n),
        }
    }

    /// Adds every count of `other` to this one.
    pub fn merge(&mut self, other: Counts) {
        let (mut a, b) = if self.distinct() >= other.distinct() {
            (std::mem::take(self), other)
        } else {
            (other, std::mem::take(self))
        };
        a.short.merge(&b.short);
        for (word, n) in b.long.iter(&b.arena) {
            a.long.add(&mut a.arena, word, n);
        }
        a.empty += b.empty;
        a.words += b.words;
        *self = a;
    }

    /// How often `word` occurred.
    pub fn get(&self, word: &[u8]) -> u64 {
        match word.len() {
            0 => self.empty,
            len @ 1..=SHORT => self.short.get(table::key8(word), len),
            _ => self.long.get(&self.arena, word),
        }
    }

    /// Number of distinct words.
    pub fn distinct(&self) -> usize {
        self.short.len() + self.long.len() + (self.empty > 0) as usize
    }

    /// An upper bound of the bytes of this result written as a tally (a
    /// `count word` line per distinct word): the words' bytes (each long
    /// word is in the arena once) plus, per word, a count of at most 20
    /// digits, a space, a newline and a short word's 16 bytes. Cheap to
    /// take after every task, where writing the tally is not.
    pub fn tally_bytes_at_most(&self) -> usize {
        self.arena.len() + self.distinct() * (20 + 1 + 1 + SHORT)
    }

    /// Total number of words (with repetitions).
    pub fn total(&self) -> u64 {
        self.words
    }

    /// True when no word was seen.
    pub fn is_empty(&self) -> bool {
        self.distinct() == 0
    }

    /// Every distinct word with its count, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        let empty = (self.empty > 0).then_some((&b""[..], self.empty));
        self.short
            .iter()
            .chain(self.long.iter(&self.arena))
            .chain(empty)
    }

    /// Every distinct word with its count, most frequent first, ties in
    /// byte order: a stable order for reports and tests.
    pub fn sorted(&self) -> Vec<(&[u8], u64)> {
        let mut v: Vec<_> = self.iter().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }
}

impl<'a> IntoIterator for &'a Counts {
    type Item = (&'a [u8], u64);
    type IntoIter = Box<dyn Iterator<Item = (&'a [u8], u64)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Equal when every word has the same count (table layout does not matter).
impl PartialEq for Counts {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
            && self.distinct() == other.distinct()
            && self.iter().all(|(w, n)| other.get(w) == n)
    }
}

impl Eq for Counts {}

/// Shows words as (lossy) UTF-8, most frequent first.
impl fmt::Debug for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Words<'a>(&'a Counts);
        impl fmt::Debug for Words<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(
                        self.0
                            .sorted()
                            .into_iter()
                            .map(|(w, n)| (String::from_utf8_lossy(w), n)),
                    )
                    .finish()
            }
        }
        f.debug_struct("Counts")
            .field("total", &self.words)
            .field("distinct", &self.distinct())
            .field("words", &Words(self))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_every_length_round_trip() {
        let mut c = Counts::new();
        let words: Vec<Vec<u8>> = (0..100).map(|n| vec![b'a' + (n % 26) as u8; n]).collect();
        for (i, w) in words.iter().enumerate() {
            c.add(w, i as u64 + 1);
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(c.get(w), i as u64 + 1, "len {}", w.len());
        }
        assert_eq!(c.distinct(), 100);
        assert_eq!(c.total(), (1..=100).sum::<u64>());
        assert_eq!(c.get(b"zz"), 0);
    }

    #[test]
    fn padding_is_not_confused_with_nul_bytes() {
        let mut c = Counts::new();
        c.add(b"a", 1);
        c.add(b"a\0", 2);
        c.add(b"a\0\0\0\0\0\0\0\0", 3);
        c.add(b"", 4);
        assert_eq!(c.distinct(), 4);
        assert_eq!(c.get(b"a"), 1);
        assert_eq!(c.get(b"a\0"), 2);
        assert_eq!(c.get(b"a\0\0\0\0\0\0\0\0"), 3);
        assert_eq!(c.get(b""), 4);
    }

    #[test]
    fn merge_keeps_long_words_of_both_sides() {
        let long_a = vec![b'x'; 40];
        let long_b = vec![b'y'; 40];
        let mut a = Counts::new();
        a.add(&long_a, 1);
        a.add(b"the", 2);
        let mut b = Counts::new();
        b.add(&long_b, 3);
        b.add(&long_a, 4);
        b.add(b"of", 1);
        b.add(b"the", 1);
        a.merge(b);
        assert_eq!(a.get(&long_a), 5);
        assert_eq!(a.get(&long_b), 3);
        assert_eq!(a.get(b"the"), 3);
        assert_eq!(a.total(), 12);
        assert_eq!(a.distinct(), 4);
    }

    #[test]
    fn growing_many_times_loses_nothing() {
        let mut c = Counts::new();
        for i in 0..50_000u32 {
            let w = format!("word{i}-{}", "z".repeat((i % 30) as usize));
            c.add(w.as_bytes(), 1);
        }
        assert_eq!(c.distinct(), 50_000);
        let last = format!("word49999-{}", "z".repeat(49_999 % 30));
        assert_eq!(c.get(last.as_bytes()), 1);
        assert!(c.iter().all(|(_, n)| n == 1));
    }

    #[test]
    fn counts_is_send_static_clone_debug_default() {
        fn check<T: Send + Sync + 'static + Clone + fmt::Debug + Default + Eq>() {}
        check::<Counts>();
    }
}
