//! Create latency against a large store: one CreateTrafficMirrorFilter through
//! `Control::execute` (plan, durable SQLite commit with synchronous=FULL, publish) with 1,
//! 10,000 and 100,000 filters already stored in the caller's account and region.
//!
//! Goal (hostile-input issue): the 100k figure within 1.5x of the 1-filter figure, in the
//! same run; every check a create makes is O(1) or O(log n) (counts are kept, not
//! recomputed). Prints criterion's figures, then a summary: the median over 7 rounds of
//! 200 creates each, per store size, and the ratio.

#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a failed run")]
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::collections::BTreeSet;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use rand::SeedableRng;
use tapwire_control::ops::Operation;
use tapwire_control::{Change, Control, ControlConfig, Dialect, State, SystemClock, testing};
use tapwire_model::ids::{FilterId, IdSuffix};
use tapwire_model::limits::Quotas;
use tapwire_model::resource::{Filter, ResourceStatus, Scope};
use tapwire_store::{SqliteStore, Store};

const SIZES: [usize; 3] = [1, 10_000, 100_000];
const ROUNDS: usize = 7;
const PER_ROUND: usize = 200;

fn create_op() -> Operation {
    Operation::CreateFilter {
        name: None,
        description: Some("bench".into()),
        tags: vec![],
        resource_group: None,
        rules: vec![],
    }
}

/// A durable control plane whose store already holds `n` filters of the caller's scope.
fn control_with(n: usize, dir: &std::path::Path) -> Control {
    let store = SqliteStore::open_dir(dir).unwrap();
    let scope = Scope { account: tapwire_model::AccountId::DEFAULT, region: "us-east-1".into() };
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            let mut b = [0u8; 9];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Change::PutFilter(Filter {
                id: FilterId::from_suffix(IdSuffix::from_random(b)),
                scope: scope.clone(),
                name: None,
                description: Some("stored".into()),
                network_services: BTreeSet::new(),
                tags: vec![],
                resource_group: None,
                status: ResourceStatus::Created,
                created_at: 0,
            })
        })
        .collect();
    store.commit(&State::commit_for(0, &changes).unwrap()).unwrap();
    let quotas = Quotas { filters_per_account: usize::MAX, ..Quotas::default() };
    Control::open(
        Box::new(store),
        Box::new(SystemClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(n as u64)),
        ControlConfig { quotas, ..ControlConfig::default() },
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let ctx = testing::context("us-east-1");
    let mut group = c.benchmark_group("create_filter");
    group.sample_size(50);
    let mut summary = Vec::new();
    for n in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let control = control_with(n, dir.path());
        group.bench_function(format!("{n}_stored"), |b| {
            b.iter(|| control.execute(&ctx, Dialect::Ec2, create_op()).unwrap())
        });
        let mut rounds: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..PER_ROUND {
                    control.execute(&ctx, Dialect::Ec2, create_op()).unwrap();
                }
                started.elapsed().as_secs_f64() / PER_ROUND as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        summary.push((n, rounds[ROUNDS / 2], rounds[0], rounds[ROUNDS - 1]));
    }
    group.finish();
    println!("\ncreate latency by stored filters (median of {ROUNDS} rounds of {PER_ROUND}; min-max):");
    for (n, median, lo, hi) in &summary {
        println!("  {n:>7} stored: {:.3} ms ({:.3}-{:.3})", median * 1e3, lo * 1e3, hi * 1e3);
    }
    let ratio = summary[2].1 / summary[0].1;
    println!("  100k / 1 = {ratio:.2}x (goal <= 1.5x: {})", if ratio <= 1.5 { "met" } else { "MISSED" });
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
