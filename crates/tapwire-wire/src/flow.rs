//! Flow-key extraction: from a raw Ethernet frame to the fields mirroring rules look at.
//!
//! [`FlowKey::extract`] skips up to [`MAX_VLAN_TAGS`] 802.1Q/802.1ad tags, reads the IPv4
//! or IPv6 header (walking IPv6 extension headers), and takes the ports of TCP and UDP.
//! It never allocates and never panics.
//!
//! The common case — at most one VLAN tag, then IPv4 without options that is not a later
//! fragment, or IPv6 without extension headers — takes a fast path that checks lengths
//! once and reads fields at fixed offsets; every other frame takes the general path
//! above. Both give the same key (a property test checks it). [`CompactKey::extract`] is
//! that fast path alone, stopping at the fields rules match on (integer addresses,
//! protocol, ports), for callers that fall back to [`FlowKey::extract`] themselves.
//!
//! Invariants of a returned key:
//! - `ports` is `Some` only for TCP or UDP whose header is complete inside the IP packet
//!   and which is not a later fragment (later fragments carry no L4 header);
//! - `l3_offset` is where the IP header starts in the frame, `l4_offset` where the
//!   upper-layer header starts (for a later fragment: where its payload starts);
//! - `source` and `destination` are of the same family, matching `ethertype`.

use std::net::IpAddr;

use crate::ethernet::{self, ethertype};
use crate::field::{be16, be32, be128};
use crate::ip::protocol;
use crate::ipv6::Fragment;
use crate::{WireError, ipv4, ipv6, tcp, udp, vlan};

/// Most VLAN tags skipped before giving up (`Malformed`).
pub const MAX_VLAN_TAGS: usize = 4;

/// The VLAN tags a frame carried in-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanInfo {
    /// Number of tags (0 = untagged).
    pub count: u8,
    /// TCI of the outermost tag.
    pub outer_tci: Option<u16>,
    /// TCI of the second tag (QinQ).
    pub inner_tci: Option<u16>,
}

/// Transport ports of a TCP or UDP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    /// Source port.
    pub source: u16,
    /// Destination port.
    pub destination: u16,
}

/// The fields of one frame that classification needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// In-line VLAN tags.
    pub vlan: VlanInfo,
    /// [`ethertype::IPV4`] or [`ethertype::IPV6`].
    pub ethertype: u16,
    /// Offset of the IP header in the frame.
    pub l3_offset: u16,
    /// Offset of the upper-layer header in the frame.
    pub l4_offset: u16,
    /// IP source.
    pub source: IpAddr,
    /// IP destination.
    pub destination: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// TCP/UDP ports, see the module invariants.
    pub ports: Option<Ports>,
    /// Fragment state.
    pub fragment: Fragment,
}

/// The addresses of a [`CompactKey`], as integers (most significant byte first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// IPv4 source and destination.
    V4 {
        /// Source.
        source: u32,
        /// Destination.
        destination: u32,
    },
    /// IPv6 source and destination.
    V6 {
        /// Source.
        source: u128,
        /// Destination.
        destination: u128,
    },
}

/// The fields of a [`FlowKey`] that mirroring rules match on, without offsets, VLAN
/// tags or fragment state: addresses, protocol and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompactKey {
    /// Source and destination.
    pub addresses: Addresses,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// TCP/UDP ports, as in [`FlowKey::ports`].
    pub ports: Option<Ports>,
}

impl CompactKey {
    /// The key of a common-case frame (the module docs' fast path), or `None` for every
    /// other frame, which [`FlowKey::extract`] handles. When it is `Some`, it equals the
    /// compact form of the frame's [`FlowKey`].
    #[inline(always)]
    pub fn extract(frame: &[u8]) -> Option<CompactKey> {
        fast_fields(frame).map(|f| f.key)
    }
}

/// Why a frame has no flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowError {
    /// Not IPv4 or IPv6 (ARP, LLDP, …); carries the EtherType after any VLAN tags.
    NotIp {
        /// EtherType found.
        ethertype: u16,
    },
    /// Headers are cut short or invalid.
    Wire(WireError),
}

