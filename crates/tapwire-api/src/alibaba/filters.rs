//! Filters and their rules: the Alibaba spelling of the shared rule vocabulary.
//!
//! Mapping to the model: `Action` accept|drop ↔ accept|reject; `Protocol` ALL = any
//! protocol, ICMP = 1 (58 when the rule is IPv6), TCP = 6, UDP = 17; port ranges `"a/b"`
//! (1–65535) ↔ a [`PortRange`], and `-1/-1` = no range, which is also how ALL and ICMP
//! rules read back; `IpVersion` is the CIDRs' family. Rules made through EC2 with other
//! protocols read back with the protocol number as text.

use ipnet::IpNet;
use serde_json::{Value, json};
use tapwire_control::ops::{FilterView, NewRule, Operation, RuleChanges, Update};
use tapwire_control::{ApiError, ResourceKind};
use tapwire_model::ids::{FilterId, RuleId};
use tapwire_model::limits;
use tapwire_model::numbers::RuleNumber;
use tapwire_model::resource::{Filter, FilterRule, Tag};
use tapwire_model::rule::{Direction, PortRange, RuleAction, RuleMatch, protocol};

use super::exchange::Exchange;
use super::list::{Page, TagFilter, creation_time, has_tags, page, paginate, tag_filters};
use super::params::{Params, invalid_value};
use super::{DESCRIPTION_MAX_CHARS, Fields, NAME_MAX_CHARS, check_text, fields, parse_id};

/// The protocols Alibaba names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    All,
    Icmp,
    Tcp,
    Udp,
}

impl Protocol {
    fn parse(key: &str, raw: &str) -> Result<Self, ApiError> {
        match raw.to_ascii_uppercase().as_str() {
            "ALL" => Ok(Protocol::All),
            "ICMP" => Ok(Protocol::Icmp),
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            _ => Err(invalid_value(key, raw)),
        }
    }

    /// The model's protocol number for a rule of the given family.
    fn number(self, ipv6: bool) -> Option<u8> {
        match self {
            Protocol::All => None,
            Protocol::Icmp if ipv6 => Some(protocol::ICMPV6),
            Protocol::Icmp => Some(protocol::ICMP),
            Protocol::Tcp => Some(protocol::TCP),
            Protocol::Udp => Some(protocol::UDP),
        }
    }
}

