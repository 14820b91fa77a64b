//! The bundled source text, split into verses and clauses once.

use std::sync::LazyLock;

use rand::Rng;

static SOURCE: &str = include_str!("../data/kjv-excerpt.txt");

/// The bundled public-domain text (King James Bible excerpt), one verse per
/// line. Useful for tests that want to know which words can occur.
pub fn source_text() -> &'static str {
    SOURCE
}

pub(crate) struct Verse {
    pub text: &'static str,
    /// Byte offsets of clause punctuation (`,` `;` `:`) followed by a space
    /// and more text: the places where a verse can be cut in two.
    pub cuts: Vec<usize>,
}

impl Verse {
    /// The verse up to and including the punctuation at `cut`.
    pub fn head(&self, cut: usize) -> &'static str {
        &self.text[..=cut]
    }

    /// The verse after the punctuation and space at `cut`.
    pub fn tail(&self, cut: usize) -> &'static str {
        &self.text[cut + 2..]
    }
}

pub(crate) static VERSES: LazyLock<Vec<Verse>> = LazyLock::new(|| {
    SOURCE
        .lines()
        .filter(|l| !l.is_empty())
        .map(|text| {
            let b = text.as_bytes();
            let cuts = (0..b.len().saturating_sub(2))
                .filter(|&i| matches!(b[i], b',' | b';' | b':') && b[i + 1] == b' ')
                .collect();
            Verse { text, cuts }
        })
        .collect()
});

/// A uniformly chosen element. Indexes are drawn as `u32` so the choice is
/// the same on 32- and 64-bit machines.
pub(crate) fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len() as u32) as usize]
}

pub(crate) fn verse(rng: &mut impl Rng) -> &'static Verse {
    &VERSES[rng.random_range(0..VERSES.len() as u32) as usize]
}

/// `s` cut at the last space so that it is at most `max` bytes (the source is
/// ASCII, so bytes are characters).
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    match s[..max].rfind(' ') {
        Some(i) if i > 0 => &s[..i],
        _ => &s[..max],
    }
}
