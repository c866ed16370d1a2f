//! A fleet of agents against the control plane: `AGENTS` simulated agents (one interface
//! each, signed long polls `GET …/config?after=R&wait=30` on connections of their own)
//! park on the replicas; one API call (a rule added to a filter that 1,000 of the
//! interfaces' sessions use) changes those 1,000 configs. Measured: the time from the
//! call leaving the client until each affected agent holds its new config (p50, p99,
//! max; the agents often have it before the caller has its acknowledgement),
//! how many unaffected agents were woken (goal: none), and what parked polls cost the
//! servers in memory (their process's RSS growth per poll) and CPU.
//!
//! The agents run in a child process (this benchmark run again as `TAPWIRE_FLEET_ROLE=
//! agents`), so the servers' figures are theirs alone and each process has room for
//! 10,000 sockets under a 20,000 open-file limit. Times are `CLOCK_MONOTONIC`, which
//! both processes share.
//!
//! Run twice in one go: SQLite with one replica, and PostgreSQL with two replicas (agents
//! split between them, the change made on the first). PostgreSQL comes from
//! `TAPWIRE_BENCH_POSTGRES` (a URL of an empty database), or, as root with Debian's
//! server installed, from a cluster the bench makes in a temporary directory.
//!
//! Goals (issue 16): p99 under 500 ms; RSS under 1 GB per replica; no unaffected agent
//! woken. Loopback only.

#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a failed run")]

mod support;

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::postgres::Databases;
use support::{Server, post, sign_get, start_on, start_postgres};
use tapwire_control::Dialect;
use tapwire_control::ops::{InterfaceRegistration, Operation, RequestContext};
use tapwire_model::AccountId;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const AFFECTED: usize = 1_000;

fn agents_wanted() -> usize {
    std::env::var("TAPWIRE_BENCH_AGENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// CPU time (user + system) this process has used.
fn cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Nanoseconds of `CLOCK_MONOTONIC`, the same in every process.
fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// Room for one socket per agent and some; returns how many agents fit.
fn make_room(agents: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let want = agents as u64 + 1024;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if setrlimit(Resource::RLIMIT_NOFILE, want.max(hard), want.max(hard)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
        let fit = usize::try_from(hard.saturating_sub(1024)).unwrap();
        if fit < agents {
            println!("fleet: the open-file limit ({hard}) fits {fit} agents, not {agents}");
            return fit;
        }
    }
    agents
}

/// Registers `n` interfaces (8 writers at once, so commits are grouped); their IDs.
fn register(server: &Server, n: usize) -> Vec<String> {
    let ids = Mutex::new(vec![String::new(); n]);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (ids, server) = (&ids, server);
            scope.spawn(move || {
                let ctx = RequestContext::system(AccountId::DEFAULT, "us-east-1");
                for i in (t..n).step_by(8) {
                    let ip = format!("198.18.{}.{}", 100 + i / 250, 1 + i % 250);
                    let reg = InterfaceRegistration::on_host(&format!("host{i}"), "eth0", vec![ip.parse().unwrap()]);
                    let out = server.api.control.execute(&ctx, Dialect::Tapwire, Operation::RegisterInterface(reg));
                    ids.lock().unwrap()[i] = out.unwrap().into_interface().unwrap().id.to_string();
                }
            });
        }
    });
    ids.into_inner().unwrap()
}

fn field(xml: &str, name: &str) -> String {
    let start = xml.find(&format!("<{name}>")).unwrap() + name.len() + 2;
    xml[start..start + xml[start..].find('<').unwrap()].to_owned()
}

/// One signed GET on `stream`; the status and the body's `revision`.
async fn get(
    endpoint: &Endpoint,
    stream: &mut BufReader<tokio::net::TcpStream>,
    path: &str,
    query: &[(String, String)],
) -> (u16, Option<u64>) {
    let (date, authorization) = sign_get(&endpoint.host, &endpoint.key, path, query);
    let qs: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    let request = format!(
        "GET {path}?{qs} HTTP/1.1\r\nhost: {}\r\nx-amz-date: {date}\r\nauthorization: {authorization}\r\n\r\n",
        endpoint.host
    );
    stream.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        stream.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    let revision = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["revision"].as_u64());
    (status, revision)
}

