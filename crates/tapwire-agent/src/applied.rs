//! The configuration the data plane runs with, and the slot that hands a new one from the
//! config watcher to the capture thread.
//!
//! The watcher compiles a new [`AppliedConfig`] (classifier, kernel pre-filter, the path
//! to every target) off the packet path, stores it in the [`ConfigSlot`] and bumps the
//! slot's generation. The capture thread compares the generation (one atomic load per
//! poll) and only then takes the mutex to clone the `Arc`: no lock on the per-packet path,
//! and a swap is atomic (a packet sees either the old or the new configuration whole).
//!
//! A document is applied session by session: a session the host cannot serve (its own
//! invariants broken, no outer source of its target's family, no route to its target, a
//! target kind the control plane could not render) is set aside as a [`FailedSession`]
//! with the reason, and every other session still applies. Only what spoils the whole
//! document (a schema this build does not read, two sessions with one number, more
//! rules than the indexes hold) refuses it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tapwire_mirror::bpf::WHOLE_FRAME_SNAPLEN;
use tapwire_mirror::sampling::{Gate, Verdict};
use tapwire_mirror::{Classifier, CompileError, RAW_IPV6_HEADERS_LEN, SockFilter};
use tapwire_model::SessionId;
use tapwire_model::config::InterfaceConfig;

use crate::groups::AppliedGroup;
use crate::offload::OffloadMode;

/// Path MTU assumed when the route to a target cannot be looked up.
pub const DEFAULT_PATH_MTU: u32 = 1500;

/// Where one session's copies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    /// Outer source address (of the target's family).
    pub source: IpAddr,
    /// Target address and UDP port.
    pub destination: SocketAddr,
    /// Largest datagram (outer IP header included) that leaves unfragmented.
    pub path_mtu: u32,
}

/// What the host says of the route to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteLookup {
    /// A route whose MTU (or learnt path MTU) is this.
    Mtu(u32),
    /// No route: copies could not leave.
    Unreachable(String),
    /// Could not be told (the default MTU is assumed).
    Unknown,
}

/// A session of the document the agent set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedSession {
    /// The session.
    pub session_id: SessionId,
    /// Its number.
    pub number: u32,
    /// Why it is not mirrored.
    pub reason: String,
}

/// A compiled configuration.
#[derive(Debug)]
pub struct AppliedConfig {
    /// The document it was built from (every session, failed ones included).
    pub config: InterfaceConfig,
    /// The classifier, of the sessions that apply.
    pub classifier: Classifier,
    /// The kernel pre-filter (drops the agent's marked output first).
    pub prefilter: Vec<SockFilter>,
    /// Whether the pre-filter tests the rules (else it accepts all IP traffic).
    pub prefilter_exact: bool,
    /// Per session index of the classifier.
    pub paths: Vec<Path>,
    /// Per session index of the classifier: its sensor group, when its target is one.
    pub groups: Vec<Option<AppliedGroup>>,
    /// Sessions set aside, with why.
    pub failed: Vec<FailedSession>,
    /// The captured interface's MTU when the configuration was built (frames longer are
    /// offload super-frames); `None` = the pipeline's own setting.
    pub interface_mtu: Option<usize>,
    /// Per session index: the gate of a session with caps (`max-pps`, `max-bps`), shared
    /// by every capture worker so the cap holds for the interface as a whole. Sessions
    /// without caps keep a gate per worker, with no lock.
    pub caps: Vec<Option<Mutex<Gate>>>,
    /// What the shared gates' buckets are refilled by.
    pub built: Instant,
}

impl AppliedConfig {
    /// The shared gate's verdict on a copy of session `session`, if it has caps.
    pub fn admit_capped(&self, session: usize, flow_hash: u64, bytes: usize) -> Option<Verdict> {
        let gate = self.caps.get(session)?.as_ref()?;
        let now_ns = self.built.elapsed().as_nanos() as u64;
        Some(gate.lock().unwrap_or_else(PoisonError::into_inner).admit(flow_hash, bytes, now_ns))
    }
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

impl AppliedConfig {
    /// Compiles `config`; `route` says what the host knows of the route to an address.
    pub fn build(
        config: InterfaceConfig,
        mark: u32,
        offload: OffloadMode,
        route: &dyn Fn(IpAddr) -> RouteLookup,
    ) -> Result<Self, CompileError> {
        Self::build_with_health(config, mark, offload, route, &|_| true)
    }

