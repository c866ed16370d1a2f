//! End to end over loopback: N VXLAN datagrams sent to the in-process receiver
//! (`recvmmsg` → decap → pcapng file) while `tcpdump -w` captures the same stream on
//! `lo`. Prints, per frame size, frames written and CPU time for each, frames per
//! CPU-second (one core's worth of work) and the tapwire/tcpdump ratio.
//!
//! CPU time is what each consumer spends itself (user + system, from
//! `CLOCK_THREAD_CPUTIME_ID` for the receive worker and `/proc/PID/stat` for tcpdump);
//! the kernel's delivery work in softirq context is charged to the sender for both.
//! Traffic stays on 127.0.0.1. Needs root (tcpdump) and `tcpdump` on the PATH.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tapwire_receive::rotate::Rotation;
use tapwire_receive::{Format, Output, Receiver, Target};
use tapwire_wire::vxlan;

const N: usize = 200_000;

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
    let ticks = clock_ticks();
    println!(
        "{:>6} {:>8} | {:>9} {:>8} {:>12} | {:>9} {:>8} {:>12} | {:>6} | {:>9}",
        "frame", "sent", "tapwire", "cpu s", "frames/cpu-s", "tcpdump", "cpu s", "frames/cpu-s", "ratio", "send kpps"
    );
    for frame_len in [64usize, 1500] {
        run_one(frame_len, ticks);
    }
}

fn run_one(frame_len: usize, ticks: f64) {
    let dir = std::env::temp_dir().join(format!("tapwire-e2e-{}-{frame_len}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let receiver = Receiver::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), 1, 64 << 20).expect("bind");
    let port = receiver.local_addr().port();
    let output = Output::new(Target::File(dir.join("tapwire.pcapng")), Format::Pcapng, Rotation::default(), None)
        .expect("output");

    let tcpdump_file = dir.join("tcpdump.pcap");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-s", "0", "-B", "65536", "-w"])
        .arg(&tcpdump_file)
        .args(["udp", "and", "dst", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpdump");
    let (tx, rx) = mpsc::channel();
    let stderr = tcpdump.stderr.take().expect("stderr");
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

    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || receiver.run(output, stop, false))
    };

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
    let t0 = Instant::now();
    for i in 0..N {
        sock.send(&datagrams[i % datagrams.len()]).expect("send");
    }
    let send_time = t0.elapsed();

    // Let both consumers empty their buffers: wait until tcpdump's CPU time stops moving.
    let pid = tcpdump.id();
    let mut last = proc_cpu_ticks(pid);
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = proc_cpu_ticks(pid);
        if now == last {
            break;
        }
        last = now;
    }
    let tcpdump_cpu = last as f64 / ticks;
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = tcpdump.wait();
    let lines = reader.join().expect("reader");
    let captured = lines
        .iter()
        .find_map(|l| l.strip_suffix(" packets captured").and_then(|n| n.trim().parse::<u64>().ok()))
        .unwrap_or(0);

    stop.store(true, Ordering::SeqCst);
    let summary = run.join().expect("receiver");
    let written = summary.stats.written;
    let tap_cpu = summary.worker_cpu.as_secs_f64();

    let tap_rate = written as f64 / tap_cpu.max(1e-9);
    let dump_rate = captured as f64 / tcpdump_cpu.max(1e-9);
    println!(
        "{:>5}B {:>8} | {:>9} {:>8.3} {:>12.0} | {:>9} {:>8.3} {:>12.0} | {:>5.2}x | {:>9.1}",
        frame_len,
        N,
        written,
        tap_cpu,
        tap_rate,
        captured,
        tcpdump_cpu,
        dump_rate,
        tap_rate / dump_rate.max(1e-9),
        N as f64 / send_time.as_secs_f64() / 1e3,
    );
    println!(
        "summary: {frame_len}B frames: tapwire receive {:.0} frames/cpu-s, tcpdump -w {:.0} frames/cpu-s, ratio {:.2} \
         (written {written}/{N}, captured {captured}/{N}; {:.1} datagrams per recvmmsg; files {} and {} bytes)",
        tap_rate,
        dump_rate,
        tap_rate / dump_rate.max(1e-9),
        summary.stats.received as f64 / summary.stats.batches.max(1) as f64,
        size(&dir.join("tapwire.pcapng")),
        size(&tcpdump_file),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime is field 14, stime 15; `f[0]` is field 3.
    get(11) + get(12)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
