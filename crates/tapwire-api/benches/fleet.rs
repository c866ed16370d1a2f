//! A fleet of agents against the control plane: `AGENTS` simulated agents (one interface
//! each, signed long polls `GET …/config?after=R&wait=30` on connections of their own)
//! park on the replicas; one API call (a rule added to a filter that 1,000 of the
//! interfaces' sessions use) changes those 1,000 configs. Measured: the time from the
//! call leaving the client until each affected agent holds its new config (p50, p99,
//! max; the agents often have it before the caller has its acknowledgement),
//! how many unaffected agents were woken (goal: none), and what parked polls cost in
//! memory (the process's RSS growth per poll, servers and clients together: an upper
//! bound for the server) and CPU.
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Server, post, start_on};
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

/// Room for every client and server socket; returns how many agents fit.
fn make_room(agents: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let want = (agents as u64) * 2 + 1024;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if setrlimit(Resource::RLIMIT_NOFILE, want.max(hard), want.max(hard)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
        let fit = usize::try_from(hard.saturating_sub(1024) / 2).unwrap();
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
    server: &Server,
    stream: &mut BufReader<tokio::net::TcpStream>,
    path: &str,
    query: &[(String, String)],
) -> (u16, Option<u64>) {
    let (date, authorization) = server.sign_get(path, query);
    let qs: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    let request = format!(
        "GET {path}?{qs} HTTP/1.1\r\nhost: {}\r\nx-amz-date: {date}\r\nauthorization: {authorization}\r\n\r\n",
        server.host
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
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let answered: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let parked = Arc::new(AtomicUsize::new(0));
    let rss_before = rss();
    let tasks: Vec<_> = (0..agents)
        .map(|i| {
            let (server, eni) = (replicas[i % replicas.len()].clone(), enis[i].clone());
            let (answered, parked) = (answered.clone(), parked.clone());
            runtime.spawn(async move {
                let tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
                let mut stream = BufReader::new(tcp);
                let path = format!("/tapwire/v1/network-interfaces/{eni}/config");
                let (status, revision) = get(&server, &mut stream, &path, &[]).await;
                assert_eq!(status, 200);
                let query = [("after".to_owned(), revision.unwrap().to_string()), ("wait".to_owned(), "30".to_owned())];
                parked.fetch_add(1, Ordering::Relaxed);
                let (status, _) = get(&server, &mut stream, &path, &query).await;
                if status == 200 {
                    answered.lock().unwrap().push((i, Instant::now()));
                }
            })
        })
        .collect();
    while parked.load(Ordering::Relaxed) < agents {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2)); // the last requests reach their replica
    let rss_parked = rss();
    let cpu_before = cpu();
    // From the call leaving the client: its answer and the agents' race each other.
    let sent = Instant::now();
    post_form(&format!(
        "Action=CreateTrafficMirrorFilterRule&Version=2016-11-15&TrafficMirrorFilterId={filter}&TrafficDirection=ingress\
         &RuleNumber=1&RuleAction=accept&SourceCidrBlock=0.0.0.0/0&DestinationCidrBlock=0.0.0.0/0"
    ));
    let acked = sent.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.lock().unwrap().len() < affected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(2)); // time for a wrongly woken poll to show
    let cpu_change = cpu() - cpu_before;
    for task in tasks {
        task.abort();
    }
    // The tasks' clones of the servers go with the runtime, before the caller's do.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let got = answered.lock().unwrap().clone();
    let mut times: Vec<Duration> =
        got.iter().filter(|(i, _)| *i < affected).map(|(_, at)| at.duration_since(sent)).collect();
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
         RSS {:.1} KiB per parked poll (servers and clients), {:.0} MiB in all; CPU for the change {:.0?}",
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

/// A PostgreSQL cluster the bench made (as the `postgres` user, in a temporary
/// directory); stopped and removed on drop.
struct Cluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn as_postgres(&self, program: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(self.bin.join(program))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Starts one, if this is root on a machine with Debian's PostgreSQL server; a URL.
    fn start() -> Option<(Self, String)> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .max()?;
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        if std::fs::metadata("/proc/self").ok()?.uid() != 0 || !bin.join("initdb").exists() {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let entry: Vec<&str> = passwd.lines().find(|l| l.starts_with("postgres:"))?.split(':').collect();
        let (uid, gid) = (entry[2].parse().ok()?, entry[3].parse().ok()?);
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let cluster = Cluster { bin, dir };
        let data = cluster.dir.path().join("data");
        let data = data.to_str().unwrap();
        assert!(
            cluster.as_postgres("initdb", &["-D", data, "-U", "tapwire", "-A", "trust", "--no-sync"]).status.success()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=100",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("log");
        let started =
            cluster.as_postgres("pg_ctl", &["-D", data, "-l", log.to_str().unwrap(), "-o", &options, "-w", "start"]);
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        let made = cluster.as_postgres(
            "psql",
            &["-h", "127.0.0.1", "-p", &port, "-U", "tapwire", "-d", "postgres", "-c", "CREATE DATABASE fleet"],
        );
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        Some((cluster, format!("postgres://tapwire@127.0.0.1:{port}/fleet")))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.as_postgres("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let agents = make_room(agents_wanted());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = start_on(Box::new(tapwire_store::SqliteStore::open_dir(dir.path()).unwrap()), dir, true, false, None);
    let one = measure(&[Arc::new(sqlite)], agents);
    report("SQLite, 1 replica", agents, &one);

    let (_cluster, url) = match std::env::var("TAPWIRE_BENCH_POSTGRES") {
        Ok(url) => (None, url),
        Err(_) => match Cluster::start() {
            Some((cluster, url)) => (Some(cluster), url),
            None => {
                println!(
                    "fleet PostgreSQL: not run (set TAPWIRE_BENCH_POSTGRES, or run as root with postgresql installed)"
                );
                return;
            }
        },
    };
    let replica = |root| {
        let store = tapwire_store::PostgresStore::connect(&url).unwrap();
        Arc::new(start_on(Box::new(store), tempfile::tempdir().unwrap(), true, false, root))
    };
    let a = replica(None);
    let b = replica(a.key.clone());
    let two = measure(&[a, b], agents);
    report("PostgreSQL, 2 replicas", agents, &two);
    println!(
        "fleet: PostgreSQL/2 replicas vs SQLite/1: p99 {:.2}x, RSS per parked poll {:.2}x",
        two.p99.as_secs_f64() / one.p99.as_secs_f64(),
        two.rss_per_poll / one.rss_per_poll
    );
}
