//! Branch-free matching for small rule sets (at most [`MAX_RULES`] bits): every rule is
//! tested against the packet and the results form one `u64`, bit `i` = rule `i` matches,
//! in the same bit order as the bit-vector index.
//!
//! A rule matches when all of these hold, each giving a `u64` of rules, ANDed:
//! - protocol and port presence: a table from (protocol, has ports) to the rules that
//!   name that protocol or none, leaving out rules with a port range when the packet has
//!   no ports;
//! - each port: a two-level table (high byte, then low byte) to the elementary interval
//!   of the rules' range bounds, and that interval's rules (a packet without ports looks
//!   up port 0; only portless rules, which admit every port, survive the first test);
//! - addresses: each 32-bit word satisfies `word & mask == net` (a CIDR is a prefix
//!   mask). Rules are stored struct-of-arrays in chunks of four, each field a
//!   16-byte-aligned `[u32; 4]`, and the test is written as arithmetic so the compiler
//!   keeps it a few SSE2 operations per chunk (baseline x86-64) with no branch.
//!
//! Padding rules have a mask and net no address satisfies, so they never match.

/// Rules per chunk: one SSE2 register of `u32`.
const LANES: usize = 4;
/// Most rules a [`Scan`] holds: one `u64` of results.
pub(crate) const MAX_RULES: usize = 64;

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

type Lanes = [u32; LANES];

/// [`LANES`] rules' addresses, field by field; aligned so each field is one SSE2 load.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct Chunk<const W: usize> {
    source_net: [Lanes; W],
    source_mask: [Lanes; W],
    destination_net: [Lanes; W],
    destination_mask: [Lanes; W],
}

/// Up to [`MAX_RULES`] rules.
#[derive(Debug, Clone)]
pub(crate) struct Scan<const W: usize> {
    chunks: Box<[Chunk<W>]>,
    /// Protocol number -> class; class 0 is every protocol no rule names.
    protocol_class: Box<[u8; 256]>,
    /// `class * 2 + has_ports` -> rules.
    protocol_sets: Box<[u64]>,
    source_port: PortTable,
    destination_port: PortTable,
}

impl<const W: usize> Scan<W> {
    /// `None` when there are more than [`MAX_RULES`] rules.
    pub(crate) fn build(rules: &[ScanRule<W>]) -> Option<Self> {
        if rules.len() > MAX_RULES {
            return None;
        }
        // Net bit outside the mask: no address satisfies a padding lane.
        let empty = Chunk {
            source_net: [[1; LANES]; W],
            source_mask: [[0; LANES]; W],
            destination_net: [[1; LANES]; W],
            destination_mask: [[0; LANES]; W],
        };
        let mut chunks = vec![empty; rules.len().div_ceil(LANES)];
        for (i, r) in rules.iter().enumerate() {
            let (c, l) = (&mut chunks[i / LANES], i % LANES);
            for w in 0..W {
                (c.source_net[w][l], c.source_mask[w][l]) = r.source[w];
                (c.destination_net[w][l], c.destination_mask[w][l]) = r.destination[w];
            }
        }

        let mut named: Vec<u8> = rules.iter().filter_map(|r| r.protocol).collect();
        named.sort_unstable();
        named.dedup();
        let mut protocol_class = Box::new([0u8; 256]);
        let mut protocol_sets = Vec::with_capacity((named.len() + 1) * 2);
        // Class 0 (no rule names the protocol) first, then one class per named protocol.
        for (class, protocol) in std::iter::once(None).chain(named.iter().map(|&p| Some(p))).enumerate() {
            if let Some(p) = protocol {
                protocol_class[usize::from(p)] = class as u8;
            }
            for has_ports in [false, true] {
                let bits = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.protocol.is_none_or(|q| Some(q) == protocol) && (has_ports || !r.ported));
                protocol_sets.push(bits.fold(0u64, |m, (i, _)| m | 1 << i));
            }
        }
        Some(Self {
            chunks: chunks.into_boxed_slice(),
            protocol_class,
            protocol_sets: protocol_sets.into_boxed_slice(),
            source_port: PortTable::build(rules.iter().map(|r| r.source_port)),
            destination_port: PortTable::build(rules.iter().map(|r| r.destination_port)),
        })
    }

    /// Bit `i` set when rule `i` matches `key`.
    #[inline]
    pub(crate) fn matches(&self, key: &ScanKey<W>) -> u64 {
        let class = usize::from(self.protocol_class[usize::from(key.protocol)]);
        let (source_port, destination_port) = key.ports.unwrap_or((0, 0));
        let row = class * 2 + usize::from(key.ports.is_some());
        let mut bits = self.protocol_sets.get(row).copied().unwrap_or(0)
            & self.source_port.lookup(source_port)
            & self.destination_port.lookup(destination_port);
        bits &= self.addresses(&key.source, &key.destination);
        bits
    }

    /// Bit `i` set when rule `i`'s CIDRs hold both addresses. Not inlined: in its own
    /// function the loop reliably compiles to vector operations whatever the caller.
    #[inline(never)]
    fn addresses(&self, source: &[u32; W], destination: &[u32; W]) -> u64 {
        let mut bits = 0u64;
        for (c, chunk) in self.chunks.iter().enumerate() {
            bits |= u64::from(chunk.matches(source, destination)) << (c * LANES);
        }
        bits
    }
}

