//! Where frames come from: the [`Capture`] trait, the live [`RingCapture`] (AF_PACKET
//! TPACKET_V3 on one interface) and [`MemoryCapture`] (frames from memory, for tests).
//!
//! A captured frame carries what the kernel told us about it: which way it crossed the
//! interface (`sll_pkttype`: `PACKET_OUTGOING` = egress, `PACKET_LOOPBACK` = a looped-back
//! multicast duplicate, anything else = ingress), its length on the wire (the captured
//! bytes may be cut by the filter's snap length), whether its checksum is still partial
//! (`TP_STATUS_CSUMNOTREADY`: egress with checksum offload), a VLAN tag the kernel
//! stripped into metadata and, for an offload super-frame, the segment size it was built
//! from (the `gso_size` of the `virtio_net_hdr` the kernel writes before the frame when
//! the socket asked for it with `PACKET_VNET_HDR`).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tapwire_mirror::SockFilter;

pub use crate::sys::ring::RingStatistics;
use crate::sys::ring::{Fanout, PacketRing, RingGeometry};

const PACKET_OUTGOING: u8 = 4;
const PACKET_LOOPBACK: u8 = 5;
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// `struct tpacket3_hdr` is 48 bytes; `struct sockaddr_ll` follows it (TPACKET_ALIGN'd).
const TPACKET3_HDR_LEN: usize = 48;
const SLL_PKTTYPE_OFFSET: usize = TPACKET3_HDR_LEN + 10;

/// Which way a frame crossed the interface, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Received by the interface.
    Ingress,
    /// Sent by the interface.
    Egress,
    /// A looped-back copy of a frame this host sent (multicast loop); not mirrored.
    Loopback,
}

/// An 802.1Q tag the kernel moved out of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrippedVlan {
    /// Tag control information.
    pub tci: u16,
    /// Tag protocol identifier (0x8100 unless the kernel said otherwise).
    pub tpid: u16,
}

/// One captured frame, borrowed from the capture's buffer.
#[derive(Debug, Clone, Copy)]
pub struct CapturedFrame<'a> {
    /// The captured bytes, from the Ethernet header on.
    pub data: &'a [u8],
    /// Length of the frame as it crossed the interface (≥ `data.len()`).
    pub wire_len: usize,
    /// Direction.
    pub origin: Origin,
    /// The L4 checksum is partial (offloaded to the device, not yet computed).
    pub checksum_partial: bool,
    /// A tag stripped into metadata.
    pub vlan: Option<StrippedVlan>,
    /// For a super-frame, the segment size (TCP MSS) the kernel built it from or merged
    /// it of; `None` when the kernel did not say.
    pub gso_size: Option<u16>,
    /// When the kernel took the frame (`CLOCK_REALTIME`, since the Unix epoch); zero
    /// where unknown.
    pub timestamp: Duration,
}

/// Bytes of `struct virtio_net_hdr` (flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset), little-endian as virtio 1.0 has it.
const VNET_HDR_LEN: usize = 10;

