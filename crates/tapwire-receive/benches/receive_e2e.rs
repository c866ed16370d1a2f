//! End to end over loopback: `cargo bench -p tapwire-receive --bench receive_e2e` (root,
//! `tcpdump` on the PATH).
//!
//! For 64- and 1500-byte inner frames, each round sends N VXLAN datagrams (1,000,000,
//! or `TAPWIRE_BENCH_DATAGRAMS`) to 127.0.0.1
//! once per consumer, each consumer alone: nothing (a socket holds the port and drops
//! everything), `tcpdump -w` on `lo`, tapwire's socket path (`recvmmsg`) and tapwire
//! `--capture lo` (TPACKET_V3 rings), both writing pcapng, and `--capture` writing pcap
//! as tcpdump does. Per pass it reads:
//! - the consumer's own CPU in nanoseconds: schedstat of every tcpdump thread from just
//!   before the first datagram (its start-up is not counted), or tapwire's workers';
//! - the whole system's busy CPU over the pass (`/proc/stat`), from which the round's
//!   nothing pass is taken away: the CPU the consumer costs the machine, kernel copies
//!   into rings and socket queues included.
//!
//! Prints frames per CPU-second both ways, median [min, max] over
//! `TAPWIRE_BENCH_ROUNDS` rounds (default 5), and the ratios to tcpdump within each round.
//! Goal: `--capture` at least 1.5× tcpdump -w in frames per whole-system CPU-second.

#[path = "../../tapwire-agent/benches/mirror/cpu.rs"]
mod cpu;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tapwire_receive::rotate::Rotation;
use tapwire_receive::{Format, Output, Receiver, Target};
use tapwire_wire::vxlan;

use crate::cpu::{process_cpu_ns, system_busy_ns};

