//! Mirroring cost on a veth pair, against tc mirred: `cargo bench -p tapwire-agent
//! --bench mirror` (root).
//!
//! Two namespaces (sender 198.18.200.1, receiver 198.18.200.2, veth, MTU 1600 so a
//! 1500-byte frame's copy fits). The receiver drops copies cheaply (a full UDP socket on
//! the VXLAN port, [`lab`]), so no peer is charged for a decapsulation. For each traffic
//! ([`load`]: UDP with 64- and 1500-byte frames, one flow and 256 flows; a TCP stream
//! with TSO), every round runs the peers back to back for `TAPWIRE_BENCH_SECONDS`
//! (default 2) each, `TAPWIRE_BENCH_ROUNDS` rounds (default 5):
//! (a) nothing mirrored; (b) tapwire's pipeline ([`tapwire`]) with one capture worker,
//! copies straight to the device; (b1) the same with `--send-path routed`, the path of the
//! previous build; (b2, many flows only) two workers; (c) tc: a clsact u32 filter with
//! `mirred egress mirror` to a vxlan device.
//!
//! CPU is counted in nanoseconds: the sender's and tapwire's threads from schedstat,
//! the whole system from `/proc/stat`. Per copy: the whole system's CPU beyond (a)'s for
//! as much traffic, split into the sender's extra, tapwire's threads, and the rest
//! (softirq elsewhere, the sensor's drop). The sender is pinned to CPU 0, tapwire's first
//! worker to CPU 1 (the second shares CPU 0, as `--workers` does on two CPUs).
//!
//! `TAPWIRE_BENCH_TRAFFIC=udp-64-1,udp-64-256,udp-1500-256,tcp` picks some of the
//! traffics (all by default). The medians are saved in
//! `CARGO_TARGET_TMPDIR/mirror-bench.json` (traffics not run keep what was saved for
//! them); the run before (or `TAPWIRE_BENCH_BASELINE=<file>`, saved by another build) is
//! shown beside them.

#![allow(clippy::unwrap_used, missing_docs)]

mod cpu;
mod lab;
mod load;
mod summary;
mod tapwire;

use std::time::Duration;

use tapwire_agent::output::SendPath;

use crate::lab::Lab;
use crate::load::Traffic;
use crate::summary::{Sample, Saved, paired};

const SENDER_CPU: usize = 0;
const AGENT_CPU: usize = 1;

#[derive(Debug, Clone, Copy)]
enum Peer {
    Nothing,
    Tapwire { send_path: SendPath, workers: usize },
    Tc,
}

const NOTHING: (&str, Peer) = ("a: no mirroring", Peer::Nothing);
const TAPWIRE: (&str, Peer) = ("b: tapwire", Peer::Tapwire { send_path: SendPath::Direct, workers: 1 });
const ROUTED: (&str, Peer) =
    ("b1: tapwire --send-path routed (previous path)", Peer::Tapwire { send_path: SendPath::Routed, workers: 1 });
