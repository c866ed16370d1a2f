//! Filters and their rules: the Alibaba spelling of the shared rule vocabulary.
//!
//! Mapping to the model: `Action` accept|drop ↔ accept|reject; `Protocol` ALL = any
//! protocol, ICMP = 1 (58 when the rule is IPv6), TCP = 6, UDP = 17; port ranges `"a/b"`
//! (1–65535) ↔ a [`PortRange`], and `-1/-1` = no range, which is also how ALL and ICMP
//! rules read back; `IpVersion` is the CIDRs' family. Rules made through EC2 with other
//! protocols read back with the protocol number as text.

use ipnet::IpNet;
use serde_json::{Value, json};
use tapwire_control::ops::{FilterView, NewRule, Operation, Output, RuleChanges, Update};
use tapwire_control::{ApiError, ResourceKind};
use tapwire_model::ids::{FilterId, RuleId};
use tapwire_model::limits;
use tapwire_model::resource::{Filter, FilterRule, Tag};
use tapwire_model::rule::{Direction, PortRange, RuleAction, RuleMatch, protocol};

use super::list::{creation_time, has_tags, page, paginate, tag_filters};
use super::params::{Params, invalid_value};
use super::{DESCRIPTION_MAX_CHARS, Exchange, Fields, NAME_MAX_CHARS, check_text, fields, parse_id};

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
    if raw.trim() == "-1/-1" {
        return Ok(None);
    }
    let bad = || invalid_value(key, raw);
    let (from, to) = raw.trim().split_once('/').ok_or_else(bad)?;
    let (from, to): (u16, u16) = (from.parse().map_err(|_| bad())?, to.parse().map_err(|_| bad())?);
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

fn rule_priority(params: &Params, key: &str) -> Result<Option<u32>, ApiError> {
    match params.parsed::<u32>(key)? {
        Some(n) if !limits::ALIBABA_RULE_PRIORITY.contains(&n) => Err(ApiError::invalid(format!(
            "The rule priority {n} is invalid; it must be between {} and {}.",
            limits::ALIBABA_RULE_PRIORITY.start(),
            limits::ALIBABA_RULE_PRIORITY.end()
        ))),
        other => Ok(other),
    }
}

fn cidr(params: &Params, key: &str) -> Result<Option<IpNet>, ApiError> {
    params.get(key).map(|raw| raw.trim().parse().map_err(|_| invalid_value(key, raw))).transpose()
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
pub(super) fn tag_list(params: &Params, prefix: &str) -> Result<Vec<Tag>, ApiError> {
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

pub(super) fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({ "Key": t.key, "Value": t.value })).collect())
}

/// A rule as `ListTrafficMirrorFilters` shows it.
pub(super) fn rule_json(r: &FilterRule) -> Value {
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
pub(super) fn filter_json(v: &FilterView) -> Value {
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

pub(super) fn create_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let op = Operation::CreateFilter {
        name: check_text(p, "TrafficMirrorFilterName", NAME_MAX_CHARS)?,
        description: check_text(p, "TrafficMirrorFilterDescription", DESCRIPTION_MAX_CHARS)?,
        tags: tag_list(p, "Tag")?,
        resource_group: p.get("ResourceGroupId").filter(|g| !g.is_empty()).map(str::to_owned),
        rules: rules(p)?,
    };
    let Output::Filter(view) = x.write(op)? else {
        return Err(ApiError::internal("expected a filter"));
    };
    let mut out = fields(json!({ "TrafficMirrorFilterId": view.filter.id.to_string() }));
    if let Some(group) = view.filter.resource_group {
        out.insert("ResourceGroupId".to_owned(), Value::from(group));
    }
    Ok(out)
}

pub(super) fn delete_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write(Operation::DeleteFilter(filter_id(x.params)?))?;
    Ok(fields(json!({})))
}

pub(super) fn create_rules(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let filter_id = filter_id(x.params)?;
    let rules = rules(x.params)?;
    if rules.is_empty() {
        return Err(ApiError::missing("IngressRules or EgressRules"));
    }
    let Output::Rules(created) = x.write(Operation::CreateRules { filter_id, rules })? else {
        return Err(ApiError::internal("expected rules"));
    };
    let ids = |d: Direction| {
        Value::Array(
            created.iter().filter(|r| r.direction == d).map(|r| json!({ "InstanceId": r.id.alibaba() })).collect(),
        )
    };
    Ok(fields(json!({ "IngressRules": ids(Direction::Ingress), "EgressRules": ids(Direction::Egress) })))
}

fn rule_id(raw: &str) -> Result<RuleId, ApiError> {
    RuleId::parse_any(raw.trim()).map_err(|_| ApiError::not_found(ResourceKind::FilterRule, raw))
}

pub(super) fn delete_rules(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let filter_id = filter_id(x.params)?;
    let raw = x.params.list("TrafficMirrorFilterRuleIds")?;
    if raw.is_empty() {
        return Err(ApiError::missing("TrafficMirrorFilterRuleIds"));
    }
    let rule_ids = raw.iter().map(|r| rule_id(r)).collect::<Result<_, _>>()?;
    x.write(Operation::DeleteRules { filter_id, rule_ids })?;
    Ok(fields(json!({})))
}

