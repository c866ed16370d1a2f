//! The send side: a preallocated batch of datagrams and the [`Transmit`] that sends it.
//!
//! Each copy is written once into a fixed slot of [`OutputBatch`] — outer IPv4, UDP and
//! VXLAN headers built in place by the engine, then the inner frame copied from the ring
//! (or built there by segmentation) — and a full batch goes out with one `sendmmsg`.
//! Slots are [`SLOT_SIZE`] bytes plus room for a re-inserted VLAN tag; nothing is
//! allocated after construction.
//!
//! Why not UDP sockets: the outer UDP source port must follow the inner flow (AWS hashes
//! the 5-tuple so load balancers and ECMP spread flows), which one connected UDP socket
//! cannot do and a pool of sockets only approximates. The batch holds whole IPv4 or IPv6
//! datagrams, headers built by the engine (IPv4: DF, TTL 64, no options, the header
//! checksum; IPv6: hop limit 64 and the UDP checksum RFC 7348 requires).
//! [`SocketTransmit`] sends them two ways:
//! - **direct**: where [`nexthop`] knows the next hop's MAC, as whole Ethernet frames
//!   (that MAC's header, then the datagram) through one AF_PACKET socket with
//!   `PACKET_QDISC_BYPASS`, straight to the device's driver: no route lookup, IP output
//!   or neighbour output per copy, and no packet tap (so not the agent's own capture)
//!   sees them;
//! - **routed**: everything after the IP header through a raw UDP socket per (source,
//!   target) whose kernel-built IP header says the same, so the kernel routes (from its
//!   cache) and resolves the neighbour. Copies take it while the next hop is unresolved,
//!   on devices without Ethernet framing, when they must be fragmented
//!   ([`Oversize::Fragment`]), under `--send-path routed`, and once a second per path as
//!   a probe that keeps the kernel's neighbour entry honest. Each is counted
//!   (`sent_routed`).
//!
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tapwire_wire::{ipv4, ipv6};

use crate::applied::Path as CopyPath;
use crate::nexthop::{self, NextHop};
use crate::pipeline::Oversize;
pub use crate::sys::send::SendOutcome;
use crate::sys::send::{Destination, MmsgBatch, PacketSocket, RawUdpSocket};

/// Largest datagram a slot holds (outer headers included); copies are cut to fit.
pub const SLOT_SIZE: usize = 9216;
/// Bytes in front of a slot's datagram reserved for shifting in a VLAN tag.
pub const SLOT_HEADROOM: usize = 4;

/// Datagrams waiting to be sent.
pub struct OutputBatch {
    buffer: Box<[u8]>,
    /// (start in slot, length, destination, session index) per filled slot.
    entries: Box<[(u16, u16, SocketAddr, u16)]>,
    count: usize,
}

impl OutputBatch {
    /// Room for `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            buffer: vec![0u8; capacity * (SLOT_SIZE + SLOT_HEADROOM)].into_boxed_slice(),
            entries: vec![(0, 0, unspecified, 0); capacity].into_boxed_slice(),
            count: 0,
        }
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No datagram waiting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every slot is taken.
    pub fn is_full(&self) -> bool {
        self.count == self.entries.len()
    }

    /// The next free slot (`SLOT_HEADROOM + SLOT_SIZE` bytes), or `None` when full.
    pub fn next_slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let size = SLOT_SIZE + SLOT_HEADROOM;
        let at = self.count * size;
        self.buffer.get_mut(at..at + size)
    }

    /// Takes the slot returned by `next_slot`: its datagram is `slot[start..start + len]`.
    pub fn commit(&mut self, start: usize, len: usize, destination: SocketAddr, session: u16) {
        if let Some(e) = self.entries.get_mut(self.count) {
            *e = (start as u16, len as u16, destination, session);
            self.count += 1;
        }
    }

    /// The i-th datagram and its destination.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let (start, len, destination, _) = self.entries[i];
        let at = i * (SLOT_SIZE + SLOT_HEADROOM) + usize::from(start);
        (&self.buffer[at..at + usize::from(len)], destination)
    }

    /// Session index of the i-th datagram.
    pub fn session(&self, i: usize) -> u16 {
        self.entries[i].3
    }

    /// Forgets every datagram.
    pub fn clear(&mut self) {
        self.count = 0;
    }
}