/// A source of frames with a kernel pre-filter.
pub trait Capture: Send {
    /// Waits up to `timeout` for frames and hands each to `sink`; returns how many.
    fn poll(&mut self, timeout: Duration, sink: &mut dyn FnMut(&CapturedFrame<'_>)) -> io::Result<usize>;
    /// Replaces the pre-filter.
    fn set_filter(&mut self, filter: &[SockFilter]) -> io::Result<()>;
    /// Kernel counters since the previous call.
    fn statistics(&mut self) -> io::Result<RingStatistics>;
    /// Captures on interface `ifindex` from now on, with `filter` (the interface was made
    /// again under its name).
    fn reattach(&mut self, ifindex: u32, filter: &[SockFilter]) -> io::Result<()> {
        let _ = (ifindex, filter);
        Ok(())
    }
}

/// The `PACKET_FANOUT_HASH` group an interface's capture workers share: which group ID
/// they joined on which interface index. The first ring opened on an index makes the
/// group; the others, and those re-attached to a re-made interface, join it.
#[derive(Debug, Default)]
pub struct FanoutGroup {
    joined: Mutex<Option<(u32, u16)>>,
}

impl FanoutGroup {
    /// Opens a ring on `ifindex` in this group (see [`PacketRing::open`]).
    pub fn open(
        &self,
        ifindex: u32,
        geometry: RingGeometry,
        filter: &[SockFilter],
        vnet_hdr: bool,
    ) -> io::Result<PacketRing> {
        // Held across the open, so two workers never both make a group for one index.
        let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
        let fanout = match *joined {
            Some((index, id)) if index == ifindex => Fanout::Join(id),
            _ => Fanout::New,
        };
        let ring = PacketRing::open(ifindex, geometry, filter, vnet_hdr, Some(fanout))?;
        if let Some(id) = ring.fanout_group() {
            *joined = Some((ifindex, id));
        }
        Ok(ring)
    }
}

/// A live TPACKET_V3 ring on one interface, alone or one of a fanout group.
pub struct RingCapture {
    ring: PacketRing,
    vnet_hdr: bool,
    geometry: RingGeometry,
    fanout: Option<Arc<FanoutGroup>>,
}

impl RingCapture {
    /// Opens the ring on `ifindex`, with `filter` attached from the first packet on, and
    /// the kernel's `virtio_net_hdr` before each frame where the kernel offers it; with
    /// `fanout`, as a member of that group.
    pub fn open(
        ifindex: u32,
        geometry: RingGeometry,
        filter: &[SockFilter],
        fanout: Option<Arc<FanoutGroup>>,
    ) -> io::Result<Self> {
        match open_ring(ifindex, geometry, filter, true, fanout.as_deref()) {
            Ok(ring) => Ok(Self { ring, vnet_hdr: true, geometry, fanout }),
            Err(e) => {
                tracing::info!(error = %e, "no virtio_net_hdr on the capture ring; super-frames are split at the MTU");
                let ring = open_ring(ifindex, geometry, filter, false, fanout.as_deref())?;
                Ok(Self { ring, vnet_hdr: false, geometry, fanout })
            }
        }
    }
}

fn open_ring(
    ifindex: u32,
    geometry: RingGeometry,
    filter: &[SockFilter],
    vnet_hdr: bool,
    fanout: Option<&FanoutGroup>,
) -> io::Result<PacketRing> {
    match fanout {
        Some(group) => group.open(ifindex, geometry, filter, vnet_hdr),
        None => PacketRing::open(ifindex, geometry, filter, vnet_hdr, None),
    }
}

impl Capture for RingCapture {
    fn poll(&mut self, timeout: Duration, sink: &mut dyn FnMut(&CapturedFrame<'_>)) -> io::Result<usize> {
        let mut delivered = 0;
        let mut waited = false;
        loop {
            if let Some(block) = self.ring.next_block() {
                delivered += walk_block(block.packets, block.count, self.vnet_hdr, sink);
                continue;
            }
            if waited || delivered > 0 {
                return Ok(delivered);
            }
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            self.ring.wait(ms)?;
            waited = true;
        }
    }

    fn set_filter(&mut self, filter: &[SockFilter]) -> io::Result<()> {
        self.ring.set_filter(filter)
    }

    fn statistics(&mut self) -> io::Result<RingStatistics> {
        self.ring.statistics()
    }

    fn reattach(&mut self, ifindex: u32, filter: &[SockFilter]) -> io::Result<()> {
        self.ring = open_ring(ifindex, self.geometry, filter, self.vnet_hdr, self.fanout.as_deref())?;
        Ok(())
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Walks the packets of one TPACKET_V3 block (`packets` starts at the first packet
/// header; `vnet_hdr`: each frame follows a `virtio_net_hdr`); a malformed header ends
/// the walk rather than reading out of bounds.
pub fn walk_block(packets: &[u8], count: u32, vnet_hdr: bool, sink: &mut dyn FnMut(&CapturedFrame<'_>)) -> usize {
    let mut offset = 0usize;
    let mut delivered = 0;
    for _ in 0..count {
        let Some(header) = packets.get(offset..) else { break };
        let Some(frame) = parse_packet_header(header, vnet_hdr) else { break };
        sink(&frame);
        delivered += 1;
        match read_u32(header, 0) {
            Some(0) | None => break,
            Some(next) => offset += next as usize,
        }
    }
    delivered
}

fn parse_packet_header(h: &[u8], vnet_hdr: bool) -> Option<CapturedFrame<'_>> {
    let timestamp = Duration::new(u64::from(read_u32(h, 4)?), read_u32(h, 8)?.min(999_999_999));
    let snaplen = read_u32(h, 12)? as usize;
    let wire_len = read_u32(h, 16)? as usize;
    let status = read_u32(h, 20)?;
    let mac = usize::from(read_u16(h, 24)?);
    let tci = read_u32(h, 32)?;
    let tpid = read_u16(h, 36)?;
    let pkttype = *h.get(SLL_PKTTYPE_OFFSET)?;
    let data = h.get(mac..mac.checked_add(snaplen)?)?;
    let origin = match pkttype {
        PACKET_OUTGOING => Origin::Egress,
        PACKET_LOOPBACK => Origin::Loopback,
        _ => Origin::Ingress,
    };
    let vlan = (status & TP_STATUS_VLAN_VALID != 0).then_some(StrippedVlan {
        tci: tci as u16,
        tpid: if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 { tpid } else { 0x8100 },
    });
    let gso_size = match vnet_hdr {
        true => {
            let vnet = h.get(mac.checked_sub(VNET_HDR_LEN)?..mac)?;
            let (gso_type, size) = (vnet[1], u16::from_le_bytes([vnet[4], vnet[5]]));
            (gso_type != 0 && size > 0).then_some(size)
        }
        false => None,
    };
    Some(CapturedFrame {
        data,
        wire_len: wire_len.max(data.len()),
        origin,
        checksum_partial: status & TP_STATUS_CSUMNOTREADY != 0,
        vlan,
        gso_size,
        timestamp,
    })
}

/// One frame held by a [`MemoryCapture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The bytes.
    pub data: Vec<u8>,
    /// Direction.
    pub origin: Origin,
    /// Partial checksum flag.
    pub checksum_partial: bool,
    /// Stripped tag.
    pub vlan: Option<StrippedVlan>,
    /// Segment size of a super-frame.
    pub gso_size: Option<u16>,
}

impl OwnedFrame {
    /// A frame seen in `origin` direction with nothing special about it.
    pub fn new(data: Vec<u8>, origin: Origin) -> Self {
        Self { data, origin, checksum_partial: false, vlan: None, gso_size: None }
    }
}

/// Frames from memory: each poll delivers everything queued since the previous one.
#[derive(Debug, Default)]
pub struct MemoryCapture {
    /// Frames waiting to be delivered.
    pub queue: Vec<OwnedFrame>,
    /// Every filter set, in order.
    pub filters: Vec<Vec<SockFilter>>,
    /// What the next `statistics` call reports.
    pub next_statistics: RingStatistics,
}

impl Capture for MemoryCapture {
    fn poll(&mut self, _timeout: Duration, sink: &mut dyn FnMut(&CapturedFrame<'_>)) -> io::Result<usize> {
        let frames = std::mem::take(&mut self.queue);
        for f in &frames {
            sink(&CapturedFrame {
                data: &f.data,
                wire_len: f.data.len(),
                origin: f.origin,
                checksum_partial: f.checksum_partial,
                vlan: f.vlan,
                gso_size: f.gso_size,
                timestamp: Duration::ZERO,
            });
        }
        Ok(frames.len())
    }

    fn set_filter(&mut self, filter: &[SockFilter]) -> io::Result<()> {
        self.filters.push(filter.to_vec());
        Ok(())
    }

    fn statistics(&mut self) -> io::Result<RingStatistics> {
        Ok(std::mem::take(&mut self.next_statistics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_header(next: u32, data: &[u8], pkttype: u8, status: u32) -> Vec<u8> {
        let mac = 64u16;
        let mut h = vec![0u8; usize::from(mac)];
        h[0..4].copy_from_slice(&next.to_ne_bytes());
        h[12..16].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        h[16..20].copy_from_slice(&(data.len() as u32 + 100).to_ne_bytes());
        h[20..24].copy_from_slice(&status.to_ne_bytes());
        h[24..26].copy_from_slice(&mac.to_ne_bytes());
        h[32..36].copy_from_slice(&7u32.to_ne_bytes());
        h[SLL_PKTTYPE_OFFSET] = pkttype;
        h.extend_from_slice(data);
        h
    }

    #[test]
    fn walks_a_block_and_reads_direction_and_flags() {
        let mut block = packet_header(80, &[1; 10], PACKET_OUTGOING, TP_STATUS_CSUMNOTREADY | TP_STATUS_VLAN_VALID);
        block.resize(80, 0);
        block.extend(packet_header(0, &[2; 5], 0, 0));
        let mut seen = Vec::new();
        let n = walk_block(&block, 2, false, &mut |f| {
            seen.push((f.data.to_vec(), f.wire_len, f.origin, f.checksum_partial, f.vlan))
        });
        assert_eq!(n, 2);
        assert_eq!(seen[0], (vec![1; 10], 110, Origin::Egress, true, Some(StrippedVlan { tci: 7, tpid: 0x8100 })));
        assert_eq!(seen[1], (vec![2; 5], 105, Origin::Ingress, false, None));
    }

    #[test]
    fn the_segment_size_comes_from_the_virtio_net_hdr() {
        let mut block = packet_header(0, &[3; 10], 0, 0);
        // gso_type TCPV4 (1), gso_size 1448, in the 10 bytes before the frame (mac = 64).
        block[54 + 1] = 1;
        block[54 + 4..54 + 6].copy_from_slice(&1448u16.to_le_bytes());
        let mut seen = None;
        walk_block(&block, 1, true, &mut |f| seen = Some(f.gso_size));
        assert_eq!(seen, Some(Some(1448)));
        walk_block(&block, 1, false, &mut |f| seen = Some(f.gso_size));
        assert_eq!(seen, Some(None), "without PACKET_VNET_HDR those bytes are nothing");
    }

    #[test]
    fn a_header_pointing_outside_the_block_ends_the_walk() {
        let mut block = packet_header(0, &[1; 10], 0, 0);
        block[12..16].copy_from_slice(&5000u32.to_ne_bytes());
        let n = walk_block(&block, 1, false, &mut |_| panic!("no frame expected"));
        assert_eq!(n, 0);
    }
}