fn protocol_name(number: Option<u8>) -> String {
    match number {
        None => "ALL".to_owned(),
        Some(protocol::ICMP | protocol::ICMPV6) => "ICMP".to_owned(),
        Some(protocol::TCP) => "TCP".to_owned(),
        Some(protocol::UDP) => "UDP".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn port_range_text(range: Option<PortRange>) -> String {
    match range {
        Some(r) => format!("{}/{}", r.from, r.to),
        None => "-1/-1".to_owned(),
    }
}

/// `"a/b"` with 1 ≤ a ≤ b ≤ 65535 → `Some(range)`; `"-1/-1"` → `None` (every port).
fn port_range(key: &str, raw: &str) -> Result<Option<PortRange>, ApiError> {
    if raw == "-1/-1" {
        return Ok(None);
    }
    let bad = || invalid_value(key, raw);
    let (from, to) = raw.split_once('/').ok_or_else(bad)?;
    let decimal = |s: &str| crate::flat::parse_decimal::<u16>(s).ok_or_else(bad);
    let (from, to) = (decimal(from)?, decimal(to)?);
    if from == 0 || to == 0 {
        return Err(bad());
    }
    PortRange::new(from, to).map(Some).ok_or_else(bad)
}

fn rule_action(key: &str, raw: &str) -> Result<RuleAction, ApiError> {
    match raw {
        "accept" => Ok(RuleAction::Accept),
        "drop" => Ok(RuleAction::Reject),
        _ => Err(invalid_value(key, raw)),
    }
}

/// Alibaba's rule priority: 1–10, a subset of the model's rule numbers.
fn rule_priority(params: &Params, key: &str) -> Result<Option<RuleNumber>, ApiError> {
    match params.parsed::<u32>(key)? {
        None => Ok(None),
        Some(n) => {
            limits::ALIBABA_RULE_PRIORITY.contains(&n).then(|| RuleNumber::new(n)).flatten().map(Some).ok_or_else(
                || {
                    ApiError::invalid(format!(
                        "The rule priority {n} is invalid; it must be between {} and {}.",
                        limits::ALIBABA_RULE_PRIORITY.start(),
                        limits::ALIBABA_RULE_PRIORITY.end()
                    ))
                },
            )
        }
    }
}

fn cidr(params: &Params, key: &str) -> Result<Option<IpNet>, ApiError> {
    params.get(key).map(|raw| crate::flat::parse_cidr(raw).ok_or_else(|| invalid_value(key, raw))).transpose()
}

/// Ports of a rule being created: only TCP and UDP rules take a range.
fn ports_for(protocol: Protocol, key: &str, raw: Option<&str>) -> Result<Option<PortRange>, ApiError> {
    let range = raw.map(|raw| port_range(key, raw)).transpose()?.flatten();
    if range.is_some() && matches!(protocol, Protocol::All | Protocol::Icmp) {
        return Err(ApiError::invalid(format!("{key} must be -1/-1 or absent for ALL and ICMP rules.")));
    }
    Ok(range)
}

/// One rule of `IngressRules.N.*` / `EgressRules.N.*`.
fn new_rule(params: &Params, prefix: &str, direction: Direction) -> Result<NewRule, ApiError> {
    let key = |field: &str| format!("{prefix}.{field}");
    let action = rule_action(&key("Action"), params.required(&key("Action"))?)?;
    let number = rule_priority(params, &key("Priority"))?.ok_or_else(|| ApiError::missing(&key("Priority")))?;
    let proto = Protocol::parse(&key("Protocol"), params.required(&key("Protocol"))?)?;
    let ipv6 = match params.get(&key("IpVersion")) {
        None | Some("IPv4") => false,
        Some("IPv6") => true,
        Some(raw) => return Err(invalid_value(&key("IpVersion"), raw)),
    };
    let source_cidr =
        cidr(params, &key("SourceCidrBlock"))?.ok_or_else(|| ApiError::missing(&key("SourceCidrBlock")))?;
    let destination_cidr =
        cidr(params, &key("DestinationCidrBlock"))?.ok_or_else(|| ApiError::missing(&key("DestinationCidrBlock")))?;
    if source_cidr.addr().is_ipv6() != ipv6 {
        return Err(ApiError::invalid(format!("{prefix}: the CIDR blocks do not match the IpVersion.")));
    }
    Ok(NewRule {
        direction,
        number,
        action,
        matches: RuleMatch {
            protocol: proto.number(ipv6),
            source_cidr,
            destination_cidr,
            source_ports: ports_for(proto, &key("SourcePortRange"), params.get(&key("SourcePortRange")))?,
            destination_ports: ports_for(
                proto,
                &key("DestinationPortRange"),
                params.get(&key("DestinationPortRange")),
            )?,
        },
        description: None,
        tags: Vec::new(),
    })
}

/// Every `IngressRules.N` then every `EgressRules.N`, in request order.
fn rules(params: &Params) -> Result<Vec<NewRule>, ApiError> {
    let mut out = Vec::new();
    for (prefix, direction) in [("IngressRules", Direction::Ingress), ("EgressRules", Direction::Egress)] {
        for n in params.indices(prefix)? {
            out.push(new_rule(params, &format!("{prefix}.{n}"), direction)?);
        }
    }
    Ok(out)
}

/// `Tag.N.Key` / `Tag.N.Value` of a create call.
pub fn tag_list(params: &Params, prefix: &str) -> Result<Vec<Tag>, ApiError> {
    let mut tags = Vec::new();
    for n in params.indices(prefix)? {
        let key = params.required(&format!("{prefix}.{n}.Key"))?.to_owned();
        let value = params.get(&format!("{prefix}.{n}.Value")).unwrap_or_default().to_owned();
        tags.push(Tag { key, value });
    }
    if tags.len() > limits::alibaba_tags::PER_RESOURCE {
        return Err(ApiError::invalid(format!(
            "At most {} tags can be given at once.",
            limits::alibaba_tags::PER_RESOURCE
        )));
    }
    Ok(tags)
}

/// Tags as `[{Key, Value}]`.
pub fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({ "Key": t.key, "Value": t.value })).collect())
}

/// A rule as `ListTrafficMirrorFilters` shows it.
pub fn rule_json(r: &FilterRule) -> Value {
    json!({
        "TrafficMirrorFilterRuleId": r.id.alibaba(),
        "TrafficMirrorFilterId": r.filter_id.to_string(),
        "TrafficDirection": r.direction.as_str(),
        "Priority": r.number,
        "Action": r.action.alibaba(),
        "Protocol": protocol_name(r.matches.protocol),
        "SourceCidrBlock": r.matches.source_cidr.to_string(),
        "DestinationCidrBlock": r.matches.destination_cidr.to_string(),
        "SourcePortRange": port_range_text(r.matches.source_ports),
        "DestinationPortRange": port_range_text(r.matches.destination_ports),
        "IpVersion": if r.matches.source_cidr.addr().is_ipv6() { "IPv6" } else { "IPv4" },
        "TrafficMirrorFilterRuleStatus": r.status.as_str(),
    })
}