fn set_or_keep(value: Option<String>) -> Update<String> {
    value.map_or(Update::Keep, Update::Set)
}

pub(super) fn update_filter(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let op = Operation::ModifyFilter {
        filter_id: filter_id(p)?,
        name: set_or_keep(check_text(p, "TrafficMirrorFilterName", NAME_MAX_CHARS)?),
        description: set_or_keep(check_text(p, "TrafficMirrorFilterDescription", DESCRIPTION_MAX_CHARS)?),
    };
    x.write(op)?;
    Ok(fields(json!({})))
}

/// Alibaba names protocols, not numbers, so the ICMP number and whether ports may stay
/// depend on the rule as it is now; the control plane still checks the result.
pub(super) fn update_rule(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let rule_id = rule_id(p.required("TrafficMirrorFilterRuleId")?)?;
    let current = x.api.control.read().rules.get(&rule_id).map(|r| r.matches.clone());
    let source_cidr = cidr(p, "SourceCidrBlock")?;
    let destination_cidr = cidr(p, "DestinationCidrBlock")?;
    let ipv6 = source_cidr
        .or(destination_cidr)
        .map(|c| c.addr().is_ipv6())
        .or_else(|| current.as_ref().map(|m| m.source_cidr.addr().is_ipv6()))
        .unwrap_or(false);
    let current_protocol = current.as_ref().and_then(|m| m.protocol);
    let requested = p.get("Protocol").map(|raw| Protocol::parse("Protocol", raw)).transpose()?;
    let was_icmp = matches!(current_protocol, Some(protocol::ICMP | protocol::ICMPV6));
    let protocol_update = match requested {
        Some(Protocol::All) => Update::Remove,
        Some(proto) => proto.number(ipv6).map_or(Update::Remove, Update::Set),
        // An ICMP rule moved to the other family keeps being ICMP.
        None if was_icmp => Protocol::Icmp.number(ipv6).map_or(Update::Keep, Update::Set),
        None => Update::Keep,
    };
    let effective = match &protocol_update {
        Update::Set(n) => Some(*n),
        Update::Remove => None,
        Update::Keep => current_protocol,
    };
    let takes_ports = effective.is_some_and(protocol::has_ports);
    let ports = |key: &str| -> Result<Update<PortRange>, ApiError> {
        let given = p.get(key).map(|raw| port_range(key, raw)).transpose()?;
        match given {
            Some(Some(_)) if !takes_ports => {
                Err(ApiError::invalid(format!("{key} cannot be set for ALL and ICMP rules.")))
            }
            Some(Some(range)) => Ok(Update::Set(range)),
            Some(None) => Ok(Update::Remove),
            None if !takes_ports => Ok(Update::Remove),
            None => Ok(Update::Keep),
        }
    };
    let changes = RuleChanges {
        direction: None,
        number: rule_priority(p, "Priority")?,
        action: p.get("RuleAction").map(|raw| rule_action("RuleAction", raw)).transpose()?,
        protocol: protocol_update,
        source_ports: ports("SourcePortRange")?,
        destination_ports: ports("DestinationPortRange")?,
        source_cidr,
        destination_cidr,
        description: Update::Keep,
    };
    x.write(Operation::ModifyRule { rule_id, changes })?;
    Ok(fields(json!({})))
}

pub(super) fn list_filters(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorFilterIds")?;
    if ids.len() > 100 {
        return Err(ApiError::invalid("At most 100 TrafficMirrorFilterIds can be given."));
    }
    let wanted_ids: Vec<FilterId> = ids.iter().filter_map(|raw| raw.trim().parse().ok()).collect();
    let name = p.get("TrafficMirrorFilterName");
    let group = p.get("ResourceGroupId").filter(|g| !g.is_empty());
    let tags = tag_filters(p, "Tags")?;
    let page = page(p, limits::ALIBABA_MAX_RESULTS, limits::ALIBABA_DEFAULT_MAX_RESULTS)?;
    let (state, scope) = x.read()?;
    let matches: Vec<&Filter> = state
        .filters
        .values()
        .filter(|f| f.scope == scope)
        .filter(|f| ids.is_empty() || wanted_ids.contains(&f.id))
        .filter(|f| name.is_none_or(|n| f.name.as_deref() == Some(n)))
        .filter(|f| group.is_none_or(|g| f.resource_group.as_deref() == Some(g)))
        .filter(|f| has_tags(&f.tags, &tags))
        .collect();
    let (items, next, total) = paginate(matches, |f| f.id.to_string(), &page);
    let count = items.len();
    let filters: Vec<Value> = items.into_iter().map(|f| filter_json(&state.filter_view(f))).collect();
    Ok(fields(json!({
        "TrafficMirrorFilters": filters,
        "NextToken": next,
        "TotalCount": total.to_string(),
        "Count": count,
        "MaxResults": page.max_results,
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
        for bad in ["0/10", "10/9", "1-2", "1/65536", "a/b", "80"] {
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
