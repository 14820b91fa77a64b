//! The kernel alone on real files: map each, count, merge; no Redis.
//!
//! ```text
//! cargo run --release -p wclab-count --example files_throughput -- THREADS FILE...
//! ```
//!
//! Counts the files with [`Counter::count_files`] (one table per thread,
//! reused across files; big files cut in ranges) and prints one JSON line:
//! bytes, words, distinct words, the counting phase's seconds and MB/s
//! (files already in the page cache: run `cat` over them first). `just
//! bench` uses it for the kernel rows of its table.

use std::time::Instant;
use wclab_count::Counter;

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
    let total = pool.install(|| counter.count_files(&files).expect("count files"));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"threads\": {threads}, \"isa\": \"{}\", \"bytes\": {bytes}, \"words\": {}, \"distinct\": {}, \"seconds\": {secs:.4}, \"mb_per_s\": {:.1}}}",
        format!("{:?}", wclab_count::testing::Isa::detect()).to_lowercase(),
        total.total(),
        total.distinct(),
        bytes as f64 / 1e6 / secs
    );
}
