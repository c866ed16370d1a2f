//! Renders the per-interface configuration document agents apply.
//!
//! A session contributes to an interface's document when the interface is one of its
//! sources. Its target must resolve to an address: an interface target (or an interface
//! named directly) resolves to one of that interface's addresses ([`target_address`]:
//! IPv4 when both ends have one, else IPv6 when both do, else the target's first);
//! a load-balancer target (an EC2 NLB or GWLB endpoint target, an Alibaba SLB) resolves
//! to the sensor group of that name: its members' addresses and its mode. One that names
//! no group is listed as `unsupported`, with the reason, so the agent reports it failed
//! rather than silent.
//! A session's `tapwire:` tags become its sampling and caps ([`SessionLimits`]).

use std::net::IpAddr;

use tapwire_model::config::{
    CONFIG_SCHEMA, FilterConfig, GroupConfig, GroupMember, InterfaceConfig, RuleConfig, SessionConfig, TargetEndpoint,
    UnsupportedSession, VXLAN_PORT,
};
use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::Session;
use tapwire_model::rule::Direction;
use tapwire_model::sampling::SessionLimits;

use crate::state::State;

/// The document for `eni`, or `None` if the interface is unknown.
pub fn interface_config(state: &State, eni: NetworkInterfaceId, dns_resolvers: &[IpAddr]) -> Option<InterfaceConfig> {
    let iface = state.interfaces.get(&eni)?;
    let mut unsupported = Vec::new();
    let mut sessions: Vec<SessionConfig> = state
        .sessions_from(eni)
        .filter_map(|s| {
            let (address, group) = match resolve(state, s, &iface.addresses) {
                Ok(resolved) => resolved,
                Err(reason) => {
                    unsupported.push(UnsupportedSession { session_id: s.id, number: s.number, reason });
                    return None;
                }
            };
            let limits = match SessionLimits::from_tags(&s.tags) {
                Ok(limits) => limits,
                Err(reason) => {
                    // Only tags stored before the keys were checked can get here.
                    unsupported.push(UnsupportedSession { session_id: s.id, number: s.number, reason });
                    return None;
                }
            };
            let filter = state.filters.get(&s.filter_id)?;
            let rules = state.rules_of(filter.id);
            let pick = |d: Direction| {
                rules
                    .iter()
                    .filter(|r| r.direction == d)
                    .map(|r| RuleConfig {
                        rule_id: r.id,
                        number: r.number,
                        action: r.action,
                        matches: r.matches.clone(),
                    })
                    .collect()
            };
            Some(SessionConfig {
                session_id: s.id,
                number: s.number,
                vni: s.vni,
                packet_length: s.packet_length,
                enabled: s.enabled,
                target: TargetEndpoint { address, port: VXLAN_PORT },
                limits,
                group,
                filter: FilterConfig {
                    filter_id: filter.id,
                    network_services: filter.network_services.clone(),
                    ingress: pick(Direction::Ingress),
                    egress: pick(Direction::Egress),
                },
            })
        })
        .collect();
    sessions.sort_by_key(|s| s.number);
    Some(InterfaceConfig {
        schema: CONFIG_SCHEMA,
        revision: state.revision,
        network_interface_id: eni,
        addresses: iface.addresses.clone(),
        dns_resolvers: dns_resolvers.to_vec(),
        sessions,
        unsupported,
    })
}

/// Where a session's copies go from an interface with `source` addresses: the target
/// interface's address, or a sensor group's first member's and the group; why not, when
/// neither resolves.
fn resolve(state: &State, s: &Session, source: &[IpAddr]) -> Result<(IpAddr, Option<GroupConfig>), String> {
    let no_address = "its target has no address".to_owned();
    if let Some(destination) = state.destination_interface(&s.target) {
        return target_address(source, &destination.addresses).map(|a| (a, None)).ok_or(no_address);
    }
    let Some(name) = state.load_balancer_of(&s.target) else { return Err(no_address) };
    let Some(group) = state.sensor_group_named(&s.scope, name) else {
        return Err(format!(
            "its target is the load balancer {name}, which names no sensor group (`tapwire sensor-group create` makes one)"
        ));
    };
    let members: Vec<GroupMember> = group
        .members
        .iter()
        .filter_map(|m| {
            let address = target_address(source, &state.interfaces.get(m)?.addresses)?;
            Some(GroupMember { network_interface_id: *m, target: TargetEndpoint { address, port: VXLAN_PORT } })
        })
        .collect();
    let first = members
        .first()
        .map(|m| m.target.address)
        .ok_or_else(|| format!("no member of the sensor group {} has an address", group.id))?;
    Ok((first, Some(GroupConfig { mode: group.mode, health_check_port: group.health_check, members })))
}

/// The address copies from an interface with `source` addresses go to, of a target
/// interface with `target` addresses: IPv4 when both have one, else IPv6 when both do,
/// else the target's first (the agent then reports the family it lacks).
pub fn target_address(source: &[IpAddr], target: &[IpAddr]) -> Option<IpAddr> {
    let first = |v4: bool, of: &[IpAddr]| of.iter().copied().find(|a| a.is_ipv4() == v4);
    let has = |v4: bool| first(v4, source).is_some();
    [true, false]
        .into_iter()
        .find_map(|v4| if has(v4) { first(v4, target) } else { None })
        .or_else(|| target.first().copied())
}
