//! What the `tapwire receive` tests share: hand-built frames and VXLAN datagrams, the
//! receiver process with its summary, and tshark reading the files it wrote.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tapwire_wire::vxlan;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Frames and datagrams

/// An Ethernet/IPv4/UDP frame from 198.18.<n>.1 to 198.19.0.1 whose IP ID and first
/// payload bytes carry `seq`, padded to `len` bytes (at least 60).
pub(crate) fn inner_frame(seq: u16, len: usize) -> Vec<u8> {
    let len = len.max(60);
    let ip_len = len - 14;
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src MAC
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&seq.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, (seq % 256) as u8, 1]);
    ip[16..20].copy_from_slice(&[198, 19, 0, 1]);
    let sum = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let udp_len = ip_len - 20;
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (allowed for IPv4)
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() as u8).wrapping_mul(7) ^ (seq as u8));
    }
    f
}

pub(crate) fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(crate) fn vxlan_datagram(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; vxlan::HEADER_LEN];
    vxlan::emit_header(&mut d, vni).unwrap();
    d.extend_from_slice(frame);
    d
}

pub(crate) fn epoch_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

pub(crate) fn sender(local: &str, to: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(local).unwrap();
    s.connect(to).unwrap();
    s
}

// ---------------------------------------------------------------------------------
// The receiver process

pub(crate) struct Receiver {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stderr: mpsc::Receiver<String>,
    pub(crate) lines: Vec<String>,
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapwire-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `tapwire receive ARGS` and waits for its "listening on ADDR" line.
pub(crate) fn start(args: &[&str], stdout: Stdio) -> Receiver {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .arg("receive")
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tapwire");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no `listening on` line; stderr so far: {lines:?}");
        };
        lines.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return Receiver { child, addr, stderr: rx, lines };
        }
    }
}

impl Receiver {
    pub(crate) fn sigterm(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for exit; returns (status success, stderr lines).
    pub(crate) fn wait(mut self) -> (bool, Vec<String>) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tapwire receive did not exit; stderr: {:?}", self.lines);
            }
            thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF once the process is gone.
        while let Ok(line) = self.stderr.recv_timeout(TIMEOUT) {
            self.lines.push(line);
        }
        (status.success(), self.lines)
    }
}

/// The numbers of the final summary line (`received=… written=…`).
pub(crate) fn summary(lines: &[String]) -> BTreeMap<String, u64> {
    let line = lines
        .iter()
        .find(|l| l.contains("received=") && l.contains("written="))
        .unwrap_or_else(|| panic!("no summary line in {lines:?}"));
    line.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

// ---------------------------------------------------------------------------------
// tshark

pub(crate) fn tshark() -> Command {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => Command::new("tshark"),
        _ => panic!(
            "tshark is required by these tests and is not installed \
             (DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)"
        ),
    }
}

pub(crate) fn check(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// One row per frame: the requested fields, tab-separated by tshark.
pub(crate) fn fields(file: &Path, names: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = tshark();
    cmd.arg("-r").arg(file).args(["-T", "fields", "-E", "separator=/t"]);
    for n in names {
        cmd.args(["-e", n]);
    }
    check(cmd.output().unwrap(), "tshark -T fields")
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The raw bytes of every frame, in file order (`-T json -x` → `frame_raw`).
pub(crate) fn frames(file: &Path) -> Vec<Vec<u8>> {
    let out = check(tshark().arg("-r").arg(file).args(["-T", "json", "-x"]).output().unwrap(), "tshark -T json -x");
    let packets: serde_json::Value = serde_json::from_str(&out).unwrap();
    packets
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let hex = p["_source"]["layers"]["frame_raw"][0].as_str().unwrap();
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Tests

/// Reads lines from a child's stdout on a thread, so the test can wait with a timeout.
pub(crate) fn line_reader(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `frame` one router later: TTL down by one (checksum updated), MACs rewritten.
pub(crate) fn routed(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x09, 0x02, 0, 0, 0, 0, 0x08]);
    f[14 + 8] -= 1;
    f[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let sum = ip_checksum(&f[14..34]);
    f[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    f
}
