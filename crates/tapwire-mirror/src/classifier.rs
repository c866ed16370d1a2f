//! Compiling an [`InterfaceConfig`] into a [`Classifier`] and deciding, per packet,
//! which session (if any) mirrors it.
//!
//! Invariants of a compiled classifier:
//! - `sessions` are sorted by session number; a session's index is its rank, so "lower
//!   index" means "tried first". Disabled sessions are listed but never indexed.
//! - `rules` list every rule of every session, session by session, ingress then egress,
//!   each direction by ascending rule number. [`Decision::rule`] and the counters use
//!   indexes into this list.
//! - For each direction and address family, one [`RuleSet`] holds the enabled sessions'
//!   rules of that family in evaluation order (session, then rule number); the rules of
//!   one session occupy a contiguous run of bits. Sets of at most
//!   [`crate::scan::MAX_RULES`] rules are matched by the branch-free scan, larger ones
//!   through the bit-vector index; both give the same bits.
//!
//! [`Classifier::decide`] reads only the flow key and allocates nothing;
//! [`Classifier::decide_frame`] reads the frame itself, through [`CompactKey::extract`]
//! (integer addresses, no [`FlowKey`]) for common frames and [`FlowKey::extract`] for
//! the rest. Both go through one decision procedure on a [`CompactKey`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use tapwire_model::config::{ConfigError, InterfaceConfig, TargetEndpoint};
use tapwire_model::resource::NetworkService;
use tapwire_model::rule::protocol;
use tapwire_model::{Direction, FilterId, RuleAction, RuleId, RuleMatch, SessionId};
use tapwire_wire::{Addresses, CompactKey, FlowKey};

use crate::counters::Counters;
use crate::encap;
use crate::index::{self, Dimension};
use crate::scan::{Scan, ScanKey, ScanRule};

/// The DNS port the `amazon-dns` network service is about.
pub const DNS_PORT: u16 = 53;
/// UDP ports of DHCP (v4) and DHCPv6: a UDP packet between two of these is never mirrored.
pub const DHCP_PORTS_V4: [u16; 2] = [67, 68];
/// UDP ports of DHCPv6.
pub const DHCP_PORTS_V6: [u16; 2] = [546, 547];

/// One session as compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Identity.
    pub session_id: SessionId,
    /// Session number (lower is tried first).
    pub number: u32,
    /// Disabled sessions never mirror.
    pub enabled: bool,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Bytes of the inner frame to copy; `None` = whole frame.
    pub packet_length: Option<u16>,
    /// Where copies go.
    pub target: TargetEndpoint,
    /// The session's filter.
    pub filter_id: FilterId,
    /// Whether the filter's `amazon-dns` network service is on.
    pub amazon_dns: bool,
}

/// One rule as compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Identity.
    pub rule_id: RuleId,
    /// Index of its session in [`Classifier::sessions`].
    pub session: u16,
    /// Direction it applies to.
    pub direction: Direction,
    /// Rule number (lower is tried first).
    pub number: u32,
    /// Accept or reject.
    pub action: RuleAction,
    /// What it matches.
    pub matches: RuleMatch,
}

/// What happens to a mirrored packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Index of the mirroring session in [`Classifier::sessions`].
    pub session: u16,
    /// Index of the accepting rule in [`Classifier::rules`]; `None` when the filter's
    /// `amazon-dns` network service took the packet.
    pub rule: Option<u32>,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Bytes of the inner frame to copy; `None` = whole frame.
    pub packet_length: Option<u16>,
    /// Outer destination.
    pub target: TargetEndpoint,
    /// Outer UDP source port: a hash of the inner flow in 49152..=65535.
    pub outer_source_port: u16,
}

impl Decision {
    /// How many bytes of a `frame_len`-byte frame are copied.
    #[inline]
    pub fn inner_len(&self, frame_len: usize) -> usize {
        self.packet_length.map_or(frame_len, |limit| frame_len.min(usize::from(limit)))
    }

