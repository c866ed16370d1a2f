//! Planning: turn one operation into the changes it makes, or the error it earns.
//!
//! A [`Planner`] reads the state as it was when the operation started and records
//! changes; nothing is written until the caller commits them. Every check for an
//! operation runs before its first change is recorded, so a failed operation changes
//! nothing.

use std::collections::{BTreeSet, HashSet};

use imbl::OrdMap;

use tapwire_model::ids::{FilterId, IdSuffix, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::limits::{self, alibaba_tags, ec2_tags};
use tapwire_model::resource::{
    Filter, FilterRule, NetworkInterface, ResourceStatus, Scope, Session, SessionTarget, Tag, Tags, Target,
    TargetDestination, upsert_tag,
};
use tapwire_model::rule::{RuleMatch, protocol};

use crate::error::{ApiError, ErrorKind, Quota, ResourceKind};
use crate::ops::{
    InterfaceRegistration, NewRule, NewSession, Operation, Output, RequestContext, ResourceRef, RuleChanges,
    SessionChanges, TagSelector, Task,
};
use crate::state::{Change, ServiceRecord, State};
use crate::{ControlConfig, Dialect, Entropy};

/// Plans one operation against one state.
pub(crate) struct Planner<'a> {
    state: &'a State,
    ctx: &'a RequestContext,
    dialect: Dialect,
    now: i64,
    config: &'a ControlConfig,
    entropy: &'a mut dyn Entropy,
    changes: Vec<Change>,
}

fn quota(which: Quota, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Quota(which), message)
}

impl<'a> Planner<'a> {
    pub(crate) fn new(
        state: &'a State,
        ctx: &'a RequestContext,
        dialect: Dialect,
        now: i64,
        config: &'a ControlConfig,
        entropy: &'a mut dyn Entropy,
    ) -> Self {
        Self { state, ctx, dialect, now, config, entropy, changes: Vec::new() }
    }

