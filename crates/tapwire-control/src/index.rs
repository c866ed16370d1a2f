//! Derived indices of the [`crate::state::State`]: the counts quotas check and the
//! relations checks follow, so no check walks every resource of a kind.
//!
//! Invariant: an index is a function of the resource maps. It is built from them on load
//! ([`Index::rebuild`]) and updated by [`crate::state::State::apply`] with every put and
//! delete (the old value's entries out, the new value's in); nothing else writes it. The
//! maps are persistent (`imbl`), so cloning a state stays O(1).

use std::net::IpAddr;

use imbl::{HashMap, OrdMap, OrdSet};
use tapwire_model::ids::{AccountId, FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::numbers::{SessionNumber, Vni};
use tapwire_model::resource::{
    Filter, FilterRule, NetworkInterface, ResourceStatus, Scope, Session, SessionTarget, Target, TargetDestination,
};

use crate::ops::ResourceRef;

/// Counts and relations derived from the resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    filters_per_scope: HashMap<Scope, usize>,
    sessions_per_scope: HashMap<Scope, usize>,
    targets_per_scope: HashMap<Scope, usize>,
    interfaces_per_account: HashMap<AccountId, usize>,
    rules_by_filter: HashMap<FilterId, OrdSet<RuleId>>,
    sessions_by_source: HashMap<NetworkInterfaceId, OrdSet<SessionId>>,
    sessions_by_target: HashMap<SessionTarget, OrdSet<SessionId>>,
    sessions_by_filter: HashMap<FilterId, OrdSet<SessionId>>,
    /// Sessions per (scope, number): Alibaba priorities are unique per region.
    session_numbers: HashMap<(Scope, SessionNumber), usize>,
    /// VNIs in use per account, with how many sessions use each.
    vnis: HashMap<AccountId, HashMap<Vni, usize>>,
    targets_by_destination: HashMap<TargetDestination, OrdSet<TargetId>>,
    /// Interfaces by (account, interface name, host) and (account, interface name, instance).
    by_host: HashMap<(AccountId, String, String), NetworkInterfaceId>,
    by_instance: HashMap<(AccountId, String, String), NetworkInterfaceId>,
    /// Interfaces by (account, address): an address belongs to one interface of an account.
    by_address: HashMap<(AccountId, IpAddr), NetworkInterfaceId>,
    /// Interfaces by (account, MAC address, lower case).
    by_mac: HashMap<(AccountId, String), NetworkInterfaceId>,
    /// Resources whose background task has not finished.
    busy: OrdMap<ResourceRef, ResourceStatus>,
}

fn bump<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, usize>, key: K, up: bool) {
    let n = map.get(&key).copied().unwrap_or(0);
    let n = if up { n + 1 } else { n.saturating_sub(1) };
    if n == 0 {
        map.remove(&key);
    } else {
        map.insert(key, n);
    }
}

fn relate<K: std::hash::Hash + Eq + Clone, V: Ord + Clone>(
    map: &mut HashMap<K, OrdSet<V>>,
    key: K,
    value: V,
    up: bool,
) {
    let mut set = map.get(&key).cloned().unwrap_or_default();
    if up {
        set.insert(value);
    } else {
        set.remove(&value);
    }
    if set.is_empty() {
        map.remove(&key);
    } else {
        map.insert(key, set);
    }
}

impl Index {
    /// Builds every index from the resource maps.
    pub fn rebuild(
        filters: &OrdMap<FilterId, Filter>,
        rules: &OrdMap<RuleId, FilterRule>,
        sessions: &OrdMap<SessionId, Session>,
        targets: &OrdMap<TargetId, Target>,
        interfaces: &OrdMap<NetworkInterfaceId, NetworkInterface>,
    ) -> Self {
        let mut index = Self::default();
        filters.values().for_each(|f| index.filter(f, true));
        rules.values().for_each(|r| index.rule(r, true));
        sessions.values().for_each(|s| index.session(s, true));
        targets.values().for_each(|t| index.target(t, true));
        interfaces.values().for_each(|i| index.interface(i, true));
        index
    }

    fn mark_busy(&mut self, r: ResourceRef, status: ResourceStatus, up: bool) {
        if status == ResourceStatus::Created {
            return;
        }
        if up {
            self.busy.insert(r, status);
        } else {
            self.busy.remove(&r);
        }
    }

    /// Adds (`up`) or removes a filter's entries.
    pub fn filter(&mut self, f: &Filter, up: bool) {
        bump(&mut self.filters_per_scope, f.scope.clone(), up);
        self.mark_busy(ResourceRef::Filter(f.id), f.status, up);
    }

    /// Adds (`up`) or removes a rule's entries.
    pub fn rule(&mut self, r: &FilterRule, up: bool) {
        relate(&mut self.rules_by_filter, r.filter_id, r.id, up);
        self.mark_busy(ResourceRef::Rule(r.id), r.status, up);
    }

    /// Adds (`up`) or removes a session's entries.
    pub fn session(&mut self, s: &Session, up: bool) {
        bump(&mut self.sessions_per_scope, s.scope.clone(), up);
        for eni in &s.sources {
            relate(&mut self.sessions_by_source, *eni, s.id, up);
        }
        relate(&mut self.sessions_by_target, s.target.clone(), s.id, up);
        relate(&mut self.sessions_by_filter, s.filter_id, s.id, up);
        bump(&mut self.session_numbers, (s.scope.clone(), s.number), up);
        let mut vnis = self.vnis.get(&s.scope.account).cloned().unwrap_or_default();
        bump(&mut vnis, s.vni, up);
        if vnis.is_empty() {
            self.vnis.remove(&s.scope.account);
        } else {
            self.vnis.insert(s.scope.account, vnis);
        }
        self.mark_busy(ResourceRef::Session(s.id), s.status, up);
    }

