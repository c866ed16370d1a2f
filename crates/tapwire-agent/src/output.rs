//! The send side: a preallocated batch of datagrams and the [`Transmit`] that sends it.
//!
//! Each copy is written once into a fixed slot of [`OutputBatch`] — outer IPv4, UDP and
//! VXLAN headers built in place by the engine, then the inner frame copied from the ring
//! (or built there by segmentation) — and a full batch goes out with one `sendmmsg`.
//! Slots are [`SLOT_SIZE`] bytes plus room for a re-inserted VLAN tag; nothing is
//! allocated after construction.
//!
//! Why raw sockets rather than UDP sockets: the outer UDP source port must follow the
//! inner flow (AWS hashes the 5-tuple so load balancers and ECMP spread flows), which one
//! connected UDP socket cannot do and a pool of sockets only approximates. The batch
//! holds whole IPv4 or IPv6 datagrams (headers built by the engine); [`RawTransmit`]
//! sends everything after the IP header through a raw UDP socket per (source, target)
//! whose kernel-built IP header says the same (IPv4: DF, TTL 64, no options; IPv6: hop
//! limit 64, the UDP checksum computed by the kernel), so every copy still carries its
//! flow's port, and the kernel routes (from its cache) and resolves neighbours for us.
//! With [`Oversize::Fragment`] the sockets let the kernel fragment what is larger than
//! the path (IPv4 fragments, IPv6 fragment headers) instead of refusing it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tapwire_wire::{ipv4, ipv6};

use crate::applied::Path as CopyPath;
use crate::pipeline::Oversize;
pub use crate::sys::send::SendOutcome;
use crate::sys::send::{MmsgBatch, RawUdpSocket};

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

/// One output socket: (outer source, target) and the socket, `None` if it could not be
/// opened (not retried before the next configuration).
type Path = (IpAddr, IpAddr, Option<RawUdpSocket>);

/// `sendmmsg` on raw UDP sockets, one per (outer source, target) in use.
pub struct RawTransmit {
    mark: u32,
    send_buffer: usize,
    fragment: bool,
    paths: Vec<Path>,
    mmsg: MmsgBatch,
}

impl RawTransmit {
    /// Sockets get `mark` and a `send_buffer`-byte buffer; `batch_size` datagrams per call;
    /// `oversize` says whether the kernel may fragment. Sockets are opened by
    /// [`Transmit::prepare`] (or on the first copy to a new target).
    pub fn open(mark: u32, send_buffer: usize, batch_size: usize, oversize: Oversize) -> io::Result<Self> {
        Ok(Self {
            mark,
            send_buffer,
            fragment: oversize == Oversize::Fragment,
            paths: Vec::new(),
            mmsg: MmsgBatch::new(batch_size),
        })
    }

    fn open_path(&self, source: IpAddr, target: IpAddr) -> Path {
        match RawUdpSocket::open(source, target, self.mark, self.send_buffer, self.fragment) {
            Ok(socket) => (source, target, Some(socket)),
            Err(e) => {
                tracing::error!(%source, %target, error = %e, "cannot open the output socket; copies to this target are dropped");
                (source, target, None)
            }
        }
    }

    /// Index of the path from `source` to `target`, opened if new.
    fn path(&mut self, source: IpAddr, target: IpAddr) -> usize {
        if let Some(i) = self.paths.iter().position(|p| p.0 == source && p.1 == target) {
            return i;
        }
        let path = self.open_path(source, target);
        self.paths.push(path);
        self.paths.len() - 1
    }
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

impl Transmit for RawTransmit {
    fn prepare(&mut self, paths: &[CopyPath]) {
        let mut open = Vec::new();
        for p in paths {
            let (source, target) = (p.source, p.destination.ip());
            if source.is_ipv4() != target.is_ipv4() || open.iter().any(|o: &Path| o.0 == source && o.1 == target) {
                continue;
            }
            match self.paths.iter().position(|o| o.0 == source && o.1 == target && o.2.is_some()) {
                Some(i) => open.push(self.paths.swap_remove(i)),
                None => open.push(self.open_path(source, target)),
            }
        }
        self.paths = open;
    }

    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome)) {
        let mut start = 0;
        while start < batch.len() {
            let Some((source, target, header)) = endpoints(batch.datagram(start).0) else {
                outcome(start, SendOutcome::Failed(io::Error::from_raw_os_error(libc::EINVAL)));
                start += 1;
                continue;
            };
            // The run of datagrams that leave through the same socket.
            let mut end = start + 1;
            while end < batch.len()
                && end - start < self.mmsg.capacity()
                && endpoints(batch.datagram(end).0) == Some((source, target, header))
            {
                end += 1;
            }
            let path = self.path(source, target);
            match &self.paths[path].2 {
                Some(socket) => {
                    self.mmsg.send(
                        socket,
                        end - start,
                        |i| (&batch.datagram(start + i).0[header..], None),
                        |i, o| outcome(start + i, o),
                    );
                }
                None => {
                    for i in start..end {
                        outcome(i, SendOutcome::Failed(io::Error::from_raw_os_error(libc::ENETUNREACH)));
                    }
                }
            }
            start = end;
        }
    }
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
