//! A frame builder for tests, benchmarks, fuzz seeds and tools.
//!
//! It allocates (returns a `Vec`) and is not meant for the packet path. Every frame it
//! builds is well-formed: lengths, IPv4 header checksum and TCP/UDP/ICMP checksums are
//! right, so captures of its output look clean in Wireshark.

use std::net::IpAddr;

use crate::ethernet::{self, MacAddress, ethertype};
use crate::ip::protocol;
use crate::{icmp, ipv4, ipv6, tcp, udp, vlan};

/// The upper layer of a built frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with an option-less header (flags ACK|PSH).
    Tcp {
        /// Source port.
        source_port: u16,
        /// Destination port.
        destination_port: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        source_port: u16,
        /// Destination port.
        destination_port: u16,
    },
    /// ICMP (IPv4) or ICMPv6 (IPv6), chosen by the address family.
    Icmp {
        /// Message type.
        message_type: u8,
        /// Message code.
        code: u8,
    },
    /// Any other protocol number; the payload follows the IP header directly.
    Other {
        /// IANA protocol number.
        protocol: u8,
    },
}

impl L4 {
    /// The IANA protocol number for a packet of family `v6`.
    pub fn protocol(&self, v6: bool) -> u8 {
        match self {
            L4::Tcp { .. } => protocol::TCP,
            L4::Udp { .. } => protocol::UDP,
            L4::Icmp { .. } if v6 => protocol::ICMPV6,
            L4::Icmp { .. } => protocol::ICMP,
            L4::Other { protocol } => *protocol,
        }
    }
}

/// Everything that describes a built frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Destination MAC.
    pub destination_mac: MacAddress,
    /// Source MAC.
    pub source_mac: MacAddress,
    /// VLAN tags, outermost first: (TPID, TCI).
    pub vlan_tags: Vec<(u16, u16)>,
    /// IP source (its family picks IPv4 or IPv6).
    pub source: IpAddr,
    /// IP destination (same family as `source`).
    pub destination: IpAddr,
    /// IPv6 extension headers before the upper layer (8 bytes each; a fragment header is
    /// added by itself when the fragment fields ask for one).
    pub ipv6_extensions: Vec<u8>,
    /// Upper layer.
    pub l4: L4,
    /// Bytes of payload after the upper-layer header.
    pub payload_len: usize,
    /// Fragment offset in 8-byte units; non-zero builds a later fragment (no L4 header).
    pub fragment_offset: u16,
    /// More-fragments flag.
    pub more_fragments: bool,
}

impl Default for FrameSpec {
    fn default() -> Self {
        Self {
            destination_mac: [0x02, 0, 0, 0, 0, 2],
            source_mac: [0x02, 0, 0, 0, 0, 1],
            vlan_tags: Vec::new(),
            source: IpAddr::from([198, 18, 0, 1]),
            destination: IpAddr::from([198, 18, 0, 2]),
            ipv6_extensions: Vec::new(),
            l4: L4::Tcp { source_port: 40000, destination_port: 80 },
            payload_len: 16,
            fragment_offset: 0,
            more_fragments: false,
        }
    }
}

impl FrameSpec {
    /// Builds the frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let v6 = self.source.is_ipv6() || self.destination.is_ipv6();
        let later = self.fragment_offset != 0;
        let protocol = self.l4.protocol(v6);
        let upper = self.upper_layer(v6, later);

        let mut l3_body = Vec::new();
        let mut first_next = protocol;
        if v6 {
            let fragmented = later || self.more_fragments;
            let mut kinds: Vec<u8> = self.ipv6_extensions.clone();
            if fragmented && !kinds.contains(&protocol::FRAGMENT) {
                kinds.push(protocol::FRAGMENT);
            }
            first_next = kinds.first().copied().unwrap_or(protocol);
            for (i, kind) in kinds.iter().enumerate() {
                let next = kinds.get(i + 1).copied().unwrap_or(protocol);
                let mut h = [0u8; 8];
                let written = if *kind == protocol::FRAGMENT {
                    ipv6::emit_fragment_header(&mut h, next, self.fragment_offset, self.more_fragments, 0x1234)
                } else {
                    ipv6::emit_extension_header(&mut h, next, 8)
                };
                written.expect("an 8-byte buffer holds an 8-byte extension header");
                l3_body.extend_from_slice(&h);
            }
        }
        l3_body.extend_from_slice(&upper);

