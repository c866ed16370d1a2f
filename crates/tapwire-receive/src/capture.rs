//! `--capture IFACE`: VXLAN read from TPACKET_V3 rings on the sensor's interface instead
//! of UDP sockets. The kernel copies each frame into a ring shared with user space, so
//! there is no system call per datagram (tcpdump reads the same way).
//!
//! Each worker has its own ring (the agent's ring code, [`tapwire_agent::sys::ring`]);
//! several form one `PACKET_FANOUT_HASH` group, so one sender's copies stay in order on
//! one worker. The kernel filter ([`tapwire_mirror::bpf::udp_destination_port`]) passes
//! only UDP to the listening port. One UDP socket is still bound to the port, with the
//! smallest receive buffer and never read: the kernel finds it and drops each datagram
//! at once instead of answering with ICMP port unreachable.
//!
//! Invariants: a frame's outer source and UDP payload are what the socket path receives
//! for the same datagram, so the output is the same; frames to the port on an address
//! other than `--listen`'s (unless that is unspecified) are counted
//! (`other_destination`) and written nowhere, as the socket would never receive them;
//! outer fragments, which a capture cannot put back together, are counted
//! (`fragmented`) and skipped; frames are handed
//! to the output in ring order, under one lock per block; ring drops are read every
//! [`STATISTICS_EVERY`] and counted.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};
use tapwire_agent::capture::{FanoutGroup, Origin, walk_block};
use tapwire_agent::sys::ring::{PacketRing, RingGeometry};

use crate::decap::{Malformed, outer_udp};
use crate::receiver::{DRAIN_LIMIT, WAKE, lock};
use crate::sink::{Flow, Output};

/// Each worker's ring: 128 blocks of 1 MiB, handed over after at most 5 ms.
const GEOMETRY: RingGeometry = RingGeometry { block_size: 1 << 20, block_count: 128, retire_timeout_ms: 5 };
/// How often a worker reads its ring's drop counter.
pub const STATISTICS_EVERY: Duration = Duration::from_millis(250);

/// The rings of one interface, and the socket that keeps the port answered.
pub struct Rings {
    /// One per worker.
    pub rings: Vec<PacketRing>,
    /// Holds the port (see the module docs).
    pub blocker: Socket,
    /// The address captured for: its port always, its address unless unspecified.
    pub listen: SocketAddr,
}

/// Opens `workers` rings on `interface` for UDP to `listen`'s port and binds the
/// blocking socket to `listen` (port 0 picks a free port).
pub fn open(interface: &str, listen: SocketAddr, workers: usize) -> anyhow::Result<Rings> {
    let ifindex = nix::net::if_::if_nametoindex(interface).with_context(|| format!("no interface {interface:?}"))?;
    let blocker = Socket::new(Domain::for_address(listen), Type::DGRAM, Some(Protocol::UDP))?;
    blocker.set_recv_buffer_size(1)?;
    blocker.bind(&listen.into()).with_context(|| format!("cannot listen on {listen}"))?;
    let port = blocker.local_addr()?.as_socket().context("socket has no inet address")?.port();
    let filter = tapwire_mirror::bpf::udp_destination_port(port);
    let group = (workers > 1).then(FanoutGroup::default);
    let rings = (0..workers.max(1))
        .map(|_| match &group {
            Some(group) => group.open(ifindex, GEOMETRY, &filter, false),
            None => PacketRing::open(ifindex, GEOMETRY, &filter, false, None),
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("capture ring on {interface} (needs CAP_NET_RAW)"))?;
    Ok(Rings { rings, blocker, listen: SocketAddr::new(listen.ip(), port) })
}

/// Reads `ring` until `stop`, then what it already holds (at most [`DRAIN_LIMIT`]).
pub fn worker(
    ring: &mut PacketRing,
    listen: SocketAddr,
    output: &Mutex<Output>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut last_statistics = Instant::now();
    let timeout = i32::try_from(WAKE.as_millis()).unwrap_or(100);
    let mut flow = Flow::Continue;
    while !stop.load(Ordering::Relaxed) && flow == Flow::Continue {
        if let Some(block) = ring.next_block() {
            flow = deliver(block.packets, block.count, listen, &mut lock(output))?;
        } else if let Err(e) = ring.wait(timeout) {
            // The link went down or away; the ring stays bound and resumes.
            eprintln!("tapwire receive: capture: {e}");
            std::thread::sleep(WAKE);
        }
        if last_statistics.elapsed() >= STATISTICS_EVERY {
            last_statistics = Instant::now();
            lock(output).record_ring_drops(ring.statistics()?.drops);
        }
    }
    if flow == Flow::Stop {
        stop.store(true, Ordering::SeqCst);
    }
    let deadline = Instant::now() + DRAIN_LIMIT;
    while flow == Flow::Continue && Instant::now() < deadline {
        let Some(block) = ring.next_block() else { break };
        flow = deliver(block.packets, block.count, listen, &mut lock(output))?;
    }
    lock(output).record_ring_drops(ring.statistics()?.drops);
    Ok(())
}

/// Hands one ring block's frames to the output: each frame the interface received for
/// `listen`, by its outer source, with the time the kernel took it. A frame to the port
/// on another of the host's addresses, which a socket bound to `listen` would not
/// receive, is only counted (`other_destination`).
fn deliver(packets: &[u8], count: u32, listen: SocketAddr, out: &mut Output) -> anyhow::Result<Flow> {
    let now = Instant::now();
    let mut result = Ok(Flow::Continue);
    walk_block(packets, count, false, &mut |frame| {
        if frame.origin != Origin::Ingress || result.is_err() {
            return;
        }
        let outcome = if frame.data.len() < frame.wire_len {
            out.handle_skipped(frame.wire_len, Malformed::Truncated);
            Ok(Flow::Continue)
        } else {
            match outer_udp(frame.data, listen.port()) {
                Ok(outer) if !listen.ip().is_unspecified() && outer.destination != listen.ip() => {
                    out.count_other_destination();
                    Ok(Flow::Continue)
                }
                Ok(outer) => out.handle(outer.source, outer.payload, frame.timestamp, now),
                Err(why) => {
                    out.handle_skipped(frame.data.len(), why);
                    Ok(Flow::Continue)
                }
            }
        };
        match outcome {
            Ok(Flow::Stop) => result = Ok(Flow::Stop),
            Ok(Flow::Continue) => {}
            Err(e) => result = Err(e),
        }
    });
    let flow = result?;
    Ok(if out.end_batch()? == Flow::Stop { Flow::Stop } else { flow })
}