/// Datagrams per pass (`TAPWIRE_BENCH_DATAGRAMS`): long passes, so the 10 ms steps of
/// `/proc/stat` and other load on the machine weigh little.
fn datagram_count() -> usize {
    std::env::var("TAPWIRE_BENCH_DATAGRAMS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Consumer {
    Nothing,
    Tcpdump,
    Socket,
    Capture,
    /// `--capture --format pcap`: the file format tcpdump writes.
    CapturePcap,
}

const CONSUMERS: [Consumer; 5] =
    [Consumer::Nothing, Consumer::Tcpdump, Consumer::Socket, Consumer::Capture, Consumer::CapturePcap];

/// What one pass measured.
#[derive(Debug, Clone, Copy, Default)]
struct Pass {
    frames: u64,
    own_ns: u64,
    system_ns: u64,
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing
    // and must not spend a minute here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("receive_e2e: run with `cargo bench -p tapwire-receive --bench receive_e2e`");
        return;
    }
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("receive_e2e: tcpdump is not installed (apt-get install -y tcpdump)");
        std::process::exit(1);
    }
    let rounds: usize = std::env::var("TAPWIRE_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("tapwire-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for frame_len in [64usize, 1500] {
        let passes: Vec<Vec<Pass>> =
            (0..rounds.max(1)).map(|_| CONSUMERS.iter().map(|c| pass(*c, frame_len, &dir)).collect()).collect();
        report(frame_len, &passes);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn report(frame_len: usize, passes: &[Vec<Pass>]) {
    println!(
        "\n{frame_len}-byte inner frames, {} datagrams, {} rounds: median [min, max]",
        datagram_count(),
        passes.len()
    );
    println!("{:<28} {:>14} {:>30} {:>30}", "consumer", "frames", "frames per own CPU-s", "frames per system CPU-s");
    let own = |p: &Pass| p.frames as f64 / (p.own_ns as f64 / 1e9);
    let system = |p: &Pass, base: &Pass| p.frames as f64 / (p.system_ns.saturating_sub(base.system_ns) as f64 / 1e9);
    let names = ["tcpdump -w", "tapwire receive (socket)", "tapwire receive --capture", "  the same, --format pcap"];
    for (i, name) in names.iter().enumerate() {
        let c = i + 1;
        let frames: Vec<f64> = passes.iter().map(|r| r[c].frames as f64).collect();
        let owns: Vec<f64> = passes.iter().map(|r| own(&r[c])).collect();
        let systems: Vec<f64> = passes.iter().map(|r| system(&r[c], &r[0])).collect();
        println!("{name:<28} {:>14} {:>30} {:>30}", spread(&frames), spread(&owns), spread(&systems));
    }
    for (c, name) in [(3, "--capture"), (4, "--capture --format pcap"), (2, "socket path")] {
        let whole: Vec<f64> = passes.iter().map(|r| system(&r[c], &r[0]) / system(&r[1], &r[0])).collect();
        let mine: Vec<f64> = passes.iter().map(|r| own(&r[c]) / own(&r[1])).collect();
        let (m, lo, hi) = median_range(&whole);
        let goal =
            if c >= 3 { format!(" (goal >= 1.5: {})", if m >= 1.5 { "met" } else { "MISSED" }) } else { String::new() };
        println!(
            "summary: {frame_len}B: tapwire {name} / tcpdump -w, frames per system CPU-s {m:.2} [{lo:.2}, {hi:.2}]{goal}; per own CPU-s {}",
            spread_ratio(&mine)
        );
    }
}

fn median_range(v: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn spread(v: &[f64]) -> String {
    let (m, lo, hi) = median_range(v);
    format!("{m:.0} [{lo:.0}, {hi:.0}]")
}

fn spread_ratio(v: &[f64]) -> String {
    let (m, lo, hi) = median_range(v);
    format!("{m:.2} [{lo:.2}, {hi:.2}]")
}

/// One consumer's pass: start it, send N datagrams, let it finish.
fn pass(consumer: Consumer, frame_len: usize, dir: &std::path::Path) -> Pass {
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let format = if consumer == Consumer::CapturePcap { Format::Pcap } else { Format::Pcapng };
    let output =
        || Output::new(Target::File(dir.join("tapwire.out")), format, Rotation::default(), None).expect("output");
    match consumer {
        Consumer::Nothing => {
            let holder = port_holder();
            let port = holder.local_addr().expect("holder address").port();
            measure(port, frame_len, || None::<()>).1
        }
        Consumer::Tcpdump => {
            let holder = port_holder();
            let port = holder.local_addr().expect("holder address").port();
            tcpdump(port, frame_len, dir)
        }
        Consumer::Socket | Consumer::Capture | Consumer::CapturePcap => {
            let receiver = match consumer {
                Consumer::Socket => Receiver::bind(any_port, 1, 64 << 20),
                _ => Receiver::capture("lo", any_port, 1),
            }
            .expect("receiver");
            let port = receiver.local_addr().port();
            let stop = Arc::new(AtomicBool::new(false));
            let run = {
                let (stop, output) = (Arc::clone(&stop), output());
                thread::spawn(move || receiver.run(output, stop, false))
            };
            let (summary, mut pass) = measure(port, frame_len, || {
                thread::sleep(Duration::from_millis(300));
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                Some(run.join().expect("receiver"))
            });
            let summary = summary.expect("summary");
            pass.frames = summary.stats.written;
            pass.own_ns = summary.worker_cpu.as_nanos() as u64;
            pass
        }
    }
}

/// A socket holding `port` with the smallest buffer, so nothing answers with ICMP.
fn port_holder() -> UdpSocket {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let fd = std::os::fd::AsFd::as_fd(&socket);
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBuf, &1).expect("rcvbuf");
    socket
}

/// Sends N datagrams to `port`, runs `finish` (the consumer's wind-down), and reads the
/// whole system's busy CPU across both.
fn measure<T>(port: u16, frame_len: usize, finish: impl FnOnce() -> Option<T>) -> (Option<T>, Pass) {
    let datagrams: Vec<Vec<u8>> = (0..64u32)
        .map(|i| {
            let mut d = vec![0u8; vxlan::HEADER_LEN + frame_len];
            vxlan::emit_header(&mut d, 40 + i % 4).expect("header");
            d[vxlan::HEADER_LEN..].iter_mut().enumerate().for_each(|(j, b)| *b = j as u8);
            d
        })
        .collect();
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    sock.connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    let before = system_busy_ns();
    for i in 0..datagram_count() {
        // A full consumer queue refuses with ENOBUFS now and then; it is not counted.
        let _ = sock.send(&datagrams[i % datagrams.len()]);
    }
    let finished = finish();
    (finished, Pass { system_ns: system_busy_ns() - before, ..Pass::default() })
}

fn tcpdump(port: u16, frame_len: usize, dir: &std::path::Path) -> Pass {
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-s", "0", "-B", "65536", "-w"])
        .arg(dir.join("tcpdump.pcap"))
        .args(["udp", "and", "dst", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpdump");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let reader = thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("tcpdump did not start listening");
    let pid = child.id();
    let started = process_cpu_ns(pid);
    let (own, mut pass) = measure(port, frame_len, || {
        // Until its CPU time stops moving: it has written what it captured.
        let mut last = process_cpu_ns(pid);
        loop {
            thread::sleep(Duration::from_millis(300));
            let now = process_cpu_ns(pid);
            if now == last {
                break;
            }
            last = now;
        }
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let _ = child.wait();
        Some(last - started)
    });
    pass.own_ns = own.unwrap_or(0);
    pass.frames = reader
        .join()
        .expect("reader")
        .iter()
        .find_map(|l| l.strip_suffix(" packets captured").and_then(|n| n.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    pass
}
