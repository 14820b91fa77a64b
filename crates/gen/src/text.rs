//! Plain-text corpora: lines of real verses, shuffled and recombined.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::source::{self, pick, VERSES};
use crate::vocab::Vocabulary;
use crate::{create_dir, file_rng, GenError, Manifest};

/// Options for [`text_corpus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOptions {
    /// Output directory; created if missing.
    pub out: PathBuf,
    /// Number of files.
    pub files: usize,
    /// Target size of each file. A file ends at the first line end at or past
    /// the target, so it is at most one line (under 2 KB) longer.
    pub bytes_per_file: u64,
    /// Seed: same seed and options, same bytes.
    pub seed: u64,
    /// Spread the files over `a/`, `a/b/` and `c/` as well as the top level,
    /// to exercise recursive directory walks.
    pub nested: bool,
    /// A larger vocabulary: `Some(n)` mixes the real verses with sentences
    /// drawn from `n` words, ranked by a Zipf law (weight `1 / rank`): the
    /// source's own words first, in their order of frequency, then made-up
    /// English-like words (`wclab gen text --vocab N` on the command line).
    /// About half the lines are such sentences. Punctuation and capitals
    /// make several distinct words of one vocabulary word (`word`, `word,`,
    /// `word.`, `Word`), as in real text, so a corpus large enough to draw
    /// every rank has about 4-5 `n` distinct words: 64 files of 4.7 MB (seed
    /// 2) with `Some(18_500)` have 86.8 k distinct words in 58 M, 95 % of
    /// them at most 8 bytes long, like the speed issue's corpus.
    /// `None` (the default) keeps the bundled text's ~3,600 words, and the
    /// bytes of earlier versions.
    pub vocab: Option<usize>,
}

impl TextOptions {
    /// Defaults: 8 files of 1 MiB, seed 0, flat.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        TextOptions {
            out: out.into(),
            files: 8,
            bytes_per_file: 1 << 20,
            seed: 0,
            nested: false,
            vocab: None,
        }
    }
}

/// Writes `opts.files` text files of about `opts.bytes_per_file` bytes each.
///
/// Every line is real English from the bundled text: mostly a whole verse,
/// sometimes a run of consecutive verses, sometimes the first clause of one
/// verse joined to the last clause of another, and now and then a blank line.
/// Lines end with `\n`. Since all words come from real verses in proportion,
/// word frequencies stay those of the source. With [`TextOptions::vocab`],
/// half the lines are sentences drawn from a larger Zipf vocabulary instead,
/// the same vocabulary for every file.
pub fn text_corpus(opts: &TextOptions) -> Result<Manifest, GenError> {
    create_dir(&opts.out)?;
    // Its own stream (files use 0, 1, ...), so that it shifts no file's
    // randomness, and the same for every file.
    let vocab = opts.vocab.map(|n| {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        rng.set_stream(u64::MAX);
        Vocabulary::new(n, &mut rng)
    });
    let mut manifest = Manifest::new(&opts.out);
    for i in 0..opts.files {
        let rel = text_path(i, opts.nested);
        let path = opts.out.join(&rel);
        if let Some(dir) = path.parent() {
            create_dir(dir)?;
        }
        let (bytes, lines) =
            write_text_file(&path, opts.seed, i, opts.bytes_per_file, vocab.as_ref()).map_err(
                |source| GenError::Write {
                    path: path.clone(),
                    source,
                },
            )?;
        manifest.push(rel, bytes, lines);
    }
    Ok(manifest)
}

fn text_path(i: usize, nested: bool) -> PathBuf {
    let name = format!("part-{i:04}.txt");
    let dir = if nested {
        ["", "a", "a/b", "c"][i % 4]
    } else {
        ""
    };
    Path::new(dir).join(name)
}

fn write_text_file(
    path: &Path,
    seed: u64,
    index: usize,
    target: u64,
    vocab: Option<&Vocabulary>,
) -> io::Result<(u64, u64)> {
    let mut rng = file_rng(seed, index);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut line = Vec::with_capacity(4096);
    let (mut bytes, mut lines) = (0u64, 0u64);
    while bytes < target {
        line.clear();
        match vocab {
            Some(v) if rng.random_bool(0.5) => v.sentence(&mut rng, &mut line),
            _ => make_line(&mut rng, &mut line),
        }
        line.push(b'\n');
        w.write_all(&line)?;
        bytes += line.len() as u64;
        lines += 1;
    }
    w.flush()?;
    Ok((bytes, lines))
}

fn make_line(rng: &mut impl Rng, line: &mut Vec<u8>) {
    match rng.random_range(0..100u32) {
        // A blank line, as between paragraphs.
        0..2 => {}
        // A whole verse: the bulk, so frequencies follow the source.
        2..72 => line.extend_from_slice(source::verse(rng).text.as_bytes()),
        // A paragraph: two to four consecutive verses.
        72..87 => {
            let start = rng.random_range(0..VERSES.len() as u32) as usize;
            let n = rng.random_range(2..=4u32) as usize;
            for (k, v) in VERSES[start..].iter().take(n).enumerate() {
                if k > 0 {
                    line.push(b' ');
                }
                line.extend_from_slice(v.text.as_bytes());
            }
        }
        // A new sentence: the head of one verse and the tail of another.
        _ => {
            let (a, b) = (source::verse(rng), source::verse(rng));
            match (a.cuts.is_empty(), b.cuts.is_empty()) {
                (false, false) => {
                    line.extend_from_slice(a.head(pick(rng, &a.cuts)).as_bytes());
                    line.push(b' ');
                    line.extend_from_slice(b.tail(pick(rng, &b.cuts)).as_bytes());
                }
                _ => line.extend_from_slice(a.text.as_bytes()),
            }
        }
    }
}