/// Sends batches.
pub trait Transmit: Send {
    /// Gets ready for a new configuration's routes (opens what they need, closes what
    /// only the previous ones needed). Called when the configuration changes, never per
    /// packet.
    fn prepare(&mut self, paths: &[CopyPath]) {
        let _ = paths;
    }
    /// Sends every datagram of `batch`, reporting each outcome in order.
    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome));
}

/// How copies leave when the next hop is known (`--send-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendPath {
    /// Straight to the device as Ethernet frames (AF_PACKET, `PACKET_QDISC_BYPASS`) where
    /// the next hop's MAC is known; through the kernel's IP output otherwise.
    #[default]
    Direct,
    /// Always through the kernel's IP output (raw sockets): the agent's only path before
    /// the direct one.
    Routed,
}

impl std::str::FromStr for SendPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Self::Direct),
            "routed" => Ok(Self::Routed),
            other => Err(format!("unknown send path {other:?} (direct or routed)")),
        }
    }
}

/// While copies go straight to the device, one copy per path this often still takes
/// the kernel's IP output, so the kernel keeps probing the neighbour entry it would use
/// (one that stopped answering turns `FAILED`, an event the agent follows).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Next hops are asked again at least this often, events or not; and every
/// [`PROBE_EVERY`] while some path waits for its neighbour ([`NextHop::is_waiting`]: it
/// may be resolved without an event reaching this thread's namespace).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);
/// And at most this often (a burst of neighbour events costs one round of requests).
const RESOLVE_GAP: Duration = Duration::from_millis(100);

/// One (outer source, target) in use: its raw socket (`None` if it could not be opened;
/// not retried before the next configuration), how its copies leave, and the largest
/// datagram that may go straight to the device.
struct Path {
    source: IpAddr,
    target: IpAddr,
    routed: Option<RawUdpSocket>,
    hop: NextHop,
    path_mtu: u32,
    last_probe: Option<Instant>,
}

/// `sendmmsg` on an AF_PACKET socket straight to the device where the next hop is known
/// ([`SendPath::Direct`]), and on raw UDP sockets, one per (outer source, target) in
/// use, through the kernel's IP output otherwise.
pub struct SocketTransmit {
    mark: u32,
    send_buffer: usize,
    fragment: bool,
    packet: Option<PacketSocket>,
    paths: Vec<Path>,
    mmsg: MmsgBatch,
    /// [`nexthop::generation`] when next hops were last asked, and when.
    generation: u64,
    resolved_at: Instant,
}

impl SocketTransmit {
    /// Sockets get `mark` and a `send_buffer`-byte buffer; `batch_size` datagrams per call;
    /// `oversize` says whether the kernel may fragment. Raw sockets are opened by
    /// [`Transmit::prepare`] (or on the first copy to a new target).
    pub fn open(
        mark: u32,
        send_buffer: usize,
        batch_size: usize,
        oversize: Oversize,
        send_path: SendPath,
    ) -> io::Result<Self> {
        let packet = match send_path {
            SendPath::Routed => None,
            SendPath::Direct => match PacketSocket::open(mark, send_buffer) {
                Ok(socket) => Some(socket),
                Err(e) => {
                    tracing::warn!(error = %e, "no AF_PACKET output socket; every copy goes through the kernel's IP output");
                    None
                }
            },
        };
        Ok(Self {
            mark,
            send_buffer,
            fragment: oversize == Oversize::Fragment,
            packet,
            paths: Vec::new(),
            mmsg: MmsgBatch::new(batch_size),
            generation: nexthop::generation(),
            resolved_at: Instant::now(),
        })
    }