    /// [`AppliedConfig::build`], with `healthy` saying which probed sensor-group members
    /// may take copies ([`crate::health`]).
    pub fn build_with_health(
        config: InterfaceConfig,
        mark: u32,
        offload: OffloadMode,
        route: &dyn Fn(IpAddr) -> RouteLookup,
        healthy: &dyn Fn(SocketAddr) -> bool,
    ) -> Result<Self, CompileError> {
        config.validate_document()?;
        let source_of = |target: IpAddr| config.addresses.iter().copied().find(|a| a.is_ipv4() == target.is_ipv4());
        let mut failed: Vec<FailedSession> = config
            .unsupported
            .iter()
            .map(|u| FailedSession { session_id: u.session_id, number: u.number.get(), reason: u.reason.clone() })
            .collect();
        let mut kept = Vec::new();
        let mut mtus = Vec::new();
        let mut groups = Vec::new();
        for s in &config.sessions {
            let target = s.target.address;
            let verdict = s.validate().map_err(|e| e.to_string()).and_then(|()| {
                if !s.enabled {
                    return Ok(DEFAULT_PATH_MTU);
                }
                if let Some(group) = &s.group {
                    let applied = AppliedGroup::build(group, &source_of, route, healthy)?;
                    let mtu = applied.members[0].1.path_mtu;
                    groups.push((s.session_id, applied));
                    return Ok(mtu);
                }
                if source_of(target).is_none() {
                    return Err(format!(
                        "the interface has no {} address to send copies to {target} from",
                        family(target)
                    ));
                }
                match route(target) {
                    RouteLookup::Mtu(mtu) => Ok(mtu),
                    RouteLookup::Unknown => Ok(DEFAULT_PATH_MTU),
                    RouteLookup::Unreachable(why) => Err(format!("no route to the target {target}: {why}")),
                }
            });
            match verdict {
                Ok(mtu) => {
                    kept.push(s.clone());
                    mtus.push((s.session_id, mtu));
                }
                Err(reason) => failed.push(FailedSession { session_id: s.session_id, number: s.number.get(), reason }),
            }
        }
        failed.sort_by_key(|f| f.number);
        let serving = InterfaceConfig { sessions: kept, unsupported: Vec::new(), ..config.clone() };
        let classifier = Classifier::compile(&serving)?;
        let mut prefilter = classifier.prefilter(Some(mark));
        if offload == OffloadMode::Segment {
            // Segmenting needs super-frames whole, whatever the packet lengths.
            prefilter = prefilter.with_snaplen(WHOLE_FRAME_SNAPLEN);
        }
        let paths = classifier
            .sessions()
            .iter()
            .map(|s| {
                let target = s.target.address;
                let mtu = mtus.iter().find(|(id, _)| *id == s.session_id).map_or(DEFAULT_PATH_MTU, |(_, m)| *m);
                Path {
                    // Disabled sessions never mirror; their source is a placeholder.
                    source: source_of(target).unwrap_or(target),
                    destination: SocketAddr::new(target, s.target.port),
                    path_mtu: mtu.max(RAW_IPV6_HEADERS_LEN as u32 + 64),
                }
            })
            .collect();
        let groups = classifier
            .sessions()
            .iter()
            .map(|s| groups.iter().find(|(id, _)| *id == s.session_id).map(|(_, g)| g.clone()))
            .collect();
        let caps = classifier
            .sessions()
            .iter()
            .map(|s| Some(Gate::new(&s.limits)).filter(Gate::capped).map(Mutex::new))
            .collect();
        Ok(Self {
            caps,
            built: Instant::now(),
            config,
            classifier,
            prefilter: prefilter.program,
            prefilter_exact: prefilter.exact,
            paths,
            groups,
            failed,
            interface_mtu: None,
        })
    }

    /// The revision of the document.
    pub fn revision(&self) -> u64 {
        self.config.revision
    }

    /// Whether the host's part (paths, set-aside sessions, interface MTU) differs from
    /// `other`'s: the document being the same, only then is a rebuild worth publishing.
    pub fn host_view_differs(&self, other: &AppliedConfig) -> bool {
        self.paths != other.paths
            || self.groups != other.groups
            || self.failed != other.failed
            || self.interface_mtu != other.interface_mtu
    }

    /// Every path copies may take: the sessions' own and their groups' members'.
    pub fn every_path(&self) -> Vec<Path> {
        let members = self.groups.iter().flatten().flat_map(|g| g.members.iter().map(|(_, p)| *p));
        self.paths.iter().copied().chain(members).collect()
    }
}

/// Hands configurations from the watcher to the capture thread.
#[derive(Debug, Default)]
pub struct ConfigSlot {
    generation: AtomicU64,
    current: Mutex<Option<Arc<AppliedConfig>>>,
    /// Generation the capture thread runs with.
    applied_generation: AtomicU64,
}

impl ConfigSlot {
    /// Publishes a configuration; returns its generation.
    pub fn publish(&self, config: Arc<AppliedConfig>) -> u64 {
        let mut slot = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(config);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The generation of the latest publication (0 = none yet).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The latest configuration and its generation.
    pub fn load(&self) -> (u64, Option<Arc<AppliedConfig>>) {
        let slot = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (self.generation.load(Ordering::Acquire), slot.clone())
    }

    /// The latest configuration published.
    pub fn latest(&self) -> Option<Arc<AppliedConfig>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records that the capture thread switched to `generation`.
    pub fn mark_applied(&self, generation: u64) {
        self.applied_generation.store(generation, Ordering::Release);
    }

    /// The generation the capture thread runs with.
    pub fn applied_generation(&self) -> u64 {
        self.applied_generation.load(Ordering::Acquire)
    }
}
