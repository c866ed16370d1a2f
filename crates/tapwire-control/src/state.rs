//! The control plane's working state: every resource, in memory, at one store revision.
//!
//! The maps are persistent (`imbl`): cloning a state is O(1) and shares structure, so the
//! writer can plan a batch of requests on a private copy while readers keep the published
//! snapshot.
//!
//! The state is only ever changed by applying a [`Change`] list that has already been
//! committed to the store, so memory never runs ahead of disk. Readers take a shared lock
//! and see a consistent revision.

use imbl::{HashMap, OrdMap, OrdSet};

use serde::{Deserialize, Serialize};
use tapwire_model::identity::{AccessKey, Account, JoinToken};
use tapwire_model::ids::{AccountId, FilterId, NetworkInterfaceId, RuleId, SensorGroupId, SessionId, TargetId};
use tapwire_model::resource::{
    Filter, FilterRule, NetworkInterface, Scope, Session, SessionTarget, Target, TargetDestination,
};
use tapwire_model::sensor_groups::SensorGroup;
use tapwire_store::{ChangeSet, Commit, Document, Snapshot, StoreError, StoredDocument};

use crate::index::Index;
use crate::ops::{FilterView, Output, ResourceRef, Task};

/// A region where an account opened the traffic mirror service (Alibaba).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Account and region.
    pub scope: Scope,
    /// When it was opened (seconds since the epoch).
    pub opened_at: i64,
}

impl ServiceRecord {
    fn key(scope: &Scope) -> String {
        format!("{}/{}", scope.account, scope.region)
    }
}

/// A stored ClientToken answer, kept for [`crate::config::ControlConfig::client_token_ttl`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Fingerprint (a hash) of the original parameters.
    pub fingerprint: String,
    /// The original answer.
    pub output: Output,
    /// When the first request was answered (seconds since the epoch); records written
    /// before this field existed read as 0 and expire at the first sweep.
    #[serde(default)]
    pub created_at: i64,
}

/// One resource or record, as it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace a filter.
    PutFilter(Filter),
    /// Delete a filter.
    DeleteFilter(FilterId),
    /// Insert or replace a rule.
    PutRule(FilterRule),
    /// Delete a rule.
    DeleteRule(RuleId),
    /// Insert or replace a session.
    PutSession(Session),
    /// Delete a session.
    DeleteSession(SessionId),
    /// Insert or replace a target.
    PutTarget(Target),
    /// Delete a target.
    DeleteTarget(TargetId),
    /// Insert or replace an interface.
    PutInterface(NetworkInterface),
    /// Delete an interface.
    DeleteInterface(NetworkInterfaceId),
    /// Remember a ClientToken answer under its key.
    PutIdempotency(String, IdempotencyRecord),
    /// Forget an expired ClientToken answer.
    DeleteIdempotency(String),
    /// Record that a region's traffic mirror service is open.
    PutService(ServiceRecord),
    /// Insert or replace an account.
    PutAccount(Account),
    /// Insert or replace an access key.
    PutAccessKey(AccessKey),
    /// Delete an access key.
    DeleteAccessKey(String),
    /// Insert or replace a join token.
    PutJoinToken(JoinToken),
    /// Delete a join token.
    DeleteJoinToken(String),
    /// Insert or replace a sensor group.
    PutSensorGroup(SensorGroup),
    /// Delete a sensor group.
    DeleteSensorGroup(SensorGroupId),
}

mod kind {
    pub const FILTER: &str = "filter";
    pub const RULE: &str = "rule";
    pub const SESSION: &str = "session";
    pub const TARGET: &str = "target";
    pub const INTERFACE: &str = "interface";
    pub const IDEMPOTENCY: &str = "idempotency";
    pub const SERVICE: &str = "service";
    pub const ACCOUNT: &str = "account";
    pub const ACCESS_KEY: &str = "access_key";
    pub const JOIN_TOKEN: &str = "join_token";
    pub const SENSOR_GROUP: &str = "sensor_group";
}

