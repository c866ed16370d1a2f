//! IPv6 headers (RFC 8200) and the walk over extension headers to the upper layer.
//!
//! Invariants of a checked [`Packet`]: at least 40 bytes and version 6. A payload length
//! larger than the buffer is accepted (captures cut by a snap length); [`Packet::payload`]
//! then ends at the buffer. A payload length of 0 with a hop-by-hop header (jumbogram)
//! is read as "to the end of the buffer".
//!
//! [`Packet::upper_layer`] skips hop-by-hop, routing, fragment and destination-options
//! headers (at most [`MAX_EXTENSION_HEADERS`] of them) and reports where the upper-layer
//! header starts and whether the packet is a fragment. A non-first fragment stops the walk:
//! its "protocol" is the fragment header's next header and it has no upper-layer header.

use std::net::Ipv6Addr;

use crate::WireError;
use crate::field::{be16, be32, be128};
use crate::ip::protocol;

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// Longest extension-header chain walked before giving up (`Malformed`).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Byte ranges of the fixed header's fields.
pub mod field {
    use crate::field::Field;

    /// Version (high nibble) and the traffic class's high nibble.
    pub const VERSION_CLASS: usize = 0;
    /// Version, traffic class and flow label.
    pub const VERSION_CLASS_FLOW: Field = 0..4;
    /// Payload length.
    pub const PAYLOAD_LEN: Field = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SOURCE: Field = 8..24;
    /// Destination address.
    pub const DESTINATION: Field = 24..40;
}

/// Whether `h` is an extension header that [`Packet::upper_layer`] skips.
#[inline]
pub fn is_skipped_extension(h: u8) -> bool {
    matches!(h, protocol::HOP_BY_HOP | protocol::ROUTING | protocol::FRAGMENT | protocol::DESTINATION_OPTIONS)
}

/// Fragment state of a packet (IPv4 or IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fragment {
    /// Not a fragment.
    #[default]
    Whole,
    /// First fragment (offset 0, more to come): carries the upper-layer header.
    First,
    /// Any later fragment: no upper-layer header.
    Later,
}

/// Where the upper layer of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (or, for later fragments, the fragment's next header).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Fragment state.
    pub fragment: Fragment,
}

/// A read-only view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the invariants listed in the module docs.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        let first = *bytes.get(field::VERSION_CLASS).ok_or(WireError::Truncated)?;
        if first >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be32(self.bytes, field::VERSION_CLASS_FLOW) >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.bytes, field::VERSION_CLASS_FLOW) & 0x000f_ffff
    }

    /// Payload length field.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.bytes, field::PAYLOAD_LEN)
    }

    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.bytes[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.bytes[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn source(&self) -> Ipv6Addr {
        Ipv6Addr::from(be128(self.bytes, field::SOURCE))
    }

    /// Destination address.
    #[inline]
    pub fn destination(&self) -> Ipv6Addr {
        Ipv6Addr::from(be128(self.bytes, field::DESTINATION))
    }

    /// Bytes of the packet this view may read: the header plus the payload length, cut
    /// at the end of the buffer.
    fn packet_bytes(&self) -> &'a [u8] {
        let declared = match self.payload_len() {
            0 if self.next_header() == protocol::HOP_BY_HOP => self.bytes.len(),
            n => HEADER_LEN + usize::from(n),
        };
        &self.bytes[..declared.min(self.bytes.len())]
    }

    /// Everything after the fixed header (extension headers included).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.packet_bytes()[HEADER_LEN..]
    }

    /// Walks the extension headers to the upper layer; see the module docs.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let bytes = self.packet_bytes();
        let mut protocol = self.next_header();
        let mut offset = HEADER_LEN;
        let mut fragment = Fragment::Whole;
        for _ in 0..=MAX_EXTENSION_HEADERS {
            if !is_skipped_extension(protocol) {
                return Ok(UpperLayer { protocol, offset, fragment });
            }
            let ext = bytes.get(offset..offset + 8).ok_or(WireError::Truncated)?;
            let next = ext[0];
            let len = if protocol == protocol::FRAGMENT {
                let offset_flags = u16::from_be_bytes([ext[2], ext[3]]);
                let more = offset_flags & 1 != 0;
                if offset_flags >> 3 != 0 {
                    return Ok(UpperLayer { protocol: next, offset: offset + 8, fragment: Fragment::Later });
                }
                if more {
                    fragment = Fragment::First;
                }
                8
            } else {
                (usize::from(ext[1]) + 1) * 8
            };
            if offset + len > bytes.len() {
                return Err(WireError::Truncated);
            }
            protocol = next;
            offset += len;
        }
        Err(WireError::Malformed)
    }
}

