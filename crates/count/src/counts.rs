use ahash::AHashMap;

/// Exact word frequencies of some input, plus its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    map: AHashMap<Box<[u8]>, u64>,
    words: u64,
}

impl Counts {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` occurrences of `word`.
    pub fn add(&mut self, word: &[u8], n: u64) {
        if let Some(c) = self.map.get_mut(word) {
            *c += n;
        } else {
            self.map.insert(word.into(), n);
        }
        self.words += n;
    }

    /// Adds every count of `other` to this one.
    pub fn merge(&mut self, other: Counts) {
        if self.map.len() < other.map.len() {
            let mine = std::mem::replace(self, other);
            self.merge(mine);
            return;
        }
        for (w, n) in other.map {
            *self.map.entry(w).or_insert(0) += n;
        }
        self.words += other.words;
    }

    /// How often `word` occurred.
    pub fn get(&self, word: &[u8]) -> u64 {
        self.map.get(word).copied().unwrap_or(0)
    }

    /// Number of distinct words.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// Total number of words (with repetitions).
    pub fn total(&self) -> u64 {
        self.words
    }

    /// True when no word was seen.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every distinct word with its count, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.map.iter().map(|(w, n)| (&**w, *n))
    }
}
