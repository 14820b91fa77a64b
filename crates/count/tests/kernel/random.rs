//! Seeded random byte soups, biased toward whitespace and block-sized
//! words, compared with the oracle on every path and many ranges.

use crate::oracle::{assert_same, check_all_paths, oracle, oracle_range};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wclab_count::testing::{count_text_range_with, Isa};
use wclab_count::Counts;

/// Bytes drawn to make boundaries likely: lots of whitespace of all six
/// kinds, a small alphabet (so words repeat), NUL, high bytes, and runs.
fn soup(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    const WS: &[u8] = b"\t\n\x0b\x0c\r ";
    const ODD: &[u8] = b"\x00\x08\x0e\x1f\x21\x7f\x80\x85\xa0\xc2\xff";
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        match rng.random_range(0..100) {
            0..=34 => out.push(WS[rng.random_range(0..WS.len())]),
            35..=79 => out.push(b'a' + rng.random_range(0..4)),
            80..=89 => out.push(ODD[rng.random_range(0..ODD.len())]),
            90..=95 => {
                let n = rng.random_range(1..80);
                out.extend(std::iter::repeat_n(b'x', n));
            }
            _ => {
                let n = rng.random_range(1..80);
                out.extend(std::iter::repeat_n(WS[rng.random_range(0..WS.len())], n));
            }
        }
    }
    out.truncate(len);
    out
}

#[test]
fn random_soups_match_the_oracle_on_every_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for round in 0..60 {
        let len = match round % 3 {
            0 => rng.random_range(0..200),
            1 => rng.random_range(0..20_000),
            _ => rng.random_range(0..3_000_000),
        };
        check_all_paths(&soup(&mut rng, len));
    }
}

#[test]
fn random_ranges_of_random_soups_match_the_oracle() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let isas = Isa::available();
    for _ in 0..300 {
        let len = rng.random_range(0..10_000);
        let data = soup(&mut rng, len);
        let a = rng.random_range(0..=data.len());
        let b = rng.random_range(a..=data.len());
        let isa = isas[rng.random_range(0..isas.len())];
        let counts = count_text_range_with(isa, &data, a..b, Some(1));
        assert_same(
            &counts,
            &oracle_range(&data, a..b),
            &format!("{isa:?} {a}..{b}"),
        );
    }
}

#[test]
fn random_splits_of_a_large_soup_add_up() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let data = soup(&mut rng, 4 << 20);
    let whole = oracle(&data);
    for isa in Isa::available() {
        let mut cuts: Vec<usize> = (0..9).map(|_| rng.random_range(0..=data.len())).collect();
        cuts.extend([0, data.len()]);
        cuts.sort();
        let mut sum = Counts::new();
        for w in cuts.windows(2) {
            let threads = rng.random_range(1..=4);
            sum.merge(count_text_range_with(isa, &data, w[0]..w[1], Some(threads)));
        }
        assert_same(&sum, &whole, &format!("{isa:?} cuts {cuts:?}"));
    }
}

#[test]
fn many_distinct_words_grow_the_table_correctly() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut data = Vec::new();
    for _ in 0..300_000 {
        let len = rng.random_range(1..40);
        data.extend((0..len).map(|_| rng.random_range(b'a'..=b'z')));
        data.push(b' ');
    }
    check_all_paths(&data);
}

#[test]
fn random_ranges_across_several_chunks_match_the_oracle() {
    // Buffers of a few scanner chunks (32 KiB), so that ranges start and
    // end on both sides of chunk boundaries, on every path.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let isas = Isa::available();
    for round in 0..40 {
        let len = rng.random_range(60_000..200_000);
        let data = soup(&mut rng, len);
        let a = rng.random_range(0..=data.len());
        let b = rng.random_range(a..=data.len());
        let isa = isas[round % isas.len()];
        let counts = count_text_range_with(isa, &data, a..b, Some(1));
        assert_same(
            &counts,
            &oracle_range(&data, a..b),
            &format!("{isa:?} {a}..{b}"),
        );
    }
}
