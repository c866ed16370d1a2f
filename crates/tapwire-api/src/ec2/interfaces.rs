//! DescribeNetworkInterfaces over the interface inventory.
//!
//! The inventory is account-wide: an interface shows in every region. Members EC2 has
//! and tapwire does not model (VPC, subnet, security groups) are left out or empty
//! (docs/dialects.md).

use tapwire_control::ApiError;
use tapwire_control::ResourceKind;
use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::NetworkInterface;

use super::describe::Describe;
use super::exchange::Exchange;
use super::params::{Params, parse_id};
use super::xml::Xml;

/// Filter names DescribeNetworkInterfaces takes.
const FILTER_NAMES: &[&str] = &[
    "network-interface-id",
    "private-ip-address",
    "addresses.private-ip-address",
    "ipv6-addresses.ipv6-address",
    "attachment.instance-id",
    "mac-address",
    "owner-id",
];

/// `DescribeNetworkInterfaces`; explicit IDs must be well-formed.
pub fn parse_describe_network_interfaces(p: &Params) -> Result<Describe, ApiError> {
    let q = Describe::parse(p, "NetworkInterfaceId", FILTER_NAMES)?;
    for id in &q.ids {
        parse_id::<NetworkInterfaceId>(id, ResourceKind::NetworkInterface)?;
    }
    Ok(q)
}

pub(super) fn describe_network_interfaces(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_network_interfaces)?;
    let account = x.caller().account;
    let (items, next) = q.select(
        &state.interfaces,
        |i| i.scope.account == account,
        ResourceKind::NetworkInterface,
        interface_values,
        x.cancel(),
    )?;
    Ok(x.respond(|o| {
        o.list("networkInterfaceSet", items, interface_xml);
        o.opt("nextToken", next);
    }))
}

fn interface_values(i: &NetworkInterface, name: &str) -> Vec<String> {
    match name {
        "network-interface-id" => vec![i.id.to_string()],
        "private-ip-address" | "addresses.private-ip-address" => {
            i.addresses.iter().filter(|a| a.is_ipv4()).map(ToString::to_string).collect()
        }
        "ipv6-addresses.ipv6-address" => i.addresses.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect(),
        "attachment.instance-id" => i.instance_id.iter().cloned().collect(),
        "mac-address" => i.mac.iter().cloned().collect(),
        "owner-id" => vec![i.scope.account.to_string()],
        _ => Vec::new(),
    }
}

fn interface_xml(x: &mut Xml, i: &NetworkInterface) {
    x.leaf("networkInterfaceId", i.id);
    let description = match (&i.host, &i.ifname) {
        (Some(h), Some(n)) => Some(format!("{h}/{n}")),
        (None, Some(n)) => Some(n.clone()),
        (Some(h), None) => Some(h.clone()),
        (None, None) => None,
    };
    x.opt("description", description)
        .leaf("ownerId", i.scope.account)
        .leaf("requesterManaged", "false")
        .leaf("status", if i.is_free() { "available" } else { "in-use" })
        .opt("macAddress", i.mac.as_ref())
        .opt("privateIpAddress", i.primary_ipv4())
        .leaf("sourceDestCheck", "true")
        .leaf("interfaceType", "interface");
    if let Some(instance) = &i.instance_id {
        x.element("attachment", |x| {
            x.leaf("deviceIndex", 0)
                .leaf("instanceId", instance)
                .leaf("instanceOwnerId", i.scope.account)
                .leaf("status", "attached");
        });
    }
    x.list("groupSet", std::iter::empty::<()>(), |_, ()| {});
    x.list("tagSet", std::iter::empty::<()>(), |_, ()| {});
    let primary = i.primary_ipv4();
    x.list("privateIpAddressesSet", i.addresses.iter().filter(|a| a.is_ipv4()), |x, a| {
        x.leaf("privateIpAddress", a).leaf("primary", Some(*a) == primary);
    });
    x.list("ipv6AddressesSet", i.addresses.iter().filter(|a| a.is_ipv6()), |x, a| {
        x.leaf("ipv6Address", a);
    });
}
