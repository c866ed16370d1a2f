//! Truncation and VXLAN encapsulation of mirrored frames (RFC 7348).
//!
//! Two outputs:
//! - [`vxlan_payload`]: the VXLAN header followed by the (truncated) inner frame — what
//!   the agent hands to a UDP socket, whose kernel adds the outer headers;
//! - [`crate::Classifier::encapsulate`]: the complete outer Ethernet / IPv4 or IPv6 /
//!   UDP / VXLAN frame, as `tapwire simulate` writes it to a capture file.
//!
//! Outer headers: IPv4 with DF set, TTL 64, identification 0 (RFC 6864 allows it for
//! atomic datagrams) and a valid header checksum; IPv6 with hop limit 64. The UDP
//! checksum is always computed (mandatory for IPv6, harmless for IPv4). The UDP source
//! port is [`outer_source_port`], so one flow always uses one port.
//!
//! Outer MACs default to the locally administered pair [`OUTER_SOURCE_MAC`] /
//! [`OUTER_DESTINATION_MAC`] (the bytes spell "tap"), chosen so they can never collide
//! with a vendor-assigned address.

use std::net::IpAddr;

use tapwire_wire::ethernet::{self, MacAddress, ethertype};
use tapwire_wire::ip::protocol;
use tapwire_wire::{FlowKey, WireError, ipv4, ipv6, udp, vxlan};

use crate::{Classifier, Decision};

/// Outer source MAC used when the caller gives none: 02:74:61:70:00:01.
pub const OUTER_SOURCE_MAC: MacAddress = [0x02, 0x74, 0x61, 0x70, 0x00, 0x01];
/// Outer destination MAC used when the caller gives none: 02:74:61:70:00:02.
pub const OUTER_DESTINATION_MAC: MacAddress = [0x02, 0x74, 0x61, 0x70, 0x00, 0x02];
/// Bytes added in front of the inner frame with an IPv4 outer header (14 + 20 + 8 + 8).
pub const OVERHEAD_V4: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Bytes added with an IPv6 outer header (14 + 40 + 8 + 8).
pub const OVERHEAD_V6: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Lowest outer UDP source port (the IANA dynamic range).
pub const SOURCE_PORT_BASE: u16 = 49152;

/// The outer Ethernet addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterMacs {
    /// Source MAC.
    pub source: MacAddress,
    /// Destination MAC.
    pub destination: MacAddress,
}

impl Default for OuterMacs {
    fn default() -> Self {
        Self { source: OUTER_SOURCE_MAC, destination: OUTER_DESTINATION_MAC }
    }
}

/// Why a copy could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    /// The output buffer is smaller than the copy.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the copy needs.
        needed: usize,
    },
    /// The classifier has no outer source address of the target's family.
    #[error("no outer source address of the target's family")]
    NoOuterSource,
    /// The copy would not fit in one IP datagram.
    #[error("copy larger than an IP datagram")]
    TooLarge,
}

impl From<WireError> for EncapError {
    fn from(_: WireError) -> Self {
        // Emitters only fail on short buffers, which are checked first.
        EncapError::TooLarge
    }
}

/// The outer UDP source port for a flow: a stable, direction-independent hash of the
/// 5-tuple (TCP/UDP with ports) or of the 3-tuple (everything else), in 49152..=65535.
///
/// Symmetric on purpose: both directions of a connection reach the same target behind a
/// load balancer. Stable across runs and hosts (no random seed).
#[inline]
pub fn outer_source_port(flow: &FlowKey) -> u16 {
    let ports = flow.ports.map_or((0, 0), |p| (p.source, p.destination));
    source_port_of(ip_bits(flow.source), ip_bits(flow.destination), flow.protocol, ports)
}

/// [`outer_source_port`] from the addresses as integers (IPv4 zero-extended) and the
/// ports (`(0, 0)` for none), so callers without a [`FlowKey`] get the same port.
#[inline(always)]
pub(crate) fn source_port_of(source: u128, destination: u128, protocol: u8, ports: (u16, u16)) -> u16 {
    source_port_of_hash(flow_hash(source, destination, protocol, ports))
}

