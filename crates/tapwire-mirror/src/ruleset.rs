//! The rules of one direction and address family, laid out for one decision: one bit per
//! rule in evaluation order, and what finds the bits a packet matches — the branch-free
//! scan for small sets, the bit-vector index for large ones (both give the same bits).
//!
//! Invariant: the rules of one session occupy a contiguous run of bits, so a reject rule
//! lets [`RuleSet::first_match`] skip to the next session's bits.

use ipnet::IpNet;
use tapwire_model::{Direction, RuleAction};

use crate::classifier::{RuleInfo, SessionInfo};
use crate::index::{self, Dimension};
use crate::scan::{Scan, ScanKey, ScanRule};

/// One bit of a [`RuleSet`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) rule: u32,
    pub(crate) session: u16,
    pub(crate) accept: bool,
}

/// The rules of one direction and address family, in evaluation order, with what finds
/// the ones a packet matches. `W` is the number of 32-bit words of an address.
#[derive(Debug, Clone)]
pub(crate) struct RuleSet<A, const W: usize> {
    entries: Box<[Entry]>,
    /// Per session index: the first bit after that session's rules.
    session_end: Box<[u32]>,
    lookup: Lookup<A, W>,
}

/// Small sets are scanned rule by rule without branches; large ones use the index.
#[derive(Debug, Clone)]
enum Lookup<A, const W: usize> {
    Scan(Scan<W>),
    Index(Box<Index<A>>),
}

/// The bit-vector index of a set of more than [`crate::scan::MAX_RULES`] rules.
#[derive(Debug, Clone)]
struct Index<A> {
    words: usize,
    source: Dimension<A>,
    destination: Dimension<A>,
    source_port: Dimension<u16>,
    destination_port: Dimension<u16>,
    /// Protocol number -> row of `protocol_sets`.
    protocol_class: Box<[u16; 256]>,
    protocol_sets: Box<[u64]>,
    /// Rules without any port range (the only ones a packet without ports can match).
    portless: Box<[u64]>,
}

/// Addresses as the scan's 32-bit words, most significant first.
pub(crate) trait Words<const W: usize>: index::Key + Into<u128> {
    fn words(self) -> [u32; W];
}

impl Words<1> for u32 {
    #[inline(always)]
    fn words(self) -> [u32; 1] {
        [self]
    }
}

impl Words<4> for u128 {
    #[inline(always)]
    fn words(self) -> [u32; 4] {
        [(self >> 96) as u32, (self >> 64) as u32, (self >> 32) as u32, self as u32]
    }
}

impl<A: Words<W>, const W: usize> RuleSet<A, W> {
    pub(crate) fn build(
        sessions: &[SessionInfo],
        rules: &[RuleInfo],
        direction: Direction,
        range_of: impl Fn(&IpNet) -> Option<(A, A)>,
    ) -> Self {
        let mut entries = Vec::new();
        let mut source = Vec::new();
        let mut destination = Vec::new();
        let mut source_port = Vec::new();
        let mut destination_port = Vec::new();
        let mut protocols = Vec::new();
        let mut session_end = vec![0u32; sessions.len()];
        for (i, r) in rules.iter().enumerate() {
            let enabled = sessions.get(usize::from(r.session)).is_some_and(|s| s.enabled);
            if r.direction != direction || !enabled {
                continue;
            }
            let (Some(src), Some(dst)) = (range_of(&r.matches.source_cidr), range_of(&r.matches.destination_cidr))
            else {
                continue;
            };
            entries.push(Entry { rule: i as u32, session: r.session, accept: r.action == RuleAction::Accept });
            source.push(src);
            destination.push(dst);
            let full = (0, u16::MAX);
            source_port.push(r.matches.source_ports.map_or(full, |p| (p.from, p.to)));
            destination_port.push(r.matches.destination_ports.map_or(full, |p| (p.from, p.to)));
            protocols.push(r.matches.protocol);
        }
        // Sessions are visited in index order, so each end is the count so far.
        let mut count = 0u32;
        for (session, end) in session_end.iter_mut().enumerate() {
            count += entries.iter().filter(|e| usize::from(e.session) == session).count() as u32;
            *end = count;
        }
        let ported: Vec<bool> = rules_without_ports(&entries, rules).map(|none| !none).collect();

        let scan_rules: Vec<ScanRule<W>> = (0..entries.len())
            .map(|i| {
                // A CIDR's range is [network, broadcast]: the bits they share are its prefix.
                let prefix = |(lo, hi): (A, A)| {
                    let (lo, hi) = (lo.words(), hi.words());
                    std::array::from_fn(|w| (lo[w], !(lo[w] ^ hi[w])))
                };
                ScanRule {
                    source: prefix(source[i]),
                    destination: prefix(destination[i]),
                    protocol: protocols[i],
                    ported: ported[i],
                    source_port: source_port[i],
                    destination_port: destination_port[i],
                }
            })
            .collect();
        let lookup = match Scan::build(&scan_rules) {
            Some(scan) => Lookup::Scan(scan),
            None => Lookup::Index(Box::new(Index::build(
                &source,
                &destination,
                &source_port,
                &destination_port,
                &protocols,
                &ported,
            ))),
        };
        Self { entries: entries.into_boxed_slice(), session_end: session_end.into_boxed_slice(), lookup }
    }

