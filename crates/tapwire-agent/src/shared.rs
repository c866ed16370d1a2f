//! What one monitored interface's threads share: the configuration slot, the counters the
//! capture thread publishes, the control-plane state the watcher keeps, and the host's
//! view of the interface the follower keeps current ([`crate::follow`]).
//!
//! Invariants: the configuration slot is written under [`InterfaceShared::apply_lock`]
//! only, by the watcher (a new revision) or the follower (the same revision rebuilt for
//! the host), so a rebuild never publishes an older document over a newer one. The host
//! generation moves when the addresses or MAC change, which is when the interface must be
//! registered again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tapwire_model::NetworkInterfaceId;

use crate::applied::ConfigSlot;
use crate::follow::Link;
use crate::host::HostInterface;
use crate::report::{ControlState, InterfaceReport};
use crate::watch::Registration;

/// State shared by one interface's capture thread, watcher, follower and status readers.
#[derive(Debug)]
pub struct InterfaceShared {
    /// Interface name.
    pub name: String,
    /// Configurations for the capture thread.
    pub slot: Arc<ConfigSlot>,
    /// Counters, published by the capture thread.
    pub counters: Mutex<InterfaceReport>,
    /// The interface index the capture is to be bound to.
    pub link: Link,
    control: Mutex<(Option<NetworkInterfaceId>, ControlState)>,
    host: Mutex<HostInterface>,
    host_generation: AtomicU64,
    missing: AtomicBool,
    apply: Mutex<()>,
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
    /// Fresh state for the interface `described`.
    pub fn new(described: &HostInterface) -> Self {
        let name = described.name.clone();
        Self {
            counters: Mutex::new(InterfaceReport { interface: name.clone(), ..Default::default() }),
            name,
            slot: Arc::new(ConfigSlot::default()),
            link: Link::new(described.ifindex),
            control: Mutex::new((None, ControlState::default())),
            host: Mutex::new(described.clone()),
            host_generation: AtomicU64::new(0),
            missing: AtomicBool::new(false),
            apply: Mutex::new(()),
        }
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

    /// Counters plus control-plane state.
    pub fn report(&self) -> InterfaceReport {
        let mut report = self.counters.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (eni, mut state) = self.control.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if !self.missing.load(Ordering::Relaxed) {
            state.link_error = None;
        }
        report.interface.clone_from(&self.name);
        report.network_interface_id = eni.map(|e| e.to_string());
        report.control = state;
        report
    }
}
