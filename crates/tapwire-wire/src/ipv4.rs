//! IPv4 headers (RFC 791), options skipped, fragments recognised.
//!
//! Invariants of a checked [`Packet`]: at least 20 bytes, version 4, a header length
//! (IHL) of at least 20 bytes that fits in the buffer, and a total length no smaller
//! than the header. A total length *larger* than the buffer is accepted (captures cut
//! by a snap length); [`Packet::payload`] then ends at the buffer.

use std::net::Ipv4Addr;

use crate::field::{be16, be32};
use crate::{WireError, checksum};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Default TTL of packets tapwire builds.
pub const DEFAULT_TTL: u8 = 64;

/// DF in the flags/offset word.
pub const FLAG_DONT_FRAGMENT: u16 = 0x4000;
/// MF in the flags/offset word.
pub const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
/// The fragment offset bits of the flags/offset word.
pub const OFFSET_MASK: u16 = 0x1fff;
/// The first byte of a header without options: version 4, IHL 5.
pub const VERSION_IHL_NO_OPTIONS: u8 = 0x45;

/// Byte ranges of the header fields, used by the view, the emitter and the flow fast path.
pub mod field {
    use crate::field::Field;

    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VERSION_IHL: usize = 0;
    /// DSCP and ECN.
    pub const DSCP_ECN: usize = 1;
    /// Total length.
    pub const TOTAL_LEN: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags and fragment offset.
    pub const FLAGS_OFFSET: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SOURCE: Field = 12..16;
    /// Destination address.
    pub const DESTINATION: Field = 16..20;
}

/// A read-only view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the invariants listed in the module docs.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        let first = *bytes.get(field::VERSION_IHL).ok_or(WireError::Truncated)?;
        if first >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        if bytes.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if header_len > bytes.len() {
            return Err(WireError::Truncated);
        }
        let total = usize::from(be16(bytes, field::TOTAL_LEN));
        if total < header_len {
            return Err(WireError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes[field::VERSION_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN bits.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.bytes[field::DSCP_ECN]
    }

    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.bytes, field::TOTAL_LEN)
    }

    /// Identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.bytes, field::IDENT)
    }

    fn flags_offset(&self) -> u16 {
        be16(self.bytes, field::FLAGS_OFFSET)
    }

    /// DF flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_offset() & FLAG_DONT_FRAGMENT != 0
    }

    /// MF flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_offset() & FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn fragment_offset(&self) -> u16 {
        self.flags_offset() & OFFSET_MASK
    }

    /// Whether this packet is a fragment (first or later).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.bytes[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.bytes[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.bytes, field::CHECKSUM)
    }

    /// Whether the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::accumulate(0, &self.bytes[..self.header_len()])) == 0xffff
    }

    /// Source address.
    #[inline]
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.bytes, field::SOURCE))
    }

    /// Destination address.
    #[inline]
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.bytes, field::DESTINATION))
    }

    /// The payload: after the header, up to the total length or the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let end = usize::from(self.total_len()).min(self.bytes.len());
        &self.bytes[self.header_len()..end]
    }

    /// The header bytes, options included.
    #[inline]
    pub fn header(&self) -> &'a [u8] {
        &self.bytes[..self.header_len()]
    }
}

/// An IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub source: Ipv4Addr,
    /// Destination address.
    pub destination: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Payload length (total length minus 20).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN bits.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// DF flag.
    pub dont_fragment: bool,
    /// MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub fragment_offset: u16,
}

impl Repr {
    /// A plain unfragmented header with DF set and TTL 64, as tapwire sends.
    #[inline]
    pub fn new(source: Ipv4Addr, destination: Ipv4Addr, protocol: u8, payload_len: u16) -> Self {
        Self {
            source,
            destination,
            protocol,
            payload_len,
            ttl: DEFAULT_TTL,
            dscp_ecn: 0,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
        }
    }

    /// Reads a checked packet; options are dropped, and `Malformed` is returned when the
    /// checksum is wrong.
    #[inline]
    pub fn parse(packet: &Packet<'_>) -> Result<Self, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::Malformed);
        }
        Ok(Self {
            source: packet.source(),
            destination: packet.destination(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_fragment: packet.dont_fragment(),
            more_fragments: packet.more_fragments(),
            fragment_offset: packet.fragment_offset(),
        })
    }