    pub(crate) fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    pub(crate) fn run(&mut self, op: Operation) -> Result<Output, ApiError> {
        if self.dialect == Dialect::Alibaba && op != Operation::OpenService {
            self.check_service_open()?;
        }
        match op {
            Operation::CreateFilter { name, description, tags, resource_group, rules } => {
                self.create_filter(name, description, tags, resource_group, rules)
            }
            Operation::DeleteFilter(id) => self.delete_filter(id),
            Operation::ModifyFilter { filter_id, name, description } => {
                let mut filter = self.filter(filter_id)?.clone();
                self.check_idle(filter.status, ResourceKind::Filter)?;
                filter.name = name.apply(filter.name);
                filter.description = description.apply(filter.description);
                filter.status = self.busy_status(ResourceStatus::Modifying);
                self.changes.push(Change::PutFilter(filter.clone()));
                Ok(Output::Filter(self.view_after(filter)))
            }
            Operation::ModifyNetworkServices { filter_id, add, remove } => {
                let mut filter = self.filter(filter_id)?.clone();
                self.check_idle(filter.status, ResourceKind::Filter)?;
                filter.network_services.extend(add);
                filter.network_services.retain(|s| !remove.contains(s));
                self.changes.push(Change::PutFilter(filter.clone()));
                Ok(Output::Filter(self.view_after(filter)))
            }
            Operation::CreateRule { filter_id, rule } => {
                let filter = self.filter(filter_id)?;
                self.check_idle(filter.status, ResourceKind::Filter)?;
                let created = self.plan_rules(filter_id, vec![rule])?;
                Ok(Output::Rule(created.into_iter().next().ok_or_else(|| ApiError::internal("no rule planned"))?))
            }
            Operation::ModifyRule { rule_id, changes } => self.modify_rule(rule_id, changes),
            Operation::DeleteRule(id) => {
                let rule = self.rule(id)?;
                self.check_idle(rule.status, ResourceKind::FilterRule)?;
                self.remove_rule(rule);
                Ok(Output::Deleted(id.to_string()))
            }
            Operation::CreateRules { filter_id, rules } => {
                let filter = self.filter(filter_id)?;
                self.check_idle(filter.status, ResourceKind::Filter)?;
                Ok(Output::Rules(self.plan_rules(filter_id, rules)?))
            }
            Operation::DeleteRules { filter_id, rule_ids } => self.delete_rules(filter_id, rule_ids),
            Operation::CreateSession(new) => self.create_session(new),
            Operation::ModifySession { session_id, changes } => self.modify_session(session_id, changes),
            Operation::DeleteSession(id) => {
                let session = self.session(id)?;
                self.check_idle(session.status, ResourceKind::Session)?;
                let change = match self.dialect {
                    Dialect::Alibaba => {
                        Change::PutSession(Session { status: ResourceStatus::Deleting, ..session.clone() })
                    }
                    Dialect::Ec2 | Dialect::Tapwire => Change::DeleteSession(id),
                };
                self.changes.push(change);
                Ok(Output::Deleted(id.to_string()))
            }
            Operation::AddSources { session_id, sources } => self.add_sources(session_id, sources),
            Operation::RemoveSources { session_id, sources } => self.remove_sources(session_id, sources),
            Operation::CreateTarget { destination, description, tags } => {
                self.create_target(destination, description, tags)
            }
            Operation::DeleteTarget(id) => {
                self.target(id)?;
                if self.state.sessions.values().any(|s| s.target == SessionTarget::Target(id)) {
                    return Err(ApiError::new(
                        ErrorKind::TargetInUse,
                        format!("The traffic mirror target '{id}' is in use by a traffic mirror session."),
                    ));
                }
                self.changes.push(Change::DeleteTarget(id));
                Ok(Output::Deleted(id.to_string()))
            }
            Operation::CreateTags { resources, tags } => self.create_tags(resources, tags),
            Operation::DeleteTags { resources, tags } => self.delete_tags(resources, tags),
            Operation::MoveResourceGroup { resource, resource_group } => {
                let change = match resource {
                    ResourceRef::Filter(id) => {
                        Change::PutFilter(Filter { resource_group: Some(resource_group), ..self.filter(id)?.clone() })
                    }
                    ResourceRef::Session(id) => Change::PutSession(Session {
                        resource_group: Some(resource_group),
                        ..self.session(id)?.clone()
                    }),
                    ResourceRef::Rule(_) | ResourceRef::Target(_) => {
                        return Err(ApiError::invalid("Only filters and sessions belong to resource groups."));
                    }
                };
                self.changes.push(change);
                Ok(Output::Done)
            }
            Operation::OpenService => {
                let scope = self.scope();
                if self.state.service_open(&scope) {
                    return Err(ApiError::new(
                        ErrorKind::AlreadyOpened,
                        format!("The traffic mirror service is already opened in region {}.", scope.region),
                    ));
                }
                self.changes.push(Change::PutService(ServiceRecord { scope, opened_at: self.now }));
                Ok(Output::Done)
            }
            Operation::CompleteTask(task) => {
                self.complete_task(task);
                Ok(Output::Done)
            }
            Operation::RegisterInterface(reg) => self.register_interface(reg),
            Operation::DeregisterInterface(id) => self.deregister_interface(id),
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

    fn check_idle(&self, status: ResourceStatus, kind: ResourceKind) -> Result<(), ApiError> {
        if status == ResourceStatus::Created {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::IncorrectStatus(kind),
            format!("The resource is {} and cannot be changed until that finishes.", status.as_str()),
        ))
    }

    /// Alibaba: nothing but opening the service works before the service is opened.
    fn check_service_open(&self) -> Result<(), ApiError> {
        if self.state.service_open(&self.scope()) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::OptInRequired,
            format!(
                "The traffic mirror service is not opened in region {}; call OpenTrafficMirrorService first.",
                self.ctx.region
            ),
        ))
    }

    /// Ends a task: busy resources become `Created`, `Deleting` ones go (a filter with its
    /// rules). A task whose resource has moved on since it was listed is left alone.
    fn complete_task(&mut self, task: Task) {
        let done = |status: ResourceStatus| status == task.status;
        let deleting = task.status == ResourceStatus::Deleting;
        match task.resource {
            ResourceRef::Filter(id) => match self.state.filters.get(&id) {
                Some(f) if done(f.status) && deleting => {
                    for rule in self.state.rules_of(id) {
                        self.changes.push(Change::DeleteRule(rule.id));
                    }
                    self.changes.push(Change::DeleteFilter(id));
                }
                Some(f) if done(f.status) => {
                    self.changes.push(Change::PutFilter(Filter { status: ResourceStatus::Created, ..f.clone() }));
                }
                _ => {}
            },
            ResourceRef::Rule(id) => match self.state.rules.get(&id) {
                Some(r) if done(r.status) && deleting => self.changes.push(Change::DeleteRule(id)),
                Some(r) if done(r.status) => {
                    self.changes.push(Change::PutRule(FilterRule { status: ResourceStatus::Created, ..r.clone() }));
                }
                _ => {}
            },
            ResourceRef::Session(id) => match self.state.sessions.get(&id) {
                Some(s) if done(s.status) && deleting => self.changes.push(Change::DeleteSession(id)),
                Some(s) if done(s.status) => {
                    self.changes.push(Change::PutSession(Session { status: ResourceStatus::Created, ..s.clone() }));
                }
                _ => {}
            },
            ResourceRef::Target(_) => {}
        }
    }

    /// Deletes a rule now (EC2) or marks it `Deleting` for the background task (Alibaba).
    fn remove_rule(&mut self, rule: &FilterRule) {
        let change = match self.dialect {
            Dialect::Alibaba => Change::PutRule(FilterRule { status: ResourceStatus::Deleting, ..rule.clone() }),
            Dialect::Ec2 | Dialect::Tapwire => Change::DeleteRule(rule.id),
        };
        self.changes.push(change);
    }

    /// The status a changed resource enters: Alibaba shows the background task.
    fn busy_status(&self, while_busy: ResourceStatus) -> ResourceStatus {
        match self.dialect {
            Dialect::Alibaba => while_busy,
            Dialect::Ec2 | Dialect::Tapwire => ResourceStatus::Created,
        }
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

    // === filters and rules ===

    fn view_after(&self, filter: Filter) -> crate::ops::FilterView {
        let mut rules: Vec<FilterRule> = self.state.rules_of(filter.id);
        for c in &self.changes {
            match c {
                Change::PutRule(r) if r.filter_id == filter.id => {
                    rules.retain(|x| x.id != r.id);
                    rules.push(r.clone());
                }
                Change::DeleteRule(id) => rules.retain(|x| x.id != *id),
                _ => {}
            }
        }
        rules.sort_by_key(|r| (r.direction, r.number));
        crate::ops::FilterView { filter, rules }
    }

    fn create_filter(
        &mut self,
        name: Option<String>,
        description: Option<String>,
        tags: Vec<Tag>,
        resource_group: Option<String>,
        rules: Vec<NewRule>,
    ) -> Result<Output, ApiError> {
        let count = self.state.filters.values().filter(|f| self.in_scope(&f.scope)).count();
        if count >= self.config.quotas.filters_per_account {
            return Err(quota(Quota::Filters, "The maximum number of traffic mirror filters has been reached."));
        }
        let tags = self.merged_tags(Vec::new(), tags)?;
        let id = self.fresh_id(&self.state.filters, FilterId::from_suffix);
        let filter = Filter {
            id,
            scope: self.scope(),
            name,
            description,
            network_services: BTreeSet::new(),
            tags,
            resource_group,
            status: self.busy_status(ResourceStatus::Creating),
            created_at: self.now,
        };
        let rules = self.plan_rules(id, rules)?;
        self.changes.insert(0, Change::PutFilter(filter.clone()));
        Ok(Output::Filter(crate::ops::FilterView { filter, rules }))
    }

    fn delete_filter(&mut self, id: FilterId) -> Result<Output, ApiError> {
        let filter = self.filter(id)?;
        self.check_idle(filter.status, ResourceKind::Filter)?;
        if self.state.sessions.values().any(|s| s.filter_id == id) {
            return Err(ApiError::new(
                ErrorKind::FilterInUse,
                format!("The traffic mirror filter '{id}' is in use by a traffic mirror session."),
            ));
        }
        let rules = self.state.rules_of(id);
        for rule in &rules {
            self.check_idle(rule.status, ResourceKind::FilterRule)?;
        }
        match self.dialect {
            Dialect::Alibaba => {
                for rule in rules {
                    self.remove_rule(&rule);
                }
                let marked = Filter { status: ResourceStatus::Deleting, ..filter.clone() };
                self.changes.push(Change::PutFilter(marked));
            }
            Dialect::Ec2 | Dialect::Tapwire => {
                for rule in rules {
                    self.changes.push(Change::DeleteRule(rule.id));
                }
                self.changes.push(Change::DeleteFilter(id));
            }
        }
        Ok(Output::Deleted(id.to_string()))
    }

    /// Deletes rules of one filter; every rule must exist, belong to it and be idle.
    fn delete_rules(&mut self, filter_id: FilterId, rule_ids: Vec<RuleId>) -> Result<Output, ApiError> {
        let filter = self.filter(filter_id)?;
        self.check_idle(filter.status, ResourceKind::Filter)?;
        let mut rules = Vec::with_capacity(rule_ids.len());
        let mut seen = BTreeSet::new();
        for id in rule_ids {
            let rule = self.rule(id)?;
            if rule.filter_id != filter_id {
                return Err(ApiError::not_found(ResourceKind::FilterRule, &self.rule_name(id)));
            }
            self.check_idle(rule.status, ResourceKind::FilterRule)?;
            if seen.insert(id) {
                rules.push(rule);
            }
        }
        for rule in rules {
            self.remove_rule(rule);
        }
        Ok(Output::Done)
    }

    /// Validates and records new rules of one filter; checks them against the existing
    /// rules and each other.
    fn plan_rules(&mut self, filter_id: FilterId, new: Vec<NewRule>) -> Result<Vec<FilterRule>, ApiError> {
        let mut all = self.state.rules_of(filter_id);
        let mut created = Vec::with_capacity(new.len());
        for n in new {
            check_rule_match(&n.matches)?;
            check_rule_number(n.number)?;
            let tags = self.merged_tags(Vec::new(), n.tags)?;
            let id = self.fresh_id(&self.state.rules, RuleId::from_suffix);
            let rule = FilterRule {
                id,
                filter_id,
                direction: n.direction,
                number: n.number,
                action: n.action,
                matches: n.matches,
                description: n.description,
                tags,
                status: self.busy_status(ResourceStatus::Creating),
            };
            self.check_rule_fits(&all, &rule)?;
            all.push(rule.clone());
            created.push(rule);
        }
        for rule in &created {
            self.changes.push(Change::PutRule(rule.clone()));
        }
        Ok(created)
    }

    /// Rule numbers are unique per direction, and each direction has a quota.
    fn check_rule_fits(&self, others: &[FilterRule], rule: &FilterRule) -> Result<(), ApiError> {
        let same_direction = || others.iter().filter(|r| r.direction == rule.direction && r.id != rule.id);
        if same_direction().any(|r| r.number == rule.number) {
            return Err(ApiError::new(
                ErrorKind::RuleAlreadyExists,
                format!(
                    "A traffic mirror filter rule with rule number {} already exists in the {} direction.",
                    rule.number, rule.direction
                ),
            ));
        }
        if same_direction().count() >= self.config.quotas.rules_per_filter_direction {
            return Err(quota(
                Quota::Rules,
                format!(
                    "The maximum number of {} rules ({}) for the traffic mirror filter has been reached.",
                    rule.direction, self.config.quotas.rules_per_filter_direction
                ),
            ));
        }
        Ok(())
    }

    fn modify_rule(&mut self, id: RuleId, ch: RuleChanges) -> Result<Output, ApiError> {
        let mut rule = self.rule(id)?.clone();
        self.check_idle(rule.status, ResourceKind::FilterRule)?;
        if let Some(d) = ch.direction {
            rule.direction = d;
        }
        if let Some(n) = ch.number {
            check_rule_number(n)?;
            rule.number = n;
        }
        if let Some(a) = ch.action {
            rule.action = a;
        }
        let m = &mut rule.matches;
        m.protocol = ch.protocol.apply(m.protocol);
        m.source_ports = ch.source_ports.apply(m.source_ports);
        m.destination_ports = ch.destination_ports.apply(m.destination_ports);
        if let Some(c) = ch.source_cidr {
            m.source_cidr = c;
        }
        if let Some(c) = ch.destination_cidr {
            m.destination_cidr = c;
        }
        rule.description = ch.description.apply(rule.description);
        check_rule_match(&rule.matches)?;
        let others = self.state.rules_of(rule.filter_id);
        self.check_rule_fits(&others, &rule)?;
        rule.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutRule(rule.clone()));
        Ok(Output::Rule(rule))
    }

    // === sessions ===

    fn resolve_session_target(&self, target: &SessionTarget) -> Result<Option<NetworkInterfaceId>, ApiError> {
        match target {
            SessionTarget::Target(id) => Ok(match &self.target(*id)?.destination {
                TargetDestination::NetworkInterface(eni) => Some(*eni),
                _ => None,
            }),
            SessionTarget::NetworkInterface(eni) => {
                let iface = self.interface(*eni)?;
                if self.state.sessions_from(iface.id).next().is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseBySession,
                        format!("The network interface '{eni}' is the source of a traffic mirror session."),
                    ));
                }
                Ok(Some(*eni))
            }
            SessionTarget::LoadBalancer(_) => Ok(None),
        }
    }

    /// Checks that a session (new or changed) may exist as `session` alongside the others.
    fn check_session(&self, session: &Session, previous: Option<&Session>) -> Result<(), ApiError> {
        check_session_number(session.number)?;
        if !limits::VNI.contains(&session.vni) {
            return Err(ApiError::invalid(format!("The virtual network ID {} is not 24-bit.", session.vni)));
        }
        if self.filter(session.filter_id)?.status == ResourceStatus::Deleting {
            return Err(ApiError::new(
                ErrorKind::IncorrectStatus(ResourceKind::Filter),
                format!("The traffic mirror filter '{}' is being deleted.", session.filter_id),
            ));
        }
        let target_eni = self.resolve_session_target(&session.target)?;
        let others = || self.state.sessions.values().filter(|s| s.id != session.id);
        let mut seen = HashSet::new();
        for &eni in &session.sources {
            if !seen.insert(eni) {
                return Err(ApiError::new(
                    ErrorKind::DuplicateSource,
                    format!("The network interface '{eni}' is given more than once."),
                ));
            }
            let iface = self.interface(eni)?;
            let was_source = previous.is_some_and(|p| p.sources.contains(&eni));
            if !was_source {
                if iface.is_free() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceNotSupported,
                        format!(
                            "The network interface '{eni}' is not attached to a host or instance and cannot be mirrored."
                        ),
                    ));
                }
                if self.state.interface_is_destination(eni) || target_eni == Some(eni) {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseByTarget,
                        format!("The network interface '{eni}' is used by a traffic mirror target."),
                    ));
                }
                let on_interface = others().filter(|s| s.sources.contains(&eni)).count();
                if on_interface >= self.config.quotas.sessions_per_interface {
                    return Err(quota(
                        Quota::SessionsPerInterface,
                        format!(
                            "The network interface '{eni}' already has the maximum number of traffic mirror sessions ({}).",
                            self.config.quotas.sessions_per_interface
                        ),
                    ));
                }
            }
            if target_eni == Some(eni) {
                return Err(ApiError::new(
                    ErrorKind::InterfaceInUseByTarget,
                    format!("The network interface '{eni}' cannot mirror to itself."),
                ));
            }
            if let Some(clash) = others().find(|s| s.sources.contains(&eni) && s.number == session.number) {
                return Err(ApiError::invalid(format!(
                    "The session number {} is already used by traffic mirror session '{}' on network interface '{eni}'.",
                    session.number, clash.id
                )));
            }
        }
        if session.sources.len() > self.config.quotas.sources_per_session {
            return Err(quota(
                Quota::SourcesPerSession,
                format!(
                    "A traffic mirror session can have at most {} sources.",
                    self.config.quotas.sources_per_session
                ),
            ));
        }
        let target_changed = previous.is_none_or(|p| p.target != session.target);
        if target_changed {
            let to_target: Vec<&Session> = others().filter(|s| s.target == session.target).collect();
            let per_target = self.config.quotas.sessions_per_target;
            if per_target > 0 && to_target.len() >= per_target {
                return Err(quota(
                    Quota::SessionsPerTarget,
                    "The traffic mirror target has the maximum number of sessions.",
                ));
            }
            if target_eni.is_some() {
                let mut sources: HashSet<NetworkInterfaceId> =
                    to_target.iter().flat_map(|s| s.sources.iter().copied()).collect();
                sources.extend(session.sources.iter().copied());
                if sources.len() > self.config.quotas.sources_per_interface_target {
                    return Err(quota(
                        Quota::SourcesPerTarget,
                        format!(
                            "The traffic mirror target can have at most {} source network interfaces.",
                            self.config.quotas.sources_per_interface_target
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A random VNI that no other session of the account uses.
    fn random_vni(&mut self, except: Option<SessionId>) -> u32 {
        let used: HashSet<u32> = self
            .state
            .sessions
            .values()
            .filter(|s| s.scope.account == self.ctx.account && Some(s.id) != except)
            .map(|s| s.vni)
            .collect();
        loop {
            let mut b = [0u8; 4];
            self.entropy.fill(&mut b);
            let vni = u32::from_be_bytes(b) & limits::VNI.end();
            if limits::RANDOM_VNI.contains(&vni) && !used.contains(&vni) {
                return vni;
            }
        }
    }

    fn create_session(&mut self, new: NewSession) -> Result<Output, ApiError> {
        let count = self.state.sessions.values().filter(|s| self.in_scope(&s.scope)).count();
        if count >= self.config.quotas.sessions_per_account {
            return Err(quota(Quota::Sessions, "The maximum number of traffic mirror sessions has been reached."));
        }
        if new.sources.is_empty() {
            return Err(ApiError::missing("NetworkInterfaceId"));
        }
        let tags = self.merged_tags(Vec::new(), new.tags)?;
        let id = self.fresh_id(&self.state.sessions, SessionId::from_suffix);
        let vni = match new.vni {
            Some(v) => v,
            None => self.random_vni(None),
        };
        let mut session = Session {
            id,
            scope: self.scope(),
            sources: new.sources,
            target: new.target,
            filter_id: new.filter_id,
            number: new.number,
            vni,
            packet_length: new.packet_length,
            enabled: new.enabled,
            name: new.name,
            description: new.description,
            tags,
            resource_group: new.resource_group,
            status: self.busy_status(ResourceStatus::Creating),
            created_at: self.now,
        };
        self.default_load_balancer_length(&mut session);
        self.check_session(&session, None)?;
        self.check_alibaba_priority(&session)?;
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    /// EC2 reports 8500 bytes for sessions to load balancers that set no packet length.
    fn default_load_balancer_length(&self, session: &mut Session) {
        if self.dialect != Dialect::Ec2 || session.packet_length.is_some() {
            return;
        }
        let to_load_balancer = match &session.target {
            SessionTarget::Target(id) => self
                .state
                .targets
                .get(id)
                .is_some_and(|t| !matches!(t.destination, TargetDestination::NetworkInterface(_))),
            SessionTarget::LoadBalancer(_) => true,
            SessionTarget::NetworkInterface(_) => false,
        };
        if to_load_balancer {
            session.packet_length = Some(limits::NLB_DEFAULT_PACKET_LENGTH);
        }
    }

    /// Alibaba session priorities are unique per account and region.
    fn check_alibaba_priority(&self, session: &Session) -> Result<(), ApiError> {
        if self.dialect != Dialect::Alibaba {
            return Ok(());
        }
        let clash = self
            .state
            .sessions
            .values()
            .any(|s| s.id != session.id && self.in_scope(&s.scope) && s.number == session.number);
        if clash {
            return Err(ApiError::invalid(format!(
                "The priority {} is already used by another traffic mirror session in this region.",
                session.number
            )));
        }
        Ok(())
    }

    fn modify_session(&mut self, id: SessionId, ch: SessionChanges) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        self.check_idle(previous.status, ResourceKind::Session)?;
        let mut session = previous.clone();
        if let Some(t) = ch.target {
            session.target = t;
        }
        if let Some(f) = ch.filter_id {
            session.filter_id = f;
        }
        if let Some(n) = ch.number {
            session.number = n;
        }
        match ch.vni {
            crate::ops::Update::Keep => {}
            crate::ops::Update::Set(v) => session.vni = v,
            crate::ops::Update::Remove => session.vni = self.random_vni(Some(id)),
        }
        session.packet_length = ch.packet_length.apply(session.packet_length);
        if let Some(e) = ch.enabled {
            session.enabled = e;
        }
        session.name = ch.name.apply(session.name);
        session.description = ch.description.apply(session.description);
        self.default_load_balancer_length(&mut session);
        self.put_changed_session(session, previous)
    }

    /// Records a changed session once the checks every session change needs have passed.
    fn put_changed_session(&mut self, mut session: Session, previous: &Session) -> Result<Output, ApiError> {
        self.check_session(&session, Some(previous))?;
        self.check_alibaba_priority(&session)?;
        session.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    fn add_sources(&mut self, id: SessionId, sources: Vec<NetworkInterfaceId>) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        self.check_idle(previous.status, ResourceKind::Session)?;
        check_distinct(&sources)?;
        if let Some(eni) = sources.iter().find(|eni| previous.sources.contains(eni)) {
            return Err(ApiError::new(
                ErrorKind::SourceAlreadyInSession,
                format!("The network interface '{eni}' is already a source of traffic mirror session '{id}'."),
            ));
        }
        let mut session = previous.clone();
        session.sources.extend(sources);
        self.put_changed_session(session, previous)
    }

    fn remove_sources(&mut self, id: SessionId, sources: Vec<NetworkInterfaceId>) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        self.check_idle(previous.status, ResourceKind::Session)?;
        check_distinct(&sources)?;
        if let Some(eni) = sources.iter().find(|eni| !previous.sources.contains(eni)) {
            return Err(ApiError::new(
                ErrorKind::SourceNotInSession,
                format!("The network interface '{eni}' is not a source of traffic mirror session '{id}'."),
            ));
        }
        let mut session = previous.clone();
        session.sources.retain(|eni| !sources.contains(eni));
        session.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    // === targets ===

    fn create_target(
        &mut self,
        destination: TargetDestination,
        description: Option<String>,
        tags: Vec<Tag>,
    ) -> Result<Output, ApiError> {
        let count = self.state.targets.values().filter(|t| self.in_scope(&t.scope)).count();
        if count >= self.config.quotas.targets_per_account {
            return Err(quota(Quota::Targets, "The maximum number of traffic mirror targets has been reached."));
        }
        match &destination {
            TargetDestination::NetworkInterface(eni) => {
                self.interface(*eni)?;
                if self.state.sessions_from(*eni).next().is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseBySession,
                        format!("The network interface '{eni}' is the source of a traffic mirror session."),
                    ));
                }
                if self.state.target_on_interface(*eni).is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseByTarget,
                        format!("The network interface '{eni}' is already used by a traffic mirror target."),
                    ));
                }
            }
            other => {
                if self.state.targets.values().any(|t| self.in_scope(&t.scope) && t.destination == *other) {
                    return Err(ApiError::new(
                        ErrorKind::LoadBalancerInUseByTarget,
                        "The load balancer is already used by a traffic mirror target.",
                    ));
                }
            }
        }
        let tags = self.merged_tags(Vec::new(), tags)?;
        let id = self.fresh_id(&self.state.targets, TargetId::from_suffix);
        let target = Target { id, scope: self.scope(), destination, description, tags, created_at: self.now };
        self.changes.push(Change::PutTarget(target.clone()));
        Ok(Output::Target(target))
    }

    // === tags ===

    fn tags_of(&self, r: ResourceRef) -> Result<Tags, ApiError> {
        Ok(match r {
            ResourceRef::Filter(id) => self.filter(id)?.tags.clone(),
            ResourceRef::Rule(id) => self.rule(id)?.tags.clone(),
            ResourceRef::Session(id) => self.session(id)?.tags.clone(),
            ResourceRef::Target(id) => self.target(id)?.tags.clone(),
        })
    }

    fn put_tags(&mut self, r: ResourceRef, tags: Tags) -> Result<(), ApiError> {
        let change = match r {
            ResourceRef::Filter(id) => Change::PutFilter(Filter { tags, ..self.filter(id)?.clone() }),
            ResourceRef::Rule(id) => Change::PutRule(FilterRule { tags, ..self.rule(id)?.clone() }),
            ResourceRef::Session(id) => Change::PutSession(Session { tags, ..self.session(id)?.clone() }),
            ResourceRef::Target(id) => Change::PutTarget(Target { tags, ..self.target(id)?.clone() }),
        };
        self.changes.push(change);
        Ok(())
    }

    fn create_tags(&mut self, resources: Vec<ResourceRef>, tags: Vec<Tag>) -> Result<Output, ApiError> {
        let mut planned = Vec::with_capacity(resources.len());
        for r in dedup(resources) {
            planned.push((r, self.merged_tags(self.tags_of(r)?, tags.clone())?));
        }
        for (r, t) in planned {
            self.put_tags(r, t)?;
        }
        Ok(Output::Done)
    }

    fn delete_tags(&mut self, resources: Vec<ResourceRef>, selectors: Vec<TagSelector>) -> Result<Output, ApiError> {
        let mut planned = Vec::with_capacity(resources.len());
        for r in dedup(resources) {
            let mut tags = self.tags_of(r)?;
            if selectors.is_empty() {
                tags.clear();
            } else {
                tags.retain(|t| {
                    !selectors.iter().any(|s| s.key == t.key && s.value.as_ref().is_none_or(|v| *v == t.value))
                });
            }
            planned.push((r, tags));
        }
        for (r, t) in planned {
            self.put_tags(r, t)?;
        }
        Ok(Output::Done)
    }

    // === interfaces ===

    fn register_interface(&mut self, reg: InterfaceRegistration) -> Result<Output, ApiError> {
        if reg.addresses.is_empty() {
            return Err(ApiError::missing("ip"));
        }
        // Stable identity: the same (host or instance, interface name) is the same eni-.
        let same = |i: &&NetworkInterface| {
            i.scope.account == self.ctx.account
                && reg.ifname.is_some()
                && i.ifname == reg.ifname
                && ((reg.host.is_some() && i.host == reg.host)
                    || (reg.host.is_none() && reg.instance_id.is_some() && i.instance_id == reg.instance_id))
        };
        let existing = self.state.interfaces.values().find(same).cloned();
        let iface = match existing {
            Some(mut i) => {
                i.addresses = reg.addresses;
                i.mac = reg.mac.or(i.mac);
                i.instance_id = reg.instance_id.or(i.instance_id);
                i.host = reg.host.or(i.host);
                i
            }
            None => {
                let id = self.fresh_id(&self.state.interfaces, NetworkInterfaceId::from_suffix);
                NetworkInterface {
                    id,
                    scope: self.scope(),
                    host: reg.host,
                    ifname: reg.ifname,
                    instance_id: reg.instance_id,
                    mac: reg.mac,
                    addresses: reg.addresses,
                    created_at: self.now,
                }
            }
        };
        self.changes.push(Change::PutInterface(iface.clone()));
        Ok(Output::Interface(iface))
    }

    fn deregister_interface(&mut self, id: NetworkInterfaceId) -> Result<Output, ApiError> {
        self.interface(id)?;
        if self.state.interface_is_destination(id) {
            return Err(ApiError::new(
                ErrorKind::InterfaceInUseByTarget,
                format!("The network interface '{id}' is used by a traffic mirror target; delete the target first."),
            ));
        }
        // As in EC2, removing a source interface removes its sessions.
        for s in self.state.sessions_from(id) {
            if s.sources.len() == 1 {
                self.changes.push(Change::DeleteSession(s.id));
            } else {
                let mut s = s.clone();
                s.sources.retain(|e| *e != id);
                self.changes.push(Change::PutSession(s));
            }
        }
        self.changes.push(Change::DeleteInterface(id));
        Ok(Output::Deleted(id.to_string()))
    }
}

