//! ICMP (RFC 792) and ICMPv6 (RFC 4443) share one header shape: type, code, checksum
//! and 4 bytes whose meaning depends on the type.
//!
//! Invariant of a checked [`Packet`]: at least 8 bytes. The ICMPv4 checksum covers the
//! message; the ICMPv6 checksum also covers the IPv6 pseudo-header.

use std::net::IpAddr;

use crate::ip::protocol;
use crate::{WireError, checksum};

/// Header length.
pub const HEADER_LEN: usize = 8;

/// A read-only view of an ICMP or ICMPv6 message.
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

    /// Message type.
    #[inline]
    pub fn message_type(&self) -> u8 {
        self.bytes[0]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.bytes[1]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The 4 type-specific bytes (identifier and sequence for echo).
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        [self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]]
    }

    /// Bytes after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// An ICMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Message type.
    pub message_type: u8,
    /// Message code.
    pub code: u8,
    /// Checksum field.
    pub checksum: u16,
    /// Type-specific bytes.
    pub rest_of_header: [u8; 4],
}

impl Repr {
    /// Reads a checked message's header.
    #[inline]
    pub fn parse(packet: &Packet<'_>) -> Self {
        Self {
            message_type: packet.message_type(),
            code: packet.code(),
            checksum: packet.checksum(),
            rest_of_header: packet.rest_of_header(),
        }
    }

    /// Writes the 8-byte header as given.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        h[0] = self.message_type;
        h[1] = self.code;
        h[2..4].copy_from_slice(&self.checksum.to_be_bytes());
        h[4..8].copy_from_slice(&self.rest_of_header);
        Ok(HEADER_LEN)
    }
}

/// Computes and stores the checksum of a whole message: plain for ICMPv4 (`addresses`
/// `None`), with the pseudo-header for ICMPv6.
#[inline]
pub fn fill_checksum(message: &mut [u8], addresses: Option<(IpAddr, IpAddr)>) -> Result<(), WireError> {
    if message.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    message[2..4].copy_from_slice(&[0, 0]);
    let sum = match addresses {
        None => checksum::internet(message),
        Some((src, dst)) => checksum::upper_layer(src, dst, protocol::ICMPV6, message),
    };
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn echo_request_checksum() {
        let mut m = [8, 0, 0, 0, 0, 1, 0, 1, b'h', b'i'];
        fill_checksum(&mut m, None).unwrap();
        assert_eq!(checksum::fold(checksum::accumulate(0, &m)), 0xffff);
        let p = Packet::new_checked(&m).unwrap();
        assert_eq!((p.message_type(), p.code(), p.rest_of_header()), (8, 0, [0, 1, 0, 1]));
        assert_eq!(p.payload(), b"hi");
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
