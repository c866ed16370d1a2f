//! TCP headers (RFC 9293); options are carried, not interpreted.
//!
//! Invariant of a checked [`Packet`]: at least 20 bytes and a data offset of at least
//! 20 bytes that fits in the buffer.

use std::net::IpAddr;

use crate::field::{be16, be32};
use crate::ip::protocol;
use crate::{WireError, checksum};

/// Header length without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Byte ranges of the header fields.
pub mod field {
    use crate::field::Field;

    /// Source port.
    pub const SOURCE_PORT: Field = 0..2;
    /// Destination port.
    pub const DESTINATION_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQUENCE: Field = 4..8;
    /// Acknowledgement number.
    pub const ACKNOWLEDGEMENT: Field = 8..12;
    /// Data offset (high nibble) and reserved bits.
    pub const DATA_OFFSET: usize = 12;
    /// Flags.
    pub const FLAGS: usize = 13;
    /// Receive window.
    pub const WINDOW: Field = 14..16;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
}

/// TCP flag bits (low byte of the flags field).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A read-only view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the invariants listed in the module docs.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(bytes[field::DATA_OFFSET] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if header_len > bytes.len() {
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

    /// Sequence number.
    #[inline]
    pub fn sequence(&self) -> u32 {
        be32(self.bytes, field::SEQUENCE)
    }

    /// Acknowledgement number.
    #[inline]
    pub fn acknowledgement(&self) -> u32 {
        be32(self.bytes, field::ACKNOWLEDGEMENT)
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes[field::DATA_OFFSET] >> 4) * 4
    }

    /// Flag bits (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.bytes[field::FLAGS]
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.bytes, field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.bytes, field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        be16(self.bytes, field::URGENT)
    }

    /// Bytes after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len()..]
    }
}

/// An option-less TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Acknowledgement number.
    pub acknowledgement: u32,
    /// Reserved bits (low nibble of byte 12).
    pub reserved: u8,
    /// Flag bits.
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Checksum field.
    pub checksum: u16,
    /// Urgent pointer.
    pub urgent: u16,
}

impl Repr {
    /// Reads a checked segment's header; `Malformed` when it carries options.
    #[inline]
    pub fn parse(packet: &Packet<'_>) -> Result<Self, WireError> {
        if packet.header_len() != MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        Ok(Self {
            source_port: packet.source_port(),
            destination_port: packet.destination_port(),
            sequence: packet.sequence(),
            acknowledgement: packet.acknowledgement(),
            reserved: packet.bytes[field::DATA_OFFSET] & 0x0f,
            flags: packet.flags(),
            window: packet.window(),
            checksum: packet.checksum(),
            urgent: packet.urgent(),
        })
    }

    /// Writes the 20-byte header as given.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        h[field::SOURCE_PORT].copy_from_slice(&self.source_port.to_be_bytes());
        h[field::DESTINATION_PORT].copy_from_slice(&self.destination_port.to_be_bytes());
        h[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        h[field::ACKNOWLEDGEMENT].copy_from_slice(&self.acknowledgement.to_be_bytes());
        h[field::DATA_OFFSET] = 0x50 | (self.reserved & 0x0f);
        h[field::FLAGS] = self.flags;
        h[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        h[field::CHECKSUM].copy_from_slice(&self.checksum.to_be_bytes());
        h[field::URGENT].copy_from_slice(&self.urgent.to_be_bytes());
        Ok(MIN_HEADER_LEN)
    }
}

/// Computes and stores the checksum of a whole segment sent from `src` to `dst`.
#[inline]
pub fn fill_checksum(segment: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<(), WireError> {
    if segment.len() < MIN_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    segment[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let sum = checksum::upper_layer(src, dst, protocol::TCP, segment);
    segment[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_fixture() {
        let mut s = [0u8; 24];
        s[0..4].copy_from_slice(&[0xc0, 0x00, 0x01, 0xbb]);
        s[12] = 0x60; // data offset 24 (one option word)
        s[13] = flags::SYN;
        let p = Packet::new_checked(&s).unwrap();
        assert_eq!((p.source_port(), p.destination_port(), p.header_len(), p.flags()), (49152, 443, 24, flags::SYN));
        assert!(p.payload().is_empty());
        assert_eq!(Repr::parse(&p).err(), Some(WireError::Malformed));
        assert_eq!(Packet::new_checked(&s[..22]).err(), Some(WireError::Truncated));
        s[12] = 0x40;
        assert_eq!(Packet::new_checked(&s).err(), Some(WireError::Malformed));
    }

    proptest! {
        #[test]
        fn emit_parse_round_trips(mut b in proptest::array::uniform20(any::<u8>())) {
            b[12] = 0x50 | (b[12] & 0x0f);
            let repr = Repr::parse(&Packet::new_checked(&b).unwrap()).unwrap();
            let mut out = [0u8; 20];
            repr.emit(&mut out).unwrap();
            prop_assert_eq!(out, b);
        }
    }
}
