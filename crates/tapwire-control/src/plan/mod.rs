//! Planning: turn one operation into the changes it makes, or the error it earns.
//!
//! A [`Planner`] reads the state as it was when the operation started and records
//! changes; nothing is written until the caller commits them. Every check for an
//! operation runs before its first change is recorded, so a failed operation changes
//! nothing.
//!
//! One file per resource, as in the dialect codecs: [`filters`] (filters and their
//! rules), [`sessions`], [`targets`], [`tags`], [`interfaces`], [`identity`] (accounts
//! and access keys), and [`lifecycle`] (Alibaba's service opening, background tasks,
//! expired ClientTokens). This file holds what they share:
//! the lookups scoped to the caller, fresh IDs, and [`Planner::run`].

mod agents;
mod filters;
mod identity;
mod interfaces;
mod lifecycle;
mod sensor_groups;
mod sessions;
mod tags;
mod targets;

use imbl::OrdMap;
use tapwire_model::ids::{FilterId, IdSuffix, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::resource::{Filter, FilterRule, NetworkInterface, Scope, Session, Target};

use crate::config::ControlConfig;
use crate::dialect::Dialect;
use crate::entropy::Entropy;
use crate::error::{ApiError, ErrorKind, Quota, ResourceKind};
use crate::ops::{Operation, Output, RequestContext};
use crate::state::{Change, State};

/// Plans one operation against one state.
pub struct Planner<'a> {
    state: &'a State,
    ctx: &'a RequestContext,
    dialect: Dialect,
    now: i64,
    config: &'a ControlConfig,
    entropy: &'a mut dyn Entropy,
    changes: Vec<Change>,
}

impl<'a> Planner<'a> {
    /// A planner for one operation of `ctx` against `state`, at time `now`.
    pub fn new(
        state: &'a State,
        ctx: &'a RequestContext,
        dialect: Dialect,
        now: i64,
        config: &'a ControlConfig,
        entropy: &'a mut dyn Entropy,
    ) -> Self {
        Self { state, ctx, dialect, now, config, entropy, changes: Vec::new() }
    }

    /// The changes recorded so far, in the order they apply.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    /// Runs every check of `op` and records its changes; one line per operation.
    pub fn run(&mut self, op: Operation) -> Result<Output, ApiError> {
        if self.dialect == Dialect::Alibaba && op != Operation::OpenService {
            self.check_service_open()?;
        }
        match op {
            Operation::CreateFilter { name, description, tags, resource_group, rules } => {
                self.create_filter(name, description, tags, resource_group, rules)
            }
            Operation::DeleteFilter(id) => self.delete_filter(id),
            Operation::ModifyFilter { filter_id, name, description } => {
                self.modify_filter(filter_id, name, description)
            }
            Operation::ModifyNetworkServices { filter_id, add, remove } => {
                self.modify_network_services(filter_id, add, remove)
            }
            Operation::CreateRule { filter_id, rule } => self.create_rule(filter_id, rule),
            Operation::ModifyRule { rule_id, changes } => self.modify_rule(rule_id, changes),
            Operation::DeleteRule(id) => self.delete_rule(id),
            Operation::CreateRules { filter_id, rules } => self.create_rules(filter_id, rules),
            Operation::DeleteRules { filter_id, rule_ids } => self.delete_rules(filter_id, rule_ids),
            Operation::CreateSession(new) => self.create_session(new),
            Operation::ModifySession { session_id, changes } => self.modify_session(session_id, changes),
            Operation::DeleteSession(id) => self.delete_session(id),
            Operation::AddSources { session_id, sources } => self.add_sources(session_id, sources),
            Operation::RemoveSources { session_id, sources } => self.remove_sources(session_id, sources),
            Operation::CreateTarget { destination, description, tags } => {
                self.create_target(destination, description, tags)
            }
            Operation::DeleteTarget(id) => self.delete_target(id),
            Operation::CreateTags { resources, tags } => self.create_tags(resources, tags),
            Operation::DeleteTags { resources, tags } => self.delete_tags(resources, tags),
            Operation::MoveResourceGroup { resource, resource_group } => {
                self.move_resource_group(resource, resource_group)
            }
            Operation::OpenService => self.open_service(),
            Operation::CompleteTask(task) => self.complete_task(task),
            Operation::ForgetClientTokens(keys) => self.forget_client_tokens(keys),
            Operation::CreateAccount { name, root } => self.create_account(name, root),
            Operation::CreateAccessKey { account, key_id, sealed_secret, policy } => {
                self.create_access_key(account, key_id, sealed_secret, policy)
            }
            Operation::DeleteAccessKey(key_id) => self.delete_access_key(key_id),
            Operation::CreateJoinToken(token) => self.create_join_token(token),
            Operation::DeleteJoinToken(id) => self.delete_join_token(id),
            Operation::EnrollAgent { token_id, presented_hash, host, key_id, sealed_secret } => {
                self.enroll_agent(token_id, presented_hash, host, key_id, sealed_secret)
            }
            Operation::RevokeAgent { host } => self.revoke_agent(host),
            Operation::RegisterInterface(reg) => self.register_interface(reg),
            Operation::DeregisterInterface(id) => self.deregister_interface(id),
            Operation::CreateSensorGroup { name, members, mode, health_check } => {
                self.create_sensor_group(name, members, mode, health_check)
            }
            Operation::ModifySensorGroup { id, add, remove } => self.modify_sensor_group(id, add, remove),
            Operation::DeleteSensorGroup(id) => self.delete_sensor_group(id),
        }
    }

