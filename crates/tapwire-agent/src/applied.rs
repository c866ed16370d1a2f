//! The configuration the data plane runs with, and the slot that hands a new one from the
//! config watcher to the capture thread.
//!
//! The watcher compiles a new [`AppliedConfig`] (classifier, kernel pre-filter, the route
//! to every target) off the packet path, stores it in the [`ConfigSlot`] and bumps the
//! slot's generation. The capture thread compares the generation (one atomic load per
//! poll) and only then takes the mutex to clone the `Arc`: no lock on the per-packet path,
//! and a swap is atomic (a packet sees either the old or the new configuration whole).

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tapwire_mirror::bpf::WHOLE_FRAME_SNAPLEN;
use tapwire_mirror::{Classifier, CompileError, RAW_IPV4_HEADERS_LEN, SockFilter};
use tapwire_model::config::InterfaceConfig;

use crate::offload::OffloadMode;

/// Path MTU assumed when the route to a target cannot be looked up.
pub const DEFAULT_PATH_MTU: u32 = 1500;

/// Where one session's copies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An IPv4 target reached from `source`; datagrams stay within `path_mtu` bytes.
    Ipv4 {
        /// Outer source address.
        source: Ipv4Addr,
        /// Target address and UDP port.
        destination: SocketAddrV4,
        /// Largest datagram (outer IPv4 header included) that leaves unfragmented.
        path_mtu: u32,
    },
    /// No way to send (IPv6 targets are not supported yet, or no outer source).
    Unsupported,
}

/// A compiled configuration.
#[derive(Debug)]
pub struct AppliedConfig {
    /// The document it was built from.
    pub config: InterfaceConfig,
    /// The classifier.
    pub classifier: Classifier,
    /// The kernel pre-filter (drops the agent's marked output first).
    pub prefilter: Vec<SockFilter>,
    /// Whether the pre-filter tests the rules (else it accepts all IP traffic).
    pub prefilter_exact: bool,
    /// Per session index of the classifier.
    pub routes: Vec<Route>,
}

impl AppliedConfig {
    /// Compiles `config`; `route_mtu` gives the MTU of the route to an address.
    pub fn build(
        config: InterfaceConfig,
        mark: u32,
        offload: OffloadMode,
        route_mtu: &dyn Fn(IpAddr) -> Option<u32>,
    ) -> Result<Self, CompileError> {
        let classifier = Classifier::compile(&config)?;
        let mut prefilter = classifier.prefilter(Some(mark));
        if offload == OffloadMode::Segment {
            // Segmenting needs super-frames whole, whatever the packet lengths.
            prefilter = prefilter.with_snaplen(WHOLE_FRAME_SNAPLEN);
        }
        let routes = classifier
            .sessions()
            .iter()
            .map(|s| match (s.target.address, classifier.outer_source(s.target.address)) {
                (IpAddr::V4(target), Some(IpAddr::V4(source))) => {
                    let mtu = route_mtu(IpAddr::V4(target)).unwrap_or(DEFAULT_PATH_MTU);
                    Route::Ipv4 {
                        source,
                        destination: SocketAddrV4::new(target, s.target.port),
                        path_mtu: mtu.max(RAW_IPV4_HEADERS_LEN as u32 + 64),
                    }
                }
                _ => Route::Unsupported,
            })
            .collect();
        Ok(Self { config, classifier, prefilter: prefilter.program, prefilter_exact: prefilter.exact, routes })
    }

    /// The revision of the document.
    pub fn revision(&self) -> u64 {
        self.config.revision
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

    /// Records that the capture thread switched to `generation`.
    pub fn mark_applied(&self, generation: u64) {
        self.applied_generation.store(generation, Ordering::Release);
    }

    /// The generation the capture thread runs with.
    pub fn applied_generation(&self) -> u64 {
        self.applied_generation.load(Ordering::Acquire)
    }
}
