//! Tweet-like CSV corpora, with the RFC 4180 hard cases on purpose.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::source::{self, clip, pick};
use crate::{create_dir, file_rng, GenError, Manifest};

/// Options for [`tweet_corpus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TweetOptions {
    /// Output directory; created if missing.
    pub out: PathBuf,
    /// Number of files.
    pub files: usize,
    /// Data rows per file (plus one header row).
    pub rows: usize,
    /// Seed: same seed and options, same bytes.
    pub seed: u64,
}

impl TweetOptions {
    /// Files, by default (also `wclab gen tweets`'s).
    pub const DEFAULT_FILES: usize = 100;
    /// Data rows per file, by default (also `wclab gen tweets`'s): a file
    /// of about 30 KB, a few milliseconds of counting, as a stream needs.
    pub const DEFAULT_ROWS: usize = 200;

    /// Defaults: [`DEFAULT_FILES`](Self::DEFAULT_FILES) files of
    /// [`DEFAULT_ROWS`](Self::DEFAULT_ROWS) rows, seed 0.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        TweetOptions {
            out: out.into(),
            files: Self::DEFAULT_FILES,
            rows: Self::DEFAULT_ROWS,
            seed: 0,
        }
    }
}

/// The header row of every tweet file.
pub const TWEET_HEADER: [&str; 5] = ["id", "created_at", "user", "text", "retweets"];

/// Longest `text`, in characters.
pub const MAX_TWEET_CHARS: usize = 280;

/// Writes `opts.files` CSV files `tweets-0000.csv`, ... with the header
/// [`TWEET_HEADER`] and `opts.rows` rows each.
///
/// `id` runs from 1 across all files; `created_at` is RFC 3339 UTC, rising
/// within a file; `text` is at most [`MAX_TWEET_CHARS`] characters of verse
/// and often holds commas, double quotes, newlines, `#hashtags`,
/// `@mentions` and non-ASCII (accents, Greek, Japanese, emoji); about one in
/// two hundred is empty. The `csv` crate does the quoting: fields with
/// commas, quotes or newlines are quoted and quotes doubled. Records end with
/// `\n`.
pub fn tweet_corpus(opts: &TweetOptions) -> Result<Manifest, GenError> {
    create_dir(&opts.out)?;
    let mut manifest = Manifest::new(&opts.out);
    for i in 0..opts.files {
        let rel = PathBuf::from(format!("tweets-{i:04}.csv"));
        let path = opts.out.join(&rel);
        let bytes = write_tweet_file(&path, opts, i).map_err(|source| GenError::Write {
            path: path.clone(),
            source,
        })?;
        manifest.push(rel, bytes, opts.rows as u64);
    }
    Ok(manifest)
}

fn write_tweet_file(path: &Path, opts: &TweetOptions, index: usize) -> io::Result<u64> {
    let mut rng = file_rng(opts.seed, index);
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut w = csv::Writer::from_writer(file);
    w.write_record(TWEET_HEADER)?;
    // Start somewhere in 2021, then move forward a little per tweet.
    let mut time = 1_609_459_200 + rng.random_range(0..365 * 86_400u64);
    let first_id = (index * opts.rows) as u64 + 1;
    for id in first_id..first_id + opts.rows as u64 {
        time += rng.random_range(1..=90u64);
        let user = handle(&mut rng);
        let text = tweet_text(&mut rng);
        // Heavy-tailed: most tweets get no retweets, a few get thousands.
        let retweets = (rng.random::<f64>().powi(8) * 20_000.0) as u64;
        w.write_record([
            id.to_string().as_str(),
            &rfc3339(time),
            &user,
            &text,
            &retweets.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

const NAMES: &[&str] = &[
    "aaron", "abigail", "abram", "boaz", "deborah", "eli", "esther", "ezra", "hannah", "isaac",
    "jacob", "joanna", "jonah", "leah", "lydia", "martha", "miriam", "naomi", "noah", "phoebe",
    "rachel", "ruth", "sarai", "silas", "tabitha", "thomas", "zipporah",
];

const UNICODE: &[&str] = &[
    "café",
    "naïve",
    "déjà vu",
    "Zoë",
    "façade",
    "São Paulo",
    "Ελληνικά",
    "日本語",
    "🙏",
    "📖",
    "✨",
    "🔥",
    "😂",
    "🕊",
];

const QUOTE_TAILS: &[&str] = &[" so true", ", wow", " — thoughts?", " 👀", ""];

fn handle(rng: &mut impl Rng) -> String {
    format!("{}_{}", pick(rng, NAMES), rng.random_range(1..1000u32))
}

fn tweet_text(rng: &mut impl Rng) -> String {
    if rng.random_bool(0.005) {
        return String::new();
    }
    let mut t = String::new();
    if rng.random_bool(0.2) {
        t.push('@');
        t.push_str(&handle(rng));
        t.push(' ');
    }
    let body = clip(source::verse(rng).text, 180);
    if rng.random_bool(0.15) {
        t.push('"');
        t.push_str(body);
        t.push('"');
        t.push_str(pick(rng, QUOTE_TAILS));
    } else {
        t.push_str(body);
    }
    if rng.random_bool(0.1) {
        t.push('\n');
        t.push_str(clip(source::verse(rng).text, 60));
    }
    if rng.random_bool(0.1) {
        t.push(' ');
        t.push_str(pick(rng, UNICODE));
    }
    if rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..=3u32) {
            let words: Vec<&str> = source::verse(rng).text.split(' ').collect();
            let tag: String = pick(rng, &words)
                .chars()
                .filter(char::is_ascii_alphabetic)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if !tag.is_empty() {
                t.push_str(" #");
                t.push_str(&tag);
            }
        }
    }
    if let Some((cut, _)) = t.char_indices().nth(MAX_TWEET_CHARS) {
        t.truncate(cut);
    }
    t
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's
/// days-to-civil algorithm; no time zone crate needed).
fn rfc3339(secs: u64) -> String {
    let (days, sod) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_609_459_200 + 3_661), "2021-01-01T01:01:01Z");
        assert_eq!(rfc3339(1_640_995_199), "2021-12-31T23:59:59Z");
    }
}