    /// Adds (`up`) or removes a target's entries.
    pub fn target(&mut self, t: &Target, up: bool) {
        bump(&mut self.targets_per_scope, t.scope.clone(), up);
        relate(&mut self.targets_by_destination, t.destination.clone(), t.id, up);
    }

    /// Adds (`up`) or removes an interface's entries.
    pub fn interface(&mut self, i: &NetworkInterface, up: bool) {
        bump(&mut self.interfaces_per_account, i.scope.account, up);
        if let Some(mac) = &i.mac {
            let key = (i.scope.account, mac.to_ascii_lowercase());
            if up {
                self.by_mac.insert(key, i.id);
            } else if self.by_mac.get(&key) == Some(&i.id) {
                self.by_mac.remove(&key);
            }
        }
        for address in &i.addresses {
            let key = (i.scope.account, *address);
            if up {
                self.by_address.insert(key, i.id);
            } else if self.by_address.get(&key) == Some(&i.id) {
                self.by_address.remove(&key);
            }
        }
        if let Some(ifname) = &i.ifname {
            let account = i.scope.account;
            for (map, owner) in [(&mut self.by_host, &i.host), (&mut self.by_instance, &i.instance_id)] {
                if let Some(owner) = owner {
                    let key = (account, ifname.clone(), owner.clone());
                    if up {
                        map.insert(key, i.id);
                    } else if map.get(&key) == Some(&i.id) {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    // === reads ===

    /// Filters in `scope`.
    pub fn filters_in(&self, scope: &Scope) -> usize {
        self.filters_per_scope.get(scope).copied().unwrap_or(0)
    }

    /// Sessions in `scope`.
    pub fn sessions_in(&self, scope: &Scope) -> usize {
        self.sessions_per_scope.get(scope).copied().unwrap_or(0)
    }

    /// Targets in `scope`.
    pub fn targets_in(&self, scope: &Scope) -> usize {
        self.targets_per_scope.get(scope).copied().unwrap_or(0)
    }

    /// Interfaces of `account`.
    pub fn interfaces_of(&self, account: AccountId) -> usize {
        self.interfaces_per_account.get(&account).copied().unwrap_or(0)
    }

    /// Rules of a filter, by ID.
    pub fn rules_of(&self, filter: FilterId) -> impl Iterator<Item = RuleId> + '_ {
        self.rules_by_filter.get(&filter).into_iter().flat_map(|s| s.iter().copied())
    }

    /// Sessions with `eni` among their sources.
    pub fn sessions_from(&self, eni: NetworkInterfaceId) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions_by_source.get(&eni).into_iter().flat_map(|s| s.iter().copied())
    }

    /// Sessions whose destination is `target`.
    pub fn sessions_to(&self, target: &SessionTarget) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions_by_target.get(target).into_iter().flat_map(|s| s.iter().copied())
    }

    /// Whether a session uses `filter`.
    pub fn filter_in_use(&self, filter: FilterId) -> bool {
        self.sessions_by_filter.contains_key(&filter)
    }

    /// Sessions of `scope` numbered `number`.
    pub fn sessions_numbered(&self, scope: &Scope, number: SessionNumber) -> usize {
        self.session_numbers.get(&(scope.clone(), number)).copied().unwrap_or(0)
    }

    /// Whether a session of `account` uses `vni`.
    pub fn vni_in_use(&self, account: AccountId, vni: Vni) -> bool {
        self.vnis.get(&account).is_some_and(|m| m.contains_key(&vni))
    }

    /// Targets delivering to `destination`.
    pub fn targets_to(&self, destination: &TargetDestination) -> impl Iterator<Item = TargetId> + '_ {
        self.targets_by_destination.get(destination).into_iter().flat_map(|s| s.iter().copied())
    }

    /// The interface of `account` registered as `ifname` on host `host`.
    pub fn interface_on_host(&self, account: AccountId, ifname: &str, host: &str) -> Option<NetworkInterfaceId> {
        self.by_host.get(&(account, ifname.to_owned(), host.to_owned())).copied()
    }

    /// The interface of `account` registered as `ifname` of instance `instance`.
    pub fn interface_of_instance(
        &self,
        account: AccountId,
        ifname: &str,
        instance: &str,
    ) -> Option<NetworkInterfaceId> {
        self.by_instance.get(&(account, ifname.to_owned(), instance.to_owned())).copied()
    }

    /// The interface of `account` with MAC address `mac`.
    pub fn interface_with_mac(&self, account: AccountId, mac: &str) -> Option<NetworkInterfaceId> {
        self.by_mac.get(&(account, mac.to_ascii_lowercase())).copied()
    }

    /// The interface of `account` that holds `address`.
    pub fn interface_with_address(&self, account: AccountId, address: IpAddr) -> Option<NetworkInterfaceId> {
        self.by_address.get(&(account, address)).copied()
    }

    /// Resources whose background task has not finished, with their status.
    pub fn busy(&self) -> impl Iterator<Item = (ResourceRef, ResourceStatus)> + '_ {
        self.busy.iter().map(|(r, s)| (*r, *s))
    }
}
