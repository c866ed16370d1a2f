//! UDP headers (RFC 768).
//!
//! Invariant of a checked [`Packet`]: at least 8 bytes. The length field is not trusted
//! for bounds; [`Packet::payload`] ends at the smaller of it and the buffer.

use std::net::IpAddr;

use crate::field::be16;
use crate::ip::protocol;
use crate::{WireError, checksum};

/// Header length.
pub const HEADER_LEN: usize = 8;

/// Byte ranges of the header fields.
pub mod field {
    use crate::field::Field;

    /// Source port.
    pub const SOURCE_PORT: Field = 0..2;
    /// Destination port.
    pub const DESTINATION_PORT: Field = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Field = 4..6;
    /// Checksum.
    pub const CHECKSUM: Field = 6..8;
}

/// A read-only view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks that `bytes` holds a full header.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// Source port.
    #[inline]
    pub fn source_port(&self) -> u16 {
        be16(self.bytes, field::SOURCE_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn destination_port(&self) -> u16 {
        be16(self.bytes, field::DESTINATION_PORT)
    }

    /// Length field (header + payload).
    #[inline]
    pub fn len_field(&self) -> u16 {
        be16(self.bytes, field::LENGTH)
    }

    /// Checksum field (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.bytes, field::CHECKSUM)
    }

    /// The payload, bounded by the length field and the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let end = usize::from(self.len_field()).clamp(HEADER_LEN, self.bytes.len());
        &self.bytes[HEADER_LEN..end]
    }
}

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// Length field (header + payload).
    pub length: u16,
    /// Checksum field.
    pub checksum: u16,
}

impl Repr {
    /// Reads a checked datagram's header.
    #[inline]
    pub fn parse(packet: &Packet<'_>) -> Self {
        Self {
            source_port: packet.source_port(),
            destination_port: packet.destination_port(),
            length: packet.len_field(),
            checksum: packet.checksum(),
        }
    }

    /// Writes the 8-byte header as given.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        h[field::SOURCE_PORT].copy_from_slice(&self.source_port.to_be_bytes());
        h[field::DESTINATION_PORT].copy_from_slice(&self.destination_port.to_be_bytes());
        h[field::LENGTH].copy_from_slice(&self.length.to_be_bytes());
        h[field::CHECKSUM].copy_from_slice(&self.checksum.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

/// Computes and stores the checksum of a whole datagram (`datagram` = header + payload)
/// sent from `src` to `dst`; a computed 0 is sent as 0xffff (RFC 768).
#[inline]
pub fn fill_checksum(datagram: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<(), WireError> {
    if datagram.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    datagram[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let sum = match checksum::upper_layer(src, dst, protocol::UDP, datagram) {
        0 => 0xffff,
        s => s,
    };
    datagram[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_fixture_and_checksums() {
        let mut d = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0a, 0, 0, 0xab, 0xcd];
        fill_checksum(&mut d, "198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap()).unwrap();
        let p = Packet::new_checked(&d).unwrap();
        assert_eq!((p.source_port(), p.destination_port(), p.len_field()), (12345, 53, 10));
        assert_eq!(p.payload(), &[0xab, 0xcd]);
        // Verifying: the sum over pseudo-header + datagram folds to 0xffff.
        let acc = checksum::pseudo_header("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap(), 17, 10);
        assert_eq!(checksum::fold(checksum::accumulate(acc, &d)), 0xffff);
        assert!(Packet::new_checked(&d[..7]).is_err());
    }

    proptest! {
        #[test]
        fn emit_parse_round_trips(b in proptest::array::uniform8(any::<u8>())) {
            let repr = Repr::parse(&Packet::new_checked(&b).unwrap());
            let mut out = [0u8; 8];
            repr.emit(&mut out).unwrap();
            prop_assert_eq!(out, b);
        }
    }
}