    /// Writes a 20-byte header with a valid checksum into `out[..20]`.
    ///
    /// Fails with `Malformed` when the payload length does not fit the total length.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let total = self.payload_len.checked_add(MIN_HEADER_LEN as u16).ok_or(WireError::Malformed)?;
        let h = out.get_mut(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        let flags_offset = (u16::from(self.dont_fragment) * FLAG_DONT_FRAGMENT)
            | (u16::from(self.more_fragments) * FLAG_MORE_FRAGMENTS)
            | (self.fragment_offset & OFFSET_MASK);
        h[field::VERSION_IHL] = VERSION_IHL_NO_OPTIONS;
        h[field::DSCP_ECN] = self.dscp_ecn;
        h[field::TOTAL_LEN].copy_from_slice(&total.to_be_bytes());
        h[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        h[field::FLAGS_OFFSET].copy_from_slice(&flags_offset.to_be_bytes());
        h[field::TTL] = self.ttl;
        h[field::PROTOCOL] = self.protocol;
        h[field::CHECKSUM].copy_from_slice(&[0, 0]);
        h[field::SOURCE].copy_from_slice(&self.source.octets());
        h[field::DESTINATION].copy_from_slice(&self.destination.octets());
        let sum = checksum::internet(h);
        h[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(MIN_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A real header: 198.18.0.1 -> 198.18.0.2, UDP, total 28, TTL 64, DF.
    const FIXTURE: [u8; 20] = [0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, 64, 17, 0x00, 0x00, 198, 18, 0, 1, 198, 18, 0, 2];

    fn fixture() -> [u8; 20] {
        let mut b = FIXTURE;
        let sum = checksum::internet(&b);
        b[10..12].copy_from_slice(&sum.to_be_bytes());
        b
    }

    #[test]
    fn parses_fixture() {
        let b = fixture();
        let p = Packet::new_checked(&b).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.source(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.destination(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!((p.protocol(), p.ttl(), p.dont_fragment(), p.is_fragment()), (17, 64, true, false));
        // Total length 28 but only 20 bytes here: the payload ends at the buffer.
        assert!(p.payload().is_empty());
    }

    #[test]
    fn rejects_bad_headers() {
        let mut b = fixture();
        b[0] = 0x44;
        assert_eq!(Packet::new_checked(&b).err(), Some(WireError::Malformed));
        b[0] = 0x46;
        assert_eq!(Packet::new_checked(&b).err(), Some(WireError::Truncated));
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b).err(), Some(WireError::Malformed));
        let mut b = fixture();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b).err(), Some(WireError::Malformed));
        let mut b = fixture();
        b[11] ^= 1;
        assert_eq!(Repr::parse(&Packet::new_checked(&b).unwrap()).err(), Some(WireError::Malformed));
    }

    #[test]
    fn fragment_fields() {
        let repr = Repr {
            more_fragments: true,
            fragment_offset: 185,
            ..Repr::new([198, 18, 0, 1].into(), [198, 18, 0, 2].into(), 6, 8)
        };
        let mut b = [0u8; 28];
        repr.emit(&mut b).unwrap();
        let p = Packet::new_checked(&b).unwrap();
        assert!(p.is_fragment() && p.more_fragments());
        assert_eq!(p.fragment_offset(), 185);
        assert_eq!(p.payload().len(), 8);
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0u16..=65515,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
        )
            .prop_map(|(s, d, protocol, payload_len, ttl, dscp_ecn, ident, df, mf, off)| Repr {
                source: s.into(),
                destination: d.into(),
                protocol,
                payload_len,
                ttl,
                dscp_ecn,
                ident,
                dont_fragment: df,
                more_fragments: mf,
                fragment_offset: off,
            })
    }

    proptest! {
        #[test]
        fn repr_emit_parse_round_trips(repr in arb_repr()) {
            let mut b = [0u8; 20];
            repr.emit(&mut b).unwrap();
            let p = Packet::new_checked(&b).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn bytes_parse_emit_round_trips(mut b in proptest::array::uniform20(any::<u8>())) {
            // Any option-less header with a valid checksum and the reserved flag clear.
            b[0] = 0x45;
            b[6] &= 0x7f;
            let total = u16::from_be_bytes([b[2], b[3]]).max(20);
            b[2..4].copy_from_slice(&total.to_be_bytes());
            b[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum::internet(&b);
            b[10..12].copy_from_slice(&sum.to_be_bytes());
            let repr = Repr::parse(&Packet::new_checked(&b).unwrap()).unwrap();
            let mut out = [0u8; 20];
            repr.emit(&mut out).unwrap();
            prop_assert_eq!(out, b);
        }
    }
}
