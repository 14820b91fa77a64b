//! The reference: Python's `bytes.split()`, written as plainly as possible
//! so that it is obviously right. Everything else is compared against it.

use std::collections::HashMap;
use std::ops::Range;
use wclab_count::testing::{count_text_range_with, Isa};
use wclab_count::{Counter, Counts};

pub fn is_space(b: u8) -> bool {
    matches!(b, 0x09 | 0x0A | 0x0B | 0x0C | 0x0D | 0x20)
}

/// Word → count, by splitting on the six whitespace bytes.
pub fn oracle(data: &[u8]) -> HashMap<Vec<u8>, u64> {
    let mut map = HashMap::new();
    for word in data.split(|&b| is_space(b)).filter(|w| !w.is_empty()) {
        *map.entry(word.to_vec()).or_insert(0) += 1;
    }
    map
}

/// The oracle for the words starting in `range`, each running to its end.
pub fn oracle_range(data: &[u8], range: Range<usize>) -> HashMap<Vec<u8>, u64> {
    let mut map = HashMap::new();
    for i in range {
        let starts = !is_space(data[i]) && (i == 0 || is_space(data[i - 1]));
        if starts {
            let len = data[i..].iter().take_while(|&&b| !is_space(b)).count();
            *map.entry(data[i..i + len].to_vec()).or_insert(0) += 1;
        }
    }
    map
}

/// Asserts that `counts` holds exactly `expected`, totals included.
#[track_caller]
pub fn assert_same(counts: &Counts, expected: &HashMap<Vec<u8>, u64>, what: &str) {
    let got: HashMap<Vec<u8>, u64> = counts.iter().map(|(w, n)| (w.to_vec(), n)).collect();
    assert_eq!(
        got.len(),
        counts.distinct(),
        "{what}: iter and distinct disagree"
    );
    if &got != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|(w, n)| got.get(*w) != Some(n))
            .take(5)
            .map(|(w, n)| {
                (
                    String::from_utf8_lossy(w).into_owned(),
                    *n,
                    got.get(w).copied(),
                )
            })
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|w| !expected.contains_key(*w))
            .take(5)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        panic!("{what}: counts differ; (word, expected, got): {missing:?}; unexpected: {extra:?}");
    }
    assert_eq!(
        counts.total(),
        expected.values().sum::<u64>(),
        "{what}: total"
    );
    for (w, &n) in expected {
        assert_eq!(counts.get(w), n, "{what}: get");
    }
}

/// Checks `data` whole on every classifier and 1..=4 threads, and through
/// the public `Counter`.
#[track_caller]
pub fn check_all_paths(data: &[u8]) {
    let expected = oracle(data);
    assert_same(&Counter::new().count_text(data), &expected, "Counter");
    for isa in Isa::available() {
        for threads in 1..=4 {
            let counts = count_text_range_with(isa, data, 0..data.len(), Some(threads));
            assert_same(&counts, &expected, &format!("{isa:?}, {threads} threads"));
        }
    }
}

#[test]
fn the_oracle_is_bytes_split() {
    let m = oracle(b" a\x0bb\x0cc\x85d\xa0e  a\t\r\n");
    assert_eq!(m.len(), 3);
    assert_eq!(m[&b"a"[..]], 2);
    assert_eq!(m[&b"c\x85d\xa0e"[..]], 1);
}