/// The value under `id` if the caller may see it.
fn lookup<'m, K: Ord + Clone, V: Clone>(map: &'m OrdMap<K, V>, id: &K, visible: impl Fn(&V) -> bool) -> Option<&'m V> {
    map.get(id).filter(|v| visible(v))
}

fn dedup(resources: Vec<ResourceRef>) -> Vec<ResourceRef> {
    let mut seen = BTreeSet::new();
    resources.into_iter().filter(|r| seen.insert(*r)).collect()
}

/// The same interface named twice in one request.
fn check_distinct(sources: &[NetworkInterfaceId]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    match sources.iter().find(|eni| !seen.insert(**eni)) {
        Some(eni) => Err(ApiError::new(
            ErrorKind::DuplicateSource,
            format!("The network interface '{eni}' is given more than once."),
        )),
        None => Ok(()),
    }
}

/// A dialect's tag rules.
struct TagRules {
    per_resource: usize,
    key_max_chars: usize,
    value_max_chars: usize,
    reserved_prefixes: &'static [&'static str],
    /// Alibaba: neither key nor value may contain a URL scheme.
    forbid_urls: bool,
}

impl TagRules {
    fn of(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Alibaba => TagRules {
                per_resource: alibaba_tags::PER_RESOURCE,
                key_max_chars: alibaba_tags::KEY_MAX_CHARS,
                value_max_chars: alibaba_tags::VALUE_MAX_CHARS,
                reserved_prefixes: alibaba_tags::RESERVED_PREFIXES,
                forbid_urls: true,
            },
            Dialect::Ec2 | Dialect::Tapwire => TagRules {
                per_resource: ec2_tags::PER_RESOURCE,
                key_max_chars: ec2_tags::KEY_MAX_CHARS,
                value_max_chars: ec2_tags::VALUE_MAX_CHARS,
                reserved_prefixes: &[ec2_tags::RESERVED_PREFIX],
                forbid_urls: false,
            },
        }
    }
}