    fn open_path(&self, source: IpAddr, target: IpAddr, path_mtu: u32) -> Path {
        let routed = match RawUdpSocket::open(source, target, self.mark, self.send_buffer, self.fragment) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::error!(%source, %target, error = %e, "cannot open the output socket; copies to this target are dropped");
                None
            }
        };
        let mut path = Path {
            source,
            target,
            routed,
            hop: NextHop::Kernel { why: String::new(), waiting: true },
            path_mtu,
            last_probe: None,
        };
        self.resolve(&mut path);
        path
    }

    /// Asks the kernel how `path`'s copies can leave; logs a change.
    fn resolve(&self, path: &mut Path) {
        if self.packet.is_none() {
            return;
        }
        let hop = nexthop::resolve(path.source, path.target);
        if hop != path.hop {
            match &hop {
                NextHop::Direct(link) => tracing::info!(
                    target = %path.target, ifindex = link.ifindex, next_hop_mac = %mac(&link.header[..6]),
                    "copies leave straight through the device"
                ),
                NextHop::Kernel { why, .. } => tracing::info!(
                    target = %path.target, reason = %why,
                    "copies go through the kernel's IP output (counted as sent_routed)"
                ),
            }
            path.hop = hop;
        }
    }

    /// Asks again for every path's next hop when the kernel's neighbours, routes or links
    /// changed, or [`RESOLVE_EVERY`] anyway.
    fn refresh_next_hops(&mut self, now: Instant) {
        let generation = nexthop::generation();
        let since = now.saturating_duration_since(self.resolved_at);
        // A neighbour may resolve with no event reaching this agent (its follower may
        // watch another namespace); a local target or a device without Ethernet framing
        // changes only with a route or link event, so those are not asked every second.
        let waiting = self.packet.is_some() && self.paths.iter().any(|p| p.hop.is_waiting());
        let every = if waiting { PROBE_EVERY } else { RESOLVE_EVERY };
        if (generation == self.generation || since < RESOLVE_GAP) && since < every {
            return;
        }
        self.generation = generation;
        self.resolved_at = now;
        let mut paths = std::mem::take(&mut self.paths);
        for p in &mut paths {
            self.resolve(p);
        }
        self.paths = paths;
    }

    /// Index of the path from `source` to `target`, opened if new.
    fn path(&mut self, source: IpAddr, target: IpAddr) -> usize {
        if let Some(i) = self.paths.iter().position(|p| p.source == source && p.target == target) {
            return i;
        }
        let path = self.open_path(source, target, u32::MAX);
        self.paths.push(path);
        self.paths.len() - 1
    }
}

fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Outer source and target of a datagram of the batch (its IP header), and the header's
/// length.
fn endpoints(datagram: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    match datagram.first()? >> 4 {
        4 => {
            let h = datagram.get(..ipv4::MIN_HEADER_LEN)?;
            let a = |at: usize| Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(h.get(at..at + 4)?).ok()?)));
            Some((a(12)?, a(16)?, ipv4::MIN_HEADER_LEN))
        }
        6 => {
            let h = datagram.get(..ipv6::HEADER_LEN)?;
            let a = |at: usize| Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(h.get(at..at + 16)?).ok()?)));
            Some((a(8)?, a(24)?, ipv6::HEADER_LEN))
        }
        _ => None,
    }
}

