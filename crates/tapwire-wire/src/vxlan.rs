//! VXLAN (RFC 7348): an 8-byte header in front of an inner Ethernet frame.
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//! Senders set the I flag and zero every reserved bit; receivers require the I flag and
//! ignore reserved bits (RFC 7348 §5; strict receivers have caused needless drops).

use crate::WireError;

/// Header length in bytes.
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid.
pub const FLAG_I: u8 = 0x08;
/// Largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// A read-only view of a VXLAN datagram payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks that `bytes` holds a full header with the I flag set.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if bytes[0] & FLAG_I == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// The 24-bit network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        u32::from_be_bytes([0, self.bytes[4], self.bytes[5], self.bytes[6]])
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Writes a VXLAN header for `vni` (masked to 24 bits) into `out[..8]`.
///
/// Returns `Truncated` when `out` is shorter than [`HEADER_LEN`].
#[inline]
pub fn emit_header(out: &mut [u8], vni: u32) -> Result<(), WireError> {
    let header = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
    let v = (vni & MAX_VNI).to_be_bytes();
    header.copy_from_slice(&[FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_rfc7348_header() {
        let mut buf = [0xffu8; 8];
        emit_header(&mut buf, 0x12_3456).unwrap();
        assert_eq!(buf, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    }

    #[test]
    fn parses_vni_and_payload_ignoring_reserved_bits() {
        let bytes = [0x08 | 0x80, 1, 2, 3, 0, 0, 7, 0xee, 0xaa, 0xbb];
        let p = Packet::new_checked(&bytes).unwrap();
        assert_eq!(p.vni(), 7);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn rejects_short_or_unflagged() {
        assert_eq!(Packet::new_checked(&[8, 0, 0, 0, 0, 0, 1]).err(), Some(WireError::Truncated));
        assert_eq!(Packet::new_checked(&[0; 8]).err(), Some(WireError::Malformed));
        assert_eq!(emit_header(&mut [0; 7], 1), Err(WireError::Truncated));
    }

    proptest::proptest! {
        #[test]
        fn emit_then_parse_round_trips(vni in 0u32..=MAX_VNI) {
            let mut buf = [0u8; 8];
            emit_header(&mut buf, vni).unwrap();
            proptest::prop_assert_eq!(Packet::new_checked(&buf).unwrap().vni(), vni);
        }
    }
}