impl Planner<'_> {
    /// `existing` with `new` upserted, checked against the caller's dialect's tag rules.
    fn merged_tags(&self, mut existing: Tags, new: Vec<Tag>) -> Result<Tags, ApiError> {
        let rules = TagRules::of(self.dialect);
        let has_url = |s: &str| rules.forbid_urls && (s.contains("http://") || s.contains("https://"));
        for t in new {
            if t.key.is_empty() || t.key.chars().count() > rules.key_max_chars {
                return Err(ApiError::new(
                    ErrorKind::InvalidTagKey,
                    format!("Tag keys must be 1 to {} characters long.", rules.key_max_chars),
                ));
            }
            if let Some(prefix) = rules.reserved_prefixes.iter().find(|p| t.key.starts_with(**p)) {
                return Err(ApiError::new(
                    ErrorKind::InvalidTagKey,
                    format!("Tag keys starting with '{prefix}' are reserved."),
                ));
            }
            if has_url(&t.key) {
                return Err(ApiError::new(ErrorKind::InvalidTagKey, "Tag keys must not contain http:// or https://."));
            }
            if t.value.chars().count() > rules.value_max_chars || has_url(&t.value) {
                return Err(ApiError::invalid(format!(
                    "Tag values must be at most {} characters long and contain no http:// or https://.",
                    rules.value_max_chars
                )));
            }
            upsert_tag(&mut existing, t);
        }
        if existing.len() > rules.per_resource {
            return Err(ApiError::new(
                ErrorKind::TagLimitExceeded,
                format!("A resource can have at most {} tags.", rules.per_resource),
            ));
        }
        Ok(existing)
    }
}