impl Transmit for SocketTransmit {
    fn prepare(&mut self, paths: &[CopyPath]) {
        let mut open: Vec<Path> = Vec::new();
        for p in paths {
            let (source, target) = (p.source, p.destination.ip());
            if source.is_ipv4() != target.is_ipv4() || open.iter().any(|o| o.source == source && o.target == target) {
                continue;
            }
            match self.paths.iter().position(|o| o.source == source && o.target == target && o.routed.is_some()) {
                Some(i) => {
                    let mut kept = self.paths.swap_remove(i);
                    kept.path_mtu = p.path_mtu;
                    self.resolve(&mut kept);
                    open.push(kept);
                }
                None => open.push(self.open_path(source, target, p.path_mtu)),
            }
        }
        self.paths = open;
    }

    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome)) {
        let now = Instant::now();
        self.refresh_next_hops(now);
        let mut start = 0;
        while start < batch.len() {
            let Some((source, target, header)) = endpoints(batch.datagram(start).0) else {
                outcome(start, SendOutcome::Failed(io::Error::from_raw_os_error(libc::EINVAL)));
                start += 1;
                continue;
            };
            // The run of datagrams of the same path.
            let mut end = start + 1;
            while end < batch.len()
                && end - start < self.mmsg.capacity()
                && endpoints(batch.datagram(end).0) == Some((source, target, header))
            {
                end += 1;
            }
            let index = self.path(source, target);
            let Self { paths, mmsg, packet, .. } = self;
            let path = &mut paths[index];
            let mut i = start;
            while i < end {
                let direct = match (&path.hop, packet.as_ref()) {
                    (NextHop::Direct(link), Some(socket)) => Some((link, socket)),
                    _ => None,
                };
                let probe_due = path.routed.is_some() && path.last_probe.is_none_or(|t| now - t >= PROBE_EVERY);
                let Some((link, socket)) = direct.filter(|_| !probe_due) else {
                    // Through the kernel: all of the run, or one probe.
                    let n = if direct.is_some() { 1 } else { end - i };
                    if direct.is_some() {
                        path.last_probe = Some(now);
                    }
                    send_routed(mmsg, path.routed.as_ref(), batch, i, n, header, outcome);
                    i += n;
                    continue;
                };
                // Straight to the device, up to a datagram it cannot carry whole.
                let limit = link.mtu.min(path.path_mtu) as usize;
                let mut j = i;
                while j < end && batch.datagram(j).0.len() <= limit {
                    j += 1;
                }
                if j > i {
                    let protocol = u16::from_be_bytes([link.header[12], link.header[13]]);
                    let destination = Destination::Link { ifindex: link.ifindex, protocol };
                    mmsg.send(
                        socket,
                        destination,
                        j - i,
                        |k| (&link.header[..], batch.datagram(i + k).0),
                        |k, o| outcome(i + k, o),
                    );
                    i = j;
                } else {
                    // Too large for the device: the kernel fragments it (--oversize fragment).
                    send_routed(mmsg, path.routed.as_ref(), batch, i, 1, header, outcome);
                    i += 1;
                }
            }
            start = end;
        }
    }
}

/// Sends `batch[first..first + n]` through the kernel's IP output (`socket` writes the
/// IP header itself, so each datagram's own is skipped).
fn send_routed(
    mmsg: &mut MmsgBatch,
    socket: Option<&RawUdpSocket>,
    batch: &OutputBatch,
    first: usize,
    n: usize,
    header: usize,
    outcome: &mut dyn FnMut(usize, SendOutcome),
) {
    let Some(socket) = socket else {
        for i in first..first + n {
            outcome(i, SendOutcome::Failed(io::Error::from_raw_os_error(libc::ENETUNREACH)));
        }
        return;
    };
    mmsg.send(
        socket,
        Destination::Connected,
        n,
        |k| (&[], &batch.datagram(first + k).0[header..]),
        |k, o| {
            let o = match o {
                SendOutcome::Sent => SendOutcome::SentRouted,
                other => other,
            };
            outcome(first + k, o);
        },
    );
}

/// Keeps every datagram in memory (tests); can pretend the queue fills up.
#[derive(Debug, Default)]
pub struct RecordingTransmit {
    /// Datagrams "sent".
    pub sent: Vec<(Vec<u8>, SocketAddr)>,
    /// Accept at most this many datagrams in total; the rest are `Busy`.
    pub capacity: Option<usize>,
}

impl Transmit for RecordingTransmit {
    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome)) {
        for i in 0..batch.len() {
            if self.capacity.is_some_and(|c| self.sent.len() >= c) {
                outcome(i, SendOutcome::Busy);
                continue;
            }
            let (bytes, destination) = batch.datagram(i);
            self.sent.push((bytes.to_vec(), destination));
            outcome(i, SendOutcome::Sent);
        }
    }
}
