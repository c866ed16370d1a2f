//! Filters and their rules: Create/Delete/Describe of both, ModifyTrafficMirrorFilterRule
//! and ModifyTrafficMirrorFilterNetworkServices.
//!
//! Rules are shown inside their filter (`ingressFilterRuleSet`, `egressFilterRuleSet`)
//! and on their own; Modify returns the rule without its tags, as EC2 does. Protocol 0
//! and an absent protocol both mean every protocol.

use tapwire_control::ops::{NewRule, Operation, RuleChanges, Update};
use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::ids::FilterId;
use tapwire_model::resource::FilterRule;
use tapwire_model::rule::{Direction, PortRange, RuleMatch};

use super::describe::{Describe, TAG_FILTERS, tag_values};
use super::exchange::{Exchange, Token};
use super::params::{Params, update};
use super::tags::tag_set;
use super::xml::Xml;
use tapwire_control::ops::FilterView;

/// Filter names DescribeTrafficMirrorFilters takes.
const FILTER_NAMES: &[&str] = &["description", "traffic-mirror-filter-id", TAG_FILTERS[0], TAG_FILTERS[1]];

/// Filter names DescribeTrafficMirrorFilterRules takes.
const RULE_NAMES: &[&str] = &[
    "traffic-mirror-filter-rule-id",
    "traffic-mirror-filter-id",
    "rule-number",
    "rule-action",
    "traffic-direction",
    "protocol",
    "source-cidr-block",
    "destination-cidr-block",
    "description",
    TAG_FILTERS[0],
    TAG_FILTERS[1],
];

// === parsers ===

/// `CreateTrafficMirrorFilter`.
pub fn parse_create_filter(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::CreateFilter {
        name: None,
        description: p.description()?,
        tags: p.tag_specifications("traffic-mirror-filter")?,
        resource_group: None,
        rules: Vec::new(),
    })
}

/// `DeleteTrafficMirrorFilter`.
pub fn parse_delete_filter(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteFilter(p.id("TrafficMirrorFilterId", ResourceKind::Filter)?))
}

/// `ModifyTrafficMirrorFilterNetworkServices`.
pub fn parse_modify_network_services(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::ModifyNetworkServices {
        filter_id: p.id("TrafficMirrorFilterId", ResourceKind::Filter)?,
        add: p.network_services("AddNetworkService")?,
        remove: p.network_services("RemoveNetworkService")?,
    })
}

/// `CreateTrafficMirrorFilterRule`.
pub fn parse_create_rule(p: &Params) -> Result<Operation, ApiError> {
    let filter_id = p.id("TrafficMirrorFilterId", ResourceKind::Filter)?;
    let rule = NewRule {
        direction: p.direction()?.ok_or_else(|| ApiError::missing("TrafficDirection"))?,
        number: p.number_required("RuleNumber")?,
        action: p.rule_action()?.ok_or_else(|| ApiError::missing("RuleAction"))?,
        matches: RuleMatch {
            protocol: p.protocol()?.flatten(),
            source_cidr: p.cidr_required("SourceCidrBlock")?,
            destination_cidr: p.cidr_required("DestinationCidrBlock")?,
            source_ports: p.port_range("SourcePortRange")?,
            destination_ports: p.port_range("DestinationPortRange")?,
        },
        description: p.description()?,
        tags: p.tag_specifications("traffic-mirror-filter-rule")?,
    };
    Ok(Operation::CreateRule { filter_id, rule })
}

/// `DeleteTrafficMirrorFilterRule`.
pub fn parse_delete_rule(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteRule(p.id("TrafficMirrorFilterRuleId", ResourceKind::FilterRule)?))
}

/// `ModifyTrafficMirrorFilterRule`.
pub fn parse_modify_rule(p: &Params) -> Result<Operation, ApiError> {
    let rule_id = p.id("TrafficMirrorFilterRuleId", ResourceKind::FilterRule)?;
    let removed = p.remove_fields(&["destination-port-range", "source-port-range", "protocol", "description"])?;
    let protocol = p.protocol()?;
    let source_ports = p.port_range("SourcePortRange")?;
    let destination_ports = p.port_range("DestinationPortRange")?;
    // EC2 wants the protocol in the same call that sets a port range.
    if (source_ports.is_some() || destination_ports.is_some()) && protocol.is_none() {
        return Err(ApiError::new(
            ErrorKind::InvalidParameterCombination,
            "A port range can only be set together with the TCP (6) or UDP (17) Protocol.",
        ));
    }
    let protocol_update = match protocol {
        Some(None) if !removed.contains("protocol") => Update::Remove,
        other => update(other.flatten(), removed.contains("protocol"), "protocol")?,
    };
    let changes = RuleChanges {
        direction: p.direction()?,
        number: p.number("RuleNumber")?,
        action: p.rule_action()?,
        protocol: protocol_update,
        source_ports: update(source_ports, removed.contains("source-port-range"), "source-port-range")?,
        destination_ports: update(
            destination_ports,
            removed.contains("destination-port-range"),
            "destination-port-range",
        )?,
        source_cidr: p.cidr("SourceCidrBlock")?,
        destination_cidr: p.cidr("DestinationCidrBlock")?,
        description: update(p.description()?, removed.contains("description"), "description")?,
    };
    Ok(Operation::ModifyRule { rule_id, changes })
}

