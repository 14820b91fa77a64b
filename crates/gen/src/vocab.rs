//! A large Zipf vocabulary: the source's real words at the head, made-up
//! English-like words in the tail.
//!
//! The bundled excerpt has only some 3,600 distinct words, while real
//! corpora of a few hundred MB have tens of thousands (the speed issue's
//! corpus: 86 k). Distinct words decide how big a counting kernel's hash
//! table gets and how often it misses the cache, so benchmarks need them.
//! [`Vocabulary`] ranks the source's own words by their frequency in the
//! source, then appends synthetic words (syllables, shortest first) up to
//! the requested size, and draws ranks with a Zipf law (weight `1 / rank`),
//! so the frequent words are real English and the rare ones are many.

use std::collections::{BTreeMap, HashSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::source::{self, pick};

/// Syllables of the made-up words: common English letter pairs and triples.
const SYLLABLES: &[&str] = &[
    "ab", "ac", "al", "an", "ar", "as", "at", "be", "bo", "ca", "ce", "ch", "co", "de", "di", "do",
    "el", "en", "er", "es", "ex", "fa", "fi", "for", "ge", "gra", "ha", "he", "hi", "in", "is",
    "it", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "on", "or", "ou",
    "pa", "pe", "po", "pro", "qu", "ra", "re", "ri", "ro", "sa", "se", "sh", "si", "so", "st",
    "ta", "te", "th", "ti", "to", "tr", "un", "ur", "ve", "vi", "wa", "we", "wh",
];

/// Endings added to some made-up words.
const SUFFIXES: &[&str] = &["s", "ed", "ing", "ly", "er", "ness", "tion"];

/// Words ranked by frequency with a Zipf sampler over the ranks.
pub(crate) struct Vocabulary {
    words: Vec<String>,
    /// `cdf[r]`: sum of `1 / (k + 1)` for `k <= r`.
    cdf: Vec<f64>,
}

impl Vocabulary {
    /// `size` words (at least the source's own), the same for the same
    /// `rng` state.
    pub(crate) fn new(size: usize, rng: &mut ChaCha8Rng) -> Self {
        let mut words = real_words_by_frequency();
        let mut seen: HashSet<String> = words.iter().cloned().collect();
        // Shorter words first, as in real languages: made-up words are
        // generated in batches of rising syllable count.
        let mut syllables = 1;
        let mut misses = 0;
        while words.len() < size {
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(pick(rng, SYLLABLES));
            }
            if rng.random_range(0..3u32) == 0 {
                w.push_str(pick(rng, SUFFIXES));
            }
            if seen.insert(w.clone()) {
                words.push(w);
                misses = 0;
            } else {
                // This length is nearly exhausted: move to longer words.
                misses += 1;
                if misses > 64 {
                    syllables += 1;
                    misses = 0;
                }
            }
        }
        let mut cdf = Vec::with_capacity(words.len());
        let mut acc = 0.0f64;
        for rank in 1..=words.len() {
            acc += 1.0 / rank as f64;
            cdf.push(acc);
        }
        Vocabulary { words, cdf }
    }

    /// A word drawn with probability proportional to `1 / rank`.
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> &str {
        let total = *self.cdf.last().expect("a vocabulary is never empty");
        let x = rng.random::<f64>() * total;
        let rank = self.cdf.partition_point(|&c| c < x);
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// Appends a sentence of 6 to 24 drawn words: capitalised, with a
    /// comma now and then and a full stop at the end.
    pub(crate) fn sentence(&self, rng: &mut impl Rng, line: &mut Vec<u8>) {
        let n = rng.random_range(6..=24u32);
        for k in 0..n {
            if k > 0 {
                line.push(b' ');
            }
            let word = self.draw(rng).as_bytes();
            let at = line.len();
            line.extend_from_slice(word);
            if k == 0 {
                line[at] = line[at].to_ascii_uppercase();
            }
            if k + 1 < n && rng.random_range(0..12u32) == 0 {
                line.push(b',');
            }
        }
        line.push(b'.');
    }
}

/// The source's words stripped of punctuation, most frequent first (ties
/// in byte order, so the ranking is deterministic).
fn real_words_by_frequency() -> Vec<String> {
    let mut freq: BTreeMap<&str, u64> = BTreeMap::new();
    for w in source::source_text().split_ascii_whitespace() {
        let w = w.trim_matches(|c: char| c.is_ascii_punctuation());
        if !w.is_empty() {
            *freq.entry(w).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, u64)> = freq.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.into_iter().map(|(w, _)| w.to_owned()).collect()
}
