//! Mirroring cost on a veth pair: `cargo bench -p tapwire-agent --bench mirror` (root).
//!
//! Builds two namespaces (sender 198.18.200.1, receiver/sensor 198.18.200.2, veth, MTU
//! 1500), then, in one run, drives 64-byte UDP datagrams (sendmmsg ×64, one connected
//! socket, as fast as the sender goes) for `TAPWIRE_BENCH_SECONDS` (default 5) seconds:
//! (a) nothing mirrored; (b) tapwire's pipeline (AF_PACKET TPACKET_V3 ring + engine
//! pre-filter + classifier + sendmmsg straight to the device once the next hop is known,
//! in-process on its own thread, in the sender namespace) mirroring every datagram to
//! VNI 42, and (b1) the same with `--send-path routed` (raw UDP sockets, the previous path); (c) Linux tc: a clsact u32 filter
//! with `mirred egress mirror` to a vxlan device (VNI 43). The receiver decapsulates with
//! kernel vxlan devices (vx42, vx43), whose rx counters are the copies delivered.
//! Two more tapwire cases send to a sensor group of three members (three addresses of the
//! receiver): (b2) `flow-hash`, one copy per datagram through the Maglev table, and (b3)
//! `replicate`, three copies per datagram; each shows the capture thread's CPU per copy
//! beside the single target's (b).
//! Prints sender pps, mirrored pps, copies lost and the sender's slowdown per case, and the
//! goal check (zero copies lost; slowdown at most half of tc's), plus the sender thread's
//! CPU share and CPU time per datagram (the slowdown other load on the machine cannot fake:
//! if something else takes the sender's CPU, pps drops but ns per datagram does not) and
//! the capture thread's CPU time per copy. `TAPWIRE_BENCH_RING=<KiB>x<blocks>` overrides
//! the agent's ring geometry. The sender is pinned to
//! CPU 0, tapwire's capture thread to CPU 1; the receiver has no socket on the port (its
//! kernel still takes every datagram through IP and UDP and drops it). Namespaces are
//! deleted at the end, on failure too.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapwire_agent::applied::{AppliedConfig, ConfigSlot};
use tapwire_agent::capture::{Capture, RingCapture};
use tapwire_agent::follow::Link;
use tapwire_agent::host::route_lookup;
use tapwire_agent::offload::OffloadMode;
use tapwire_agent::output::{SendPath, SocketTransmit};
use tapwire_agent::pipeline::{self, Oversize, Pipeline, PipelineSettings};
use tapwire_agent::report::InterfaceReport;
use tapwire_agent::sys::netdev::enter_network_namespace;
use tapwire_agent::sys::send::{Destination, MmsgBatch, SendOutcome};
use tapwire_agent::{AgentOptions, DEFAULT_MARK};
use tapwire_model::config::InterfaceConfig;

const SENDER: &str = "twbench-a";
const RECEIVER: &str = "twbench-b";
const A: &str = "198.18.200.1";
const B: &str = "198.18.200.2";
/// The sensor group's members: three addresses of the receiver.
const MEMBERS: [&str; 3] = [B, "198.18.200.3", "198.18.200.4"];
/// The sender runs on CPU 0 in every case; tapwire's capture thread on CPU 1 (what
/// `tapwire agent --cpu 1` does). tc has no thread: its work runs on the sender's CPU.
const SENDER_CPU: usize = 0;
const AGENT_CPU: usize = 1;

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

struct Namespaces;

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [SENDER, RECEIVER] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn build() -> Namespaces {
    drop(Namespaces);
    sh(&["ip", "netns", "add", SENDER]);
    sh(&["ip", "netns", "add", RECEIVER]);
    let guard = Namespaces;
    sh(&["ip", "link", "add", "veth0", "netns", SENDER, "type", "veth", "peer", "name", "veth0", "netns", RECEIVER]);
    for (ns, addr) in [(SENDER, A), (RECEIVER, B), (RECEIVER, MEMBERS[1]), (RECEIVER, MEMBERS[2])] {
        sh(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "veth0"]);
        sh(&["ip", "-n", ns, "link", "set", "veth0", "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    for vni in ["42", "43"] {
        let dev = format!("vx{vni}");
        sh(&["ip", "-n", RECEIVER, "link", "add", &dev, "type", "vxlan", "id", vni, "dstport", "4789", "nolearning"]);
        sh(&["ip", "-n", RECEIVER, "link", "set", &dev, "up"]);
    }
    guard
}

fn rx_packets(ns: &str, dev: &str) -> u64 {
    let out = Command::new("ip").args(["-n", ns, "-s", "-j", "link", "show", dev]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        enter_network_namespace(&path).unwrap();
        f()
    })
}

