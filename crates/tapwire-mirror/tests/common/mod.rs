//! Random configurations and packets for the property tests, built from one seed so a
//! failing case is reproduced by its seed alone. Nothing here comes from the crate
//! under test: packets are described by what was built, not by what the parser read.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use tapwire_model::config::{FilterConfig, InterfaceConfig, RuleConfig, SessionConfig, TargetEndpoint};
use tapwire_model::ids::IdSuffix;
use tapwire_model::resource::NetworkService;
use tapwire_model::{
    Direction, FilterId, NetworkInterfaceId, PacketLength, PortRange, RuleAction, RuleId, RuleMatch, RuleNumber,
    SessionId, SessionNumber, Vni,
};
use tapwire_wire::build::{FrameSpec, L4};

/// splitmix64: tiny, deterministic, good enough to draw test cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

pub const INTERFACE_V4: &str = "198.18.0.2";
pub const INTERFACE_V6: &str = "2001:db8::2";
pub const RESOLVER_V4: &str = "198.18.0.53";
pub const RESOLVER_V6: &str = "2001:db8::53";

const POOL_V4: [&str; 6] = ["198.18.0.2", "198.18.0.53", "198.18.1.7", "198.19.255.1", "198.18.0.3", "198.18.128.9"];
const POOL_V6: [&str; 5] = ["2001:db8::2", "2001:db8::53", "2001:db8:1::7", "2001:db8:ffff::1", "2001:db8::3"];
const PORTS: [u16; 10] = [53, 67, 68, 80, 443, 546, 547, 1024, 8080, 65535];

fn id_suffix(rng: &mut Rng) -> IdSuffix {
    let mut b = [0u8; 9];
    b.iter_mut().for_each(|x| *x = rng.next() as u8);
    IdSuffix::from_random(b)
}

fn addr(rng: &mut Rng, v6: bool) -> IpAddr {
    if v6 { rng.pick(&POOL_V6).parse().unwrap() } else { rng.pick(&POOL_V4).parse().unwrap() }
}

fn cidr(rng: &mut Rng, v6: bool) -> IpNet {
    let a = addr(rng, v6);
    let prefix =
        if v6 { rng.pick(&[0u8, 32, 48, 64, 126, 127, 128]) } else { rng.pick(&[0u8, 8, 15, 16, 17, 24, 31, 32]) };
    IpNet::new(a, prefix).unwrap().trunc()
}

fn port_range(rng: &mut Rng) -> PortRange {
    let a = if rng.chance(60) { rng.pick(&PORTS) } else { rng.next() as u16 };
    let b = if rng.chance(50) { a } else { a.saturating_add(rng.below(2000) as u16) };
    PortRange::new(a.min(b), a.max(b)).unwrap()
}

/// Alibaba writes port ranges as "from/to", "-1/-1" meaning any.
pub fn parse_alibaba_ports(s: &str) -> Option<PortRange> {
    let (a, b) = s.split_once('/')?;
    if a == "-1" && b == "-1" {
        return None;
    }
    PortRange::new(a.parse().ok()?, b.parse().ok()?)
}

fn alibaba_ports(rng: &mut Rng) -> String {
    if rng.chance(50) {
        "-1/-1".to_owned()
    } else {
        let r = port_range(rng);
        format!("{}/{}", r.from, r.to)
    }
}

/// One EC2-style rule: any IANA protocol or none, numbers 1–32766, optional ranges.
fn ec2_rule(rng: &mut Rng, number: u32) -> RuleConfig {
    let v6 = rng.chance(35);
    let protocol = match rng.below(10) {
        0..=2 => None,
        3 | 4 => Some(6),
        5 | 6 => Some(17),
        7 => Some(if v6 { 58 } else { 1 }),
        _ => Some(rng.pick(&[0u8, 1, 47, 50, 58, 132, 255])),
    };
    RuleConfig {
        rule_id: RuleId::from_suffix(id_suffix(rng)),
        number: RuleNumber::new(number).unwrap(),
        action: if rng.chance(70) { RuleAction::Accept } else { RuleAction::Reject },
        matches: RuleMatch {
            protocol,
            source_cidr: cidr(rng, v6),
            destination_cidr: cidr(rng, v6),
            source_ports: rng.chance(25).then(|| port_range(rng)),
            destination_ports: rng.chance(40).then(|| port_range(rng)),
        },
    }
}

