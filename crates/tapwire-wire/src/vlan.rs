//! IEEE 802.1Q / 802.1ad tags: the 4 bytes after a VLAN TPID (TCI + inner EtherType).
//!
//! A [`Tag`] view starts at the TCI, i.e. right after the TPID that announced it; its
//! [`Tag::ethertype`] is the next TPID (QinQ) or the payload's EtherType.
//! Invariant: a [`Tag`] holds at least [`HEADER_LEN`] bytes.

use crate::WireError;

/// Bytes after the TPID: TCI (2) + EtherType (2).
pub const HEADER_LEN: usize = 4;

/// Byte ranges of a tag's fields (after the TPID that announced it).
pub mod field {
    use crate::field::Field;

    /// Priority, DEI and VLAN ID.
    pub const TCI: Field = 0..2;
    /// EtherType of what follows (or the next tag's TPID).
    pub const ETHERTYPE: Field = 2..4;
}

/// A read-only view of one tag.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    bytes: &'a [u8],
}

impl<'a> Tag<'a> {
    /// Checks that `bytes` holds a full tag.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// The whole tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        crate::field::be16(self.bytes, field::TCI)
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn priority(&self) -> u8 {
        self.bytes[0] >> 5
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn drop_eligible(&self) -> bool {
        self.bytes[0] & 0x10 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType that follows the tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        crate::field::be16(self.bytes, field::ETHERTYPE)
    }

    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// The parsed tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Priority code point (0–7).
    pub priority: u8,
    /// Drop eligible indicator.
    pub drop_eligible: bool,
    /// VLAN identifier (0–4095).
    pub vlan_id: u16,
    /// The EtherType that follows.
    pub ethertype: u16,
}

impl Repr {
    /// Reads a checked tag.
    #[inline]
    pub fn parse(tag: &Tag<'_>) -> Self {
        Self {
            priority: tag.priority(),
            drop_eligible: tag.drop_eligible(),
            vlan_id: tag.vlan_id(),
            ethertype: tag.ethertype(),
        }
    }

    /// Writes the 4 bytes into `out[..4]`; out-of-range fields are masked.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        let tci =
            (u16::from(self.priority & 7) << 13) | (u16::from(self.drop_eligible) << 12) | (self.vlan_id & 0x0fff);
        h[0..2].copy_from_slice(&tci.to_be_bytes());
        h[2..4].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture() {
        // PCP 5, DEI 1, VID 100, then IPv4.
        let t = Tag::new_checked(&[0xb0, 0x64, 0x08, 0x00, 0x45]).unwrap();
        assert_eq!((t.priority(), t.drop_eligible(), t.vlan_id(), t.ethertype()), (5, true, 100, 0x0800));
        assert_eq!(t.payload(), &[0x45]);
        assert!(Tag::new_checked(&[0; 3]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn emit_parse_round_trips(bytes in proptest::array::uniform4(proptest::num::u8::ANY)) {
            let repr = Repr::parse(&Tag::new_checked(&bytes).unwrap());
            let mut out = [0u8; 4];
            repr.emit(&mut out).unwrap();
            proptest::prop_assert_eq!(out, bytes);
        }
    }
}