impl<const W: usize> Chunk<W> {
    /// Four bits, one per rule: the lanes whose masked words all equal the nets.
    #[inline(always)]
    #[allow(clippy::needless_range_loop, reason = "the iterator forms compile to scalar code here (measured)")]
    fn matches(&self, source: &[u32; W], destination: &[u32; W]) -> u32 {
        let mut miss = [0u32; LANES];
        for l in 0..LANES {
            let mut diff = 0u32;
            for w in 0..W {
                diff |= ((source[w] & self.source_mask[w][l]) ^ self.source_net[w][l])
                    | ((destination[w] & self.destination_mask[w][l]) ^ self.destination_net[w][l]);
            }
            // `diff | diff >> 1` is zero exactly when `diff` is. It stops the optimiser from
            // splitting "OR of XORs is zero" into scalar equalities, which leaves the whole
            // test as vector operations and one `movmskps` (measured: 4x fewer instructions).
            miss[l] = diff | (diff >> 1);
        }
        let mut bits = 0;
        for l in 0..LANES {
            bits |= u32::from(miss[l] == 0) << l;
        }
        bits
    }
}

/// Port -> rules whose range holds it, in two loads: `blocks[high byte]` picks a
/// 256-entry block of interval numbers, which indexes `sets`. Identical blocks are shared,
/// so the table is a few KiB: at most 129 intervals, and few blocks hold a bound.
#[derive(Debug, Clone)]
struct PortTable {
    blocks: Box<[u16; 256]>,
    intervals: Box<[u8]>,
    sets: Box<[u64]>,
}

impl PortTable {
    fn build(ranges: impl Iterator<Item = (u16, u16)>) -> Self {
        let ranges: Vec<(u16, u16)> = ranges.collect();
        let mut starts: Vec<u32> = vec![0];
        for &(lo, hi) in &ranges {
            starts.push(u32::from(lo));
            starts.push(u32::from(hi) + 1);
        }
        starts.retain(|&s| s <= u32::from(u16::MAX));
        starts.sort_unstable();
        starts.dedup();
        let sets: Vec<u64> = starts
            .iter()
            .map(|&s| {
                let hit = ranges.iter().enumerate().filter(|(_, (lo, hi))| u32::from(*lo) <= s && s <= u32::from(*hi));
                hit.fold(0u64, |m, (i, _)| m | 1 << i)
            })
            .collect();
        let mut blocks = Box::new([0u16; 256]);
        let mut intervals: Vec<u8> = Vec::new();
        for (high, block) in blocks.iter_mut().enumerate() {
            let ids: Vec<u8> = (0..256u32)
                .map(|low| {
                    let port = (high as u32) << 8 | low;
                    // At most 2 * MAX_RULES + 1 intervals: fits a u8.
                    (starts.partition_point(|&s| s <= port) - 1) as u8
                })
                .collect();
            let existing = intervals.chunks_exact(256).position(|b| b == ids.as_slice());
            *block = match existing {
                Some(at) => at as u16,
                None => {
                    intervals.extend_from_slice(&ids);
                    (intervals.len() / 256 - 1) as u16
                }
            };
        }
        Self { blocks, intervals: intervals.into_boxed_slice(), sets: sets.into_boxed_slice() }
    }

    #[inline(always)]
    fn lookup(&self, port: u16) -> u64 {
        let [high, low] = port.to_be_bytes();
        let at = usize::from(self.blocks[usize::from(high)]) * 256 + usize::from(low);
        let interval = self.intervals.get(at).copied().unwrap_or(0);
        self.sets.get(usize::from(interval)).copied().unwrap_or(0)
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
        let table = PortTable::build(ranges.iter().copied());
        for port in 0..=u16::MAX {
            let want = ranges.iter().enumerate().filter(|(_, (lo, hi))| *lo <= port && port <= *hi);
            assert_eq!(table.lookup(port), want.fold(0, |m, (i, _)| m | 1 << i), "port {port}");
        }
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