struct Outcome {
    affected: usize,
    acked: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    woken_unaffected: usize,
    rss_per_poll: f64,
    rss_total: u64,
    cpu_change: Duration,
}

/// Runs the fleet against `replicas` (all on one store); the change goes to the first.
fn measure(replicas: &[Arc<Server>], agents: usize) -> Outcome {
    let affected = AFFECTED.min(agents / 2);
    let first = &replicas[0];
    let enis = register(first, agents + 1);
    let sensor = enis[agents].clone();
    let http = first.agent();
    let post_form = |body: &str| post(&http, &first.url, &first.form(body));
    let target = field(
        &post_form(&format!("Action=CreateTrafficMirrorTarget&Version=2016-11-15&NetworkInterfaceId={sensor}")),
        "trafficMirrorTargetId",
    );
    let filter = field(&post_form("Action=CreateTrafficMirrorFilter&Version=2016-11-15"), "trafficMirrorFilterId");
    for eni in &enis[..affected] {
        post_form(&format!(
            "Action=CreateTrafficMirrorSession&Version=2016-11-15&NetworkInterfaceId={eni}&TrafficMirrorTargetId={target}\
             &TrafficMirrorFilterId={filter}&SessionNumber=1"
        ));
    }
    // Every replica has caught up before the polls start.
    for r in replicas {
        r.api.control.catch_up().unwrap();
    }
    let rss_before = rss();
    let spec = Spec {
        endpoints: replicas.iter().map(|r| Endpoint { host: r.host.clone(), key: r.key.clone().unwrap() }).collect(),
        enis: enis[..agents].to_vec(),
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("TAPWIRE_FLEET_ROLE", "agents")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &spec).unwrap();
    let answered: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let reader = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            for line in lines.lines() {
                let line = line.unwrap();
                let words: Vec<&str> = line.split_whitespace().collect();
                match words[..] {
                    ["parked"] => parked_tx.send(()).unwrap(),
                    ["answered", i, at] => answered.lock().unwrap().push((i.parse().unwrap(), at.parse().unwrap())),
                    _ => panic!("the agents said {line:?}"),
                }
            }
        })
    };
    parked_rx.recv_timeout(Duration::from_secs(300)).expect("every agent parked");
    std::thread::sleep(Duration::from_secs(2)); // the last requests reach their replica
    let rss_parked = rss();
    let cpu_before = cpu();
    // From the call leaving the client: its answer and the agents' race each other.
    let sent = monotonic_ns();
    let clock = Instant::now();
    post_form(&format!(
        "Action=CreateTrafficMirrorFilterRule&Version=2016-11-15&TrafficMirrorFilterId={filter}&TrafficDirection=ingress\
         &RuleNumber=1&RuleAction=accept&SourceCidrBlock=0.0.0.0/0&DestinationCidrBlock=0.0.0.0/0"
    ));
    let acked = clock.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.lock().unwrap().len() < affected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(2)); // time for a wrongly woken poll to show
    let cpu_change = cpu() - cpu_before;
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let got = answered.lock().unwrap().clone();
    let mut times: Vec<Duration> =
        got.iter().filter(|(i, _)| *i < affected).map(|(_, at)| Duration::from_nanos(at - sent)).collect();
    assert_eq!(times.len(), affected, "every affected agent got its new config");
    times.sort();
    Outcome {
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        max: *times.last().unwrap(),
        woken_unaffected: got.iter().filter(|(i, _)| *i >= affected).count(),
        affected,
        acked,
        rss_per_poll: rss_parked.saturating_sub(rss_before) as f64 / agents as f64,
        rss_total: rss_parked,
        cpu_change,
    }
}

