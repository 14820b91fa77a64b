//! The oracle: Python's `bytes.split()`, written as plainly as possible.

use std::collections::HashMap;
use std::path::Path;

/// Word → count.
pub type WordMap = HashMap<Vec<u8>, u64>;

/// Counts the words of `data`: maximal runs of bytes other than
/// 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20.
pub fn count(data: &[u8], into: &mut WordMap) {
    let ws = |b: u8| b == 9 || b == 10 || b == 11 || b == 12 || b == 13 || b == 32;
    for word in data.split(|&b| ws(b)).filter(|w| !w.is_empty()) {
        *into.entry(word.to_vec()).or_insert(0) += 1;
    }
}

/// Counts every file under `root` (recursively).
pub fn count_tree(root: &Path) -> WordMap {
    let mut map = WordMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if meta.is_file() {
            count(&std::fs::read(&p).unwrap(), &mut map);
        }
    }
    map
}

/// Reads a `word<TAB>count` file as written by `wclab --output`.
pub fn read_tsv(path: &Path) -> Vec<(Vec<u8>, u64)> {
    let data = std::fs::read(path).unwrap();
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let tab = line
                .iter()
                .rposition(|&b| b == b'\t')
                .expect("a tab in every line");
            let n = std::str::from_utf8(&line[tab + 1..])
                .unwrap()
                .parse()
                .unwrap();
            (line[..tab].to_vec(), n)
        })
        .collect()
}

/// Panics with the first few differences if `got` is not `want`.
pub fn assert_same(got: &WordMap, want: &WordMap) {
    let mut diffs = Vec::new();
    for (w, n) in want {
        let g = got.get(w).copied().unwrap_or(0);
        if g != *n {
            diffs.push(format!(
                "{:?}: got {g}, want {n}",
                String::from_utf8_lossy(w)
            ));
        }
    }
    for (w, g) in got {
        if !want.contains_key(w) {
            diffs.push(format!(
                "{:?}: got {g}, want none",
                String::from_utf8_lossy(w)
            ));
        }
    }
    diffs.sort();
    assert!(
        diffs.is_empty(),
        "{} words differ from the oracle, e.g.:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(10)].join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_splits_like_python_bytes_split() {
        let mut m = WordMap::new();
        count(b"a\x0bb\x0cc\r\nd\te  f\xc2\xa0g", &mut m);
        let mut words: Vec<_> = m.keys().cloned().collect();
        words.sort();
        assert_eq!(
            words,
            vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"d".to_vec(),
                b"e".to_vec(),
                b"f\xc2\xa0g".to_vec()
            ]
        );
    }
}
