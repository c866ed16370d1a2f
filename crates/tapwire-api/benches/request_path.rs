//! The control plane's request path over real HTTP on loopback, with keep-alive and the
//! durable SQLite store (WAL, synchronous=FULL).
//!
//! Two parts in one run:
//! - criterion: latency of one CreateTrafficMirrorFilter and one DescribeTrafficMirrorFilters
//!   by ID, sequentially;
//! - load: for each client count in `CLIENTS`, that many threads each send `PAIRS`
//!   create+describe pairs as fast as they can, on the same 2 cores as the server; prints
//!   mixed requests per second and p50/p99 latency per client count.
//!
//! Target (issue 2): at least 3,000 mixed requests/s on 2 cores, p99 under 5 ms.

#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a failed run")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use rand::SeedableRng;
use tapwire_api::{Api, ApiConfig, router};
use tapwire_control::{Control, ControlConfig, SystemClock};
use tapwire_model::limits::Quotas;

const CLIENTS: [usize; 3] = [2, 4, 8];
const PAIRS: usize = 1500;

struct Server {
    url: String,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = tapwire_store::SqliteStore::open_dir(dir.path()).unwrap();
    let control = Control::open(
        Box::new(store),
        Box::new(SystemClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(1)),
        // The benchmark creates more filters than the default per-account quota allows.
        ControlConfig {
            quotas: Quotas { filters_per_account: usize::MAX, ..Quotas::default() },
            ..ControlConfig::default()
        },
    )
    .unwrap();
    let api = Arc::new(Api { control, config: ApiConfig::default() });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    // The server's own listener (connection cap, timeouts), as `tapwire server` runs it.
    let stats = Arc::new(tapwire_api::serve::ServeStats::default());
    let config = tapwire_api::serve::ServeConfig::default();
    runtime.spawn(tapwire_api::serve::serve(listener, router(api), config, stats, std::future::pending()));
    Server { url, _dir: dir, _runtime: runtime }
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> String {
    let mut resp = agent
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ec2/aws4_request, Signature=0")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(resp.status(), 200);
    resp.body_mut().read_to_string().unwrap()
}

fn create(agent: &ureq::Agent, url: &str) -> String {
    let xml = post(agent, url, "Action=CreateTrafficMirrorFilter&Version=2016-11-15&Description=bench");
    let start = xml.find("<trafficMirrorFilterId>").unwrap() + "<trafficMirrorFilterId>".len();
    xml[start..start + 21].to_owned()
}

fn describe(agent: &ureq::Agent, url: &str, id: &str) {
    let body = format!("Action=DescribeTrafficMirrorFilters&Version=2016-11-15&TrafficMirrorFilterId.1={id}");
    let xml = post(agent, url, &body);
    assert!(xml.contains(id));
}

fn bench_latency(c: &mut Criterion) {
    let server = start_server();
    let agent = ureq::Agent::new_with_defaults();
    let id = create(&agent, &server.url);
    let mut group = c.benchmark_group("request_path");
    group.bench_function("create_filter", |b| b.iter(|| create(&agent, &server.url)));
    group.bench_function("describe_filter_by_id", |b| b.iter(|| describe(&agent, &server.url, &id)));
    group.finish();
}

fn load_summary(clients: usize) {
    let server = start_server();
    let url = Arc::new(server.url.clone());
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut latencies = Vec::with_capacity(PAIRS * 2);
                for _ in 0..PAIRS {
                    let t = Instant::now();
                    let id = create(&agent, &url);
                    latencies.push(t.elapsed());
                    let t = Instant::now();
                    describe(&agent, &url, &id);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "request_path load: {} mixed requests (create+describe) from {clients} keep-alive clients in {:.2?}: {:.0} req/s, p50 {:.2?}, p99 {:.2?} (target: >= 3000 req/s, p99 < 5ms)",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

criterion_group!(benches, bench_latency);

fn main() {
    benches();
    for clients in CLIENTS {
        load_summary(clients);
    }
    Criterion::default().configure_from_args().final_summary();
}
