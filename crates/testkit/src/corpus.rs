//! Corpora that exercise every case of the word definition.

use std::path::{Path, PathBuf};

/// Writes the tricky corpus into `dir` and returns its root:
/// English text (generated, deterministic), CRLF line ends, tabs and the
/// rarer whitespace bytes 0x0B/0x0C, Unicode (including U+00A0, which is
/// *not* a separator), invalid UTF-8, an empty file, a file of one long
/// line with no whitespace, and nested directories.
pub fn tricky(dir: &Path) -> PathBuf {
    let root = dir.join("corpus");
    let mut opts = wclab_gen::TextOptions::new(root.join("english"));
    opts.files = 6;
    opts.bytes_per_file = 64 * 1024;
    opts.seed = 7;
    opts.nested = true;
    wclab_gen::text_corpus(&opts).expect("generate English text");
    let odd = root.join("odd/deeper/deepest");
    std::fs::create_dir_all(&odd).unwrap();
    let w = |name: &str, data: &[u8]| std::fs::write(root.join(name), data).unwrap();
    w(
        "odd/crlf.txt",
        b"Windows line\r\nends here\r\n\r\nand here\r\n",
    );
    w("odd/tabs.txt", b"a\tb\t\tc\x0bd\x0ce \t\r\n f");
    w("odd/unicode.txt", "caf\u{e9} na\u{ef}ve \u{65e5}\u{672c}\u{8a9e} non\u{a0}breaking em\u{2003}space \u{1f600}\n".as_bytes());
    w(
        "odd/deeper/invalid-utf8.bin",
        b"ok \xff\xfe\xfd \xc3\x28 valid \x80tail\n\x00nul\x00 word",
    );
    w("odd/deeper/empty.txt", b"");
    w("odd/deeper/deepest/only-space.txt", b" \t\r\n\x0b\x0c ");
    let long: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    w("odd/deeper/deepest/one-long-line.txt", &long);
    root.canonicalize().unwrap()
}

/// Writes `files` generated English files of about `bytes` each.
pub fn english(dir: &Path, files: usize, bytes: u64, seed: u64) -> PathBuf {
    let mut opts = wclab_gen::TextOptions::new(dir);
    opts.files = files;
    opts.bytes_per_file = bytes;
    opts.seed = seed;
    wclab_gen::text_corpus(&opts).expect("generate English text");
    dir.canonicalize().unwrap()
}
