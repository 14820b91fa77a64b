//! The kernel's stages timed alone on files, 1 thread: whitespace masks,
//! the scanner, the scanner plus the first pass, the hash table alone, and
//! the whole kernel. Best of `RUNS` (default 5) for each.
//!
//! ```text
//! cargo run --release -p wclab-count --example stages -- FILE...
//! ```

use std::time::Instant;
use wclab_count::testing::{count_text_range_with, scan_only, whitespace_masks, Isa, ShortWords};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut data = Vec::new();
    for f in std::env::args().skip(1) {
        data.extend(std::fs::read(&f).expect("read FILE"));
        data.push(b'\n');
    }
    let mb = data.len() as f64 / 1e6;
    println!("{mb:.1} MB");
    let report = |what: &str, secs: f64| println!("  {what:<32} {:>7.0} MB/s", mb / secs);
    for isa in Isa::available() {
        println!("{isa:?}");
        let mut masks = vec![0u64; 4096 / 64];
        report(
            "whitespace masks",
            best(runs, || {
                for chunk in data.chunks(4096) {
                    let m = &mut masks[..chunk.len().div_ceil(64)];
                    whitespace_masks(isa, chunk, m);
                    std::hint::black_box(&m);
                }
            }),
        );
        report("scanner", best(runs, || scan_only(isa, &data, false)));
        report(
            "scanner + first pass",
            best(runs, || scan_only(isa, &data, true)),
        );
        report(
            "whole kernel",
            best(runs, || {
                count_text_range_with(isa, &data, 0..data.len(), Some(1))
            }),
        );
    }
    let short = ShortWords::new(&data);
    let secs = best(runs, || short.count());
    println!(
        "table alone: {} short words, {:.0} M words/s ({:.0} MB/s of this text)",
        short.len(),
        short.len() as f64 / 1e6 / secs,
        mb / secs
    );
}