        let mut frame = Vec::with_capacity(64 + l3_body.len());
        let first_type = self.vlan_tags.first().map_or(if v6 { ethertype::IPV6 } else { ethertype::IPV4 }, |t| t.0);
        let mut h = [0u8; ethernet::HEADER_LEN];
        ethernet::Repr { destination: self.destination_mac, source: self.source_mac, ethertype: first_type }
            .emit(&mut h)
            .expect("buffer sized for the header");
        frame.extend_from_slice(&h);
        for (i, (_, tci)) in self.vlan_tags.iter().enumerate() {
            let next = self.vlan_tags.get(i + 1).map_or(if v6 { ethertype::IPV6 } else { ethertype::IPV4 }, |t| t.0);
            let mut t = [0u8; vlan::HEADER_LEN];
            vlan::Repr {
                priority: (tci >> 13) as u8,
                drop_eligible: tci & 0x1000 != 0,
                vlan_id: tci & 0x0fff,
                ethertype: next,
            }
            .emit(&mut t)
            .expect("buffer sized for the tag");
            frame.extend_from_slice(&t);
        }
        let body_len = u16::try_from(l3_body.len()).unwrap_or(u16::MAX);
        match (self.source, self.destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip = [0u8; ipv4::MIN_HEADER_LEN];
                ipv4::Repr {
                    dont_fragment: false,
                    ident: 0x4242,
                    more_fragments: self.more_fragments,
                    fragment_offset: self.fragment_offset,
                    ..ipv4::Repr::new(s, d, protocol, body_len)
                }
                .emit(&mut ip)
                .expect("buffer sized for the header");
                frame.extend_from_slice(&ip);
            }
            (s, d) => {
                let mut ip = [0u8; ipv6::HEADER_LEN];
                ipv6::Repr::new(to_v6(s), to_v6(d), first_next, body_len)
                    .emit(&mut ip)
                    .expect("buffer sized for the header");
                frame.extend_from_slice(&ip);
            }
        }
        frame.extend_from_slice(&l3_body);
        frame
    }

    fn upper_layer(&self, v6: bool, later: bool) -> Vec<u8> {
        let payload: Vec<u8> = (0..self.payload_len).map(|i| (i % 251) as u8).collect();
        if later {
            return payload;
        }
        let mut seg = Vec::new();
        match self.l4 {
            L4::Tcp { source_port, destination_port } => {
                seg.resize(tcp::MIN_HEADER_LEN, 0);
                tcp::Repr {
                    source_port,
                    destination_port,
                    sequence: 1,
                    acknowledgement: 1,
                    reserved: 0,
                    flags: tcp::flags::ACK | tcp::flags::PSH,
                    window: 512,
                    checksum: 0,
                    urgent: 0,
                }
                .emit(&mut seg)
                .expect("buffer sized for the header");
                seg.extend_from_slice(&payload);
                // Fragmented segments carry a checksum over the whole segment; skip it.
                if !self.more_fragments {
                    tcp::fill_checksum(&mut seg, self.source, self.destination).expect("segment has a header");
                }
            }
            L4::Udp { source_port, destination_port } => {
                let length = u16::try_from(udp::HEADER_LEN + payload.len()).unwrap_or(u16::MAX);
                seg.resize(udp::HEADER_LEN, 0);
                udp::Repr { source_port, destination_port, length, checksum: 0 }.emit(&mut seg).expect("buffer sized");
                seg.extend_from_slice(&payload);
                if !self.more_fragments {
                    udp::fill_checksum(&mut seg, self.source, self.destination).expect("datagram has a header");
                }
            }
            L4::Icmp { message_type, code } => {
                seg.resize(icmp::HEADER_LEN, 0);
                icmp::Repr { message_type, code, checksum: 0, rest_of_header: [0, 1, 0, 1] }
                    .emit(&mut seg)
                    .expect("buffer sized");
                seg.extend_from_slice(&payload);
                let pseudo = v6.then_some((self.source, self.destination));
                icmp::fill_checksum(&mut seg, pseudo).expect("message has a header");
            }
            L4::Other { .. } => seg.extend_from_slice(&payload),
        }
        seg
    }
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// An ARP request frame (who-has `target` tell `sender`), broadcast.
pub fn arp_request(sender_mac: MacAddress, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    let eth = ethernet::Repr { destination: [0xff; 6], source: sender_mac, ethertype: ethertype::ARP };
    eth.emit(&mut f).expect("42 bytes hold the header");
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&sender_mac);
    f[28..32].copy_from_slice(&sender);
    f[38..42].copy_from_slice(&target);
    f
}