    // === lookups (scoped to the caller) ===

    fn in_scope(&self, scope: &Scope) -> bool {
        scope.account == self.ctx.account && scope.region == self.ctx.region
    }

    fn scope(&self) -> Scope {
        Scope { account: self.ctx.account, region: self.ctx.region.clone() }
    }

    fn filter(&self, id: FilterId) -> Result<&'a Filter, ApiError> {
        lookup(&self.state.filters, &id, |f| self.in_scope(&f.scope))
            .ok_or_else(|| ApiError::not_found(ResourceKind::Filter, &id.to_string()))
    }

    fn rule(&self, id: RuleId) -> Result<&'a FilterRule, ApiError> {
        let filters = &self.state.filters;
        lookup(&self.state.rules, &id, |r| filters.get(&r.filter_id).is_some_and(|f| self.in_scope(&f.scope)))
            .ok_or_else(|| ApiError::not_found(ResourceKind::FilterRule, &self.rule_name(id)))
    }

    /// A rule ID as the caller's dialect spells it.
    fn rule_name(&self, id: RuleId) -> String {
        match self.dialect {
            Dialect::Alibaba => id.alibaba(),
            Dialect::Ec2 | Dialect::Tapwire => id.to_string(),
        }
    }

    fn session(&self, id: SessionId) -> Result<&'a Session, ApiError> {
        lookup(&self.state.sessions, &id, |s| self.in_scope(&s.scope))
            .ok_or_else(|| ApiError::not_found(ResourceKind::Session, &id.to_string()))
    }

    fn target(&self, id: TargetId) -> Result<&'a Target, ApiError> {
        lookup(&self.state.targets, &id, |t| self.in_scope(&t.scope))
            .ok_or_else(|| ApiError::not_found(ResourceKind::Target, &id.to_string()))
    }

    /// Interfaces are an account-wide inventory (a host does not move between regions).
    fn interface(&self, id: NetworkInterfaceId) -> Result<&'a NetworkInterface, ApiError> {
        lookup(&self.state.interfaces, &id, |i| i.scope.account == self.ctx.account)
            .ok_or_else(|| ApiError::not_found(ResourceKind::NetworkInterface, &id.to_string()))
    }

    /// A random ID of one kind that `existing` does not hold yet.
    fn fresh_id<K: Ord + Clone, V: Clone>(&mut self, existing: &OrdMap<K, V>, make: fn(IdSuffix) -> K) -> K {
        loop {
            let mut bytes = [0u8; 9];
            self.entropy.fill(&mut bytes);
            let id = make(IdSuffix::from_random(bytes));
            if !existing.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The value under `id` if the caller may see it.
fn lookup<'m, K: Ord + Clone, V: Clone>(map: &'m OrdMap<K, V>, id: &K, visible: impl Fn(&V) -> bool) -> Option<&'m V> {
    map.get(id).filter(|v| visible(v))
}

/// A quota error.
fn quota(which: Quota, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Quota(which), message)
}