/// `DescribeTrafficMirrorFilters`.
pub fn parse_describe_filters(p: &Params) -> Result<Describe, ApiError> {
    Describe::parse(p, "TrafficMirrorFilterId", FILTER_NAMES)
}

/// `DescribeTrafficMirrorFilterRules`: a Describe, optionally within one filter.
#[derive(Debug, Clone)]
pub struct DescribeRules {
    /// Only rules of this filter (which must exist).
    pub filter_id: Option<FilterId>,
    /// IDs, filters, page.
    pub describe: Describe,
}

/// `DescribeTrafficMirrorFilterRules`.
pub fn parse_describe_rules(p: &Params) -> Result<DescribeRules, ApiError> {
    Ok(DescribeRules {
        filter_id: p.opt_id("TrafficMirrorFilterId", ResourceKind::Filter)?,
        describe: Describe::parse(p, "TrafficMirrorFilterRuleId", RULE_NAMES)?,
    })
}

// === handlers ===

pub(super) fn create_filter(x: &Exchange<'_>) -> Result<String, ApiError> {
    let view = x.write(parse_create_filter, Token::Idempotent)?.into_filter()?;
    Ok(x.respond_created(|o| {
        o.element("trafficMirrorFilter", |o| filter_xml(o, &view));
    }))
}

pub(super) fn delete_filter(x: &Exchange<'_>) -> Result<String, ApiError> {
    let id = x.write(parse_delete_filter, Token::None)?.into_deleted()?;
    Ok(x.respond(|o| {
        o.leaf("trafficMirrorFilterId", id);
    }))
}

pub(super) fn modify_network_services(x: &Exchange<'_>) -> Result<String, ApiError> {
    let view = x.write(parse_modify_network_services, Token::None)?.into_filter()?;
    Ok(x.respond(|o| {
        o.element("trafficMirrorFilter", |o| filter_xml(o, &view));
    }))
}

pub(super) fn create_rule(x: &Exchange<'_>) -> Result<String, ApiError> {
    let rule = x.write(parse_create_rule, Token::Idempotent)?.into_rule()?;
    Ok(x.respond_created(|o| {
        o.element("trafficMirrorFilterRule", |o| rule_xml(o, &rule, true));
    }))
}

pub(super) fn delete_rule(x: &Exchange<'_>) -> Result<String, ApiError> {
    let id = x.write(parse_delete_rule, Token::None)?.into_deleted()?;
    Ok(x.respond(|o| {
        o.leaf("trafficMirrorFilterRuleId", id);
    }))
}

pub(super) fn modify_rule(x: &Exchange<'_>) -> Result<String, ApiError> {
    let rule = x.write(parse_modify_rule, Token::None)?.into_rule()?;
    Ok(x.respond(|o| {
        o.element("trafficMirrorFilterRule", |o| rule_xml(o, &rule, false));
    }))
}

pub(super) fn describe_filters(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_filters)?;
    let (items, next) = q.select(
        &state.filters,
        |f| x.in_scope(&f.scope),
        ResourceKind::Filter,
        |f, name| {
            tag_values(&f.tags, name).unwrap_or_else(|| match name {
                "description" => f.description.iter().cloned().collect(),
                _ => vec![f.id.to_string()],
            })
        },
        x.cancel(),
    )?;
    Ok(x.respond(|o| {
        o.list("trafficMirrorFilterSet", items, |o, f| filter_xml(o, &state.filter_view(f)));
        o.opt("nextToken", next);
    }))
}

pub(super) fn describe_rules(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_rules)?;
    if let Some(f) = q.filter_id
        && !state.filters.get(&f).is_some_and(|f| x.in_scope(&f.scope))
    {
        return Err(ApiError::not_found(ResourceKind::Filter, &f.to_string()));
    }
    let visible = |r: &FilterRule| {
        q.filter_id.is_none_or(|f| r.filter_id == f)
            && state.filters.get(&r.filter_id).is_some_and(|f| x.in_scope(&f.scope))
    };
    let (items, next) = q.describe.select(&state.rules, visible, ResourceKind::FilterRule, rule_values, x.cancel())?;
    Ok(x.respond(|o| {
        o.list("trafficMirrorFilterRuleSet", items, |o, r| rule_xml(o, r, true));
        o.opt("nextToken", next);
    }))
}

// === rendering ===

fn rule_values(r: &FilterRule, name: &str) -> Vec<String> {
    if let Some(values) = tag_values(&r.tags, name) {
        return values;
    }
    match name {
        "traffic-mirror-filter-rule-id" => vec![r.id.to_string()],
        "traffic-mirror-filter-id" => vec![r.filter_id.to_string()],
        "rule-number" => vec![r.number.to_string()],
        "rule-action" => vec![r.action.ec2().to_owned()],
        "traffic-direction" => vec![r.direction.to_string()],
        "protocol" => r.matches.protocol.iter().map(ToString::to_string).collect(),
        "source-cidr-block" => vec![r.matches.source_cidr.to_string()],
        "destination-cidr-block" => vec![r.matches.destination_cidr.to_string()],
        _ => r.description.iter().cloned().collect(),
    }
}

