//! The Internet checksum over a segment, 4 bytes at a time ([`checksum::accumulate`])
//! beside the word-by-word sum it replaced ([`checksum::accumulate_words`], the previous
//! version), at the segment sizes copies carry: `cargo bench -p tapwire-wire --bench checksum`.
//! Prints each size's time per segment and the ratio.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tapwire_wire::checksum;

const SIZES: [usize; 3] = [22, 1472, 8972];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for size in SIZES {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("quads/{size}"), |b| b.iter(|| checksum::accumulate(0, black_box(&data))));
        group.bench_function(format!("words/{size}"), |b| b.iter(|| checksum::accumulate_words(0, black_box(&data))));
    }
    group.finish();
}

/// Nanoseconds per call of `f`, the best of 7 rounds of `n` calls.
fn per_call(n: u32, f: impl Fn() -> u64) -> f64 {
    (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed()
        })
        .min()
        .unwrap_or(Duration::ZERO)
        .as_nanos() as f64
        / f64::from(n)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    for size in SIZES {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        let quads = per_call(200_000, || checksum::accumulate(0, black_box(&data)));
        let words = per_call(200_000, || checksum::accumulate_words(0, black_box(&data)));
        println!(
            "checksum {size} bytes: 4 at a time {quads:.1} ns, word by word (previous) {words:.1} ns: {:.2}x faster",
            words / quads
        );
    }
}