/// Everything the control plane knows.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Store revision this state reflects.
    pub revision: u64,
    /// Filters by ID.
    pub filters: OrdMap<FilterId, Filter>,
    /// Rules by ID.
    pub rules: OrdMap<RuleId, FilterRule>,
    /// Sessions by ID.
    pub sessions: OrdMap<SessionId, Session>,
    /// Targets by ID.
    pub targets: OrdMap<TargetId, Target>,
    /// Interfaces by ID.
    pub interfaces: OrdMap<NetworkInterfaceId, NetworkInterface>,
    /// ClientToken answers by `account/action/token`.
    pub idempotency: HashMap<String, IdempotencyRecord>,
    /// Opened traffic mirror services by `account/region`.
    pub services: OrdMap<String, ServiceRecord>,
    /// Accounts by ID.
    pub accounts: OrdMap<AccountId, Account>,
    /// Access keys by ID.
    pub access_keys: OrdMap<String, AccessKey>,
    /// Join tokens by ID.
    pub join_tokens: OrdMap<String, JoinToken>,
    /// Sensor groups by ID.
    pub sensor_groups: OrdMap<SensorGroupId, SensorGroup>,
    /// ClientToken keys by the time their record was written, oldest first.
    pub idempotency_by_age: OrdSet<(i64, String)>,
    /// Counts and relations derived from the maps above.
    pub index: Index,
}

fn decode<T: serde::de::DeserializeOwned>(kind: &str, id: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Backend(format!("document {kind}/{id} is unreadable: {e}")))
}

fn encode<T: Serialize>(kind: &'static str, id: String, value: &T) -> Result<Document, StoreError> {
    let body = serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(Document { kind, id, body })
}

/// The change that puts a stored document (the inverse of [`State::commit_for`]'s puts).
fn put_of(d: &StoredDocument) -> Result<Change, StoreError> {
    let (k, id, body) = (d.kind.as_str(), d.id.as_str(), d.body.as_str());
    Ok(match k {
        kind::FILTER => Change::PutFilter(decode(k, id, body)?),
        kind::RULE => Change::PutRule(decode(k, id, body)?),
        kind::SESSION => Change::PutSession(decode(k, id, body)?),
        kind::TARGET => Change::PutTarget(decode(k, id, body)?),
        kind::INTERFACE => Change::PutInterface(decode(k, id, body)?),
        kind::IDEMPOTENCY => Change::PutIdempotency(id.to_owned(), decode(k, id, body)?),
        kind::SERVICE => Change::PutService(decode(k, id, body)?),
        kind::ACCOUNT => Change::PutAccount(decode(k, id, body)?),
        kind::ACCESS_KEY => Change::PutAccessKey(decode(k, id, body)?),
        kind::JOIN_TOKEN => Change::PutJoinToken(decode(k, id, body)?),
        kind::SENSOR_GROUP => Change::PutSensorGroup(decode(k, id, body)?),
        other => return Err(StoreError::Backend(format!("unknown document kind {other:?}"))),
    })
}

/// The change that deletes a document, from its kind and ID.
fn deletion_of(k: &str, id: &str) -> Result<Change, StoreError> {
    fn parsed<T: std::str::FromStr>(k: &str, id: &str) -> Result<T, StoreError> {
        id.parse().map_err(|_| StoreError::Backend(format!("deleted document {k}/{id} has an unreadable ID")))
    }
    Ok(match k {
        kind::FILTER => Change::DeleteFilter(parsed(k, id)?),
        kind::RULE => Change::DeleteRule(parsed(k, id)?),
        kind::SESSION => Change::DeleteSession(parsed(k, id)?),
        kind::TARGET => Change::DeleteTarget(parsed(k, id)?),
        kind::INTERFACE => Change::DeleteInterface(parsed(k, id)?),
        kind::IDEMPOTENCY => Change::DeleteIdempotency(id.to_owned()),
        kind::ACCESS_KEY => Change::DeleteAccessKey(id.to_owned()),
        kind::JOIN_TOKEN => Change::DeleteJoinToken(id.to_owned()),
        kind::SENSOR_GROUP => Change::DeleteSensorGroup(parsed(k, id)?),
        other => return Err(StoreError::Backend(format!("documents of kind {other:?} are never deleted"))),
    })
}