fn port_range_xml(x: &mut Xml, name: &str, r: Option<PortRange>) {
    if let Some(r) = r {
        x.element(name, |x| {
            x.leaf("fromPort", r.from).leaf("toPort", r.to);
        });
    }
}

/// A rule's members; `with_tags` false for ModifyTrafficMirrorFilterRule's answer.
fn rule_xml(x: &mut Xml, r: &FilterRule, with_tags: bool) {
    x.leaf("trafficMirrorFilterRuleId", r.id)
        .leaf("trafficMirrorFilterId", r.filter_id)
        .leaf("trafficDirection", r.direction)
        .leaf("ruleNumber", r.number)
        .leaf("ruleAction", r.action.ec2())
        .opt("protocol", r.matches.protocol);
    port_range_xml(x, "destinationPortRange", r.matches.destination_ports);
    port_range_xml(x, "sourcePortRange", r.matches.source_ports);
    x.leaf("destinationCidrBlock", r.matches.destination_cidr)
        .leaf("sourceCidrBlock", r.matches.source_cidr)
        .opt("description", r.description.as_ref());
    if with_tags {
        tag_set(x, &r.tags);
    }
}

/// A filter's members, its rules split by direction.
fn filter_xml(x: &mut Xml, v: &FilterView) {
    let f = &v.filter;
    x.leaf("trafficMirrorFilterId", f.id);
    for (name, d) in [("ingressFilterRuleSet", Direction::Ingress), ("egressFilterRuleSet", Direction::Egress)] {
        x.list(name, v.rules.iter().filter(|r| r.direction == d), |x, r| rule_xml(x, r, true));
    }
    x.list("networkServiceSet", &f.network_services, |x, s| {
        x.text(s.as_str());
    });
    x.opt("description", f.description.as_ref());
    tag_set(x, &f.tags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn create_rule_reads_every_member() {
        let params = p(&[
            ("TrafficMirrorFilterId", "tmf-0123456789abcdef0"),
            ("TrafficDirection", "egress"),
            ("RuleNumber", "7"),
            ("RuleAction", "reject"),
            ("Protocol", "17"),
            ("DestinationPortRange.FromPort", "53"),
            ("SourceCidrBlock", "198.18.0.0/15"),
            ("DestinationCidrBlock", "0.0.0.0/0"),
        ]);
        let Operation::CreateRule { rule, .. } = parse_create_rule(&params).unwrap() else { panic!() };
        assert_eq!((rule.direction, rule.number.get(), rule.matches.protocol), (Direction::Egress, 7, Some(17)));
        assert_eq!(rule.matches.destination_ports, PortRange::new(53, 65535));
        params.finish().unwrap();
    }

    #[test]
    fn parsers_refuse_what_ec2_refuses() {
        let base = [
            ("TrafficMirrorFilterId", "tmf-0123456789abcdef0"),
            ("TrafficDirection", "ingress"),
            ("RuleAction", "accept"),
            ("SourceCidrBlock", "0.0.0.0/0"),
            ("DestinationCidrBlock", "0.0.0.0/0"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            p(&v)
        };
        let kind = |params: Params| parse_create_rule(&params).unwrap_err().kind;
        assert_eq!(kind(p(&base)), ErrorKind::MissingParameter);
        assert_eq!(kind(with(("RuleNumber", "32767"))), ErrorKind::InvalidParameterValue);
        assert_eq!(kind(with(("RuleNumber", "x"))), ErrorKind::InvalidParameterValue);
        let modify = p(&[("TrafficMirrorFilterRuleId", "tmfr-0123456789abcdef0"), ("SourcePortRange.FromPort", "1")]);
        assert_eq!(parse_modify_rule(&modify).unwrap_err().kind, ErrorKind::InvalidParameterCombination);
        let both = p(&[
            ("TrafficMirrorFilterRuleId", "tmfr-0123456789abcdef0"),
            ("Description", "d"),
            ("RemoveField.1", "description"),
        ]);
        assert_eq!(parse_modify_rule(&both).unwrap_err().kind, ErrorKind::InvalidParameterCombination);
        let bad_id = p(&[("TrafficMirrorFilterId", "tmf-nothex")]);
        assert_eq!(parse_delete_filter(&bad_id).unwrap_err().kind, ErrorKind::MalformedId(ResourceKind::Filter));
    }

    #[test]
    fn modify_rule_protocol_zero_removes_it() {
        let params = p(&[("TrafficMirrorFilterRuleId", "tmfr-0123456789abcdef0"), ("Protocol", "0")]);
        let Operation::ModifyRule { changes, .. } = parse_modify_rule(&params).unwrap() else { panic!() };
        assert_eq!(changes.protocol, Update::Remove);
        assert_eq!(changes.description, Update::Keep);
    }
}
