//! Whole buffers of every awkward kind, on every path.

use crate::oracle::check_all_paths;

#[test]
fn plain_english() {
    check_all_paths(
        b"In the beginning God created the heaven and the earth. And the earth was \
          without form, and void; and darkness was upon the face of the deep.\n",
    );
}

#[test]
fn crlf_line_ends_split_words() {
    check_all_paths(b"one two\r\nthree\r\n\r\nfour\rfive\n\rsix\r\n");
}

#[test]
fn tabs_vertical_tabs_and_form_feeds_split_words() {
    check_all_paths(b"a\tb\x0bc\x0cd\t\t\x0b\x0c e\x0bf");
}

#[test]
fn unicode_spaces_do_not_split() {
    // U+00A0 (C2 A0), U+2003 (E2 80 83), U+3000 (E3 80 80) and NEL (C2 85)
    // are not ASCII whitespace: they are part of the word.
    let text = "caf\u{e9} na\u{ef}ve a\u{a0}b c\u{2003}d e\u{3000}f g\u{85}h \u{1F600} \u{a0}";
    check_all_paths(text.as_bytes());
    let counts = wclab_count::Counter::new().count_text(text.as_bytes());
    assert_eq!(counts.get("a\u{a0}b".as_bytes()), 1);
    assert_eq!(counts.get(b"a"), 0);
}

#[test]
fn invalid_utf8_is_counted_like_anything_else() {
    check_all_paths(b"\xff\xfe abc\x80 \xc3 \xc3\x28 \xff\xfe \x00\x01 \x00 \x00\x00");
}

#[test]
fn nul_bytes_are_part_of_words() {
    // Zero padding inside the hash table must not make "a" equal "a\0".
    check_all_paths(b"a a\0 a\0\0 \0a a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0 a");
}

#[test]
fn case_matters() {
    let counts = wclab_count::Counter::new().count_text(b"The the THE the");
    assert_eq!(counts.get(b"the"), 2);
    assert_eq!(counts.get(b"The"), 1);
    assert_eq!(counts.distinct(), 3);
}

#[test]
fn empty_input() {
    check_all_paths(b"");
    assert!(wclab_count::Counter::new().count_text(b"").is_empty());
}

#[test]
fn only_whitespace() {
    check_all_paths(b" \t\n\x0b\x0c\r  \r\n");
    let ws: Vec<u8> = b" \t\n\x0b\x0c\r"
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    check_all_paths(&ws);
}

#[test]
fn one_very_long_word() {
    // Several MB without whitespace: crosses every chunk and thread boundary.
    let word: Vec<u8> = (0..5_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    check_all_paths(&word);
    let mut padded = b"  ".to_vec();
    padded.extend_from_slice(&word);
    padded.extend_from_slice(b" x ");
    padded.extend_from_slice(&word);
    check_all_paths(&padded);
}

#[test]
fn words_of_every_length_up_to_300() {
    let mut data = Vec::new();
    for len in 1..300 {
        for copy in 0..3u8 {
            data.extend((0..len).map(|i| b'a' + ((i + copy as usize) % 3) as u8));
            data.push(if len % 2 == 0 { b' ' } else { b'\n' });
        }
    }
    check_all_paths(&data);
}

#[test]
fn long_words_sharing_prefix_and_suffix() {
    // Same first and last 16 bytes, different middles: the hash of a long
    // word must not look at its ends only.
    let mut data = Vec::new();
    for i in 0..2000 {
        data.extend_from_slice(format!("prefix-prefix-pre{i:08}suffix-suffix-suf ").as_bytes());
        data.extend_from_slice(
            format!("prefix-prefix-pre{:08}suffix-suffix-suf\n", i % 7).as_bytes(),
        );
    }
    check_all_paths(&data);
}

#[test]
fn big_text_over_the_parallel_threshold() {
    // A few MB so that the parallel path (≥ 1 MiB) really splits.
    let para = b"It was the best of times, it was the worst of times,\tit was the age of \
                 wisdom,\r\nit was the age of foolishness \xc2\xa0 \xff\x0b";
    let data: Vec<u8> = para.iter().copied().cycle().take(3 << 20).collect();
    check_all_paths(&data);
}

#[test]
fn eight_byte_words_ending_in_nul_or_control_bytes() {
    // The short-word table keeps a word's length in its 8th byte, so these
    // take another path; with their 7-byte prefixes, on every path.
    let mut data = Vec::new();
    for last in 0u8..=9 {
        for _ in 0..3 {
            data.extend_from_slice(b"abcdefg");
            data.push(last);
            data.push(b' ');
        }
        data.extend_from_slice(b"abcdefg ");
        data.extend(std::iter::repeat_n(0u8, 8));
        data.push(b'\n');
        data.extend(std::iter::repeat_n(last, 8 - last as usize % 8));
        data.push(b' ');
    }
    let big: Vec<u8> = data.iter().copied().cycle().take(3 << 20).collect();
    check_all_paths(&data);
    check_all_paths(&big);
}
