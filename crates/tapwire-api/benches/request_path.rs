//! The control plane's request path over real HTTP on loopback, with keep-alive and the
//! durable SQLite store (WAL, synchronous=FULL), with signature verification off
//! (`--auth none`) and on (SigV4, the default) in the same run.
//!
//! Two parts:
//! - criterion: latency of one CreateTrafficMirrorFilter and one DescribeTrafficMirrorFilters
//!   by ID, sequentially, in each mode;
//! - load: for each client count in `CLIENTS` and each mode, that many threads each send
//!   `PAIRS` create+describe pairs as fast as they can, on the same 2 cores as the server;
//!   prints mixed requests per second and p50/p99 latency, and the verified mode's
//!   throughput as a ratio of the unverified one's.
//!
//! - the same load, verified, on PostgreSQL (one replica, and two replicas sharing one
//!   database with the clients split between them) beside SQLite, as a ratio; the
//!   database is `TAPWIRE_BENCH_POSTGRES` or, as root, a cluster of the bench's own.
//!
//! Targets: at least 3,000 mixed requests/s on 2 cores with p99 under 5 ms (issue 2);
//! verification costs under 10 % of throughput (ratio ≥ 0.90, issue 12).

#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a failed run")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use support::postgres::Databases;
use support::{Server, created_id, post, start_postgres, start_server};

const CLIENTS: [usize; 3] = [2, 4, 8];
const PAIRS: usize = 1500;
const CREATE: &str = "Action=CreateTrafficMirrorFilter&Version=2016-11-15&Description=bench";

fn mode_name(verify: bool) -> &'static str {
    if verify { "sigv4" } else { "auth_none" }
}

fn describe_body(id: &str) -> String {
    format!("Action=DescribeTrafficMirrorFilters&Version=2016-11-15&TrafficMirrorFilterId.1={id}")
}

fn bench_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_path");
    for verify in [false, true] {
        let server = start_server(verify);
        let agent = ureq::Agent::new_with_defaults();
        let create = server.form(CREATE);
        let id = created_id(&post(&agent, &server.url, &create));
        let describe = server.form(&describe_body(&id));
        let name = mode_name(verify);
        group.bench_function(format!("create_filter/{name}"), |b| b.iter(|| post(&agent, &server.url, &create)));
        group.bench_function(format!("describe_filter_by_id/{name}"), |b| {
            b.iter(|| assert!(post(&agent, &server.url, &describe).contains(&id)))
        });
    }
    group.finish();
}

/// Requests per second of `clients` clients against fresh replicas of one store (client
/// `i` on replica `i % replicas.len()`; `what` names the setup).
fn load(replicas: &[&Server], clients: usize, what: &str) -> f64 {
    let agent = ureq::Agent::new_with_defaults();
    let mut work = Vec::new();
    for server in replicas {
        let create = server.form(CREATE);
        let id = created_id(&post(&agent, &server.url, &create));
        work.push((Arc::new(server.url.clone()), create, server.form(&describe_body(&id))));
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (url, create, describe) = work[i % work.len()].clone();
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                // (latency, a write): where the tail comes from shows by kind.
                let mut latencies = Vec::with_capacity(PAIRS * 2);
                for _ in 0..PAIRS {
                    let t = Instant::now();
                    post(&agent, &url, &create);
                    latencies.push((t.elapsed(), true));
                    let t = Instant::now();
                    post(&agent, &url, &describe);
                    latencies.push((t.elapsed(), false));
                }
                latencies
            })
        })
        .collect();
    let tagged: Vec<(Duration, bool)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let sorted = |keep: &dyn Fn(bool) -> bool| {
        let mut v: Vec<Duration> = tagged.iter().filter(|(_, w)| keep(*w)).map(|(d, _)| *d).collect();
        v.sort();
        v
    };
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    let (all, writes, reads) = (sorted(&|_| true), sorted(&|w| w), sorted(&|w| !w));
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    println!(
        "request_path load [{what}]: {} mixed requests (create+describe) from {clients} keep-alive clients in {:.2?}: {rate:.0} req/s, p50 {:.2?}, p99 {:.2?} (target: >= 3000 req/s, p99 < 5ms); creates p99 {:.2?} p99.9 {:.2?}, describes p99 {:.2?} p99.9 {:.2?}",
        all.len(),
        elapsed,
        pct(&all, 0.50),
        pct(&all, 0.99),
        pct(&writes, 0.99),
        pct(&writes, 0.999),
        pct(&reads, 0.99),
        pct(&reads, 0.999),
    );
    rate
}

criterion_group!(benches, bench_latency);

fn main() {
    benches();
    let databases = Databases::find("request_path");
    for clients in CLIENTS {
        let open = load(&[&start_server(false)], clients, "SQLite, auth none");
        let verified = load(&[&start_server(true)], clients, "SQLite, sigv4");
        println!(
            "request_path verification cost at {clients} clients: sigv4 {verified:.0} req/s vs auth none {open:.0} req/s = {:.2}x (goal: >= 0.90x)",
            verified / open
        );
        let Some(databases) = &databases else { continue };
        let one = load(&[&start_postgres(&databases.database(), None)], clients, "PostgreSQL, 1 replica, sigv4");
        let url = databases.database();
        let a = start_postgres(&url, None);
        let b = start_postgres(&url, a.key.clone());
        let two = load(&[&a, &b], clients, "PostgreSQL, 2 replicas, sigv4");
        println!(
            "request_path PostgreSQL vs SQLite at {clients} clients (sigv4): 1 replica {:.2}x, 2 replicas {:.2}x of SQLite's {verified:.0} req/s",
            one / verified,
            two / verified
        );
    }
    Criterion::default().configure_from_args().final_summary();
}