/// One Alibaba-style rule: ALL/ICMP/TCP/UDP, priority 1–10, accept/drop, "a/b" ports.
fn alibaba_rule(rng: &mut Rng, priority: u32) -> RuleConfig {
    let v6 = rng.chance(30);
    let (protocol, ported) = match rng.pick(&["ALL", "ICMP", "TCP", "UDP"]) {
        "ICMP" => (Some(if v6 { 58 } else { 1 }), false),
        "TCP" => (Some(6), true),
        "UDP" => (Some(17), true),
        _ => (None, false),
    };
    let (sp, dp) =
        if ported { (alibaba_ports(rng), alibaba_ports(rng)) } else { ("-1/-1".to_owned(), "-1/-1".to_owned()) };
    RuleConfig {
        rule_id: RuleId::from_suffix(id_suffix(rng)),
        number: RuleNumber::new(priority).unwrap(),
        action: if rng.chance(70) { RuleAction::Accept } else { RuleAction::Reject },
        matches: RuleMatch {
            protocol,
            source_cidr: cidr(rng, v6),
            destination_cidr: cidr(rng, v6),
            source_ports: parse_alibaba_ports(&sp),
            destination_ports: parse_alibaba_ports(&dp),
        },
    }
}

fn rules(rng: &mut Rng, alibaba: bool) -> Vec<RuleConfig> {
    if alibaba {
        let n = rng.below(11) as u32;
        let mut prios: Vec<u32> = (1..=10).collect();
        let mut out = Vec::new();
        for _ in 0..n {
            let p = prios.remove(rng.below(prios.len() as u64) as usize);
            out.push(alibaba_rule(rng, p));
        }
        out
    } else {
        // Mostly small lists; sometimes more than 64 to cross bitset words.
        let n = if rng.chance(10) { 60 + rng.below(80) } else { rng.below(13) };
        let mut numbers = BTreeSet::new();
        while (numbers.len() as u64) < n {
            numbers.insert(1 + rng.below(32766) as u32);
        }
        let mut out: Vec<RuleConfig> = numbers.into_iter().map(|num| ec2_rule(rng, num)).collect();
        // Configs list rules in any order.
        out.reverse();
        out
    }
}

/// A random interface configuration with 0–3 sessions (plus, rarely, a 4th).
pub fn config(rng: &mut Rng) -> InterfaceConfig {
    let alibaba = rng.chance(40);
    let n = rng.below(4) + u64::from(rng.chance(5));
    let mut numbers = BTreeSet::new();
    while (numbers.len() as u64) < n {
        numbers.insert(1 + rng.below(if alibaba { 32766 } else { 20 }) as u32);
    }
    let sessions = numbers
        .into_iter()
        .rev()
        .map(|number| {
            let mut services = BTreeSet::new();
            if rng.chance(30) {
                services.insert(NetworkService::AmazonDns);
            }
            SessionConfig {
                session_id: SessionId::from_suffix(id_suffix(rng)),
                number: SessionNumber::new(number).unwrap(),
                vni: Vni::new(rng.below(1 << 24) as u32).unwrap(),
                packet_length: rng.chance(50).then(|| PacketLength::new(1 + rng.below(200) as u16).unwrap()),
                enabled: !rng.chance(15),
                target: TargetEndpoint { address: "198.18.1.2".parse().unwrap(), port: 4789 },
                filter: FilterConfig {
                    filter_id: FilterId::from_suffix(id_suffix(rng)),
                    network_services: services,
                    ingress: rules(rng, alibaba),
                    egress: rules(rng, alibaba),
                },
                limits: Default::default(),
                group: None,
            }
        })
        .collect();
    InterfaceConfig {
        schema: 1,
        revision: 1,
        network_interface_id: NetworkInterfaceId::from_suffix(id_suffix(rng)),
        addresses: vec![INTERFACE_V4.parse().unwrap(), INTERFACE_V6.parse().unwrap()],
        dns_resolvers: vec![RESOLVER_V4.parse().unwrap(), RESOLVER_V6.parse().unwrap()],
        sessions,
        unsupported: Vec::new(),
    }
}