fn report(what: &str, agents: usize, o: &Outcome) {
    println!(
        "fleet {what}: {agents} agents parked, a change to {} (acknowledged in {:.1?}), from the call: p50 {:.1?} p99 {:.1?} max {:.1?}; unaffected woken {}; \
         servers' RSS {:.1} KiB per parked poll, {:.0} MiB in all; servers' CPU for the change {:.0?}",
        o.affected,
        o.acked,
        o.p50,
        o.p99,
        o.max,
        o.woken_unaffected,
        o.rss_per_poll / 1024.0,
        o.rss_total as f64 / (1 << 20) as f64,
        o.cpu_change
    );
}

/// What the agents' process is told: where to poll, with which key, for which interfaces
/// (agent `i` polls endpoint `i % endpoints.len()` for `enis[i]`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Spec {
    endpoints: Vec<Endpoint>,
    enis: Vec<String>,
}

/// One replica as an agent reaches it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Endpoint {
    host: String,
    key: (String, String),
}

/// The agents' process: parks every poll, says `parked`, then `answered I NS` for each
/// poll answered 200 (NS of `CLOCK_MONOTONIC`), until killed.
fn run_agents() {
    let spec: Spec = serde_json::from_reader(std::io::stdin()).unwrap();
    make_room(spec.enis.len());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let parked = Arc::new(tokio::sync::Semaphore::new(0));
    let endpoints: Vec<Arc<Endpoint>> = spec.endpoints.into_iter().map(Arc::new).collect();
    for (i, eni) in spec.enis.iter().enumerate() {
        let (endpoint, eni) = (endpoints[i % endpoints.len()].clone(), eni.clone());
        let (out, parked) = (out.clone(), parked.clone());
        runtime.spawn(async move {
            let tcp = tokio::net::TcpStream::connect(&endpoint.host).await.unwrap();
            let mut stream = BufReader::new(tcp);
            let path = format!("/tapwire/v1/network-interfaces/{eni}/config");
            let (status, revision) = get(&endpoint, &mut stream, &path, &[]).await;
            assert_eq!(status, 200);
            let query = [("after".to_owned(), revision.unwrap().to_string()), ("wait".to_owned(), "30".to_owned())];
            parked.add_permits(1);
            let (status, _) = get(&endpoint, &mut stream, &path, &query).await;
            if status == 200 {
                let at = monotonic_ns();
                writeln!(out.lock().unwrap(), "answered {i} {at}").unwrap();
            }
        });
    }
    let all = u32::try_from(spec.enis.len()).unwrap();
    runtime.block_on(async { drop(parked.acquire_many(all).await.unwrap()) });
    writeln!(out.lock().unwrap(), "parked").unwrap();
    out.lock().unwrap().flush().unwrap();
    runtime.block_on(std::future::pending::<()>());
}

fn main() {
    if std::env::var("TAPWIRE_FLEET_ROLE").as_deref() == Ok("agents") {
        return run_agents();
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let agents = make_room(agents_wanted());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = start_on(Box::new(tapwire_store::SqliteStore::open_dir(dir.path()).unwrap()), dir, true, false, None);
    let one = measure(&[Arc::new(sqlite)], agents);
    report("SQLite, 1 replica", agents, &one);

    let Some(databases) = Databases::find("fleet") else { return };
    let url = databases.database();
    let a = Arc::new(start_postgres(&url, None));
    let b = Arc::new(start_postgres(&url, a.key.clone()));
    let two = measure(&[a, b], agents);
    report("PostgreSQL, 2 replicas", agents, &two);
    println!(
        "fleet: PostgreSQL/2 replicas vs SQLite/1: p99 {:.2}x, RSS per parked poll {:.2}x",
        two.p99.as_secs_f64() / one.p99.as_secs_f64(),
        two.rss_per_poll / one.rss_per_poll
    );
}