/// The idempotency key of a ClientToken: tokens are scoped by account and region.
pub fn idempotency_key(scope: &Scope, action: &str, token: &str) -> String {
    format!("{}/{}/{action}/{token}", scope.account, scope.region)
}

impl State {
    /// Rebuilds the state from a store snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, StoreError> {
        let mut state = State::default();
        let changes = snapshot.documents.iter().map(put_of).collect::<Result<Vec<_>, _>>()?;
        state.apply(changes, snapshot.revision);
        // The whole index at once, as a load defines it.
        state.index = Index::rebuild(&state.filters, &state.rules, &state.sessions, &state.targets, &state.interfaces);
        Ok(state)
    }

    /// One commit that writes every document of `snapshot` into an empty store (each
    /// read and checked on the way: an unreadable document stops the move).
    pub fn commit_of_snapshot(snapshot: &Snapshot) -> Result<Commit, StoreError> {
        let changes = snapshot.documents.iter().map(put_of).collect::<Result<Vec<_>, _>>()?;
        Self::commit_for(0, &changes)
    }

    /// Brings the state up to `set.revision` with what another replica committed.
    pub fn apply_stored(&mut self, set: ChangeSet) -> Result<(), StoreError> {
        let mut changes = set.puts.iter().map(put_of).collect::<Result<Vec<_>, _>>()?;
        for (kind, id) in &set.deletes {
            changes.push(deletion_of(kind, id)?);
        }
        self.apply(changes, set.revision);
        Ok(())
    }

    /// The store commit that persists `changes` on top of `base_revision`.
    pub fn commit_for(base_revision: u64, changes: &[Change]) -> Result<Commit, StoreError> {
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for c in changes {
            match c {
                Change::PutFilter(v) => puts.push(encode(kind::FILTER, v.id.to_string(), v)?),
                Change::PutRule(v) => puts.push(encode(kind::RULE, v.id.to_string(), v)?),
                Change::PutSession(v) => puts.push(encode(kind::SESSION, v.id.to_string(), v)?),
                Change::PutTarget(v) => puts.push(encode(kind::TARGET, v.id.to_string(), v)?),
                Change::PutInterface(v) => puts.push(encode(kind::INTERFACE, v.id.to_string(), v)?),
                Change::PutIdempotency(key, v) => puts.push(encode(kind::IDEMPOTENCY, key.clone(), v)?),
                Change::DeleteIdempotency(key) => deletes.push((kind::IDEMPOTENCY, key.clone())),
                Change::PutService(v) => puts.push(encode(kind::SERVICE, ServiceRecord::key(&v.scope), v)?),
                Change::PutAccount(v) => puts.push(encode(kind::ACCOUNT, v.id.to_string(), v)?),
                Change::PutAccessKey(v) => puts.push(encode(kind::ACCESS_KEY, v.id.clone(), v)?),
                Change::DeleteAccessKey(id) => deletes.push((kind::ACCESS_KEY, id.clone())),
                Change::PutJoinToken(v) => puts.push(encode(kind::JOIN_TOKEN, v.id.clone(), v)?),
                Change::DeleteJoinToken(id) => deletes.push((kind::JOIN_TOKEN, id.clone())),
                Change::PutSensorGroup(v) => puts.push(encode(kind::SENSOR_GROUP, v.id.to_string(), v)?),
                Change::DeleteSensorGroup(id) => deletes.push((kind::SENSOR_GROUP, id.to_string())),
                Change::DeleteFilter(id) => deletes.push((kind::FILTER, id.to_string())),
                Change::DeleteRule(id) => deletes.push((kind::RULE, id.to_string())),
                Change::DeleteSession(id) => deletes.push((kind::SESSION, id.to_string())),
                Change::DeleteTarget(id) => deletes.push((kind::TARGET, id.to_string())),
                Change::DeleteInterface(id) => deletes.push((kind::INTERFACE, id.to_string())),
            }
        }
        Ok(Commit { base_revision, puts, deletes, ..Commit::default() })
    }

    /// Applies committed changes and moves to `revision`, keeping the index in step.
    pub fn apply(&mut self, changes: Vec<Change>, revision: u64) {
        for c in changes {
            match c {
                Change::PutFilter(v) => {
                    if let Some(old) = self.filters.remove(&v.id) {
                        self.index.filter(&old, false);
                    }
                    self.index.filter(&v, true);
                    self.filters.insert(v.id, v);
                }
                Change::PutRule(v) => {
                    if let Some(old) = self.rules.remove(&v.id) {
                        self.index.rule(&old, false);
                    }
                    self.index.rule(&v, true);
                    self.rules.insert(v.id, v);
                }
                Change::PutSession(v) => {
                    if let Some(old) = self.sessions.remove(&v.id) {
                        self.index.session(&old, false);
                    }
                    self.index.session(&v, true);
                    self.sessions.insert(v.id, v);
                }
                Change::PutTarget(v) => {
                    if let Some(old) = self.targets.remove(&v.id) {
                        self.index.target(&old, false);
                    }
                    self.index.target(&v, true);
                    self.targets.insert(v.id, v);
                }
                Change::PutInterface(v) => {
                    if let Some(old) = self.interfaces.remove(&v.id) {
                        self.index.interface(&old, false);
                    }
                    self.index.interface(&v, true);
                    self.interfaces.insert(v.id, v);
                }
                Change::PutIdempotency(key, v) => {
                    self.idempotency_by_age.insert((v.created_at, key.clone()));
                    if let Some(old) = self.idempotency.insert(key.clone(), v) {
                        self.idempotency_by_age.remove(&(old.created_at, key));
                    }
                }
                Change::DeleteIdempotency(key) => {
                    if let Some(old) = self.idempotency.remove(&key) {
                        self.idempotency_by_age.remove(&(old.created_at, key));
                    }
                }
                Change::PutService(v) => {
                    self.services.insert(ServiceRecord::key(&v.scope), v);
                }
                Change::PutAccount(v) => {
                    self.accounts.insert(v.id, v);
                }
                Change::PutAccessKey(v) => {
                    self.access_keys.insert(v.id.clone(), v);
                }
                Change::DeleteAccessKey(id) => {
                    self.access_keys.remove(&id);
                }
                Change::PutJoinToken(v) => {
                    self.join_tokens.insert(v.id.clone(), v);
                }
                Change::DeleteJoinToken(id) => {
                    self.join_tokens.remove(&id);
                }
                Change::PutSensorGroup(v) => {
                    self.sensor_groups.insert(v.id, v);
                }
                Change::DeleteSensorGroup(id) => {
                    self.sensor_groups.remove(&id);
                }
                Change::DeleteFilter(id) => {
                    if let Some(old) = self.filters.remove(&id) {
                        self.index.filter(&old, false);
                    }
                }
                Change::DeleteRule(id) => {
                    if let Some(old) = self.rules.remove(&id) {
                        self.index.rule(&old, false);
                    }
                }
                Change::DeleteSession(id) => {
                    if let Some(old) = self.sessions.remove(&id) {
                        self.index.session(&old, false);
                    }
                }
                Change::DeleteTarget(id) => {
                    if let Some(old) = self.targets.remove(&id) {
                        self.index.target(&old, false);
                    }
                }
                Change::DeleteInterface(id) => {
                    if let Some(old) = self.interfaces.remove(&id) {
                        self.index.interface(&old, false);
                    }
                }
            }
        }
        self.revision = revision;
    }

    /// Rules of a filter, ordered by direction then number.
    pub fn rules_of(&self, filter: FilterId) -> Vec<FilterRule> {
        let mut rules: Vec<FilterRule> =
            self.index.rules_of(filter).filter_map(|id| self.rules.get(&id).cloned()).collect();
        rules.sort_by_key(|r| (r.direction, r.number));
        rules
    }

    /// A filter with its rules.
    pub fn filter_view(&self, filter: &Filter) -> FilterView {
        FilterView { filter: filter.clone(), rules: self.rules_of(filter.id) }
    }

    /// Sessions that have `eni` among their sources.
    pub fn sessions_from(&self, eni: NetworkInterfaceId) -> impl Iterator<Item = &Session> {
        self.index.sessions_from(eni).filter_map(|id| self.sessions.get(&id))
    }

    /// Sessions whose destination is `target`.
    pub fn sessions_to(&self, target: &SessionTarget) -> impl Iterator<Item = &Session> {
        self.index.sessions_to(target).filter_map(|id| self.sessions.get(&id))
    }

    /// Targets delivering to `destination`.
    pub fn targets_to(&self, destination: &TargetDestination) -> impl Iterator<Item = &Target> {
        self.index.targets_to(destination).filter_map(|id| self.targets.get(&id))
    }

    /// The target whose destination is `eni`, if any.
    pub fn target_on_interface(&self, eni: NetworkInterfaceId) -> Option<&Target> {
        self.targets_to(&TargetDestination::NetworkInterface(eni)).next()
    }

    /// Whether `eni` receives copies, through a target or named directly by a session.
    pub fn interface_is_destination(&self, eni: NetworkInterfaceId) -> bool {
        self.target_on_interface(eni).is_some()
            || self.index.sessions_to(&SessionTarget::NetworkInterface(eni)).next().is_some()
    }

    /// The interface a session's copies go to, if it resolves to one.
    pub fn destination_interface(&self, target: &SessionTarget) -> Option<&NetworkInterface> {
        let eni = match target {
            SessionTarget::Target(id) => match &self.targets.get(id)?.destination {
                TargetDestination::NetworkInterface(eni) => *eni,
                _ => return None,
            },
            SessionTarget::NetworkInterface(eni) => *eni,
            SessionTarget::LoadBalancer(_) => return None,
        };
        self.interfaces.get(&eni)
    }

    /// The `tmt-` target a session's copies go through: its own (EC2), or, for a session
    /// that names its destination directly (Alibaba), the target of the same scope on that
    /// interface or load balancer, if there is one.
    pub fn session_target_id(&self, s: &Session) -> Option<TargetId> {
        let same_scope = |t: &&Target| t.scope == s.scope;
        match &s.target {
            SessionTarget::Target(id) => Some(*id),
            SessionTarget::NetworkInterface(eni) => self.target_on_interface(*eni).filter(same_scope).map(|t| t.id),
            SessionTarget::LoadBalancer(lb) => [
                TargetDestination::NetworkLoadBalancer(lb.clone()),
                TargetDestination::GatewayLoadBalancerEndpoint(lb.clone()),
            ]
            .iter()
            .find_map(|d| self.targets_to(d).find(same_scope))
            .map(|t| t.id),
        }
    }

    /// Whether EC2 can show a session faithfully: exactly one source, enabled (EC2 has no
    /// disabled sessions), and a destination that is an EC2 target. Sessions made through
    /// Alibaba may be none of these (docs/dialects.md).
    pub fn ec2_can_show(&self, s: &Session) -> bool {
        s.sources.len() == 1 && s.enabled && self.session_target_id(s).is_some()
    }

    /// The load balancer a session's copies go to, by name (an NLB ARN, a GWLB endpoint
    /// ID or an SLB instance ID), when its target is one.
    pub fn load_balancer_of<'s>(&'s self, target: &'s SessionTarget) -> Option<&'s str> {
        match target {
            SessionTarget::LoadBalancer(name) => Some(name),
            SessionTarget::Target(id) => match &self.targets.get(id)?.destination {
                TargetDestination::NetworkLoadBalancer(n) | TargetDestination::GatewayLoadBalancerEndpoint(n) => {
                    Some(n)
                }
                TargetDestination::NetworkInterface(_) => None,
            },
            SessionTarget::NetworkInterface(_) => None,
        }
    }

    /// Sessions of `group`'s account whose copies go to it (through a target or by name).
    pub fn sessions_to_group<'s>(&'s self, group: &'s SensorGroup) -> impl Iterator<Item = &'s Session> + 's {
        self.sessions.values().filter(move |s| {
            s.scope.account == group.scope.account
                && self.load_balancer_of(&s.target).is_some_and(|n| group.is_named(n))
        })
    }

    /// Whether a target of `group`'s account names it.
    pub fn target_names_group(&self, group: &SensorGroup) -> bool {
        self.targets.values().any(|t| {
            t.scope.account == group.scope.account
                && matches!(&t.destination,
                    TargetDestination::NetworkLoadBalancer(n) | TargetDestination::GatewayLoadBalancerEndpoint(n)
                        if group.is_named(n))
        })
    }

    /// The sensor group a load balancer name (NLB ARN, GWLB endpoint or SLB ID) stands
    /// for in `scope`'s account (groups, like the interfaces they hold, are account-wide).
    pub fn sensor_group_named(&self, scope: &Scope, name: &str) -> Option<&SensorGroup> {
        self.sensor_groups.values().find(|g| g.scope.account == scope.account && g.is_named(name))
    }

    /// The root account, once there is one.
    pub fn root_account(&self) -> Option<&Account> {
        self.accounts.values().find(|a| a.root)
    }

    /// Access keys of `account`.
    pub fn access_keys_of(&self, account: AccountId) -> impl Iterator<Item = &AccessKey> {
        self.access_keys.values().filter(move |k| k.account == account)
    }

    /// The agent credentials of `host` in `account`.
    pub fn agent_keys_of(&self, account: AccountId, host: &str) -> impl Iterator<Item = &AccessKey> {
        self.access_keys_of(account).filter(move |k| k.agent_host.as_deref() == Some(host))
    }

    /// Whether the traffic mirror service is open for `scope` (Alibaba).
    pub fn service_open(&self, scope: &Scope) -> bool {
        self.services.contains_key(&ServiceRecord::key(scope))
    }

    /// Every resource whose background task has not finished, with the scope it lives in.
    pub fn pending_tasks(&self) -> Vec<(Task, Scope)> {
        self.index
            .busy()
            .filter_map(|(resource, status)| {
                let scope = match resource {
                    ResourceRef::Filter(id) => self.filters.get(&id)?.scope.clone(),
                    ResourceRef::Rule(id) => self.filters.get(&self.rules.get(&id)?.filter_id)?.scope.clone(),
                    ResourceRef::Session(id) => self.sessions.get(&id)?.scope.clone(),
                    ResourceRef::Target(id) => self.targets.get(&id)?.scope.clone(),
                    ResourceRef::Interface(id) => self.interfaces.get(&id)?.scope.clone(),
                };
                Some((Task { resource, status }, scope))
            })
            .collect()
    }

    /// ClientToken keys whose record was written before `cutoff`, oldest first.
    pub fn idempotency_older_than(&self, cutoff: i64) -> impl Iterator<Item = &String> {
        self.idempotency_by_age.iter().take_while(move |(at, _)| *at < cutoff).map(|(_, key)| key)
    }
}
