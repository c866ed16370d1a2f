//! Branch-free matching for small rule sets (at most [`MAX_RULES`] bits): every rule is
//! tested against the packet and the results form one `u64`, bit `i` = rule `i` matches,
//! in the same bit order as the bit-vector index.
//!
//! Rules are stored struct-of-arrays in chunks of four, each field one 128-bit register
//! ([`wide::i32x4`], or [`wide::u16x8`] for port pairs: SSE2 on baseline x86-64, plain
//! integers elsewhere), and every test is lane arithmetic: no table lookup, no branch, no
//! load that waits on another. A rule matches when all of these hold:
//! - addresses: each 32-bit word satisfies `word & mask == net` (a CIDR is a prefix
//!   mask);
//! - protocol: `tag & mask == net`, where a packet's tag is its protocol number with
//!   bit 8 ([`HAS_PORTS`]) set when it has ports (TCP or UDP with its header whole). A
//!   rule that names no protocol has no mask bits below bit 8; a rule with a port range
//!   has [`HAS_PORTS`] in its mask and net, so only packets with ports match it;
//! - ports: the packet's `(source, destination)` pair, one `u16` each, satisfies
//!   `port - low <= high - low` in wrapping `u16` arithmetic on both sides at once (a
//!   saturating subtraction of the span leaves zero exactly then). A rule without ports
//!   has the whole range, which every pair satisfies.
//!
//! Padding lanes have a net bit outside their address mask, so they never match.

use wide::{CmpEq, i32x4, u16x8};

/// Rules per chunk: one 128-bit register of `i32`.
const LANES: usize = 4;
/// Most rules a [`Scan`] holds: one `u64` of results.
pub(crate) const MAX_RULES: usize = 64;
/// Bit of a protocol tag that says the packet has ports.
const HAS_PORTS: i32 = 0x100;

/// One rule as the scan sees it; `W` is the number of 32-bit words of an address.
/// Addresses are `(net, mask)` pairs, ports inclusive `(low, high)` ranges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanRule<const W: usize> {
    pub(crate) source: [(u32, u32); W],
    pub(crate) destination: [(u32, u32); W],
    pub(crate) protocol: Option<u8>,
    /// Whether the rule has a port range (then only packets with ports match it).
    pub(crate) ported: bool,
    pub(crate) source_port: (u16, u16),
    pub(crate) destination_port: (u16, u16),
}

/// A packet as the scan sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanKey<const W: usize> {
    pub(crate) source: [u32; W],
    pub(crate) destination: [u32; W],
    pub(crate) protocol: u8,
    /// `(source, destination)` of TCP/UDP with ports.
    pub(crate) ports: Option<(u16, u16)>,
}

/// [`LANES`] rules' values of one field (`u32` words as their bit patterns).
type Lanes = i32x4;

/// [`LANES`] rules, field by field. Port fields hold one `(source, destination)` pair
/// of `u16` per rule, source in the low half of the rule's 32-bit lane.
#[derive(Debug, Clone, Copy)]
struct Chunk<const W: usize> {
    source_net: [Lanes; W],
    source_mask: [Lanes; W],
    destination_net: [Lanes; W],
    destination_mask: [Lanes; W],
    protocol_net: Lanes,
    protocol_mask: Lanes,
    port_low: u16x8,
    port_span: u16x8,
}

/// Up to [`MAX_RULES`] rules.
#[derive(Debug, Clone)]
pub(crate) struct Scan<const W: usize> {
    chunks: Box<[Chunk<W>]>,
}

/// One rule's lane values, in [`Chunk`]'s field order.
struct Lane<const W: usize> {
    source: [(i32, i32); W],
    destination: [(i32, i32); W],
    protocol: (i32, i32),
    /// `(low, high - low)` of the source and destination port.
    ports: [(u16, u16); 2],
}

/// The lane of a `(source, destination)` port pair: source in the low half.
fn port_pair(source: u16, destination: u16) -> i32 {
    (u32::from(source) | u32::from(destination) << 16) as i32
}

