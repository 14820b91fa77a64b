//! Criterion benchmark of the counting kernel: `count_text` at 1 and 2
//! threads on a generated English-like buffer, plus each byte classifier on
//! its own (1 thread), so a regression can be pinned to scanning or hashing.
//!
//! `WCLAB_BENCH_MB` sets the buffer size (default 64).

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wclab_count::testing::{count_text_range_with, Isa};
use wclab_count::Counter;

fn kernel(c: &mut Criterion) {
    let mb: usize = std::env::var("WCLAB_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let data = corpus::english_like(mb << 20);
    let mut group = c.benchmark_group("count_text");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        let counter = Counter::new().threads(Some(threads));
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| counter.count_text(&data))
        });
    }
    for isa in Isa::available() {
        group.bench_function(format!("{isa:?}_1_thread"), |b| {
            b.iter(|| count_text_range_with(isa, &data, 0..data.len(), Some(1)))
        });
    }
    group.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