impl From<WireError> for FlowError {
    fn from(e: WireError) -> Self {
        FlowError::Wire(e)
    }
}

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowError::NotIp { ethertype } => write!(f, "not an IP frame (ethertype {ethertype:#06x})"),
            FlowError::Wire(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FlowError {}

impl FlowKey {
    /// Extracts the key of an Ethernet frame; see the module docs.
    #[inline]
    pub fn extract(frame: &[u8]) -> Result<FlowKey, FlowError> {
        match fast_path(frame) {
            Some(key) => Ok(key),
            None => Self::extract_general(frame),
        }
    }

    /// Every frame [`fast_path`] declines: QinQ, IPv4 options or later fragments, IPv6
    /// extension headers, non-IP and malformed frames.
    #[inline(never)]
    fn extract_general(frame: &[u8]) -> Result<FlowKey, FlowError> {
        let eth = ethernet::Frame::new_checked(frame)?;
        let mut ether = eth.ethertype();
        let mut offset = ethernet::HEADER_LEN;
        let mut vlan_info = VlanInfo::default();
        while ethertype::is_vlan_tag(ether) {
            if usize::from(vlan_info.count) == MAX_VLAN_TAGS {
                return Err(WireError::Malformed.into());
            }
            let tag = vlan::Tag::new_checked(&frame[offset..])?;
            match vlan_info.count {
                0 => vlan_info.outer_tci = Some(tag.tci()),
                1 => vlan_info.inner_tci = Some(tag.tci()),
                _ => {}
            }
            vlan_info.count += 1;
            ether = tag.ethertype();
            offset += vlan::HEADER_LEN;
        }
        let l3 = &frame[offset..];
        let (source, destination, protocol, l4_rel, fragment, upper) = match ether {
            ethertype::IPV4 => {
                let p = ipv4::Packet::new_checked(l3)?;
                let fragment = match (p.fragment_offset(), p.more_fragments()) {
                    (0, false) => Fragment::Whole,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
                (
                    IpAddr::V4(p.source()),
                    IpAddr::V4(p.destination()),
                    p.protocol(),
                    p.header_len(),
                    fragment,
                    p.payload(),
                )
            }
            ethertype::IPV6 => {
                let p = ipv6::Packet::new_checked(l3)?;
                let up = p.upper_layer()?;
                let payload = p.payload().get(up.offset - ipv6::HEADER_LEN..).unwrap_or_default();
                (IpAddr::V6(p.source()), IpAddr::V6(p.destination()), up.protocol, up.offset, up.fragment, payload)
            }
            other => return Err(FlowError::NotIp { ethertype: other }),
        };
        let ports = if fragment == Fragment::Later { None } else { ports_of(protocol, upper) };
        // Frames are far below 64 KiB + 64 bytes of headers; saturate rather than wrap.
        let to_u16 = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
        Ok(FlowKey {
            vlan: vlan_info,
            ethertype: ether,
            l3_offset: to_u16(offset),
            l4_offset: to_u16(offset + l4_rel),
            source,
            destination,
            protocol,
            ports,
            fragment,
        })
    }

    /// The [`CompactKey`] of this key; `None` when the addresses are of different
    /// families (never for a key [`FlowKey::extract`] returned).
    #[inline(always)]
    pub fn compact(&self) -> Option<CompactKey> {
        let addresses = match (self.source, self.destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Addresses::V4 { source: s.into(), destination: d.into() },
            (IpAddr::V6(s), IpAddr::V6(d)) => Addresses::V6 { source: s.into(), destination: d.into() },
            _ => return None,
        };
        Some(CompactKey { addresses, protocol: self.protocol, ports: self.ports })
    }

    /// Whether the packet is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.ethertype == ethertype::IPV6
    }
}

/// What the fast path reads: everything a [`FlowKey`] holds, addresses as integers.
struct Fast {
    tci: Option<u16>,
    ether: u16,
    l3: usize,
    l4: usize,
    fragment: Fragment,
    key: CompactKey,
}

/// The common case in one pass: at most one VLAN tag, then IPv4 without options that is
/// not a later fragment, or IPv6 without extension headers. Gives the same key as the
/// general path, or `None` to hand the frame to it.
#[inline(always)]
fn fast_path(frame: &[u8]) -> Option<FlowKey> {
    let f = fast_fields(frame)?;
    let (source, destination) = match f.key.addresses {
        Addresses::V4 { source, destination } => (IpAddr::V4(source.into()), IpAddr::V4(destination.into())),
        Addresses::V6 { source, destination } => (IpAddr::V6(source.into()), IpAddr::V6(destination.into())),
    };
    Some(FlowKey {
        vlan: VlanInfo { count: u8::from(f.tci.is_some()), outer_tci: f.tci, inner_tci: None },
        ethertype: f.ether,
        l3_offset: f.l3 as u16,
        l4_offset: f.l4 as u16,
        source,
        destination,
        protocol: f.key.protocol,
        ports: f.key.ports,
        fragment: f.fragment,
    })
}

/// [`fast_path`]'s parse; callers drop the fields they do not need (it is inlined).
#[inline(always)]
fn fast_fields(frame: &[u8]) -> Option<Fast> {
    // Shortest frame handled here: Ethernet + one tag + an IPv4 header.
    if frame.len() < ethernet::HEADER_LEN + vlan::HEADER_LEN + ipv4::MIN_HEADER_LEN {
        return None;
    }
    // One tag or none is decided without a branch (a mix of tagged and untagged frames
    // would mispredict it): the offsets and fields are selected, not jumped to.
    let outer = be16(frame, ethernet::field::ETHERTYPE);
    let tag = ethernet::HEADER_LEN;
    let inner = be16(frame, tag + vlan::field::ETHERTYPE.start..tag + vlan::field::ETHERTYPE.end);
    let tci = be16(frame, tag + vlan::field::TCI.start..tag + vlan::field::TCI.end);
    let tagged = ethertype::is_vlan_tag(outer);
    if tagged & ethertype::is_vlan_tag(inner) {
        return None;
    }
    let ether = if tagged { inner } else { outer };
    let l3 = ethernet::HEADER_LEN + usize::from(tagged) * vlan::HEADER_LEN;
    let tci = tagged.then_some(tci);
    let (addresses, protocol, l4, end, fragment) = match ether {
        ethertype::IPV4 => {
            let h: &[u8; ipv4::MIN_HEADER_LEN] = frame.get(l3..l3 + ipv4::MIN_HEADER_LEN)?.try_into().ok()?;
            use ipv4::field as f;
            let total = usize::from(be16(h, f::TOTAL_LEN));
            let flags_offset = be16(h, f::FLAGS_OFFSET);
            // Version 4 without options, a sane total length, not a later fragment.
            if h[f::VERSION_IHL] != ipv4::VERSION_IHL_NO_OPTIONS
                || total < ipv4::MIN_HEADER_LEN
                || flags_offset & ipv4::OFFSET_MASK != 0
            {
                return None;
            }
            let fragment =
                if flags_offset & ipv4::FLAG_MORE_FRAGMENTS != 0 { Fragment::First } else { Fragment::Whole };
            let addresses = Addresses::V4 { source: be32(h, f::SOURCE), destination: be32(h, f::DESTINATION) };
            (addresses, h[f::PROTOCOL], l3 + ipv4::MIN_HEADER_LEN, l3 + total, fragment)
        }
        ethertype::IPV6 => {
            let h: &[u8; ipv6::HEADER_LEN] = frame.get(l3..l3 + ipv6::HEADER_LEN)?.try_into().ok()?;
            use ipv6::field as f;
            let next = h[f::NEXT_HEADER];
            if h[f::VERSION_CLASS] >> 4 != 6 || ipv6::is_skipped_extension(next) {
                return None;
            }
            let payload = usize::from(be16(h, f::PAYLOAD_LEN));
            let addresses = Addresses::V6 { source: be128(h, f::SOURCE), destination: be128(h, f::DESTINATION) };
            let l4 = l3 + ipv6::HEADER_LEN;
            (addresses, next, l4, l4 + payload, Fragment::Whole)
        }
        _ => return None,
    };
    // The upper layer ends at the IP packet's declared end or the buffer's, whichever
    // comes first (as `ipv4::Packet::payload` and `ipv6::Packet::payload`).
    let upper = frame.get(l4..end.min(frame.len())).unwrap_or_default();
    let key = CompactKey { addresses, protocol, ports: ports_of(protocol, upper) };
    Some(Fast { tci, ether, l3, l4, fragment, key })
}

/// The ports of TCP or UDP whose header is complete in `upper` (for TCP: the data offset
/// is at least 20 bytes and inside `upper`, as [`tcp::Packet::new_checked`] wants), found
/// without a branch on the protocol: TCP, UDP and the rest are mixed on a link.
#[inline(always)]
fn ports_of(protocol: u8, upper: &[u8]) -> Option<Ports> {
    let tcp_header = upper.get(tcp::field::DATA_OFFSET).map_or(0, |&b| usize::from(b >> 4) * 4);
    let tcp_complete = (tcp_header >= tcp::MIN_HEADER_LEN) & (tcp_header <= upper.len());
    let udp_complete = upper.len() >= udp::HEADER_LEN;
    let complete = ((protocol == protocol::TCP) & tcp_complete) | ((protocol == protocol::UDP) & udp_complete);
    // Both headers start with the two ports.
    let ports = upper.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    complete.then_some(Ports { source: (ports >> 16) as u16, destination: ports as u16 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use proptest::prelude::*;

    #[test]
    fn tcp_over_qinq_ipv4() {
        let frame = build::FrameSpec {
            vlan_tags: vec![(ethertype::QINQ, 0x0064), (ethertype::VLAN, 0x2007)],
            source: "198.18.0.1".parse().unwrap(),
            destination: "198.18.0.2".parse().unwrap(),
            l4: build::L4::Tcp { source_port: 40000, destination_port: 443 },
            payload_len: 10,
            ..build::FrameSpec::default()
        }
        .to_bytes();
        let key = FlowKey::extract(&frame).unwrap();
        assert_eq!(key.vlan, VlanInfo { count: 2, outer_tci: Some(0x64), inner_tci: Some(0x2007) });
        assert_eq!((key.ethertype, key.l3_offset, key.l4_offset, key.protocol), (ethertype::IPV4, 22, 42, 6));
        assert_eq!(key.ports, Some(Ports { source: 40000, destination: 443 }));
        assert_eq!(key.fragment, Fragment::Whole);
    }

    #[test]
    fn later_ipv4_fragment_has_no_ports() {
        let mut spec = build::FrameSpec {
            l4: build::L4::Udp { source_port: 5000, destination_port: 53 },
            fragment_offset: 0,
            more_fragments: true,
            ..build::FrameSpec::default()
        };
        let first = FlowKey::extract(&spec.to_bytes()).unwrap();
        assert_eq!((first.fragment, first.ports.is_some()), (Fragment::First, true));
        spec.fragment_offset = 3;
        let later = FlowKey::extract(&spec.to_bytes()).unwrap();
        assert_eq!((later.fragment, later.ports, later.protocol), (Fragment::Later, None, 17));
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let spec = build::FrameSpec {
            source: "2001:db8::1".parse().unwrap(),
            destination: "2001:db8::2".parse().unwrap(),
            ipv6_extensions: vec![protocol::HOP_BY_HOP, protocol::DESTINATION_OPTIONS],
            l4: build::L4::Udp { source_port: 1, destination_port: 2 },
            ..build::FrameSpec::default()
        };
        let key = FlowKey::extract(&spec.to_bytes()).unwrap();
        assert_eq!((key.protocol, key.l3_offset, key.l4_offset), (17, 14, 14 + 40 + 16));
        assert_eq!(key.ports, Some(Ports { source: 1, destination: 2 }));
    }

    #[test]
    fn arp_and_garbage_have_no_key() {
        let mut arp = vec![0xffu8; 42];
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(FlowKey::extract(&arp), Err(FlowError::NotIp { ethertype: ethertype::ARP }));
        assert_eq!(FlowKey::extract(&[0; 10]), Err(FlowError::Wire(WireError::Truncated)));
        // A TCP header cut short: the key exists, the ports do not.
        let frame = build::FrameSpec::default().to_bytes();
        let key = FlowKey::extract(&frame[..14 + 20 + 10]).unwrap();
        assert_eq!((key.protocol, key.ports), (6, None));
    }

    /// Frames near the fast path's edges: tags, IHL, fragment bits, extension headers,
    /// lengths and protocols drawn from the values that change its decisions.
    fn edge_frame() -> impl Strategy<Value = Vec<u8>> {
        (
            0usize..3,
            prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100), any::<u16>()],
            any::<bool>(),
            prop_oneof![Just(0x45u8), Just(0x46), Just(0x44), Just(0x60), any::<u8>()],
            prop_oneof![Just(6u8), Just(17), Just(1), Just(58), Just(0), Just(43), Just(44), Just(60), any::<u8>()],
            prop_oneof![Just(0u16), Just(0x2000), Just(0x4000), Just(0x0003), any::<u16>()],
            any::<u16>(),
            (proptest::collection::vec(any::<u8>(), 0..80), 0usize..140),
        )
            .prop_map(|(tags, tag_type, v6, first, proto, flags, len_field, (tail, cut))| {
                let mut f = vec![0u8; 12];
                for _ in 0..tags {
                    f.extend_from_slice(&tag_type.to_be_bytes());
                    f.extend_from_slice(&[0x20, 0x07]);
                }
                f.extend_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
                let mut ip = vec![0u8; if v6 { 40 } else { 20 }];
                ip[0] = first;
                if v6 {
                    ip[4..6].copy_from_slice(&(len_field % 120).to_be_bytes());
                    ip[6] = proto;
                } else {
                    ip[2..4].copy_from_slice(&(len_field % 140).to_be_bytes());
                    ip[6..8].copy_from_slice(&flags.to_be_bytes());
                    ip[9] = proto;
                }
                f.extend_from_slice(&ip);
                f.extend_from_slice(&tail);
                f.truncate(cut.max(10));
                f
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn fast_path_agrees_with_general_path(frame in edge_frame()) {
            if let Some(key) = fast_path(&frame) {
                prop_assert_eq!(Ok(key), FlowKey::extract_general(&frame));
            }
            prop_assert_eq!(CompactKey::extract(&frame), fast_path(&frame).and_then(|k| k.compact()));
        }

        #[test]
        fn fast_path_agrees_on_built_frames(
            tags in 0usize..3, v6: bool, l4 in 0u8..3, payload_len in 0usize..40, cut in 0usize..120,
            more_fragments: bool, later: bool,
        ) {
            let (source, destination) = if v6 {
                ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            } else {
                ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap())
            };
            let spec = build::FrameSpec {
                vlan_tags: (0..tags).map(|i| (ethertype::VLAN, 10 + i as u16)).collect(),
                source,
                destination,
                l4: match l4 {
                    0 => build::L4::Tcp { source_port: 1, destination_port: 2 },
                    1 => build::L4::Udp { source_port: 3, destination_port: 4 },
                    _ => build::L4::Icmp { message_type: 8, code: 0 },
                },
                payload_len,
                more_fragments: more_fragments && !v6,
                fragment_offset: if later && !v6 { 5 } else { 0 },
                ..build::FrameSpec::default()
            };
            let mut frame = spec.to_bytes();
            let whole = frame.len();
            frame.truncate(whole.min(cut.max(14)));
            let fast = fast_path(&frame);
            prop_assert_eq!(CompactKey::extract(&frame), fast.and_then(|k| k.compact()));
            if let Some(key) = fast {
                prop_assert_eq!(Ok(key), FlowKey::extract_general(&frame));
            }
            // The common case really takes the fast path.
            if frame.len() == whole && tags <= 1 && !later {
                prop_assert!(fast.is_some());
            }
        }


        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), ether in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), Just(0x88a8), any::<u16>()]) {
            let mut frame = bytes;
            if frame.len() >= 14 {
                frame[12..14].copy_from_slice(&ether.to_be_bytes());
            }
            if frame.len() > 14 && ether == 0x0800 {
                frame[14] = 0x40 | (frame[14] & 0x0f);
            }
            if frame.len() > 14 && ether == 0x86dd {
                frame[14] = 0x60 | (frame[14] & 0x0f);
            }
            if let Ok(key) = FlowKey::extract(&frame) {
                prop_assert!(usize::from(key.l3_offset) < frame.len());
                prop_assert!(key.l4_offset >= key.l3_offset);
                prop_assert!(key.ports.is_none() || matches!(key.protocol, 6 | 17));
                prop_assert_eq!(key.source.is_ipv6(), key.is_ipv6());
                prop_assert_eq!(key.destination.is_ipv6(), key.is_ipv6());
            }
            // Every view, every accessor, at every offset a frame could put it.
            for start in [0usize, 14, 18, 22] {
                let bytes = frame.get(start..).unwrap_or_default();
                if let Ok(p) = crate::ipv4::Packet::new_checked(bytes) {
                    let _ = (p.payload(), p.header(), p.verify_checksum(), p.is_fragment(), crate::ipv4::Repr::parse(&p));
                }
                if let Ok(p) = crate::ipv6::Packet::new_checked(bytes) {
                    let _ = (p.payload(), p.upper_layer(), p.flow_label(), crate::ipv6::Repr::parse(&p));
                }
                if let Ok(p) = tcp::Packet::new_checked(bytes) {
                    let _ = (p.payload(), tcp::Repr::parse(&p));
                }
                if let Ok(p) = udp::Packet::new_checked(bytes) {
                    let _ = (p.payload(), udp::Repr::parse(&p));
                }
                if let Ok(p) = crate::icmp::Packet::new_checked(bytes) {
                    let _ = (p.payload(), crate::icmp::Repr::parse(&p));
                }
                if let Ok(p) = crate::vxlan::Packet::new_checked(bytes) {
                    let _ = (p.vni(), p.payload());
                }
            }
        }
    }
}
