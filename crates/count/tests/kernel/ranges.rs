//! The range ownership rule: a range counts the words that start in it.

use crate::oracle::{assert_same, oracle, oracle_range};
use wclab_count::testing::{count_text_range_with, Isa};
use wclab_count::{Counter, Counts};

const SMALL: &[u8] = b" ab  c\td\r\n\x0beee f\x0cg  hh i\xa0j \xffk  l";

#[test]
fn each_range_counts_exactly_the_words_starting_in_it() {
    for isa in Isa::available() {
        for a in 0..=SMALL.len() {
            for b in a..=SMALL.len() {
                let counts = count_text_range_with(isa, SMALL, a..b, Some(1));
                assert_same(
                    &counts,
                    &oracle_range(SMALL, a..b),
                    &format!("{isa:?} {a}..{b}"),
                );
            }
        }
    }
}

#[test]
fn splitting_at_every_offset_into_two_and_three_ranges_adds_up() {
    let whole = oracle(SMALL);
    let n = SMALL.len();
    let counter = Counter::new();
    for i in 0..=n {
        let mut sum = counter.count_text_range(SMALL, 0..i);
        sum.merge(counter.count_text_range(SMALL, i..n));
        assert_same(&sum, &whole, &format!("split at {i}"));
        for j in i..=n {
            let mut sum = Counts::new();
            for r in [0..i, i..j, j..n] {
                sum.merge(counter.count_text_range(SMALL, r));
            }
            assert_same(&sum, &whole, &format!("split at {i}, {j}"));
        }
    }
}

#[test]
fn splitting_a_buffer_with_block_sized_words_into_k_ranges_adds_up() {
    // Words of 60-70 bytes so that ranges end right around 64-byte blocks.
    let mut data = Vec::new();
    for i in 0..40 {
        data.extend(std::iter::repeat_n(b'a' + (i % 5) as u8, 60 + i % 11));
        data.extend_from_slice(if i % 3 == 0 { b" \r\n" } else { b" " });
    }
    let whole = oracle(&data);
    for isa in Isa::available() {
        for k in 2..=7 {
            for shift in 0..64 {
                let step = data.len() / k;
                let mut cuts: Vec<usize> =
                    (1..k).map(|i| (i * step + shift).min(data.len())).collect();
                cuts.insert(0, 0);
                cuts.push(data.len());
                let mut sum = Counts::new();
                for w in cuts.windows(2) {
                    sum.merge(count_text_range_with(isa, &data, w[0]..w[1], Some(1)));
                }
                assert_same(&sum, &whole, &format!("{isa:?} k={k} shift={shift}"));
            }
        }
    }
}

#[test]
fn a_word_running_past_the_range_end_is_counted_whole_once() {
    let data = b"alpha beta gamma";
    let c = Counter::new().count_text_range(data, 0..8);
    assert_eq!(c.get(b"beta"), 1);
    assert_eq!(c.get(b"alpha"), 1);
    assert_eq!(c.distinct(), 2);
    let c = Counter::new().count_text_range(data, 8..data.len());
    assert_eq!(c.get(b"gamma"), 1);
    assert_eq!(c.distinct(), 1);
}

#[test]
fn out_of_bounds_and_empty_ranges_are_clamped() {
    let data = b"one two";
    assert!(Counter::new().count_text_range(data, 3..3).is_empty());
    assert!(Counter::new().count_text_range(data, 100..200).is_empty());
    assert_eq!(Counter::new().count_text_range(data, 4..100).get(b"two"), 1);
}

#[test]
fn a_big_file_split_at_many_points_adds_up_with_threads() {
    let para = b"lorem ipsum\tdolor sit amet,\r\nconsectetur adipiscing elit \x0b sed do ";
    let data: Vec<u8> = para.iter().copied().cycle().take(5 << 20).collect();
    let whole = oracle(&data);
    for threads in 1..=4 {
        let counter = Counter::new().threads(Some(threads));
        let mut sum = Counts::new();
        let cuts = [0, 1 << 20, (1 << 20) + 1, (3 << 20) + 17, 5 << 20];
        for w in cuts.windows(2) {
            sum.merge(counter.count_text_range(&data, w[0]..w[1]));
        }
        assert_same(&sum, &whole, &format!("{threads} threads"));
    }
}
