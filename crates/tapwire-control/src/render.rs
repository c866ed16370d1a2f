//! Renders the per-interface configuration document agents apply.
//!
//! A session contributes to an interface's document when the interface is one of its
//! sources. Its target must resolve to an address: an interface target (or an interface
//! named directly) resolves to that interface's primary address; load-balancer targets
//! have no address in a self-hosted fleet and are left out (documented in the API guide).

use std::net::IpAddr;

use tapwire_model::config::{
    CONFIG_SCHEMA, FilterConfig, InterfaceConfig, RuleConfig, SessionConfig, TargetEndpoint, VXLAN_PORT,
};
use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::rule::Direction;

use crate::state::State;

/// The document for `eni`, or `None` if the interface is unknown.
pub fn interface_config(state: &State, eni: NetworkInterfaceId, dns_resolvers: &[IpAddr]) -> Option<InterfaceConfig> {
    let iface = state.interfaces.get(&eni)?;
    let mut sessions: Vec<SessionConfig> = state
        .sessions_from(eni)
        .filter_map(|s| {
            let destination = state.destination_interface(&s.target)?;
            let address = destination.primary_ipv4().or_else(|| destination.addresses.first().copied())?;
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
    })
}