/// The fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub source: Ipv6Addr,
    /// Destination address.
    pub destination: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length (extension headers included).
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// A header with hop limit 64, traffic class 0 and flow label 0.
    #[inline]
    pub fn new(source: Ipv6Addr, destination: Ipv6Addr, next_header: u8, payload_len: u16) -> Self {
        Self { source, destination, next_header, payload_len, hop_limit: 64, traffic_class: 0, flow_label: 0 }
    }

    /// Reads a checked packet's fixed header.
    #[inline]
    pub fn parse(packet: &Packet<'_>) -> Self {
        Self {
            source: packet.source(),
            destination: packet.destination(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        }
    }

    /// Writes the 40-byte header into `out[..40]`; the flow label is masked to 20 bits.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        let word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        h[0..4].copy_from_slice(&word.to_be_bytes());
        h[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        h[6] = self.next_header;
        h[7] = self.hop_limit;
        h[8..24].copy_from_slice(&self.source.octets());
        h[24..40].copy_from_slice(&self.destination.octets());
        Ok(HEADER_LEN)
    }
}

/// Writes a generic extension header (hop-by-hop, routing or destination options) of
/// `len` bytes (a multiple of 8, 8–2048) with padding options as its body.
#[inline]
pub fn emit_extension_header(out: &mut [u8], next: u8, len: usize) -> Result<usize, WireError> {
    if len < 8 || !len.is_multiple_of(8) || len > 2048 {
        return Err(WireError::Malformed);
    }
    let h = out.get_mut(..len).ok_or(WireError::Truncated)?;
    h.fill(0);
    h[0] = next;
    h[1] = (len / 8 - 1) as u8;
    // One PadN option covering the rest of the body keeps the header well-formed.
    h[2] = 1;
    h[3] = (len - 4) as u8;
    Ok(len)
}

/// Writes an 8-byte fragment header.
#[inline]
pub fn emit_fragment_header(
    out: &mut [u8],
    next: u8,
    offset_units: u16,
    more: bool,
    ident: u32,
) -> Result<usize, WireError> {
    let h = out.get_mut(..8).ok_or(WireError::Truncated)?;
    h[0] = next;
    h[1] = 0;
    h[2..4].copy_from_slice(&((offset_units << 3) | u16::from(more)).to_be_bytes());
    h[4..8].copy_from_slice(&ident.to_be_bytes());
    Ok(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet_with(exts: &[(u8, usize)], upper: u8, tail: usize) -> Vec<u8> {
        let mut body = vec![0u8; exts.iter().map(|e| e.1).sum::<usize>() + tail];
        let mut at = 0;
        for (i, &(kind, len)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(upper, |e| e.0);
            if kind == protocol::FRAGMENT {
                emit_fragment_header(&mut body[at..], next, 0, true, 7).unwrap();
            } else {
                emit_extension_header(&mut body[at..], next, len).unwrap();
            }
            at += len;
        }
        let first = exts.first().map_or(upper, |e| e.0);
        let mut out = vec![0u8; HEADER_LEN];
        Repr::new("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap(), first, body.len() as u16)
            .emit(&mut out)
            .unwrap();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn walks_extension_headers() {
        let p = packet_with(&[(0, 8), (60, 16), (43, 24), (44, 8)], 6, 20);
        let up = Packet::new_checked(&p).unwrap().upper_layer().unwrap();
        assert_eq!(up, UpperLayer { protocol: 6, offset: 40 + 56, fragment: Fragment::First });
    }

    #[test]
    fn later_fragment_stops_the_walk() {
        let mut p = packet_with(&[], 44, 16);
        emit_fragment_header(&mut p[40..], 17, 100, false, 1).unwrap();
        let up = Packet::new_checked(&p).unwrap().upper_layer().unwrap();
        assert_eq!(up, UpperLayer { protocol: 17, offset: 48, fragment: Fragment::Later });
    }

    #[test]
    fn truncated_or_endless_chains_are_errors() {
        let p = packet_with(&[(0, 8), (60, 16)], 6, 0);
        assert_eq!(Packet::new_checked(&p[..50]).unwrap().upper_layer(), Err(WireError::Truncated));
        let exts: Vec<(u8, usize)> = (0..MAX_EXTENSION_HEADERS + 1).map(|_| (60, 8)).collect();
        let p = packet_with(&exts, 6, 0);
        assert_eq!(Packet::new_checked(&p).unwrap().upper_layer(), Err(WireError::Malformed));
        assert_eq!(Packet::new_checked(&[0x60; 39]).err(), Some(WireError::Truncated));
        assert_eq!(Packet::new_checked(&[0x40; 40]).err(), Some(WireError::Malformed));
    }

    proptest! {
        #[test]
        fn emit_parse_round_trips(mut b in proptest::collection::vec(any::<u8>(), 40)) {
            b[0] = 0x60 | (b[0] & 0x0f);
            let repr = Repr::parse(&Packet::new_checked(&b).unwrap());
            let mut out = [0u8; 40];
            repr.emit(&mut out).unwrap();
            prop_assert_eq!(&out[..], &b[..]);
        }
    }
}
