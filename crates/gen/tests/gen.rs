//! Properties of the generated corpora.

use std::path::Path;

use wclab_gen::{
    text_corpus, tweet_corpus, GenError, Manifest, TextOptions, TweetOptions, MAX_TWEET_CHARS,
    TWEET_HEADER,
};

/// Every file's bytes, in manifest order.
fn contents(m: &Manifest) -> Vec<Vec<u8>> {
    m.paths().map(|p| std::fs::read(p).unwrap()).collect()
}

fn text_opts(dir: &Path, seed: u64) -> TextOptions {
    TextOptions {
        files: 3,
        bytes_per_file: 200_000,
        seed,
        ..TextOptions::new(dir)
    }
}

fn tweet_opts(dir: &Path, seed: u64) -> TweetOptions {
    TweetOptions {
        files: 2,
        rows: 2_000,
        seed,
        ..TweetOptions::new(dir)
    }
}

mod text {
    use super::*;

    #[test]
    fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ma = text_corpus(&text_opts(a.path(), 7)).unwrap();
        let mb = text_corpus(&text_opts(b.path(), 7)).unwrap();
        let mc = text_corpus(&text_opts(c.path(), 8)).unwrap();
        assert_eq!(contents(&ma), contents(&mb));
        assert_ne!(contents(&ma), contents(&mc));
        // Files within one corpus differ from each other too.
        let files = contents(&ma);
        assert_ne!(files[0], files[1]);
    }

    #[test]
    fn a_file_does_not_depend_on_how_many_files_are_generated() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let three = text_corpus(&text_opts(a.path(), 1)).unwrap();
        let one = text_corpus(&TextOptions {
            files: 1,
            ..text_opts(b.path(), 1)
        })
        .unwrap();
        assert_eq!(contents(&three)[0], contents(&one)[0]);
    }

    #[test]
    fn files_are_the_requested_size_to_within_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let m = text_corpus(&text_opts(dir.path(), 3)).unwrap();
        assert_eq!(m.files.len(), 3);
        for (f, bytes) in m.files.iter().zip(contents(&m)) {
            assert_eq!(f.bytes, bytes.len() as u64);
            assert!((200_000..200_000 + 2_048).contains(&f.bytes), "{f:?}");
            assert_eq!(
                f.records,
                bytes.iter().filter(|&&b| b == b'\n').count() as u64
            );
            assert!(bytes.ends_with(b"\n"));
            assert!(std::str::from_utf8(&bytes).is_ok());
        }
        assert_eq!(m.total_bytes, m.files.iter().map(|f| f.bytes).sum::<u64>());
    }

    #[test]
    fn the_text_is_real_english_with_a_varied_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let m = text_corpus(&text_opts(dir.path(), 5)).unwrap();
        let all = contents(&m).concat();
        let text = String::from_utf8(all).unwrap();
        let mut words: Vec<&str> = text.split_ascii_whitespace().collect();
        let total = words.len();
        words.sort_unstable();
        let the = words.iter().filter(|w| **w == "the").count();
        words.dedup();
        assert!(words.len() > 2_000, "{} distinct words", words.len());
        // "the" is the most common English word: a few percent of all words.
        assert!(the * 100 / total >= 3, "{the} of {total}");
    }

    fn distinct_words(m: &Manifest) -> (usize, usize) {
        let all = contents(m).concat();
        let mut words: Vec<&[u8]> = all.split(|b| b.is_ascii_whitespace()).collect();
        words.retain(|w| !w.is_empty());
        let total = words.len();
        words.sort_unstable();
        words.dedup();
        (words.len(), total)
    }

    #[test]
    fn a_zipf_vocabulary_gives_many_more_distinct_words_and_stays_english() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let plain = text_corpus(&text_opts(a.path(), 4)).unwrap();
        let opts = TextOptions {
            vocab: Some(20_000),
            files: 4,
            bytes_per_file: 1_000_000,
            ..text_opts(b.path(), 4)
        };
        let big = text_corpus(&opts).unwrap();
        let (plain_distinct, _) = distinct_words(&plain);
        let (big_distinct, total) = distinct_words(&big);
        assert!(
            big_distinct > 4 * plain_distinct,
            "{big_distinct} vs {plain_distinct}"
        );
        // The head is still real English: "the" a few percent of all words.
        let all = contents(&big).concat();
        let the = all
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| *w == b"the")
            .count();
        assert!(the * 100 / total >= 3, "{the} of {total}");
        assert!(std::str::from_utf8(&all).is_ok());
        for (f, bytes) in big.files.iter().zip(contents(&big)) {
            assert!((1_000_000..1_000_000 + 2_048).contains(&f.bytes), "{f:?}");
            assert!(bytes.ends_with(b"\n"));
        }
    }

    #[test]
    fn a_vocabulary_corpus_is_deterministic_and_per_file_independent() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let opts = |dir: &Path, files| TextOptions {
            vocab: Some(5_000),
            files,
            ..text_opts(dir, 9)
        };
        let a = text_corpus(&opts(dirs[0].path(), 3)).unwrap();
        let b = text_corpus(&opts(dirs[1].path(), 3)).unwrap();
        let one = text_corpus(&opts(dirs[2].path(), 1)).unwrap();
        assert_eq!(contents(&a), contents(&b));
        assert_eq!(contents(&a)[0], contents(&one)[0]);
        // Without the option, the bytes are those of the plain generator.
        let plain = text_corpus(&text_opts(dirs[2].path(), 9)).unwrap();
        assert_ne!(contents(&a)[0], contents(&plain)[0]);
    }

    #[test]
    fn nested_spreads_files_over_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TextOptions {
            files: 8,
            bytes_per_file: 1_000,
            nested: true,
            ..TextOptions::new(dir.path().join("corpus"))
        };
        let m = text_corpus(&opts).unwrap();
        assert!(dir.path().join("corpus/a/b").is_dir());
        assert!(dir.path().join("corpus/c").is_dir());
        assert!(m
            .files
            .iter()
            .any(|f| f.path.parent() == Some(Path::new(""))));
        assert!(m.files.iter().any(|f| f.path.starts_with("a/b")));
        for p in m.paths() {
            assert!(p.is_file(), "{}", p.display());
        }
    }

    #[test]
    fn an_unusable_output_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = text_corpus(&TextOptions::new(file.join("out"))).unwrap_err();
        assert!(matches!(err, GenError::CreateDir { .. }));
        let msg = err.to_string();
        assert!(msg.contains("not-a-dir/out"), "{msg}");
    }

    #[test]
    fn the_manifest_serializes_to_json() {
        let dir = tempfile::tempdir().unwrap();
        let m = text_corpus(&TextOptions {
            files: 1,
            bytes_per_file: 10,
            ..TextOptions::new(dir.path())
        })
        .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["files"][0]["path"], "part-0000.txt");
        assert_eq!(json["total_bytes"], m.total_bytes);
    }
}