fn check_rule_number(n: u32) -> Result<(), ApiError> {
    if limits::RULE_NUMBER.contains(&n) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "The rule number {n} is not valid; it must be between {} and {}.",
        limits::RULE_NUMBER.start(),
        limits::RULE_NUMBER.end()
    )))
}

fn check_session_number(n: u32) -> Result<(), ApiError> {
    if limits::SESSION_NUMBER.contains(&n) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "The session number {n} is not valid; it must be between {} and {}.",
        limits::SESSION_NUMBER.start(),
        limits::SESSION_NUMBER.end()
    )))
}

/// A rule's CIDRs share a family, and port ranges need TCP or UDP.
fn check_rule_match(m: &RuleMatch) -> Result<(), ApiError> {
    if m.source_cidr.addr().is_ipv4() != m.destination_cidr.addr().is_ipv4() {
        return Err(ApiError::invalid("The source and destination CIDR blocks must be of the same IP address family."));
    }
    let has_ports = m.source_ports.is_some() || m.destination_ports.is_some();
    if has_ports && !m.protocol.is_some_and(protocol::has_ports) {
        return Err(ApiError::new(
            ErrorKind::InvalidParameterCombination,
            "Port ranges can only be specified for the TCP (6) and UDP (17) protocols.",
        ));
    }
    Ok(())
}
