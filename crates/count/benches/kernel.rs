//! Criterion benchmarks of the counting kernel, whole and by stage, on a
//! generated English-like buffer, so that a regression can be pinned to
//! scanning or to the hash table:
//!
//! * `count_text`: the whole kernel through `Counter` at 1 and 2 threads,
//!   and with each instruction set forced (1 thread);
//! * `whitespace_masks`: each byte classifier alone (the 64-byte masks of
//!   4 KiB chunks, as the scanner computes them);
//! * `scan`: the scanner alone (masks and word boundaries, no table), and
//!   with the kernel's first pass over each chunk's words (keys, hashes);
//! * `table`: the hash table alone — the kernel's hot loop over words
//!   already split and hashed, and `Counts::add` (the generic path merges
//!   and the CSV format use) over words already split.
//!
//! `WCLAB_BENCH_MB` sets the buffer size (default 64).

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wclab_count::testing::{count_text_range_with, scan_only, whitespace_masks, Isa, ShortWords};
use wclab_count::{Counter, Counts};

fn buffer() -> Vec<u8> {
    let mb: usize = std::env::var("WCLAB_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    corpus::english_like(mb << 20)
}

fn benches(c: &mut Criterion) {
    let data = buffer();
    let bytes = Throughput::Bytes(data.len() as u64);

    let mut group = c.benchmark_group("count_text");
    group.throughput(bytes.clone());
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

    let mut group = c.benchmark_group("whitespace_masks");
    group.throughput(bytes.clone());
    group.sample_size(20);
    for isa in Isa::available() {
        let mut masks = vec![0u64; 4096 / 64];
        group.bench_function(format!("{isa:?}"), |b| {
            b.iter(|| {
                for chunk in data.chunks(4096) {
                    let m = &mut masks[..chunk.len().div_ceil(64)];
                    whitespace_masks(isa, chunk, m);
                    std::hint::black_box(&m);
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scan");
    group.throughput(bytes.clone());
    group.sample_size(10);
    for isa in Isa::available() {
        group.bench_function(format!("{isa:?}_boundaries"), |b| {
            b.iter(|| scan_only(isa, &data, false))
        });
        group.bench_function(format!("{isa:?}_boundaries_and_first_pass"), |b| {
            b.iter(|| scan_only(isa, &data, true))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("table");
    group.sample_size(10);
    let short = ShortWords::new(&data);
    group.throughput(Throughput::Elements(short.len() as u64));
    group.bench_function("short_words_hot_loop", |b| b.iter(|| short.count()));
    let words: Vec<&[u8]> = data
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|w| !w.is_empty())
        .collect();
    group.throughput(Throughput::Elements(words.len() as u64));
    group.bench_function("counts_add", |b| {
        b.iter(|| {
            let mut counts = Counts::new();
            for w in &words {
                counts.add(w, 1);
            }
            counts
        })
    });
    group.finish();
}

criterion_group!(kernel, benches);
criterion_main!(kernel);
