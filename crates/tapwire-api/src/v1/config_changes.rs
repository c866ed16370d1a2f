//! When each interface's configuration last changed: the revision an agent long-polls
//! past. The store's revision moves with every write; an interface's document changes
//! only with the writes that touch it. Keying the long poll on the document's own
//! revision means a write wakes only the agents whose configuration it changed.
//!
//! Invariants:
//! - A document's revision is the state revision at which this replica first rendered its
//!   current content; it never goes back (a render from an older snapshot keeps the
//!   snapshot's revision and leaves the record alone).
//! - One entry per interface rendered, dropped when the interface is gone; an entry is a
//!   content hash and a revision (16 bytes and the map's overhead).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use tapwire_control::{State, render};
use tapwire_model::NetworkInterfaceId;
use tapwire_model::config::InterfaceConfig;

/// Per interface: the hash of its document's content and the revision it appeared at.
#[derive(Debug, Default)]
pub struct ConfigChanges(Mutex<HashMap<NetworkInterfaceId, (u64, u64)>>);

impl ConfigChanges {
    /// `eni`'s document as of `state`, its `revision` the one at which its content last
    /// changed; `None` when the interface does not exist.
    pub fn render(&self, state: &State, eni: NetworkInterfaceId, dns_resolvers: &[IpAddr]) -> Option<InterfaceConfig> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut config) = render::interface_config(state, eni, dns_resolvers) else {
            seen.remove(&eni);
            return None;
        };
        config.revision = 0;
        let mut hasher = DefaultHasher::new();
        serde_json::to_vec(&config).unwrap_or_default().hash(&mut hasher);
        let content = hasher.finish();
        let entry = seen.entry(eni).or_insert((content, state.revision));
        if entry.0 != content && state.revision > entry.1 {
            *entry = (content, state.revision);
        }
        config.revision = if entry.0 == content { entry.1 } else { state.revision };
        if seen.len() > 2 * state.interfaces.len() + 1024 {
            seen.retain(|id, _| state.interfaces.contains_key(id));
        }
        Some(config)
    }
}