    /// Whether the copy of a `frame_len`-byte frame is truncated.
    #[inline]
    pub fn truncates(&self, frame_len: usize) -> bool {
        self.inner_len(frame_len) < frame_len
    }
}

/// Why a configuration cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The document breaks one of its own invariants.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// An enabled session's target needs an outer source of a family the interface has no
    /// address of.
    #[error("session {session}: the interface has no {family} address to send copies to {target} from")]
    NoOuterSource {
        /// The session.
        session: SessionId,
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// The target address.
        target: IpAddr,
    },
    /// More sessions or rules than the compact indexes hold.
    #[error("too many sessions or rules for one interface")]
    TooLarge,
}

/// One bit of a [`RuleSet`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    rule: u32,
    session: u16,
    accept: bool,
}

/// The rules of one direction and address family, in evaluation order, with what finds
/// the ones a packet matches. `W` is the number of 32-bit words of an address.
#[derive(Debug, Clone)]
struct RuleSet<A, const W: usize> {
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
trait Words<const W: usize>: index::Key + Into<u128> {
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

/// An interface's mirroring configuration, compiled for fast decisions.
#[derive(Debug, Clone)]
pub struct Classifier {
    sessions: Vec<SessionInfo>,
    rules: Vec<RuleInfo>,
    v4: [RuleSet<u32, 1>; 2],
    v6: [RuleSet<u128, 4>; 2],
    dns_resolvers: Vec<IpAddr>,
    /// `dns_resolvers` by family, as integers.
    dns_v4: Box<[u32]>,
    dns_v6: Box<[u128]>,
    /// The lowest-numbered enabled session with `amazon-dns` on.
    first_dns_session: Option<u16>,
    outer_source_v4: Option<Ipv4Addr>,
    outer_source_v6: Option<Ipv6Addr>,
}

fn direction_slot(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl Classifier {
    /// Validates and compiles one interface's configuration.
    pub fn compile(config: &InterfaceConfig) -> Result<Self, CompileError> {
        config.validate()?;
        let outer_source_v4 = match config.outer_source() {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let outer_source_v6 = config.addresses.iter().find_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        });

        let mut ordered: Vec<_> = config.sessions.iter().collect();
        ordered.sort_by_key(|s| s.number);
        if ordered.len() > usize::from(u16::MAX) {
            return Err(CompileError::TooLarge);
        }
        let mut sessions = Vec::with_capacity(ordered.len());
        let mut rules = Vec::new();
        for (index, s) in ordered.iter().enumerate() {
            if s.enabled {
                let (missing, family) = match s.target.address {
                    IpAddr::V4(_) => (outer_source_v4.is_none(), "IPv4"),
                    IpAddr::V6(_) => (outer_source_v6.is_none(), "IPv6"),
                };
                if missing {
                    return Err(CompileError::NoOuterSource {
                        session: s.session_id,
                        family,
                        target: s.target.address,
                    });
                }
            }
            sessions.push(SessionInfo {
                session_id: s.session_id,
                number: s.number.get(),
                enabled: s.enabled,
                vni: s.vni.get(),
                packet_length: s.packet_length.map(|l| l.get()),
                target: s.target,
                filter_id: s.filter.filter_id,
                amazon_dns: s.filter.network_services.contains(&NetworkService::AmazonDns),
            });
            for (direction, list) in [(Direction::Ingress, &s.filter.ingress), (Direction::Egress, &s.filter.egress)] {
                let mut sorted: Vec<_> = list.iter().collect();
                sorted.sort_by_key(|r| r.number);
                for r in sorted {
                    rules.push(RuleInfo {
                        rule_id: r.rule_id,
                        session: index as u16,
                        direction,
                        number: r.number.get(),
                        action: r.action,
                        matches: r.matches.clone(),
                    });
                }
            }
        }
        if u32::try_from(rules.len()).is_err() {
            return Err(CompileError::TooLarge);
        }

        let build_v4 = |d| {
            RuleSet::build(&sessions, &rules, d, |net| match net {
                IpNet::V4(n) => Some((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(_) => None,
            })
        };
        let build_v6 = |d| {
            RuleSet::build(&sessions, &rules, d, |net| match net {
                IpNet::V6(n) => Some((u128::from(n.network()), u128::from(n.broadcast()))),
                IpNet::V4(_) => None,
            })
        };
        let v4 = [build_v4(Direction::Ingress), build_v4(Direction::Egress)];
        let v6 = [build_v6(Direction::Ingress), build_v6(Direction::Egress)];
        let first_dns_session = sessions.iter().position(|s| s.enabled && s.amazon_dns).map(|i| i as u16);
        Ok(Self {
            sessions,
            rules,
            v4,
            v6,
            dns_resolvers: config.dns_resolvers.clone(),
            dns_v4: config
                .dns_resolvers
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(u32::from(*v4)),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            dns_v6: config
                .dns_resolvers
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(v6) => Some(u128::from(*v6)),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            first_dns_session,
            outer_source_v4,
            outer_source_v6,
        })
    }

    /// Every session, sorted by session number (disabled ones included).
    pub fn sessions(&self) -> &[SessionInfo] {
        &self.sessions
    }

    /// Every rule; see the module invariants for the order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// The DNS resolvers the `amazon-dns` service stands for.
    pub fn dns_resolvers(&self) -> &[IpAddr] {
        &self.dns_resolvers
    }

    /// The outer source address for copies sent to `target`.
    pub fn outer_source(&self, target: IpAddr) -> Option<IpAddr> {
        match target {
            IpAddr::V4(_) => self.outer_source_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.outer_source_v6.map(IpAddr::V6),
        }
    }

    /// Fresh zeroed counters sized for this classifier.
    pub fn new_counters(&self) -> Counters {
        Counters::new(self.sessions.len(), self.rules.len())
    }

    /// Which session mirrors a packet that crossed the interface in `direction`, or `None`.
    #[inline]
    pub fn decide(&self, direction: Direction, flow: &FlowKey) -> Option<Decision> {
        self.decide_compact(direction, &flow.compact()?)
    }

    /// [`Classifier::decide`] on the [`CompactKey`] of a flow key.
    #[inline]
    pub fn decide_compact(&self, direction: Direction, key: &CompactKey) -> Option<Decision> {
        self.decide_with(direction, key, |_| {})
    }

    /// Which session mirrors a raw Ethernet frame: the same as [`Classifier::decide`] on
    /// [`FlowKey::extract`]'s key, and `None` when it has none; common frames are read
    /// straight into a [`CompactKey`], without building the [`FlowKey`].
    #[inline]
    pub fn decide_frame(&self, direction: Direction, frame: &[u8]) -> Option<Decision> {
        match CompactKey::extract(frame) {
            Some(key) => self.decide_with(direction, &key, |_| {}),
            None => self.decide_frame_general(direction, frame),
        }
    }

    /// [`Classifier::decide_frame`] for frames the fast parse declines (kept out of line).
    #[inline(never)]
    fn decide_frame_general(&self, direction: Direction, frame: &[u8]) -> Option<Decision> {
        self.decide(direction, &FlowKey::extract(frame).ok()?)
    }

    /// [`Classifier::decide`], also recording in `counters` every rule that matched (reject
    /// rules passed on the way included) and the mirrored copy of a `frame_len`-byte frame.
    pub fn decide_counted(
        &self,
        direction: Direction,
        flow: &FlowKey,
        frame_len: usize,
        counters: &mut Counters,
    ) -> Option<Decision> {
        self.decide_compact_counted(direction, &flow.compact()?, frame_len, counters)
    }

    /// [`Classifier::decide_frame`] with the counting of [`Classifier::decide_counted`]
    /// (the frame's length is `frame.len()`).
    pub fn decide_frame_counted(
        &self,
        direction: Direction,
        frame: &[u8],
        counters: &mut Counters,
    ) -> Option<Decision> {
        let key = match CompactKey::extract(frame) {
            Some(key) => key,
            None => FlowKey::extract(frame).ok()?.compact()?,
        };
        self.decide_compact_counted(direction, &key, frame.len(), counters)
    }

    #[inline]
    fn decide_compact_counted(
        &self,
        direction: Direction,
        key: &CompactKey,
        frame_len: usize,
        counters: &mut Counters,
    ) -> Option<Decision> {
        let decision = self.decide_with(direction, key, |rule| counters.record_reject(rule, frame_len));
        if let Some(d) = &decision {
            counters.record_mirror(d, frame_len);
        }
        decision
    }

    /// The decision procedure; `on_reject` sees each reject rule that decided a session.
    #[inline(always)]
    fn decide_with(&self, direction: Direction, key: &CompactKey, on_reject: impl FnMut(u32)) -> Option<Decision> {
        let slot = direction_slot(direction);
        let ports = key.ports.map(|p| (p.source, p.destination));
        match key.addresses {
            Addresses::V4 { source, destination } => {
                let set = &self.v4[slot];
                self.decide_in(set, source, destination, key.protocol, ports, DHCP_PORTS_V4, &self.dns_v4, on_reject)
            }
            Addresses::V6 { source, destination } => {
                let set = &self.v6[slot];
                self.decide_in(set, source, destination, key.protocol, ports, DHCP_PORTS_V6, &self.dns_v6, on_reject)
            }
        }
    }

    /// [`Classifier::decide_with`] for one address family: `dhcp` is its DHCP port pair,
    /// `resolvers` its DNS resolvers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments, reason = "inlined into its two callers; a struct would only be unpacked")]
    fn decide_in<A: Words<W>, const W: usize>(
        &self,
        set: &RuleSet<A, W>,
        source: A,
        destination: A,
        protocol: u8,
        ports: Option<(u16, u16)>,
        [a, b]: [u16; 2],
        resolvers: &[A],
        on_reject: impl FnMut(u32),
    ) -> Option<Decision> {
        // Port 0 is in no DHCP pair and is not DNS, so "no ports" needs no branch; `&`
        // rather than `&&` keeps the unpredictable protocol and port tests branch-free.
        let (sp, dp) = ports.unwrap_or((0, 0));
        if (protocol == protocol::UDP) & (sp == a || sp == b) & (dp == a || dp == b) {
            return None;
        }
        // Resolvers are looked at only when some session has `amazon-dns` on.
        let dns_session = match self.first_dns_session {
            Some(s)
                if (dp == DNS_PORT && resolvers.contains(&destination))
                    || (sp == DNS_PORT && resolvers.contains(&source)) =>
            {
                s
            }
            _ => u16::MAX,
        };
        let (session, rule) = match set.first_match(source, destination, protocol, ports, dns_session, on_reject) {
            Some(entry) => (entry.session, Some(entry.rule)),
            None if dns_session != u16::MAX => (dns_session, None),
            None => return None,
        };
        let s = self.sessions.get(usize::from(session))?;
        Some(Decision {
            session,
            rule,
            vni: s.vni,
            packet_length: s.packet_length,
            target: s.target,
            outer_source_port: encap::source_port_of(source.into(), destination.into(), protocol, (sp, dp)),
        })
    }
}

/// Whether `flow` is DHCP or DHCPv6 (UDP with both ports in the family's DHCP pair).
#[inline]
pub fn is_dhcp(flow: &FlowKey) -> bool {
    // Port 0 is in neither pair, so "no ports" needs no branch; `&` rather than `&&`
    // keeps the protocol and port tests (unpredictable on mixed traffic) branch-free.
    let (source, destination) = flow.ports.map_or((0, 0), |p| (p.source, p.destination));
    let [a, b] = if flow.is_ipv6() { DHCP_PORTS_V6 } else { DHCP_PORTS_V4 };
    (flow.protocol == protocol::UDP) & (source == a || source == b) & (destination == a || destination == b)
}

impl<A: Words<W>, const W: usize> RuleSet<A, W> {
    fn build(
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
    fn first_match(
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