impl<const W: usize> Lane<W> {
    /// A lane no packet matches.
    const PADDING: Self =
        Self { source: [(1, 0); W], destination: [(1, 0); W], protocol: (0, 0), ports: [(0, u16::MAX); 2] };

    fn of(rule: &ScanRule<W>) -> Self {
        let range = |(low, high): (u16, u16)| if rule.ported { (low, high - low) } else { (0, u16::MAX) };
        let (protocol_net, protocol_mask) = rule.protocol.map_or((0, 0), |p| (i32::from(p), 0xff));
        let needs_ports = if rule.ported { HAS_PORTS } else { 0 };
        Self {
            source: rule.source.map(|(net, mask)| (net as i32, mask as i32)),
            destination: rule.destination.map(|(net, mask)| (net as i32, mask as i32)),
            protocol: (protocol_net | needs_ports, protocol_mask | needs_ports),
            ports: [range(rule.source_port), range(rule.destination_port)],
        }
    }
}

impl<const W: usize> Chunk<W> {
    fn of(lanes: &[Lane<W>; LANES]) -> Self {
        let field = |f: &dyn Fn(&Lane<W>) -> i32| i32x4::new([f(&lanes[0]), f(&lanes[1]), f(&lanes[2]), f(&lanes[3])]);
        let pairs = |f: &dyn Fn((u16, u16)) -> u16| {
            bytemuck::cast::<i32x4, u16x8>(field(&|l| port_pair(f(l.ports[0]), f(l.ports[1]))))
        };
        Self {
            source_net: std::array::from_fn(|w| field(&|l| l.source[w].0)),
            source_mask: std::array::from_fn(|w| field(&|l| l.source[w].1)),
            destination_net: std::array::from_fn(|w| field(&|l| l.destination[w].0)),
            destination_mask: std::array::from_fn(|w| field(&|l| l.destination[w].1)),
            protocol_net: field(&|l| l.protocol.0),
            protocol_mask: field(&|l| l.protocol.1),
            port_low: pairs(&|(low, _)| low),
            port_span: pairs(&|(_, span)| span),
        }
    }

    /// Four bits, one per rule: the lanes `key` satisfies.
    #[inline(always)]
    fn matches(&self, key: &Splat<W>) -> u64 {
        let mut hit = (key.protocol & self.protocol_mask).cmp_eq(self.protocol_net);
        for w in 0..W {
            hit &= (key.source[w] & self.source_mask[w]).cmp_eq(self.source_net[w]);
            hit &= (key.destination[w] & self.destination_mask[w]).cmp_eq(self.destination_net[w]);
        }
        // Zero in both halves of a lane exactly when both ports are in range.
        let beyond = (key.ports - self.port_low).saturating_sub(self.port_span);
        hit &= bytemuck::cast::<u16x8, i32x4>(beyond).cmp_eq(i32x4::splat(0));
        // A set lane is all ones, so its sign bit is the lane's result.
        u64::from((hit.move_mask() as u32) & 0xf)
    }
}

/// A packet's fields, each in every lane.
struct Splat<const W: usize> {
    source: [Lanes; W],
    destination: [Lanes; W],
    protocol: Lanes,
    ports: u16x8,
}

impl<const W: usize> Scan<W> {
    /// `None` when there are more than [`MAX_RULES`] rules.
    pub(crate) fn build(rules: &[ScanRule<W>]) -> Option<Self> {
        if rules.len() > MAX_RULES {
            return None;
        }
        let chunks = rules
            .chunks(LANES)
            .map(|group| Chunk::of(&std::array::from_fn(|l| group.get(l).map_or(Lane::PADDING, Lane::of))))
            .collect();
        Some(Self { chunks })
    }

