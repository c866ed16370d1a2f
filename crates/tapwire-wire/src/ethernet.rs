//! Ethernet II frames: 6-byte destination, 6-byte source, 2-byte EtherType.
//!
//! The view does not look past the EtherType; 802.1Q tags are parsed by [`crate::vlan`].
//! Invariant: a [`Frame`] holds at least [`HEADER_LEN`] bytes.

use crate::WireError;

/// Header length in bytes.
pub const HEADER_LEN: usize = 14;

/// Byte ranges of the header fields.
pub mod field {
    use crate::field::Field;

    /// Destination MAC address.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC address.
    pub const SOURCE: Field = 6..12;
    /// EtherType (or the first VLAN tag's TPID).
    pub const ETHERTYPE: Field = 12..14;
}

/// EtherType values tapwire looks at.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP (never mirrored).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still seen on some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;

    /// Whether `t` announces a VLAN tag (802.1Q, 802.1ad or the legacy 0x9100).
    #[inline]
    pub fn is_vlan_tag(t: u16) -> bool {
        // `|`, not `||`: no branch per value (tagged and untagged frames mix).
        (t == VLAN) | (t == QINQ) | (t == QINQ_LEGACY)
    }
}

/// A MAC address.
pub type MacAddress = [u8; 6];

/// A read-only view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Checks that `bytes` holds a full header.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { bytes })
    }

    /// Destination MAC.
    #[inline]
    pub fn destination(&self) -> MacAddress {
        mac(&self.bytes[field::DESTINATION])
    }

    /// Source MAC.
    #[inline]
    pub fn source(&self) -> MacAddress {
        mac(&self.bytes[field::SOURCE])
    }

    /// The EtherType (or TPID of the first VLAN tag).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        crate::field::be16(self.bytes, field::ETHERTYPE)
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The whole frame.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn mac(b: &[u8]) -> MacAddress {
    let mut m = [0u8; 6];
    m.copy_from_slice(b);
    m
}

/// The parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Destination MAC.
    pub destination: MacAddress,
    /// Source MAC.
    pub source: MacAddress,
    /// EtherType.
    pub ethertype: u16,
}

impl Repr {
    /// Reads the header of a checked frame.
    #[inline]
    pub fn parse(frame: &Frame<'_>) -> Self {
        Self { destination: frame.destination(), source: frame.source(), ethertype: frame.ethertype() }
    }

    /// Writes the 14-byte header into `out[..14]`; returns the bytes written.
    #[inline]
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let h = out.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        h[0..6].copy_from_slice(&self.destination);
        h[6..12].copy_from_slice(&self.source);
        h[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP_FRAME_HEAD: [u8; 14] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06];

    #[test]
    fn parses_fixture() {
        let f = Frame::new_checked(&ARP_FRAME_HEAD).unwrap();
        assert_eq!(f.destination(), [0xff; 6]);
        assert_eq!(f.source(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert!(f.payload().is_empty());
        assert_eq!(Frame::new_checked(&ARP_FRAME_HEAD[..13]).err(), Some(WireError::Truncated));
    }

    proptest::proptest! {
        #[test]
        fn emit_parse_round_trips(bytes in proptest::array::uniform14(proptest::num::u8::ANY)) {
            let repr = Repr::parse(&Frame::new_checked(&bytes).unwrap());
            let mut out = [0u8; 14];
            repr.emit(&mut out).unwrap();
            proptest::prop_assert_eq!(out, bytes);
        }
    }
}
