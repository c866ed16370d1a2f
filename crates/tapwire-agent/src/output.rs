//! The send side: a preallocated batch of datagrams and the [`Transmit`] that sends it.
//!
//! Each copy is written once into a fixed slot of [`OutputBatch`] — outer IPv4, UDP and
//! VXLAN headers built in place by the engine, then the inner frame copied from the ring
//! (or built there by segmentation) — and a full batch goes out with one `sendmmsg`.
//! Slots are [`SLOT_SIZE`] bytes plus room for a re-inserted VLAN tag; nothing is
//! allocated after construction.
//!
//! Why a raw IPv4 socket (`IP_HDRINCL`) rather than UDP sockets: the outer UDP source port
//! must follow the inner flow (AWS hashes the 5-tuple so load balancers and ECMP spread
//! flows), which one connected UDP socket cannot do and a pool of sockets only
//! approximates; with self-built headers every copy carries its flow's port, DF is set
//! explicitly, and the kernel still routes and resolves neighbours for us.

use std::io;
use std::net::SocketAddr;

pub use crate::sys::send::SendOutcome;
use crate::sys::send::{MmsgBatch, RawIpv4Socket};

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
    /// Sends every datagram of `batch`, reporting each outcome in order.
    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome));
}

/// `sendmmsg` on a raw IPv4 socket.
pub struct RawTransmit {
    socket: RawIpv4Socket,
    mmsg: MmsgBatch,
}

impl RawTransmit {
    /// A marked, non-blocking raw socket and arrays for `batch_size` datagrams per call.
    pub fn open(mark: u32, send_buffer: usize, batch_size: usize) -> io::Result<Self> {
        Ok(Self { socket: RawIpv4Socket::open(mark, send_buffer)?, mmsg: MmsgBatch::new(batch_size) })
    }
}

impl Transmit for RawTransmit {
    fn transmit(&mut self, batch: &OutputBatch, outcome: &mut dyn FnMut(usize, SendOutcome)) {
        let mut start = 0;
        while start < batch.len() {
            let count = (batch.len() - start).min(self.mmsg.capacity());
            self.mmsg.send(
                &self.socket,
                count,
                |i| {
                    let (bytes, destination) = batch.datagram(start + i);
                    (bytes, Some(destination))
                },
                |i, o| outcome(start + i, o),
            );
            start += count;
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
