//! Filters and their rules.
//!
//! Rule numbers are unique per filter and direction, and each direction has a quota. A
//! rule's CIDRs share a family; port ranges need TCP or UDP. Alibaba names protocols
//! rather than numbers, so for Alibaba changes the ICMP number follows the rule's family
//! and a rule whose protocol takes no ports loses its ranges ([`Planner::modify_rule`]).

use std::collections::BTreeSet;

use tapwire_model::ids::{FilterId, RuleId};
use tapwire_model::resource::{Filter, FilterRule, NetworkService, ResourceStatus, Tag};
use tapwire_model::rule::{RuleMatch, protocol};

use super::tags::Tagged;
use super::{Planner, quota};
use crate::dialect::Dialect;
use crate::error::{ApiError, ErrorKind, Quota, ResourceKind};
use crate::ops::{FilterView, NewRule, Output, RuleChanges, Update};
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn create_filter(
        &mut self,
        name: Option<String>,
        description: Option<String>,
        tags: Vec<Tag>,
        resource_group: Option<String>,
        rules: Vec<NewRule>,
    ) -> Result<Output, ApiError> {
        if self.state.index.filters_in(&self.scope()) >= self.config.quotas.filters_per_account {
            return Err(quota(Quota::Filters, "The maximum number of traffic mirror filters has been reached."));
        }
        let tags = self.merged_tags(Vec::new(), tags, Tagged::Other)?;
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
        Ok(Output::Filter(FilterView { filter, rules }))
    }

    pub(super) fn modify_filter(
        &mut self,
        filter_id: FilterId,
        name: Update<String>,
        description: Update<String>,
    ) -> Result<Output, ApiError> {
        let mut filter = self.filter(filter_id)?.clone();
        self.check_idle(filter.status, ResourceKind::Filter)?;
        filter.name = name.apply(filter.name);
        filter.description = description.apply(filter.description);
        filter.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutFilter(filter.clone()));
        Ok(Output::Filter(self.view_after(filter)))
    }

    pub(super) fn modify_network_services(
        &mut self,
        filter_id: FilterId,
        add: BTreeSet<NetworkService>,
        remove: BTreeSet<NetworkService>,
    ) -> Result<Output, ApiError> {
        let mut filter = self.filter(filter_id)?.clone();
        self.check_idle(filter.status, ResourceKind::Filter)?;
        filter.network_services.extend(add);
        filter.network_services.retain(|s| !remove.contains(s));
        self.changes.push(Change::PutFilter(filter.clone()));
        Ok(Output::Filter(self.view_after(filter)))
    }

    pub(super) fn delete_filter(&mut self, id: FilterId) -> Result<Output, ApiError> {
        let filter = self.filter(id)?;
        self.check_idle(filter.status, ResourceKind::Filter)?;
        if self.state.index.filter_in_use(id) {
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

    pub(super) fn create_rule(&mut self, filter_id: FilterId, rule: NewRule) -> Result<Output, ApiError> {
        let filter = self.filter(filter_id)?;
        self.check_idle(filter.status, ResourceKind::Filter)?;
        let created = self.plan_rules(filter_id, vec![rule])?;
        Ok(Output::Rule(created.into_iter().next().ok_or_else(|| ApiError::internal("no rule planned"))?))
    }

    pub(super) fn create_rules(&mut self, filter_id: FilterId, rules: Vec<NewRule>) -> Result<Output, ApiError> {
        let filter = self.filter(filter_id)?;
        self.check_idle(filter.status, ResourceKind::Filter)?;
        Ok(Output::Rules(self.plan_rules(filter_id, rules)?))
    }

    pub(super) fn delete_rule(&mut self, id: RuleId) -> Result<Output, ApiError> {
        let rule = self.rule(id)?;
        self.check_idle(rule.status, ResourceKind::FilterRule)?;
        self.remove_rule(rule);
        Ok(Output::Deleted(id.to_string()))
    }

    /// Deletes rules of one filter; every rule must exist, belong to it and be idle.
    pub(super) fn delete_rules(&mut self, filter_id: FilterId, rule_ids: Vec<RuleId>) -> Result<Output, ApiError> {
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

    pub(super) fn modify_rule(&mut self, id: RuleId, ch: RuleChanges) -> Result<Output, ApiError> {
        let mut rule = self.rule(id)?.clone();
        self.check_idle(rule.status, ResourceKind::FilterRule)?;
        if let Some(d) = ch.direction {
            rule.direction = d;
        }
        if let Some(n) = ch.number {
            rule.number = n;
        }
        if let Some(a) = ch.action {
            rule.action = a;
        }
        let m = &mut rule.matches;
        if let Some(c) = ch.source_cidr {
            m.source_cidr = c;
        }
        if let Some(c) = ch.destination_cidr {
            m.destination_cidr = c;
        }
        m.protocol = ch.protocol.apply(m.protocol);
        let (mut source_ports, mut destination_ports) = (ch.source_ports, ch.destination_ports);
        if self.dialect == Dialect::Alibaba {
            alibaba_protocol_follows_family(m);
            let takes_ports = m.protocol.is_some_and(protocol::has_ports);
            for (ports, key) in
                [(&mut source_ports, "SourcePortRange"), (&mut destination_ports, "DestinationPortRange")]
            {
                match ports {
                    Update::Set(_) if !takes_ports => {
                        return Err(ApiError::invalid(format!("{key} cannot be set for ALL and ICMP rules.")));
                    }
                    Update::Keep if !takes_ports => *ports = Update::Remove,
                    _ => {}
                }
            }
        }
        m.source_ports = source_ports.apply(m.source_ports);
        m.destination_ports = destination_ports.apply(m.destination_ports);
        rule.description = ch.description.apply(rule.description);
        check_rule_match(&rule.matches)?;
        let others = self.state.rules_of(rule.filter_id);
        self.check_rule_fits(&others, &rule)?;
        rule.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutRule(rule.clone()));
        Ok(Output::Rule(rule))
    }

    /// Deletes a rule now (EC2) or marks it `Deleting` for the background task (Alibaba).
    fn remove_rule(&mut self, rule: &FilterRule) {
        let change = match self.dialect {
            Dialect::Alibaba => Change::PutRule(FilterRule { status: ResourceStatus::Deleting, ..rule.clone() }),
            Dialect::Ec2 | Dialect::Tapwire => Change::DeleteRule(rule.id),
        };
        self.changes.push(change);
    }

    /// A filter as it will be once this operation's changes apply.
    fn view_after(&self, filter: Filter) -> FilterView {
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
        FilterView { filter, rules }
    }

    /// Validates and records new rules of one filter; checks them against the existing
    /// rules and each other.
    fn plan_rules(&mut self, filter_id: FilterId, new: Vec<NewRule>) -> Result<Vec<FilterRule>, ApiError> {
        let mut all = self.state.rules_of(filter_id);
        let mut created = Vec::with_capacity(new.len());
        for n in new {
            check_rule_match(&n.matches)?;
            let tags = self.merged_tags(Vec::new(), n.tags, Tagged::Other)?;
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
}

/// Alibaba's `ICMP` is ICMP of the rule's family: a rule moved to IPv6 (or back) keeps
/// being ICMP.
fn alibaba_protocol_follows_family(m: &mut RuleMatch) {
    if matches!(m.protocol, Some(protocol::ICMP | protocol::ICMPV6)) {
        m.protocol = Some(if m.source_cidr.addr().is_ipv6() { protocol::ICMPV6 } else { protocol::ICMP });
    }
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
