//! Decapsulation: one UDP payload in, (VNI, inner Ethernet frame) out.
//!
//! Pure and allocation-free. The VXLAN header itself is checked by
//! [`tapwire_wire::vxlan::Packet`] (8 bytes, I flag set, reserved bits ignored as
//! RFC 7348 §5 asks); this module only adds the receiver's own rule that the inner frame
//! must at least hold an Ethernet header, and names each reason for a drop so it can be
//! counted.

use tapwire_wire::WireError;
use tapwire_wire::vxlan;

/// Length of an Ethernet II header (destination, source, EtherType).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Why a datagram was skipped. Every variant is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the 8-byte VXLAN header.
    Short,
    /// The I flag (VNI valid) is not set.
    NoIFlag,
    /// The inner frame is shorter than an Ethernet header.
    Runt,
    /// The datagram did not fit the receive buffer (the kernel cut it).
    Truncated,
}

/// Splits a VXLAN datagram into its VNI and inner Ethernet frame.
pub fn decap(datagram: &[u8]) -> Result<(u32, &[u8]), Malformed> {
    let packet = vxlan::Packet::new_checked(datagram).map_err(|e| match e {
        WireError::Truncated => Malformed::Short,
        WireError::Malformed => Malformed::NoIFlag,
    })?;
    let inner = packet.payload();
    if inner.len() < ETHERNET_HEADER_LEN {
        return Err(Malformed::Runt);
    }
    Ok((packet.vni(), inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; vxlan::HEADER_LEN];
        vxlan::emit_header(&mut d, vni).unwrap();
        d.extend_from_slice(inner);
        d
    }

    #[test]
    fn returns_vni_and_exact_inner_frame() {
        let inner: Vec<u8> = (0..60u8).collect();
        let d = datagram(0xab_cdef, &inner);
        assert_eq!(decap(&d), Ok((0xab_cdef, &inner[..])));
    }

    #[test]
    fn ignores_reserved_bits() {
        let mut d = datagram(9, &[0x55; 14]);
        d[0] |= 0xf7;
        d[7] = 0xff;
        assert_eq!(decap(&d).map(|(v, _)| v), Ok(9));
    }

    #[test]
    fn names_each_reason() {
        assert_eq!(decap(&[0x08, 0, 0, 0, 0, 0, 1]), Err(Malformed::Short));
        assert_eq!(decap(&[]), Err(Malformed::Short));
        let mut unflagged = datagram(1, &[0; 20]);
        unflagged[0] = 0;
        assert_eq!(decap(&unflagged), Err(Malformed::NoIFlag));
        assert_eq!(decap(&datagram(1, &[0; 13])), Err(Malformed::Runt));
        assert_eq!(decap(&datagram(1, &[])), Err(Malformed::Runt));
    }
}
