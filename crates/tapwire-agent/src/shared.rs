//! What one monitored interface's threads share: the configuration slot, the counters the
//! capture workers publish (one slot each, added up when read), the control-plane state
//! the watcher keeps, and the host's view of the interface the follower keeps current
//! ([`crate::follow`]).
//!
//! Invariants: the configuration slot is written under [`InterfaceShared::apply_lock`]
//! only, by the watcher (a new revision) or the follower (the same revision rebuilt for
//! the host), so a rebuild never publishes an older document over a newer one. The host
//! generation moves when the addresses or MAC change, which is when the interface must be
//! registered again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tapwire_model::NetworkInterfaceId;

use crate::applied::ConfigSlot;
use crate::follow::Link;
use crate::health::Health;
use crate::host::HostInterface;
use crate::report::{ControlState, InterfaceReport, MemberHealthReport};
use crate::watch::Registration;

/// State shared by one interface's capture thread, watcher, follower and status readers.
#[derive(Debug)]
pub struct InterfaceShared {
    /// Interface name.
    pub name: String,
    /// Configurations for the capture thread.
    pub slot: Arc<ConfigSlot>,
    /// Counters, one slot per capture worker, each published by its worker.
    pub counters: Vec<Mutex<InterfaceReport>>,
    /// The interface index the capture is to be bound to.
    pub link: Link,
    control: Mutex<(Option<NetworkInterfaceId>, ControlState)>,
    host: Mutex<HostInterface>,
    host_generation: AtomicU64,
    missing: AtomicBool,
    apply: Mutex<()>,
    /// The agent's health checks of sensor-group members (one for every interface).
    pub health: Arc<Health>,
}

/// What changed in a new description of the interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostChanges {
    /// A new interface index: the interface was made again.
    pub ifindex: bool,
    /// New addresses or MAC.
    pub addresses: bool,
    /// A new MTU.
    pub mtu: bool,
}

impl InterfaceShared {
    /// Fresh state for the interface `described`, captured by `workers` threads (at
    /// least one).
    pub fn new(described: &HostInterface, workers: usize) -> Self {
        let name = described.name.clone();
        let empty = || Mutex::new(InterfaceReport { interface: name.clone(), ..Default::default() });
        Self {
            counters: (0..workers.max(1)).map(|_| empty()).collect(),
            name,
            slot: Arc::new(ConfigSlot::default()),
            link: Link::new(described.ifindex),
            control: Mutex::new((None, ControlState::default())),
            host: Mutex::new(described.clone()),
            host_generation: AtomicU64::new(0),
            missing: AtomicBool::new(false),
            apply: Mutex::new(()),
            health: Arc::default(),
        }
    }

    /// The same, sharing `health` with the agent's other interfaces.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// The probes this interface's groups ask for: each checked member's address and port.
    pub fn probes(&self) -> Vec<SocketAddr> {
        let Some(applied) = self.slot.latest() else { return Vec::new() };
        let groups = applied.config.sessions.iter().filter_map(|s| s.group.as_ref());
        groups
            .filter_map(|g| g.health_check_port.map(|port| (g, port)))
            .flat_map(|(g, port)| g.members.iter().map(move |m| SocketAddr::new(m.target.address, port)))
            .collect()
    }

    /// What the health checks say of this interface's checked members, for its report.
    fn member_health(&self) -> Vec<MemberHealthReport> {
        let Some(applied) = self.slot.latest() else { return Vec::new() };
        let mut out = Vec::new();
        for g in applied.config.sessions.iter().filter_map(|s| s.group.as_ref()) {
            let Some(port) = g.health_check_port else { continue };
            for m in &g.members {
                if let Some(h) = self.health.of(SocketAddr::new(m.target.address, port))
                    && !out
                        .iter()
                        .any(|r: &MemberHealthReport| r.network_interface_id == m.network_interface_id.to_string())
                {
                    out.push(MemberHealthReport {
                        network_interface_id: m.network_interface_id.to_string(),
                        health: h,
                    });
                }
            }
        }
        out
    }

    /// The registered ID, once known.
    pub fn eni(&self) -> Option<NetworkInterfaceId> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    pub(crate) fn update_control(&self, f: impl FnOnce(&mut (Option<NetworkInterfaceId>, ControlState))) {
        f(&mut self.control.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The interface as last described.
    pub fn host(&self) -> HostInterface {
        self.host.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Moves when the addresses or MAC change.
    pub fn host_generation(&self) -> u64 {
        self.host_generation.load(Ordering::Acquire)
    }

    /// Takes a new description; says what changed.
    pub fn update_host(&self, described: &HostInterface) -> HostChanges {
        self.missing.store(false, Ordering::Relaxed);
        let mut host = self.host.lock().unwrap_or_else(PoisonError::into_inner);
        let changes = HostChanges {
            ifindex: host.ifindex != described.ifindex,
            addresses: host.addresses != described.addresses || host.mac != described.mac,
            mtu: host.mtu != described.mtu,
        };
        *host = described.clone();
        if changes.addresses {
            self.host_generation.fetch_add(1, Ordering::AcqRel);
        }
        changes
    }

    /// Notes that the interface could not be described; true the first time in a row.
    pub fn note_missing(&self, why: &str) -> bool {
        self.update_control(|(_, s)| s.link_error = Some(why.to_owned()));
        !self.missing.swap(true, Ordering::Relaxed)
    }

    /// What the agent registers for the interface now: `template`'s host name and
    /// instance, the interface's current MAC and addresses.
    pub fn registration(&self, template: &Registration) -> Registration {
        let host = self.host();
        Registration { mac: host.mac, addresses: host.addresses, ..template.clone() }
    }

    /// Held while a configuration is built and published.
    pub fn apply_lock(&self) -> MutexGuard<'_, ()> {
        self.apply.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every worker's counters added up, with each worker's share.
    pub fn counters(&self) -> InterfaceReport {
        let slots: Vec<_> = self.counters.iter().map(|c| c.lock().unwrap_or_else(PoisonError::into_inner)).collect();
        InterfaceReport::of_workers(slots.iter().map(|s| &**s))
    }

    /// Counters plus control-plane state.
    pub fn report(&self) -> InterfaceReport {
        let mut report = self.counters();
        let (eni, mut state) = self.control.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if !self.missing.load(Ordering::Relaxed) {
            state.link_error = None;
        }
        report.interface.clone_from(&self.name);
        report.network_interface_id = eni.map(|e| e.to_string());
        report.control = state;
        report.member_health = self.member_health();
        report
    }
}