    /// The entry that decides the packet: the first accept rule of the first session
    /// whose first matching rule accepts, provided that session comes before
    /// `dns_session` (sessions from `dns_session` on are not looked at).
    #[inline]
    pub(crate) fn first_match(
        &self,
        src: A,
        dst: A,
        protocol: u8,
        ports: Option<(u16, u16)>,
        dns_session: u16,
        on_reject: impl FnMut(u32),
    ) -> Option<Entry> {
        match &self.lookup {
            Lookup::Scan(scan) => {
                let key = ScanKey { source: src.words(), destination: dst.words(), protocol, ports };
                self.first_in_word(scan.matches(&key), dns_session, on_reject)
            }
            Lookup::Index(index) => self.first_in_index(index, src, dst, protocol, ports, dns_session, on_reject),
        }
    }

    /// [`RuleSet::first_match`] over the bits of the first 64 rules, `m`.
    #[inline(always)]
    fn first_in_word(&self, mut m: u64, dns_session: u16, mut on_reject: impl FnMut(u32)) -> Option<Entry> {
        while m != 0 {
            let entry = *self.entries.get(m.trailing_zeros() as usize)?;
            if entry.session >= dns_session {
                return None;
            }
            if entry.accept {
                return Some(entry);
            }
            on_reject(entry.rule);
            let end = self.session_end.get(usize::from(entry.session)).map_or(64, |&e| e);
            m &= u64::MAX.checked_shl(end).unwrap_or(0);
        }
        None
    }

    /// [`RuleSet::first_match`] through the bit-vector index.
    #[inline]
    #[allow(clippy::too_many_arguments, reason = "the packet's fields, inlined")]
    fn first_in_index(
        &self,
        index: &Index<A>,
        src: A,
        dst: A,
        protocol: u8,
        ports: Option<(u16, u16)>,
        dns_session: u16,
        mut on_reject: impl FnMut(u32),
    ) -> Option<Entry> {
        let w = index.words;
        let class = usize::from(index.protocol_class[usize::from(protocol)]);
        let p = index.protocol_sets.get(class * w..class * w + w).unwrap_or_default();
        let s = index.source.lookup(src);
        let d = index.destination.lookup(dst);
        let (sp, dp) = match ports {
            Some((source, destination)) => {
                (index.source_port.lookup(source), index.destination_port.lookup(destination))
            }
            None => (&index.portless[..], &index.portless[..]),
        };
        let mut word = 0;
        // Bits below `floor` belong to sessions already decided (by a reject rule).
        let mut floor = 0usize;
        while word < w {
            let mut m = s[word] & d[word] & p[word] & sp[word] & dp[word];
            if floor > word * 64 {
                m &= u64::MAX.checked_shl((floor - word * 64) as u32).unwrap_or(0);
            }
            if m == 0 {
                word += 1;
                continue;
            }
            let bit = word * 64 + m.trailing_zeros() as usize;
            let entry = self.entries[bit];
            if entry.session >= dns_session {
                return None;
            }
            if entry.accept {
                return Some(entry);
            }
            on_reject(entry.rule);
            floor = self.session_end.get(usize::from(entry.session)).map_or(usize::MAX, |&e| e as usize);
            word = floor / 64;
        }
        None
    }
}

impl<A: index::Key> Index<A> {
    fn build(
        source: &[(A, A)],
        destination: &[(A, A)],
        source_port: &[(u16, u16)],
        destination_port: &[(u16, u16)],
        protocols: &[Option<u8>],
        ported: &[bool],
    ) -> Self {
        let words = protocols.len().div_ceil(64);
        // Protocol classes: one per protocol some rule names, plus "any other" (class 0).
        let mut named: Vec<u8> = protocols.iter().flatten().copied().collect();
        named.sort_unstable();
        named.dedup();
        let mut protocol_class = Box::new([0u16; 256]);
        let mut protocol_sets = Vec::with_capacity((named.len() + 1) * words);
        protocol_sets.extend_from_slice(&index::bitset(
            words,
            protocols.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(i, _)| i),
        ));
        for (class, &p) in named.iter().enumerate() {
            protocol_class[usize::from(p)] = class as u16 + 1;
            let bits = protocols.iter().enumerate().filter(|(_, q)| q.is_none() || **q == Some(p)).map(|(i, _)| i);
            protocol_sets.extend_from_slice(&index::bitset(words, bits));
        }
        let portless = index::bitset(words, ported.iter().enumerate().filter(|(_, p)| !**p).map(|(i, _)| i));
        Self {
            words,
            source: Dimension::build(source, words),
            destination: Dimension::build(destination, words),
            source_port: Dimension::build(source_port, words),
            destination_port: Dimension::build(destination_port, words),
            protocol_class,
            protocol_sets: protocol_sets.into_boxed_slice(),
            portless,
        }
    }
}

fn rules_without_ports<'a>(entries: &'a [Entry], rules: &'a [RuleInfo]) -> impl Iterator<Item = bool> + 'a {
    entries.iter().map(|e| {
        let m = &rules[e.rule as usize].matches;
        m.source_ports.is_none() && m.destination_ports.is_none()
    })
}