const WORKERS: (&str, Peer) = ("b2: tapwire --workers 2", Peer::Tapwire { send_path: SendPath::Direct, workers: 2 });
const TC: (&str, Peer) = ("c: tc u32 + mirred -> vxlan", Peer::Tc);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("mirror: bench");
        return;
    }
    let duration = Duration::from_secs(env_number("TAPWIRE_BENCH_SECONDS", 2));
    let rounds = env_number("TAPWIRE_BENCH_ROUNDS", 5).max(1) as usize;
    let saved_path = std::path::PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/mirror-bench.json"));
    let baseline_path = std::env::var_os("TAPWIRE_BENCH_BASELINE").map_or(saved_path.clone(), Into::into);
    let baseline = read_saved(&baseline_path);
    let lab = Lab::build();
    lab::tcp_sink(SENDER_CPU);
    load::drive(Traffic::Udp { frame_len: 64, flows: 1 }, Duration::from_millis(500), SENDER_CPU); // ARP, caches
    println!(
        "mirroring on a veth pair: {rounds} rounds of {} s per case, {} CPUs; baseline: {}",
        duration.as_secs(),
        lab::num_cpus(),
        if baseline.is_some() { baseline_path.display().to_string() } else { "none saved".into() }
    );
    // Traffics not run this time keep the figures saved before.
    let mut saved = read_saved(&saved_path).unwrap_or_default();
    let workloads = [
        Traffic::Udp { frame_len: 64, flows: 1 },
        Traffic::Udp { frame_len: 64, flows: 256 },
        Traffic::Udp { frame_len: 1500, flows: 256 },
        Traffic::Tcp,
    ];
    let chosen = std::env::var("TAPWIRE_BENCH_TRAFFIC").ok();
    let workloads =
        workloads.into_iter().filter(|t| chosen.as_deref().is_none_or(|c| c.split(',').any(|n| n == t.key())));
    let mut goals = Vec::new();
    for traffic in workloads {
        let cases: Vec<(&str, Peer)> = match traffic {
            Traffic::Udp { flows, .. } if flows > 1 => vec![NOTHING, TAPWIRE, ROUTED, WORKERS, TC],
            _ => vec![NOTHING, TAPWIRE, ROUTED, TC],
        };
        let samples: Vec<Vec<Sample>> = (0..rounds)
            .map(|_| cases.iter().map(|(_, peer)| run_case(&lab, traffic, *peer, duration)).collect())
            .collect();
        let labels: Vec<&str> = cases.iter().map(|(l, _)| *l).collect();
        summary::print(traffic, &labels, &samples, baseline.as_ref(), &mut saved);
        goals.push((traffic, samples, cases.len() - 1));
    }
    println!("\n== goals (ratios within each round: median [min, max]) ==");
    for (traffic, samples, tc) in &goals {
        let show = |(m, lo, hi): (f64, f64, f64)| format!("{m:.2} [{lo:.2}, {hi:.2}]");
        let cpu = paired(samples, 1, *tc, |b, c| b.system_extra / c.system_extra);
        let slowdown = paired(samples, 1, *tc, |b, c| b.slowdown_pct / c.slowdown_pct);
        let previous = paired(samples, 1, 2, |b, b1| b.system_extra / b1.system_extra);
        let agent = summary::median_range(&samples.iter().map(|r| r[1].figures(&r[0]).agent).collect::<Vec<_>>());
        let lost: u64 = samples.iter().map(|r| r[1].sent.saturating_sub(r[1].copies)).sum();
        let cpu_goal = match traffic {
            Traffic::Udp { frame_len: 64, .. } => Some(0.8),
            Traffic::Udp { .. } => Some(1.0),
            Traffic::Tcp => None,
        };
        println!("{}:", traffic.name());
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        match cpu_goal {
            Some(goal) => println!(
                "  whole-system CPU per copy, tapwire / tc: {} (goal <= {goal}: {})",
                show(cpu),
                verdict(cpu.0 <= goal)
            ),
            None => println!("  whole-system CPU per copy, tapwire / tc: {}", show(cpu)),
        }
        println!("  sender slowdown, tapwire / tc: {} (goal <= 0.33: {})", show(slowdown), verdict(slowdown.0 <= 0.33));
        println!("  whole-system CPU per copy, direct / routed (previous path): {}", show(previous));
        if let Traffic::Udp { frame_len, .. } = traffic {
            println!("  copies lost by tapwire, all rounds: {lost} (goal 0: {})", verdict(lost == 0));
            let agent_goal = if *frame_len == 64 { " (goal <= 2,500 at 64 B: " } else { " (" };
            let agent_verdict = if *frame_len == 64 { verdict(agent.0 <= 2500.0) } else { "no goal" };
            println!("  tapwire threads' CPU per copy: {}{agent_goal}{agent_verdict})", show(agent).replace(".00", ""));
        }
    }
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let document = serde_json::json!({"revision": rev, "figures": saved});
    if let Some(dir) = saved_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&saved_path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    println!("\nsaved the medians (revision {rev}) in {}", saved_path.display());
}

/// The medians a run saved at `path`.
fn read_saved(path: &std::path::Path) -> Option<Saved> {
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    serde_json::from_value(document.get("figures")?.clone()).ok()
}

/// One peer's case in one round.
fn run_case(lab: &Lab, traffic: Traffic, peer: Peer, duration: Duration) -> Sample {
    let running = match peer {
        Peer::Tapwire { send_path, workers } => {
            let cpus: Vec<usize> = (0..workers).map(|w| (AGENT_CPU + w) % lab::num_cpus()).collect();
            let running = tapwire::start(traffic.rule(), send_path, workers, &cpus);
            // The ring is open and the next hop looked up before the traffic starts.
            std::thread::sleep(Duration::from_millis(300));
            Some(running)
        }
        Peer::Tc => {
            lab.add_tc(&traffic.tc_match());
            None
        }
        Peer::Nothing => None,
    };
    let copies_before = lab.copies();
    let system_before = cpu::system_busy_ns();
    let (sent, sender_ns) = load::drive(traffic, duration, SENDER_CPU);
    // What is still queued or in the ring gets out.
    std::thread::sleep(Duration::from_millis(200));
    let system_ns = cpu::system_busy_ns() - system_before;
    let copies = lab.copies() - copies_before;
    let mut sample =
        Sample { sent, seconds: duration.as_secs_f64(), sender_ns, system_ns, copies, ..Default::default() };
    if let Some(running) = running {
        let (agent_ns, report) = running.stop();
        sample.agent_ns = agent_ns;
        sample.routed = report.sessions.iter().map(|s| s.delivery.sent_routed).sum();
        sample.ring_drops = report.counters.ring_drops;
    }
    if matches!(peer, Peer::Tc) {
        lab.remove_tc();
    }
    sample
}