/// A packet as built, with the facts the semantics talk about.
#[derive(Debug, Clone)]
pub struct TestPacket {
    pub spec: FrameSpec,
    /// The frame is cut to this many bytes after the IP header (L4 header incomplete).
    pub cut_l4_to: Option<usize>,
    pub direction: Direction,
}

/// Facts about a packet, read from how it was built.
#[derive(Debug, Clone, Copy)]
pub struct Truth {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub protocol: u8,
    /// Ports, when the packet has a complete TCP/UDP header.
    pub ports: Option<(u16, u16)>,
}

impl TestPacket {
    pub fn frame(&self) -> Vec<u8> {
        let mut f = self.spec.to_bytes();
        if let Some(keep) = self.cut_l4_to {
            let v6 = self.spec.source.is_ipv6();
            let l3 = 14 + 4 * self.spec.vlan_tags.len();
            let l4 = l3 + if v6 { 40 + 8 * self.ipv6_ext_count() } else { 20 };
            f.truncate((l4 + keep).min(f.len()));
        }
        f
    }

    fn ipv6_ext_count(&self) -> usize {
        let fragmented = self.spec.fragment_offset != 0 || self.spec.more_fragments;
        let explicit = &self.spec.ipv6_extensions;
        explicit.len() + usize::from(fragmented && !explicit.contains(&44))
    }

    pub fn truth(&self) -> Truth {
        let v6 = self.spec.source.is_ipv6();
        let protocol = self.spec.l4.protocol(v6);
        let later = self.spec.fragment_offset != 0;
        let header = match self.spec.l4 {
            L4::Tcp { source_port, destination_port } => Some((source_port, destination_port, 20)),
            L4::Udp { source_port, destination_port } => Some((source_port, destination_port, 8)),
            _ => None,
        };
        let ports = header
            .filter(|_| !later)
            .filter(|&(_, _, len)| self.cut_l4_to.is_none_or(|keep| keep >= len))
            .map(|(s, d, _)| (s, d));
        Truth { source: self.spec.source, destination: self.spec.destination, protocol, ports }
    }
}

/// A random packet; addresses are drawn so that many touch the interface and resolvers.
pub fn packet(rng: &mut Rng) -> TestPacket {
    let v6 = rng.chance(35);
    let mut source = addr(rng, v6);
    let mut destination = addr(rng, v6);
    if rng.chance(50) {
        std::mem::swap(&mut source, &mut destination);
    }
    let port = |rng: &mut Rng| if rng.chance(70) { rng.pick(&PORTS) } else { rng.next() as u16 };
    let l4 = match rng.below(10) {
        0..=3 => L4::Tcp { source_port: port(rng), destination_port: port(rng) },
        4..=6 => L4::Udp { source_port: port(rng), destination_port: port(rng) },
        7 | 8 => L4::Icmp { message_type: 8, code: 0 },
        // Not 6/17 (their payload would read as a header) nor IPv6 extension numbers.
        _ => L4::Other { protocol: rng.pick(&[1u8, 47, 50, 58, 132, 255]) },
    };
    let vlan_tags = match rng.below(10) {
        0 | 1 => vec![(0x8100, rng.below(4096) as u16)],
        2 => vec![(0x88a8, 100), (0x8100, rng.below(4096) as u16)],
        _ => vec![],
    };
    let (fragment_offset, more_fragments) = match rng.below(10) {
        0 => (0, true),
        1 => (1 + rng.below(1000) as u16, rng.chance(50)),
        _ => (0, false),
    };
    let ipv6_extensions = if v6 && rng.chance(20) { vec![rng.pick(&[0u8, 60, 43])] } else { vec![] };
    let spec = FrameSpec {
        vlan_tags,
        source,
        destination,
        ipv6_extensions,
        l4,
        payload_len: rng.below(300) as usize,
        fragment_offset,
        more_fragments,
        ..FrameSpec::default()
    };
    let cut_l4_to = rng.chance(5).then(|| rng.below(20) as usize);
    let direction = if rng.chance(50) { Direction::Ingress } else { Direction::Egress };
    TestPacket { spec, cut_l4_to, direction }
}