/// Nanoseconds the calling thread has run on a CPU (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Sends 64-byte datagrams from the sender namespace for `duration`; returns the count sent
/// and the sender thread's CPU time in nanoseconds (other load on the machine takes CPU
/// away from the sender; packets per CPU-second are the cost measure that load does not
/// change).
fn blast(duration: Duration) -> (u64, u64) {
    in_ns(SENDER, move || {
        tapwire_agent::sys::pin_current_thread(SENDER_CPU).unwrap();
        let socket = UdpSocket::bind((A, 0)).unwrap();
        socket.connect((B, 5001)).unwrap();
        let payload = [0x5au8; 64];
        let mut batch = MmsgBatch::new(64);
        let mut sent = 0u64;
        let cpu = thread_cpu_ns();
        let start = Instant::now();
        while start.elapsed() < duration {
            sent += batch.send(
                &socket,
                Destination::Connected,
                64,
                |_| (&[][..], &payload[..]),
                |_, o| drop::<SendOutcome>(o),
            ) as u64;
        }
        (sent, thread_cpu_ns() - cpu)
    })
    .join()
    .unwrap()
}

/// The session, to B alone or to the three members in `mode`.
fn config(group: Option<&str>) -> InterfaceConfig {
    let group = group.map(|mode| {
        let members: Vec<_> = MEMBERS
            .iter()
            .enumerate()
            .map(|(i, a)| {
                serde_json::json!({"network_interface_id": format!("eni-0000000000000000{i}"),
                                   "target": {"address": a, "port": 4789}})
            })
            .collect();
        serde_json::json!({"mode": mode, "members": members})
    });
    serde_json::from_value(serde_json::json!({
        "schema": 1, "revision": 1, "network_interface_id": "eni-0123456789abcdef0", "addresses": [A],
        "sessions": [{"session_id": "tms-0123456789abcdef0", "number": 1, "vni": 42, "enabled": true,
            "target": {"address": B, "port": 4789}, "group": group,
            "filter": {"filter_id": "tmf-0123456789abcdef0", "network_services": [], "ingress": [],
                "egress": [{"rule_id": "tmfr-0123456789abcdef0", "number": 1, "action": "accept", "protocol": 17,
                    "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                    "destination_ports": {"from": 5001, "to": 5001}}]}}]
    }))
    .unwrap()
}

struct Case {
    name: &'static str,
    /// Copies each datagram should make (3 when replicated to three).
    fanout: u64,
    sent: u64,
    sender_cpu_ns: u64,
    mirrored: u64,
    seconds: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("mirror: bench");
        return;
    }
    let seconds: u64 = std::env::var("TAPWIRE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let _guard = build();
    blast(Duration::from_millis(500)); // warm up ARP and caches
    let mut cases = Vec::new();

    // (a) nothing mirrored.
    let (sent, sender_cpu_ns) = blast(duration);
    cases.push(Case {
        name: "a: no mirroring",
        fanout: 1,
        sent,
        sender_cpu_ns,
        mirrored: 0,
        seconds: duration.as_secs_f64(),
    });

    // (b) tapwire, to one target, then to a sensor group.
    let mut agent_cpu = Vec::new();
    for (name, group, fanout, send_path) in [
        ("b: tapwire agent", None, 1, SendPath::Direct),
        ("b1: tapwire, --send-path routed", None, 1, SendPath::Routed),
        ("b2: tapwire, 3-member flow-hash", Some("flow-hash"), 1, SendPath::Direct),
        ("b3: tapwire, replicate to 3", Some("replicate"), 3, SendPath::Direct),
    ] {
        let (mut case, cpu_ns, report) = run_tapwire(name, config(group), duration, send_path);
        case.fanout = fanout;
        agent_cpu.push((name, cpu_ns, report));
        cases.push(case);
    }

    // (c) tc u32 + mirred to a vxlan device.
    for args in [
        vec![
            "ip", "-n", SENDER, "link", "add", "vxm", "type", "vxlan", "id", "43", "remote", B, "local", A, "dstport",
            "4789",
        ],
        vec!["ip", "-n", SENDER, "link", "set", "vxm", "up"],
        vec!["tc", "-n", SENDER, "qdisc", "add", "dev", "veth0", "clsact"],
        vec![
            "tc", "-n", SENDER, "filter", "add", "dev", "veth0", "egress", "protocol", "ip", "u32", "match", "ip",
            "protocol", "17", "0xff", "match", "ip", "dport", "5001", "0xffff", "action", "mirred", "egress", "mirror",
            "dev", "vxm",
        ],
    ] {
        sh(&args);
    }
    let before = rx_packets(RECEIVER, "vx43");
    let (sent, sender_cpu_ns) = blast(duration);
    std::thread::sleep(Duration::from_millis(500));
    let mirrored = rx_packets(RECEIVER, "vx43") - before;
    cases.push(Case {
        name: "c: tc u32 + mirred -> vxlan",
        fanout: 1,
        sent,
        sender_cpu_ns,
        mirrored,
        seconds: duration.as_secs_f64(),
    });

    let base = cases[0].sent as f64 / cases[0].seconds;
    println!("\nmirroring 64-byte UDP on a veth pair, {seconds} s per case, {} CPUs", num_cpus());
    println!(
        "{:<30} {:>12} {:>14} {:>12} {:>16} {:>11} {:>16}",
        "case", "sender pps", "copies/s", "copies lost", "sender slowdown", "sender CPU", "ns/pkt (sender)"
    );
    let mut slowdowns = Vec::new();
    for c in &cases {
        let pps = c.sent as f64 / c.seconds;
        let slowdown = 100.0 * (1.0 - pps / base);
        slowdowns.push(slowdown);
        let cpu_share = format!("{:.0}%", 100.0 * c.sender_cpu_ns as f64 / 1e9 / c.seconds);
        let ns_per_packet = c.sender_cpu_ns as f64 / c.sent.max(1) as f64;
        let (mirrored, lost) = if c.mirrored == 0 && c.name.starts_with('a') {
            ("-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.0}", c.mirrored as f64 / c.seconds),
                (c.sent * c.fanout).saturating_sub(c.mirrored).to_string(),
            )
        };
        println!(
            "{:<30} {:>12.0} {:>14} {:>12} {:>15.1}% {:>11} {:>16.0}",
            c.name, pps, mirrored, lost, slowdown, cpu_share, ns_per_packet
        );
    }
    let single_ns_per_copy = {
        let (_, cpu, report) = &agent_cpu[0];
        *cpu as f64 / report.sessions.first().map_or(1, |s| s.delivery.mirrored_packets.max(1)) as f64
    };
    for (name, agent_cpu_ns, report) in &agent_cpu {
        let d = report.sessions.first().map(|s| s.delivery).unwrap_or_default();
        let per_copy = *agent_cpu_ns as f64 / d.mirrored_packets.max(1) as f64;
        println!(
            "{name}: ring drops {}, send-queue drops {}, send errors {}, copies sent {} ({} routed); capture thread \
             {:.0} ms on \
             CPU {AGENT_CPU}, {per_copy:.0} ns per copy = {:.2}x the single target's (the sensor's decapsulation \
             runs in the same softirq context and is included)",
            report.counters.ring_drops,
            d.dropped_send_busy,
            d.dropped_send_error,
            d.mirrored_packets,
            d.sent_routed,
            *agent_cpu_ns as f64 / 1e6,
            per_copy / single_ns_per_copy
        );
    }
    let lost_b = cases[1].sent.saturating_sub(cases[1].mirrored);
    let tc = cases.len() - 1;
    println!(
        "goal: zero copies lost: {}; slowdown {:.1}% <= half of tc's {:.1}%: {}",
        if lost_b == 0 { "yes" } else { "NO" },
        slowdowns[1],
        slowdowns[tc],
        if slowdowns[1] <= slowdowns[tc] / 2.0 { "yes" } else { "NO" }
    );
}

/// One tapwire case: the agent's pipeline on its own thread mirroring under `config`
/// while the sender blasts; the case, the capture thread's CPU time and its counters.
fn run_tapwire(
    name: &'static str,
    config: InterfaceConfig,
    duration: Duration,
    send_path: SendPath,
) -> (Case, u64, InterfaceReport) {
    let stop = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(ConfigSlot::default());
    let applied = AppliedConfig::build(config, DEFAULT_MARK, OffloadMode::Segment, &route_lookup).unwrap();
    slot.publish(Arc::new(applied));
    let published = Arc::new(Mutex::new(InterfaceReport::default()));
    let agent = {
        let (stop, slot, published) = (Arc::clone(&stop), Arc::clone(&slot), Arc::clone(&published));
        in_ns(SENDER, move || {
            tapwire_agent::sys::pin_current_thread(AGENT_CPU).unwrap();
            let mut options = AgentOptions::default();
            // TAPWIRE_BENCH_RING=<block KiB>x<blocks> tries another ring geometry.
            if let Some((kib, blocks)) = std::env::var("TAPWIRE_BENCH_RING").ok().and_then(|v| {
                let (k, b) = v.split_once('x')?;
                Some((k.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
            }) {
                options.ring.block_size = kib << 10;
                options.ring.block_count = blocks;
            }
            let ifindex = tapwire_agent::sys::netdev::interface_index("veth0").unwrap();
            let mut capture =
                RingCapture::open(ifindex, options.ring, &slot.load().1.unwrap().prefilter, None).unwrap();
            let transmit = SocketTransmit::open(
                options.mark,
                options.send_buffer,
                options.batch_size,
                Oversize::Truncate,
                send_path,
            )
            .unwrap();
            let settings = PipelineSettings {
                offload: OffloadMode::Segment,
                interface_mtu: 1500,
                batch_size: 64,
                oversize: Oversize::Truncate,
            };
            let mut p = Pipeline::new(settings, slot, transmit);
            let cap: &mut dyn Capture = &mut capture;
            let cpu = thread_cpu_ns();
            pipeline::run(cap, &mut p, "veth0", options.poll_timeout, &stop, &published, &Link::default());
            thread_cpu_ns() - cpu
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = rx_packets(RECEIVER, "vx42");
    let (sent, sender_cpu_ns) = blast(duration);
    std::thread::sleep(Duration::from_millis(500));
    let mirrored = rx_packets(RECEIVER, "vx42") - before;
    stop.store(true, Ordering::Relaxed);
    let agent_cpu_ns = agent.join().unwrap();
    let report = published.lock().unwrap().clone();
    (Case { name, fanout: 1, sent, sender_cpu_ns, mirrored, seconds: duration.as_secs_f64() }, agent_cpu_ns, report)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
