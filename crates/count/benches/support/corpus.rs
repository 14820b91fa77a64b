//! A deterministic, English-like benchmark corpus.
//!
//! Shared by `benches/kernel.rs` and `examples/throughput.rs` (through
//! `#[path]`), so the figures the lead quotes and the criterion numbers are
//! measured on the same bytes. Real text would be nicer, but the benchmark
//! must run on any machine, so the corpus is synthesised: a vocabulary of
//! made-up words with English-like lengths, sampled with a Zipf law (s = 1),
//! with capitals, punctuation and line breaks sprinkled in. That gives word
//! lengths, distinct-word counts (tens of thousands) and a skew close to
//! real prose, which is what decides the speed of a hash-table kernel.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Size of the vocabulary the corpus samples from.
const VOCABULARY: usize = 60_000;

/// Roughly `bytes` bytes of English-like text, the same for the same input.
pub fn english_like(bytes: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_c0de);
    let vocab = vocabulary(&mut rng);
    // Cumulative Zipf weights 1/rank, sampled by binary search.
    let mut cdf = Vec::with_capacity(vocab.len());
    let mut acc = 0.0f64;
    for rank in 1..=vocab.len() {
        acc += 1.0 / rank as f64;
        cdf.push(acc);
    }
    let mut out = Vec::with_capacity(bytes + 64);
    let mut words_on_line = 0;
    let mut sentence_start = true;
    while out.len() < bytes {
        let x = rng.random::<f64>() * acc;
        let word = &vocab[cdf.partition_point(|&c| c < x).min(vocab.len() - 1)];
        let start = out.len();
        out.extend_from_slice(word);
        if sentence_start {
            out[start] = out[start].to_ascii_uppercase();
            sentence_start = false;
        }
        match rng.random_range(0..100) {
            0..=5 => out.push(b','),
            6..=9 => {
                out.push(b'.');
                sentence_start = true;
            }
            10 => out.push(b';'),
            _ => {}
        }
        words_on_line += 1;
        if words_on_line >= 12 && rng.random_range(0..4) == 0 {
            out.push(b'\n');
            words_on_line = 0;
        } else {
            out.push(b' ');
        }
    }
    out
}

/// Made-up lowercase words; lengths follow English (mean ~4.7 letters for
/// running text once Zipf favours the short, frequent ones).
fn vocabulary(rng: &mut ChaCha8Rng) -> Vec<Vec<u8>> {
    const COMMON: &[&str] = &[
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
        "by", "on", "not", "he", "i", "this", "are", "or", "his", "from", "at", "which", "but",
        "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her",
        "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    ];
    const SYLLABLES: &[&str] = &[
        "ab", "ac", "al", "an", "ar", "as", "at", "be", "ca", "ce", "co", "de", "di", "el", "en",
        "er", "es", "ex", "fa", "ge", "ha", "he", "in", "is", "it", "la", "le", "li", "lo", "ma",
        "me", "mi", "mo", "na", "ne", "no", "on", "or", "pa", "pe", "po", "pro", "ra", "re", "ri",
        "ro", "sa", "se", "si", "so", "st", "ta", "te", "ti", "to", "tr", "un", "ur", "ve", "vi",
    ];
    let mut vocab: Vec<Vec<u8>> = COMMON.iter().map(|w| w.as_bytes().to_vec()).collect();
    let mut seen: std::collections::HashSet<Vec<u8>> = vocab.iter().cloned().collect();
    while vocab.len() < VOCABULARY {
        let syllables = 1 + rng.random_range(0..3) + rng.random_range(0..3);
        let mut w = Vec::new();
        for _ in 0..syllables {
            w.extend_from_slice(SYLLABLES[rng.random_range(0..SYLLABLES.len())].as_bytes());
        }
        if rng.random_range(0..3) == 0 {
            w.extend_from_slice([&b"s"[..], b"ed", b"ing", b"ly"][rng.random_range(0..4)]);
        }
        if seen.insert(w.clone()) {
            vocab.push(w);
        }
    }
    vocab
}