/// A filter with its rules as `ListTrafficMirrorFilters` shows it.
pub fn filter_json(v: &FilterView) -> Value {
    let f: &Filter = &v.filter;
    let direction = |d: Direction| Value::Array(v.rules.iter().filter(|r| r.direction == d).map(rule_json).collect());
    let mut out = json!({
        "TrafficMirrorFilterId": f.id.to_string(),
        "TrafficMirrorFilterStatus": f.status.as_str(),
        "CreationTime": creation_time(f.created_at),
        "Tags": tags_json(&f.tags),
        "IngressRules": direction(Direction::Ingress),
        "EgressRules": direction(Direction::Egress),
    });
    let optional = [
        ("TrafficMirrorFilterName", &f.name),
        ("TrafficMirrorFilterDescription", &f.description),
        ("ResourceGroupId", &f.resource_group),
    ];
    for (key, value) in optional {
        if let (Some(v), Value::Object(map)) = (value, &mut out) {
            map.insert(key.to_owned(), Value::from(v.as_str()));
        }
    }
    out
}

fn filter_id(params: &Params) -> Result<FilterId, ApiError> {
    parse_id(params.required("TrafficMirrorFilterId")?, ResourceKind::Filter)
}

fn rule_id(raw: &str) -> Result<RuleId, ApiError> {
    RuleId::parse_any(raw.trim()).map_err(|_| ApiError::not_found(ResourceKind::FilterRule, raw))
}

fn set_or_keep(value: Option<String>) -> Update<String> {
    value.map_or(Update::Keep, Update::Set)
}

// === parsers ===

/// `CreateTrafficMirrorFilter`, with inline rules.
pub fn parse_create_filter(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::CreateFilter {
        name: check_text(p, "TrafficMirrorFilterName", NAME_MAX_CHARS)?,
        description: check_text(p, "TrafficMirrorFilterDescription", DESCRIPTION_MAX_CHARS)?,
        tags: tag_list(p, "Tag")?,
        resource_group: p.non_empty("ResourceGroupId").map(str::to_owned),
        rules: rules(p)?,
    })
}

/// `DeleteTrafficMirrorFilter`.
pub fn parse_delete_filter(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteFilter(filter_id(p)?))
}

/// `CreateTrafficMirrorFilterRules`.
pub fn parse_create_rules(p: &Params) -> Result<Operation, ApiError> {
    let filter_id = filter_id(p)?;
    let rules = rules(p)?;
    if rules.is_empty() {
        return Err(ApiError::missing("IngressRules or EgressRules"));
    }
    Ok(Operation::CreateRules { filter_id, rules })
}

/// `DeleteTrafficMirrorFilterRules`.
pub fn parse_delete_rules(p: &Params) -> Result<Operation, ApiError> {
    let filter_id = filter_id(p)?;
    let raw = p.list("TrafficMirrorFilterRuleIds")?;
    if raw.is_empty() {
        return Err(ApiError::missing("TrafficMirrorFilterRuleIds"));
    }
    let rule_ids = raw.iter().map(|r| rule_id(r)).collect::<Result<_, _>>()?;
    Ok(Operation::DeleteRules { filter_id, rule_ids })
}

/// `UpdateTrafficMirrorFilterAttribute`.
pub fn parse_update_filter(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::ModifyFilter {
        filter_id: filter_id(p)?,
        name: set_or_keep(check_text(p, "TrafficMirrorFilterName", NAME_MAX_CHARS)?),
        description: set_or_keep(check_text(p, "TrafficMirrorFilterDescription", DESCRIPTION_MAX_CHARS)?),
    })
}

/// `UpdateTrafficMirrorFilterRuleAttribute`. Alibaba names protocols, not numbers: `ICMP`
/// is sent as ICMPv4 and the planner makes it the rule's family's ICMP; ports left out of
/// a rule whose protocol takes none are cleared there too.
pub fn parse_update_rule(p: &Params) -> Result<Operation, ApiError> {
    let rule_id = rule_id(p.required("TrafficMirrorFilterRuleId")?)?;
    let protocol = match p.get("Protocol").map(|raw| Protocol::parse("Protocol", raw)).transpose()? {
        None => Update::Keep,
        Some(proto) => proto.number(false).map_or(Update::Remove, Update::Set),
    };
    let ports = |key: &str| -> Result<Update<PortRange>, ApiError> {
        Ok(match p.get(key).map(|raw| port_range(key, raw)).transpose()? {
            Some(Some(range)) => Update::Set(range),
            Some(None) => Update::Remove,
            None => Update::Keep,
        })
    };
    let changes = RuleChanges {
        direction: None,
        number: rule_priority(p, "Priority")?,
        action: p.get("RuleAction").map(|raw| rule_action("RuleAction", raw)).transpose()?,
        protocol,
        source_ports: ports("SourcePortRange")?,
        destination_ports: ports("DestinationPortRange")?,
        source_cidr: cidr(p, "SourceCidrBlock")?,
        destination_cidr: cidr(p, "DestinationCidrBlock")?,
        description: Update::Keep,
    };
    Ok(Operation::ModifyRule { rule_id, changes })
}

