//! The kernel alone on real files: mmap each, count, merge; no Redis.
//!
//! ```text
//! cargo run --release -p wclab-count --example files_throughput -- THREADS FILE...
//! ```
//!
//! Prints one JSON line: bytes, words, distinct words, the counting phase's
//! seconds and MB/s (files already in the page cache: run `cat` over them
//! first). `just bench` uses it for the kernel rows of its table.

use std::time::Instant;
use wclab_count::{Counter, Counts};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|t| t.parse().ok())
        .expect("usage: THREADS FILE...");
    let files: Vec<String> = args.collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let counter = Counter::new().threads(Some(threads));
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let start = Instant::now();
    let total = pool.install(|| {
        let mut total = Counts::new();
        for f in &files {
            let c = counter
                .count_file(std::path::Path::new(f), None)
                .expect("count file");
            total.merge(c);
        }
        total
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"threads\": {threads}, \"bytes\": {bytes}, \"words\": {}, \"distinct\": {}, \"seconds\": {secs:.4}, \"mb_per_s\": {:.1}}}",
        total.total(),
        total.distinct(),
        bytes as f64 / 1e6 / secs
    );
}
