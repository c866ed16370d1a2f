//! The bench's two namespaces and what runs in them: the sender's link, the sensor that
//! drops copies cheaply and counts them, the TCP sink, and tc mirred as the peer.
//!
//! The receiver holds two UDP sockets with the smallest receive buffer, never read: one
//! on the originals' port, one on VXLAN's. A datagram to a full socket is dropped right
//! after the UDP lookup (no decapsulation, no copy) and counted in the socket's `drops`
//! (`/proc/net/udp`), so the sensor costs every peer the same little, and the copies that
//! arrived are that count plus what was left queued.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::thread::JoinHandle;

use tapwire_agent::sys::netdev::enter_network_namespace;

pub const SENDER: &str = "twbench-a";
pub const RECEIVER: &str = "twbench-b";
pub const A: &str = "198.18.200.1";
pub const B: &str = "198.18.200.2";
/// Originals go to this UDP port, TCP to the next; copies to VXLAN's.
pub const UDP_PORT: u16 = 5001;
pub const TCP_PORT: u16 = 5002;
pub const VXLAN_PORT: u16 = 4789;
/// Room for a 1500-byte frame's copy (50 bytes of outer headers) without cutting.
pub const LINK_MTU: usize = 1600;

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Runs `f` on a new thread inside namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = Path::new("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        enter_network_namespace(&path).unwrap();
        f()
    })
}

/// The namespaces, deleted on drop (on failure too), and the receiver's sockets.
pub struct Lab {
    sensor: UdpSocket,
    _originals: UdpSocket,
    queued_copies: std::cell::Cell<u64>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_namespaces();
    }
}

fn delete_namespaces() {
    for ns in [SENDER, RECEIVER] {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
    }
}

/// A UDP socket in the receiver on `port` that takes almost nothing and is never read.
fn full_socket(port: u16) -> UdpSocket {
    in_ns(RECEIVER, move || {
        let socket = UdpSocket::bind((B, port)).unwrap();
        nix::sys::socket::setsockopt(&socket.as_fd(), nix::sys::socket::sockopt::RcvBuf, &1).unwrap();
        socket.set_nonblocking(true).unwrap();
        socket
    })
    .join()
    .unwrap()
}

impl Lab {
    pub fn build() -> Lab {
        delete_namespaces();
        sh(&["ip", "netns", "add", SENDER]);
        sh(&["ip", "netns", "add", RECEIVER]);
        sh(&[
            "ip", "link", "add", "veth0", "netns", SENDER, "type", "veth", "peer", "name", "veth0", "netns", RECEIVER,
        ]);
        let mtu = LINK_MTU.to_string();
        for (ns, addr) in [(SENDER, A), (RECEIVER, B)] {
            sh(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "veth0"]);
            sh(&["ip", "-n", ns, "link", "set", "veth0", "mtu", &mtu, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let sensor = full_socket(VXLAN_PORT);
        Lab { sensor, _originals: full_socket(UDP_PORT), queued_copies: std::cell::Cell::new(0) }
    }

    /// Copies that reached the sensor so far.
    pub fn copies(&self) -> u64 {
        let mut buf = [0u8; 2048];
        while self.sensor.recv(&mut buf).is_ok() {
            self.queued_copies.set(self.queued_copies.get() + 1);
        }
        socket_drops(VXLAN_PORT) + self.queued_copies.get()
    }

    /// Sets up tc's mirror of what `matches` (u32 match arguments) selects on the sender's
    /// egress, to a vxlan device (VNI 43) toward the sensor.
    pub fn add_tc(&self, matches: &[&str]) {
        let port = VXLAN_PORT.to_string();
        sh(&[
            "ip", "-n", SENDER, "link", "add", "vxm", "type", "vxlan", "id", "43", "remote", B, "local", A, "dstport",
            &port,
        ]);
        sh(&["ip", "-n", SENDER, "link", "set", "vxm", "up"]);
        sh(&["tc", "-n", SENDER, "qdisc", "add", "dev", "veth0", "clsact"]);
        let mut filter = vec!["tc", "-n", SENDER, "filter", "add", "dev", "veth0", "egress", "protocol", "ip", "u32"];
        filter.extend_from_slice(matches);
        filter.extend_from_slice(&["action", "mirred", "egress", "mirror", "dev", "vxm"]);
        sh(&filter);
    }

    pub fn remove_tc(&self) {
        sh(&["tc", "-n", SENDER, "qdisc", "del", "dev", "veth0", "clsact"]);
        sh(&["ip", "-n", SENDER, "link", "del", "vxm"]);
    }
}

/// The `drops` of the receiver's UDP socket on `port` (`/proc/net/udp`, read inside the
/// receiver's namespace).
fn socket_drops(port: u16) -> u64 {
    in_ns(RECEIVER, move || {
        let table = std::fs::read_to_string("/proc/thread-self/net/udp").unwrap();
        let wanted = format!(":{port:04X}");
        table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(1).is_some_and(|local| local.ends_with(&wanted)))
            .and_then(|f| f.last()?.parse().ok())
            .unwrap_or(0)
    })
    .join()
    .unwrap()
}

/// A TCP sink in the receiver on [`TCP_PORT`]: reads and discards each connection, on
/// `cpu`, until the bench ends.
pub fn tcp_sink(cpu: usize) {
    let listener = in_ns(RECEIVER, || TcpListener::bind((B, TCP_PORT)).unwrap()).join().unwrap();
    std::thread::spawn(move || {
        tapwire_agent::sys::pin_current_thread(cpu).unwrap();
        let mut buf = vec![0u8; 256 << 10];
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
}

pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
