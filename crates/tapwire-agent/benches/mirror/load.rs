//! The sender's traffic: UDP datagrams of one frame size over one or many flows
//! (`sendmmsg` ×64, as fast as the sender goes), or one bulk TCP stream (TSO on the veth,
//! so the capture sees super-frames). Each returns what it sent and the sending thread's
//! CPU time: other load on the machine takes CPU away from the sender, so per-unit CPU is
//! the figure load does not change.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use tapwire_agent::sys::send::{Destination, MmsgBatch, SendOutcome};

use crate::cpu::thread_cpu_ns;
use crate::lab::{A, B, SENDER, TCP_PORT, UDP_PORT, in_ns};

/// What a case sends.
#[derive(Debug, Clone, Copy)]
pub enum Traffic {
    /// UDP datagrams whose Ethernet frames are `frame_len` bytes, over `flows` source
    /// ports (taken in turn, 64 datagrams each).
    Udp { frame_len: usize, flows: u16 },
    /// One TCP connection written in 64 KiB chunks.
    Tcp,
}

impl Traffic {
    pub fn name(&self) -> String {
        match self {
            Traffic::Udp { frame_len, flows: 1 } => format!("UDP, {frame_len}-byte frames, 1 flow"),
            Traffic::Udp { frame_len, flows } => format!("UDP, {frame_len}-byte frames, {flows} flows"),
            Traffic::Tcp => "TCP stream (TSO super-frames)".to_owned(),
        }
    }

    /// Its name in `TAPWIRE_BENCH_TRAFFIC`.
    pub fn key(&self) -> String {
        match self {
            Traffic::Udp { frame_len, flows } => format!("udp-{frame_len}-{flows}"),
            Traffic::Tcp => "tcp".to_owned(),
        }
    }

    /// The u32 match of tc's filter for the same packets as the session's rule.
    pub fn tc_match(&self) -> Vec<&'static str> {
        match self {
            Traffic::Udp { .. } => {
                vec!["match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", "5001", "0xffff"]
            }
            Traffic::Tcp => vec!["match", "ip", "protocol", "6", "0xff", "match", "ip", "dport", "5002", "0xffff"],
        }
    }

    /// (protocol, destination port) of the session's one egress rule.
    pub fn rule(&self) -> (u8, u16) {
        match self {
            Traffic::Udp { .. } => (17, UDP_PORT),
            Traffic::Tcp => (6, TCP_PORT),
        }
    }
}

/// Sends `traffic` from the sender namespace on `cpu` for `duration`: (datagrams or TCP
/// segments' bytes sent, the sending thread's CPU nanoseconds).
pub fn drive(traffic: Traffic, duration: Duration, cpu: usize) -> (u64, u64) {
    in_ns(SENDER, move || {
        tapwire_agent::sys::pin_current_thread(cpu).unwrap();
        match traffic {
            Traffic::Udp { frame_len, flows } => udp(frame_len, flows, duration),
            Traffic::Tcp => tcp(duration),
        }
    })
    .join()
    .unwrap()
}

fn udp(frame_len: usize, flows: u16, duration: Duration) -> (u64, u64) {
    let sockets: Vec<UdpSocket> = (0..flows)
        .map(|i| {
            let s = UdpSocket::bind((A, 20000 + i)).unwrap();
            s.connect((B, UDP_PORT)).unwrap();
            s
        })
        .collect();
    // Ethernet 14 + IPv4 20 + UDP 8.
    let payload = vec![0x5au8; frame_len - 42];
    let mut batch = MmsgBatch::new(64);
    let (mut sent, mut turn) = (0u64, 0usize);
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    while start.elapsed() < duration {
        let socket = &sockets[turn % sockets.len()];
        turn += 1;
        sent +=
            batch.send(socket, Destination::Connected, 64, |_| (&[][..], &payload[..]), |_, o| drop::<SendOutcome>(o))
                as u64;
    }
    (sent, thread_cpu_ns() - cpu)
}

fn tcp(duration: Duration) -> (u64, u64) {
    let mut stream = TcpStream::connect((B, TCP_PORT)).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    let mut sent = 0u64;
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    while start.elapsed() < duration {
        stream.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    let cpu = thread_cpu_ns() - cpu;
    drop(stream);
    (sent, cpu)
}