/// The outer source port of a flow of [`flow_hash`] `hash`.
#[inline(always)]
pub(crate) fn source_port_of_hash(hash: u64) -> u16 {
    SOURCE_PORT_BASE + (hash >> 50) as u16
}

/// A hash of the inner flow that is the same for both its directions: the addresses as
/// integers (IPv4 zero-extended), the protocol and the ports (`(0, 0)` for none).
#[inline(always)]
pub fn flow_hash(source: u128, destination: u128, protocol: u8, (sp, dp): (u16, u16)) -> u64 {
    let a = (source, sp);
    let b = (destination, dp);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ u64::from(protocol);
    for word in
        [lo.0 as u64, (lo.0 >> 64) as u64, hi.0 as u64, (hi.0 >> 64) as u64, (u64::from(lo.1) << 16) | u64::from(hi.1)]
    {
        h = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h
}

fn ip_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Writes the VXLAN header and the first `decision.inner_len(frame.len())` bytes of
/// `frame` into `out`; returns the bytes written.
pub fn vxlan_payload(decision: &Decision, frame: &[u8], out: &mut [u8]) -> Result<usize, EncapError> {
    let inner = decision.inner_len(frame.len());
    let needed = vxlan::HEADER_LEN + inner;
    let dst = out.get_mut(..needed).ok_or(EncapError::BufferTooSmall { needed })?;
    vxlan::emit_header(dst, decision.vni)?;
    dst[vxlan::HEADER_LEN..].copy_from_slice(&frame[..inner]);
    Ok(needed)
}

/// Bytes of the outer headers [`raw_headers`] writes for an IPv4 target: IPv4 (20) + UDP
/// (8) + VXLAN (8).
pub const RAW_IPV4_HEADERS_LEN: usize = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Bytes of the outer headers for an IPv6 target: IPv6 (40) + UDP (8) + VXLAN (8).
pub const RAW_IPV6_HEADERS_LEN: usize = ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;

/// Bytes of the outer headers of a copy to `target`.
#[inline]
pub fn raw_headers_len(target: IpAddr) -> usize {
    if target.is_ipv4() { RAW_IPV4_HEADERS_LEN } else { RAW_IPV6_HEADERS_LEN }
}

/// Writes the outer IP, UDP and VXLAN headers of a copy whose inner frame is `inner_len`
/// bytes into `out[..raw_headers_len(target)]`, for a raw socket that sends the UDP
/// header on and the inner frame the caller puts after them (the kernel writes its own
/// IP header, which says the same: IPv4 with DF and TTL 64, or IPv6 with hop limit 64).
///
/// The UDP checksum is left zero: RFC 7348 recommends none for IPv4 (it would need the
/// inner frame, which the caller may still be writing), and for IPv6, where RFC 7348
/// requires one, the agent's socket has the kernel compute it (`IPV6_CHECKSUM`).
/// `inner_len` is taken as given: the caller has already applied [`Decision::inner_len`]
/// and any path-MTU cut. `source` must be of the target's family.
pub fn raw_headers(source: IpAddr, decision: &Decision, inner_len: usize, out: &mut [u8]) -> Result<usize, EncapError> {
    let target = decision.target.address;
    let len = raw_headers_len(target);
    let out = out.get_mut(..len).ok_or(EncapError::BufferTooSmall { needed: len })?;
    let udp_len = u16::try_from(udp::HEADER_LEN + vxlan::HEADER_LEN + inner_len).map_err(|_| EncapError::TooLarge)?;
    let l4 = match (source, target) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            ipv4::Repr::new(s, t, protocol::UDP, udp_len).emit(out).map_err(|_| EncapError::TooLarge)?;
            ipv4::MIN_HEADER_LEN
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            ipv6::Repr::new(s, t, protocol::UDP, udp_len).emit(out)?;
            ipv6::HEADER_LEN
        }
        _ => return Err(EncapError::NoOuterSource),
    };
    udp::Repr {
        source_port: decision.outer_source_port,
        destination_port: decision.target.port,
        length: udp_len,
        checksum: 0,
    }
    .emit(&mut out[l4..])?;
    vxlan::emit_header(&mut out[l4 + udp::HEADER_LEN..], decision.vni)?;
    Ok(len)
}

