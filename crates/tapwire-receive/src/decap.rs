//! Decapsulation: one UDP payload in, (VNI, inner Ethernet frame) out.
//!
//! Pure and allocation-free. The VXLAN header itself is checked by
//! [`tapwire_wire::vxlan::Packet`] (8 bytes, I flag set, reserved bits ignored as
//! RFC 7348 §5 asks); this module only adds the receiver's own rule that the inner frame
//! must at least hold an Ethernet header, and names each reason for a drop so it can be
//! counted.

use std::net::IpAddr;

use tapwire_wire::ethernet::{self, ethertype};
use tapwire_wire::vxlan;
use tapwire_wire::{WireError, ipv4, ipv6, udp};

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
    /// `--capture`: an outer IPv4 fragment or IPv6 fragment header, which a capture
    /// cannot put back together (the socket path, through the kernel's reassembly, can).
    Fragment,
    /// `--capture`: the outer headers could not be read as Ethernet, IP (no IPv6
    /// extension headers) and UDP to the listening port.
    Outer,
}

/// IPv6's next-header value for a fragment header.
const IPV6_FRAGMENT: u8 = 44;
const UDP: u8 = 17;

/// The outer addresses and the UDP payload of a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterUdp<'a> {
    /// Outer source.
    pub source: IpAddr,
    /// Outer destination.
    pub destination: IpAddr,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// The outer addresses and UDP payload of a captured frame sent to `port` (`--capture`):
/// Ethernet with any VLAN tags, IPv4 or IPv6, UDP. The payload ends where the UDP length
/// says, so a short frame's Ethernet padding never reaches the output.
pub fn outer_udp(frame: &[u8], port: u16) -> Result<OuterUdp<'_>, Malformed> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| Malformed::Outer)?;
    let (mut kind, mut rest) = (eth.ethertype(), eth.payload());
    while ethertype::is_vlan_tag(kind) {
        let tag = rest.get(..4).ok_or(Malformed::Outer)?;
        kind = u16::from_be_bytes([tag[2], tag[3]]);
        rest = &rest[4..];
    }
    let (source, destination, datagram) = match kind {
        ethertype::IPV4 => {
            let ip = ipv4::Packet::new_checked(rest).map_err(|_| Malformed::Outer)?;
            if ip.is_fragment() {
                return Err(Malformed::Fragment);
            }
            if ip.protocol() != UDP {
                return Err(Malformed::Outer);
            }
            (IpAddr::V4(ip.source()), IpAddr::V4(ip.destination()), ip.payload())
        }
        ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(rest).map_err(|_| Malformed::Outer)?;
            match ip.next_header() {
                UDP => (IpAddr::V6(ip.source()), IpAddr::V6(ip.destination()), ip.payload()),
                IPV6_FRAGMENT => return Err(Malformed::Fragment),
                _ => return Err(Malformed::Outer),
            }
        }
        _ => return Err(Malformed::Outer),
    };
    let udp = udp::Packet::new_checked(datagram).map_err(|_| Malformed::Outer)?;
    if udp.destination_port() != port {
        return Err(Malformed::Outer);
    }
    Ok(OuterUdp { source, destination, payload: udp.payload() })
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

    #[test]
    fn outer_udp_gives_the_addresses_and_the_payload_without_padding() {
        use tapwire_wire::build::{FrameSpec, L4};
        let udp = L4::Udp { source_port: 50000, destination_port: 4789 };
        let base = FrameSpec { l4: udp, payload_len: 12, ..FrameSpec::default() };
        let mut padded = base.to_bytes();
        padded.extend_from_slice(&[0; 20]);
        let outer = outer_udp(&padded, 4789).unwrap();
        let addresses = (outer.source.to_string(), outer.destination.to_string());
        assert_eq!((addresses, outer.payload.len()), ((base.source.to_string(), base.destination.to_string()), 12));
        let tagged = FrameSpec { vlan_tags: vec![(0x8100, 7)], ..base.clone() }.to_bytes();
        assert_eq!(outer_udp(&tagged, 4789).map(|o| o.payload.len()), Ok(12));
        let v6 = FrameSpec {
            source: "2001:db8::1".parse().unwrap(),
            destination: "2001:db8::2".parse().unwrap(),
            ..base.clone()
        };
        let v6_frame = v6.to_bytes();
        let outer = outer_udp(&v6_frame, 4789).unwrap();
        assert_eq!((outer.source, outer.destination), (v6.source, v6.destination));
        let first = FrameSpec { more_fragments: true, ..base.clone() };
        assert_eq!(outer_udp(&first.to_bytes(), 4789), Err(Malformed::Fragment));
        assert_eq!(outer_udp(&FrameSpec { more_fragments: true, ..v6 }.to_bytes(), 4789), Err(Malformed::Fragment));
        assert_eq!(outer_udp(&base.to_bytes(), 4790), Err(Malformed::Outer));
        assert_eq!(outer_udp(&padded[..20], 4789), Err(Malformed::Outer));
    }
}
