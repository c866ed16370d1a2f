//! Config propagation over the agents' channel, plain HTTP vs TLS in the same run: an
//! agent-like client holds a signed long poll (`GET …/config?after=R&wait=30`, keep-alive,
//! TLS resumed on the same connection as an agent's is), the EC2 API changes the
//! session's VNI, and the time from sending that call to the long poll's answer is taken.
//!
//! What TLS changes is this channel; what follows (the agent swapping its classifier,
//! the first copy) is the same either way, and `tapwire-agent`'s benches measure it.
//!
//! Goal (issue 13): TLS adds under 1 ms at the median.

#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap is a failed run")]

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Server, post, start};
use tapwire_control::Dialect;
use tapwire_control::ops::{InterfaceRegistration, Operation, RequestContext};
use tapwire_model::AccountId;

const ROUNDS: usize = 300;

/// Registers a source and a sensor, and makes a filter, a target and a session through
/// the EC2 API; returns the source's ID and the session's.
fn lab(server: &Server) -> (String, String) {
    let ctx = RequestContext::system(AccountId::DEFAULT, "us-east-1");
    let register = |host: &str, ip: &str| {
        let op = Operation::RegisterInterface(InterfaceRegistration::on_host(host, "eth0", vec![ip.parse().unwrap()]));
        server.api.control.execute(&ctx, Dialect::Tapwire, op).unwrap().into_interface().unwrap().id.to_string()
    };
    let (source, sensor) = (register("web1", "198.18.0.2"), register("sensor1", "198.18.0.9"));
    let agent = server.agent();
    let field = |xml: &str, name: &str| {
        let start = xml.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        xml[start..start + xml[start..].find('<').unwrap()].to_owned()
    };
    let target = field(
        &post(
            &agent,
            &server.url,
            &server.form(&format!("Action=CreateTrafficMirrorTarget&Version=2016-11-15&NetworkInterfaceId={sensor}")),
        ),
        "trafficMirrorTargetId",
    );
    let filter = field(
        &post(&agent, &server.url, &server.form("Action=CreateTrafficMirrorFilter&Version=2016-11-15")),
        "trafficMirrorFilterId",
    );
    let session = field(
        &post(
            &agent,
            &server.url,
            &server.form(&format!(
                "Action=CreateTrafficMirrorSession&Version=2016-11-15&NetworkInterfaceId={source}&TrafficMirrorTargetId={target}&TrafficMirrorFilterId={filter}&SessionNumber=1"
            )),
        ),
        "trafficMirrorSessionId",
    );
    (source, session)
}

/// The latest revision of `eni`'s config, and one long poll past `after`.
fn poll(server: &Server, agent: &ureq::Agent, eni: &str, after: Option<u64>) -> u64 {
    let path = format!("/tapwire/v1/network-interfaces/{eni}/config");
    let query: Vec<(String, String)> = match after {
        Some(a) => vec![("after".into(), a.to_string()), ("wait".into(), "30".into())],
        None => Vec::new(),
    };
    let (date, authorization) = server.sign_get(&path, &query);
    let qs: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
    let url = format!("{}{}?{qs}", server.url.trim_end_matches('/'), path);
    let mut resp = agent.get(&url).header("x-amz-date", &date).header("authorization", &authorization).call().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.body_mut().read_to_string().unwrap_or_default());
    let doc: serde_json::Value = resp.body_mut().read_json().unwrap();
    doc["revision"].as_u64().unwrap()
}

/// Median and 99th percentile of propagation times over `ROUNDS` changes.
fn measure(tls: bool) -> (Duration, Duration) {
    let server = start(true, tls);
    let (eni, session) = lab(&server);
    let api_agent = server.agent();
    let poll_agent = server.agent();
    let mut revision = poll(&server, &poll_agent, &eni, None);
    let mut times = Vec::with_capacity(ROUNDS);
    std::thread::scope(|scope| {
        let (start_tx, start_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<(u64, Instant)>();
        let server = &server;
        let eni = &eni;
        scope.spawn(move || {
            while start_rx.recv().is_ok() {
                let next = poll(server, &poll_agent, eni, Some(revision));
                revision = next;
                done_tx.send((next, Instant::now())).unwrap();
            }
        });
        for round in 0..ROUNDS {
            start_tx.send(()).unwrap();
            // Let the poll reach the server and wait there.
            std::thread::sleep(Duration::from_millis(3));
            let change = server.form(&format!(
                "Action=ModifyTrafficMirrorSession&Version=2016-11-15&TrafficMirrorSessionId={session}&VirtualNetworkId={}",
                1000 + round
            ));
            let sent = Instant::now();
            post(&api_agent, &server.url, &change);
            let (_, answered) = done_rx.recv().unwrap();
            times.push(answered.duration_since(sent));
        }
        drop(start_tx);
    });
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn main() {
    // `cargo test --benches` runs benches with no arguments but --bench; keep it short then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (plain_p50, plain_p99) = measure(false);
    let (tls_p50, tls_p99) = measure(true);
    println!(
        "config propagation (API call -> long poll answered), {ROUNDS} changes each: plain HTTP p50 {plain_p50:.2?} p99 {plain_p99:.2?}; TLS p50 {tls_p50:.2?} p99 {tls_p99:.2?}"
    );
    let added = tls_p50.as_secs_f64() - plain_p50.as_secs_f64();
    println!(
        "config propagation: TLS adds {:.0} µs at the median ({:.2}x; goal: under 1 ms)",
        added * 1e6,
        tls_p50.as_secs_f64() / plain_p50.as_secs_f64()
    );
}
