//! Prints the kernel's throughput in MB/s at 1 and 2 threads.
//!
//! ```text
//! cargo run --release -p wclab-count --example throughput [MB] [FILE]
//! ```
//!
//! Counts a generated English-like buffer of `MB` megabytes (default 100),
//! and, when `FILE` is given, that file's bytes repeated to the same size
//! (e.g. the KJV from `bible -f Gen1:1-Rev22:21 > kjv.txt`). Each figure is
//! the best of several runs over page-cache-like (already in memory) bytes,
//! so it measures the kernel, not the disk.

#[path = "../benches/support/corpus.rs"]
mod corpus;

use std::time::Instant;
use wclab_count::Counter;

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args
        .next()
        .map_or(100, |a| a.parse().expect("MB must be a number"));
    let bytes = mb << 20;
    let mut inputs = vec![("generated English-like", corpus::english_like(bytes))];
    if let Some(path) = args.next() {
        let text = std::fs::read(&path).expect("cannot read FILE");
        assert!(!text.is_empty(), "FILE is empty");
        let mut buf = Vec::with_capacity(bytes + text.len());
        while buf.len() < bytes {
            buf.extend_from_slice(&text);
            buf.push(b'\n');
        }
        inputs.push((Box::leak(path.into_boxed_str()), buf));
    }
    for (name, data) in &inputs {
        let probe = Counter::new().threads(Some(1)).count_text(data);
        println!(
            "{name}: {:.1} MB, {} words, {} distinct",
            data.len() as f64 / 1e6,
            probe.total(),
            probe.distinct()
        );
        for threads in [1, 2] {
            let counter = Counter::new().threads(Some(threads));
            let best = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let counts = counter.count_text(data);
                    let secs = t.elapsed().as_secs_f64();
                    assert_eq!(counts.total(), probe.total());
                    secs
                })
                .fold(f64::INFINITY, f64::min);
            println!(
                "  {threads} thread(s): {:>7.0} MB/s",
                data.len() as f64 / 1e6 / best
            );
        }
    }
}