    /// Bit `i` set when rule `i` matches `key`.
    #[inline]
    pub(crate) fn matches(&self, key: &ScanKey<W>) -> u64 {
        let (tag, ports) = match key.ports {
            Some((source, destination)) => (HAS_PORTS, port_pair(source, destination)),
            None => (0, 0),
        };
        let key = Splat {
            source: key.source.map(|word| i32x4::splat(word as i32)),
            destination: key.destination.map(|word| i32x4::splat(word as i32)),
            protocol: i32x4::splat(i32::from(key.protocol) | tag),
            ports: bytemuck::cast::<i32x4, u16x8>(i32x4::splat(ports)),
        };
        let mut bits = 0u64;
        for (c, chunk) in self.chunks.iter().enumerate() {
            bits |= chunk.matches(&key) << (c * LANES);
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(destination: (u32, u32), protocol: Option<u8>, dport: Option<(u16, u16)>) -> ScanRule<1> {
        ScanRule {
            source: [(0, 0)],
            destination: [destination],
            protocol,
            ported: dport.is_some(),
            source_port: (0, u16::MAX),
            destination_port: dport.unwrap_or((0, u16::MAX)),
        }
    }

    fn key(destination: u32, protocol: u8, ports: Option<(u16, u16)>) -> ScanKey<1> {
        ScanKey { source: [1], destination: [destination], protocol, ports }
    }

    #[test]
    fn bits_follow_rule_order_across_chunks() {
        let never = rule((1, 0), None, None);
        let mut rules = vec![never; 20];
        rules[3] = rule((0x0a00_0000, 0xff00_0000), Some(6), None);
        rules[11] = rule((0, 0), None, Some((80, 90)));
        rules[19] = rule((0x0a01_0203, u32::MAX), None, None);
        let scan = Scan::build(&rules).unwrap();
        assert_eq!(scan.matches(&key(0x0a01_0203, 6, Some((9, 85)))), (1 << 3) | (1 << 11) | (1 << 19));
        assert_eq!(scan.matches(&key(0x0a01_0203, 17, Some((9, 91)))), 1 << 19);
        assert_eq!(scan.matches(&key(0x0a01_0203, 17, None)), 1 << 19, "port ranges need ports");
        assert_eq!(scan.matches(&key(0x0b00_0000, 6, None)), 0);
        assert!(Scan::<1>::build(&vec![never; MAX_RULES + 1]).is_none());
    }

    #[test]
    fn every_port_at_every_bound() {
        let ranges = [(0, 0), (80, 90), (90, 1023), (255, 256), (u16::MAX, u16::MAX), (0, u16::MAX), (1024, 2024)];
        let destination: Vec<_> = ranges.iter().map(|&r| rule((0, 0), None, Some(r))).collect();
        let source: Vec<_> = ranges
            .iter()
            .map(|&r| ScanRule { source_port: r, destination_port: (0, u16::MAX), ..rule((0, 0), None, Some((0, 0))) })
            .collect();
        let (by_destination, by_source) = (Scan::build(&destination).unwrap(), Scan::build(&source).unwrap());
        for port in 0..=u16::MAX {
            let want = ranges.iter().enumerate().filter(|(_, (lo, hi))| *lo <= port && port <= *hi);
            let want = want.fold(0, |m, (i, _)| m | 1 << i);
            assert_eq!(by_destination.matches(&key(0, 17, Some((9, port)))), want, "destination port {port}");
            assert_eq!(by_source.matches(&key(0, 6, Some((port, 9)))), want, "source port {port}");
        }
        assert_eq!(by_destination.matches(&key(0, 17, None)), 0, "port ranges need ports");
    }

    #[test]
    fn packing_keeps_rule_order() {
        for pattern in [0u64, 1, 0x80, 0xa5, 0x8000_0000_0000_0001, u64::MAX, 0x0123_4567_89ab_cdef] {
            let rules: Vec<_> =
                (0..64).map(|i| rule(if pattern >> i & 1 == 1 { (0, 0) } else { (1, 0) }, None, None)).collect();
            assert_eq!(Scan::build(&rules).unwrap().matches(&key(0, 6, None)), pattern);
        }
    }
}