mod tweets {
    use super::*;

    #[test]
    fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ma = tweet_corpus(&tweet_opts(a.path(), 7)).unwrap();
        let mb = tweet_corpus(&tweet_opts(b.path(), 7)).unwrap();
        let mc = tweet_corpus(&tweet_opts(c.path(), 8)).unwrap();
        assert_eq!(contents(&ma), contents(&mb));
        assert_ne!(contents(&ma), contents(&mc));
    }

    #[test]
    fn tweets_parse_back_and_hold_the_rfc_4180_hard_cases() {
        let dir = tempfile::tempdir().unwrap();
        let m = tweet_corpus(&tweet_opts(dir.path(), 11)).unwrap();
        let mut texts = Vec::new();
        let mut ids = Vec::new();
        for (f, path) in m.files.iter().zip(m.paths()) {
            assert_eq!(f.bytes, std::fs::metadata(&path).unwrap().len());
            let mut r = csv::Reader::from_path(&path).unwrap();
            assert_eq!(r.headers().unwrap(), TWEET_HEADER.as_slice());
            let mut rows = 0;
            for rec in r.records() {
                let rec = rec.unwrap();
                assert_eq!(rec.len(), 5);
                ids.push(rec[0].parse::<u64>().unwrap());
                assert_eq!(rec[1].len(), "2021-01-01T00:00:00Z".len());
                rec[4].parse::<u64>().unwrap();
                assert!(rec[3].chars().count() <= MAX_TWEET_CHARS);
                texts.push(rec[3].to_string());
                rows += 1;
            }
            assert_eq!(rows, 2_000);
            assert_eq!(f.records, 2_000);
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");

        let some = |p: &dyn Fn(&str) -> bool| texts.iter().any(|t| p(t));
        assert!(some(&|t| t.contains(',')), "commas");
        assert!(some(&|t| t.contains('"')), "quotes");
        assert!(some(&|t| t.contains('\n')), "newlines");
        assert!(some(&|t| t.contains(" #")), "hashtags");
        assert!(some(&|t| t.starts_with('@')), "mentions");
        assert!(some(&|t| !t.is_ascii()), "non-ASCII");
        assert!(some(&|t| t.is_empty()), "empty");
    }

    /// FNV-1a, 64 bits: a checksum simple enough to never change.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn seed_0_gives_the_same_first_file_on_every_machine_and_version() {
        // Pinned: a change here changes every corpus made with `wclab gen
        // tweets` (the lab's figures, anyone's saved expectations). If the
        // change is meant, update the figures and this checksum together.
        let dir = tempfile::tempdir().unwrap();
        let m = tweet_corpus(&TweetOptions {
            files: 1,
            ..TweetOptions::new(dir.path())
        })
        .unwrap();
        assert_eq!(m.files[0].records, TweetOptions::DEFAULT_ROWS as u64);
        let bytes = &contents(&m)[0];
        assert_eq!(
            (bytes.len(), fnv1a(bytes)),
            (31_575, 0x9bcd_f6ad_fa3e_d549),
            "tweets-0000.csv of seed 0 changed"
        );
    }

    #[test]
    fn quotes_are_doubled_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let m = tweet_corpus(&tweet_opts(dir.path(), 2)).unwrap();
        let raw = String::from_utf8(contents(&m).concat()).unwrap();
        assert!(raw.contains("\"\""));
        // More physical lines than records: some fields hold newlines.
        assert!(raw.lines().count() > 2 * 2_001);
    }
}