/// What `ListTrafficMirrorFilters` selects.
#[derive(Debug, Clone)]
pub struct ListFilters {
    ids: Vec<String>,
    name: Option<String>,
    resource_group: Option<String>,
    tags: Vec<TagFilter>,
    page: Page,
}

/// `ListTrafficMirrorFilters`.
pub fn parse_list_filters(p: &Params) -> Result<ListFilters, ApiError> {
    let ids = p.list("TrafficMirrorFilterIds")?;
    if ids.len() > 100 {
        return Err(ApiError::invalid("At most 100 TrafficMirrorFilterIds can be given."));
    }
    Ok(ListFilters {
        ids,
        name: p.text("TrafficMirrorFilterName"),
        resource_group: p.non_empty("ResourceGroupId").map(str::to_owned),
        tags: tag_filters(p, "Tags")?,
        page: page(p, limits::ALIBABA_MAX_RESULTS, limits::ALIBABA_DEFAULT_MAX_RESULTS)?,
    })
}

// === handlers ===

pub(super) fn create_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let view = x.write(parse_create_filter)?.into_filter()?;
    let mut out = fields(json!({ "TrafficMirrorFilterId": view.filter.id.to_string() }));
    if let Some(group) = view.filter.resource_group {
        out.insert("ResourceGroupId".to_owned(), Value::from(group));
    }
    Ok(out)
}

pub(super) fn delete_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_delete_filter)
}

pub(super) fn create_rules(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let created = x.write(parse_create_rules)?.into_rules()?;
    let ids = |d: Direction| {
        Value::Array(
            created.iter().filter(|r| r.direction == d).map(|r| json!({ "InstanceId": r.id.alibaba() })).collect(),
        )
    };
    Ok(fields(json!({ "IngressRules": ids(Direction::Ingress), "EgressRules": ids(Direction::Egress) })))
}

pub(super) fn delete_rules(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_delete_rules)
}

pub(super) fn update_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_update_filter)
}

pub(super) fn update_rule(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_update_rule)
}

pub(super) fn list_filters(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let (q, state, scope) = x.read(parse_list_filters)?;
    let wanted_ids: Vec<FilterId> = q.ids.iter().filter_map(|raw| raw.trim().parse().ok()).collect();
    let matches: Vec<&Filter> = state
        .filters
        .values()
        .filter(|f| f.scope == scope)
        .filter(|f| q.ids.is_empty() || wanted_ids.contains(&f.id))
        .filter(|f| q.name.as_ref().is_none_or(|n| f.name.as_ref() == Some(n)))
        .filter(|f| q.resource_group.as_ref().is_none_or(|g| f.resource_group.as_ref() == Some(g)))
        .filter(|f| has_tags(&f.tags, &q.tags))
        .collect();
    let (items, next, total) = paginate(matches, |f| f.id.to_string(), &q.page);
    let count = items.len();
    let filters: Vec<Value> = items.into_iter().map(|f| filter_json(&state.filter_view(f))).collect();
    Ok(fields(json!({
        "TrafficMirrorFilters": filters,
        "NextToken": next,
        "TotalCount": total.to_string(),
        "Count": count,
        "MaxResults": q.page.max_results,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn port_ranges_are_slash_separated_and_minus_one_means_any() {
        assert_eq!(port_range("K", "22/40").unwrap(), PortRange::new(22, 40));
        assert_eq!(port_range("K", "-1/-1").unwrap(), None);
        for bad in ["0/10", "10/9", "1-2", "1/65536", "a/b", "80", "+1/2", " 1/2"] {
            assert!(port_range("K", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn icmp_follows_the_family() {
        assert_eq!(Protocol::Icmp.number(false), Some(1));
        assert_eq!(Protocol::Icmp.number(true), Some(58));
        assert_eq!(protocol_name(Some(58)), "ICMP");
        assert_eq!(protocol_name(None), "ALL");
        assert_eq!(protocol_name(Some(47)), "47");
    }
}
