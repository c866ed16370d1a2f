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
use tapwire_model::sampling::SessionLimits;
use tapwire_model::{Direction, FilterId, RuleAction, RuleId, RuleMatch, SessionId};
use tapwire_wire::{Addresses, CompactKey, FlowError, FlowKey};

use crate::counters::Counters;
use crate::encap;
use crate::ruleset::{RuleSet, Words};

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
    /// Sampling and caps ([`crate::sampling::Gate`]).
    pub limits: SessionLimits,
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
    /// The inner flow's hash, the same both ways ([`crate::encap::flow_hash`]).
    pub flow_hash: u64,
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
                limits: s.limits,
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

    /// [`Classifier::decide_frame`] with the counting of [`Classifier::decide_counted`]:
    /// the agent's per-frame call. `frame_len` is the frame's length on the wire (the
    /// captured bytes may be cut short). `Err` says why the frame has no flow key (not IP,
    /// or malformed), which the caller counts; `Ok(None)` is "no session mirrors it".
    #[inline]
    pub fn decide_frame_counted(
        &self,
        direction: Direction,
        frame: &[u8],
        frame_len: usize,
        counters: &mut Counters,
    ) -> Result<Option<Decision>, FlowError> {
        let key = match CompactKey::extract(frame) {
            Some(key) => key,
            None => match FlowKey::extract(frame)?.compact() {
                Some(key) => key,
                None => return Ok(None),
            },
        };
        Ok(self.decide_compact_counted(direction, &key, frame_len, counters))
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
        let flow_hash = encap::flow_hash(source.into(), destination.into(), protocol, (sp, dp));
        Some(Decision {
            session,
            rule,
            vni: s.vni,
            packet_length: s.packet_length,
            target: s.target,
            outer_source_port: encap::source_port_of_hash(flow_hash),
            flow_hash,
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