impl Classifier {
    /// Writes the complete outer frame (Ethernet, IP, UDP, VXLAN, truncated inner frame)
    /// for a mirrored `frame` into `out`; returns the bytes written.
    pub fn encapsulate(
        &self,
        decision: &Decision,
        frame: &[u8],
        macs: OuterMacs,
        out: &mut [u8],
    ) -> Result<usize, EncapError> {
        let target = decision.target.address;
        let source = self.outer_source(target).ok_or(EncapError::NoOuterSource)?;
        let ip_len = match target {
            IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        };
        let l3 = ethernet::HEADER_LEN;
        let l4 = l3 + ip_len;
        let inner = decision.inner_len(frame.len());
        let needed = l4 + udp::HEADER_LEN + vxlan::HEADER_LEN + inner;
        if out.len() < needed {
            return Err(EncapError::BufferTooSmall { needed });
        }
        let udp_len = u16::try_from(needed - l4).map_err(|_| EncapError::TooLarge)?;
        vxlan_payload(decision, frame, &mut out[l4 + udp::HEADER_LEN..])?;
        udp::Repr {
            source_port: decision.outer_source_port,
            destination_port: decision.target.port,
            length: udp_len,
            checksum: 0,
        }
        .emit(&mut out[l4..])?;
        udp::fill_checksum(&mut out[l4..needed], source, target)?;
        let ether = match (source, target) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                let payload_len = u16::try_from(needed - l4).map_err(|_| EncapError::TooLarge)?;
                ipv4::Repr::new(s, t, protocol::UDP, payload_len)
                    .emit(&mut out[l3..])
                    .map_err(|_| EncapError::TooLarge)?;
                ethertype::IPV4
            }
            (IpAddr::V6(s), IpAddr::V6(t)) => {
                ipv6::Repr::new(s, t, protocol::UDP, udp_len).emit(&mut out[l3..])?;
                ethertype::IPV6
            }
            _ => return Err(EncapError::NoOuterSource),
        };
        ethernet::Repr { destination: macs.destination, source: macs.source, ethertype: ether }.emit(out)?;
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::Direction;
    use tapwire_model::config::InterfaceConfig;
    use tapwire_wire::build::{FrameSpec, L4};

    fn classifier(target: &str) -> Classifier {
        let doc = format!(
            r#"{{ "schema": 1, "revision": 1, "network_interface_id": "eni-0123456789abcdef0",
              "addresses": ["198.18.0.2", "2001:db8::2"],
              "sessions": [ {{ "session_id": "tms-0123456789abcdef0", "number": 1, "vni": 4660, "packet_length": 60,
                "enabled": true, "target": {{ "address": "{target}", "port": 4789 }},
                "filter": {{ "filter_id": "tmf-0123456789abcdef0",
                  "ingress": [ {{ "rule_id": "tmfr-0123456789abcdef0", "number": 1, "action": "accept",
                                 "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" }} ] }} }} ] }}"#
        );
        let cfg: InterfaceConfig = serde_json::from_str(&doc).expect("fixture parses");
        Classifier::compile(&cfg).expect("fixture compiles")
    }

    fn frame(sport: u16, dport: u16, reverse: bool) -> Vec<u8> {
        let (a, b) = ("198.18.0.1".parse().expect("ip"), "198.18.0.2".parse().expect("ip"));
        let (source, destination) = if reverse { (b, a) } else { (a, b) };
        FrameSpec {
            source,
            destination,
            l4: L4::Udp { source_port: sport, destination_port: dport },
            payload_len: 100,
            ..Default::default()
        }
        .to_bytes()
    }

    #[test]
    fn ipv4_outer_frame_layout() {
        let c = classifier("198.18.1.2");
        let f = frame(1234, 80, false);
        let key = FlowKey::extract(&f).expect("key");
        let d = c.decide(Direction::Ingress, &key).expect("mirrored");
        let mut out = [0u8; 300];
        let len = c.encapsulate(&d, &f, OuterMacs::default(), &mut out).expect("fits");
        assert_eq!(len, OVERHEAD_V4 + 60);
        let out = &out[..len];
        assert_eq!(&out[..12], &[OUTER_DESTINATION_MAC, OUTER_SOURCE_MAC].concat()[..]);
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("ipv4");
        assert!(ip.verify_checksum() && ip.dont_fragment() && ip.ttl() == 64);
        assert_eq!(
            (ip.source(), ip.destination()),
            ("198.18.0.2".parse().expect("ip"), "198.18.1.2".parse().expect("ip"))
        );
        let u = udp::Packet::new_checked(&out[34..]).expect("udp");
        assert_eq!(
            (u.source_port(), u.destination_port(), usize::from(u.len_field())),
            (d.outer_source_port, 4789, len - 34)
        );
        let acc =
            tapwire_wire::checksum::pseudo_header(ip.source().into(), ip.destination().into(), 17, (len - 34) as u32);
        assert_eq!(tapwire_wire::checksum::fold(tapwire_wire::checksum::accumulate(acc, &out[34..])), 0xffff);
        let v = vxlan::Packet::new_checked(&out[42..]).expect("vxlan");
        assert_eq!((v.vni(), v.payload()), (4660, &f[..60]));
        assert_eq!(
            c.encapsulate(&d, &f, OuterMacs::default(), &mut [0u8; 100]),
            Err(EncapError::BufferTooSmall { needed: 110 })
        );
    }

    #[test]
    fn ipv6_target_gets_ipv6_outer_with_checksum() {
        let c = classifier("2001:db8::99");
        let f = frame(1234, 80, false);
        let d = c.decide(Direction::Ingress, &FlowKey::extract(&f).expect("key")).expect("mirrored");
        let mut out = [0u8; 300];
        let len = c.encapsulate(&d, &f, OuterMacs::default(), &mut out).expect("fits");
        assert_eq!(len, OVERHEAD_V6 + 60);
        let ip = ipv6::Packet::new_checked(&out[14..len]).expect("ipv6");
        assert_eq!((ip.source(), ip.next_header()), ("2001:db8::2".parse().expect("ip"), 17));
        let u = udp::Packet::new_checked(ip.payload()).expect("udp");
        assert_ne!(u.checksum(), 0, "UDP checksum is mandatory over IPv6");
    }

    #[test]
    fn vxlan_payload_and_source_port_hash() {
        let c = classifier("198.18.1.2");
        let f = frame(1234, 80, false);
        let d = c.decide(Direction::Ingress, &FlowKey::extract(&f).expect("key")).expect("mirrored");
        let mut out = [0u8; 100];
        assert_eq!(vxlan_payload(&d, &f, &mut out), Ok(68));
        assert_eq!(&out[..8], &[0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0]);
        assert_eq!(&out[8..68], &f[..60]);
        let port = |s, d, r| outer_source_port(&FlowKey::extract(&frame(s, d, r)).expect("key"));
        assert_eq!(port(1234, 80, false), port(80, 1234, true), "both directions of a flow share a port");
        let ports: std::collections::BTreeSet<u16> = (0..200).map(|s| port(1000 + s, 80, false)).collect();
        assert!(ports.len() > 150, "flows spread over source ports");
        assert!(ports.iter().all(|&p| p >= SOURCE_PORT_BASE));
    }
}
