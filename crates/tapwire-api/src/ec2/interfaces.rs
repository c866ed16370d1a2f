//! DescribeNetworkInterfaces over the interface inventory.
//!
//! The inventory is account-wide: an interface shows in every region. Members EC2 has
//! and tapwire does not model (VPC, subnet, availability zone, security groups) are left
//! out or empty, and filters on them match nothing (docs/dialects.md). Interfaces take
//! tags like any EC2 resource.

use tapwire_control::ApiError;
use tapwire_control::ResourceKind;
use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::NetworkInterface;

use super::describe::{Describe, TAG_FILTERS, tag_values};
use super::exchange::Exchange;
use super::params::{Params, parse_id};
use super::tags::tag_set;
use super::xml::Xml;

/// Filter names DescribeNetworkInterfaces takes whose values tapwire holds.
const FILTER_NAMES: &[&str] = &[
    "network-interface-id",
    "description",
    "status",
    "interface-type",
    "requester-managed",
    "source-dest-check",
    "mac-address",
    "owner-id",
    "private-ip-address",
    "addresses.private-ip-address",
    "addresses.primary",
    "ipv6-addresses.ipv6-address",
    "attachment.instance-id",
    "attachment.instance-owner-id",
    "attachment.status",
    "attachment.device-index",
    TAG_FILTERS[0],
    TAG_FILTERS[1],
    // EC2 names for what tapwire does not model (no VPCs, subnets, zones, security
    // groups, public addresses): accepted, and they match nothing (docs/dialects.md).
    "vpc-id",
    "subnet-id",
    "availability-zone",
    "group-id",
    "group-name",
    "private-dns-name",
    "requester-id",
    "attachment.attachment-id",
    "attachment.attach-time",
    "attachment.delete-on-termination",
    "association.allocation-id",
    "association.association-id",
    "association.ip-owner-id",
    "association.public-ip",
    "association.public-dns-name",
    "addresses.association.owner-id",
    "addresses.association.public-ip",
    "ipv6-address",
];

/// `DescribeNetworkInterfaces`; explicit IDs must be well-formed. `IncludeManagedResources`
/// is read and changes nothing: tapwire manages no interfaces on a caller's behalf.
pub fn parse_describe_network_interfaces(p: &Params) -> Result<Describe, ApiError> {
    let q = Describe::parse(p, "NetworkInterfaceId", FILTER_NAMES)?;
    for id in &q.ids {
        parse_id::<NetworkInterfaceId>(id, ResourceKind::NetworkInterface)?;
    }
    p.flag("IncludeManagedResources")?;
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
    if let Some(values) = tag_values(&i.tags, name) {
        return values;
    }
    let one = |v: &str| vec![v.to_owned()];
    let attached = i.instance_id.is_some();
    match name {
        "network-interface-id" => vec![i.id.to_string()],
        "description" => description(i).into_iter().collect(),
        "status" => one(status(i)),
        "interface-type" => one("interface"),
        "requester-managed" => one("false"),
        "source-dest-check" => one("true"),
        "mac-address" => i.mac.iter().cloned().collect(),
        "owner-id" => vec![i.scope.account.to_string()],
        "private-ip-address" | "addresses.private-ip-address" => {
            i.addresses.iter().filter(|a| a.is_ipv4()).map(ToString::to_string).collect()
        }
        "addresses.primary" => {
            i.addresses.iter().filter(|a| a.is_ipv4()).map(|a| (Some(*a) == i.primary_ipv4()).to_string()).collect()
        }
        "ipv6-addresses.ipv6-address" => i.addresses.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect(),
        "attachment.instance-id" => i.instance_id.iter().cloned().collect(),
        "attachment.instance-owner-id" if attached => vec![i.scope.account.to_string()],
        "attachment.status" if attached => one("attached"),
        "attachment.device-index" if attached => one("0"),
        _ => Vec::new(),
    }
}

/// `host/ifname`, or whichever of them is known.
fn description(i: &NetworkInterface) -> Option<String> {
    match (&i.host, &i.ifname) {
        (Some(h), Some(n)) => Some(format!("{h}/{n}")),
        (None, Some(n)) => Some(n.clone()),
        (Some(h), None) => Some(h.clone()),
        (None, None) => None,
    }
}

/// `in-use` when a host or instance is behind it, `available` otherwise.
fn status(i: &NetworkInterface) -> &'static str {
    if i.is_free() { "available" } else { "in-use" }
}

fn interface_xml(x: &mut Xml, i: &NetworkInterface) {
    x.leaf("networkInterfaceId", i.id);
    x.opt("description", description(i))
        .leaf("ownerId", i.scope.account)
        .leaf("requesterManaged", "false")
        .leaf("status", status(i))
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
    tag_set(x, &i.tags);
    let primary = i.primary_ipv4();
    x.list("privateIpAddressesSet", i.addresses.iter().filter(|a| a.is_ipv4()), |x, a| {
        x.leaf("privateIpAddress", a).leaf("primary", Some(*a) == primary);
    });
    x.list("ipv6AddressesSet", i.addresses.iter().filter(|a| a.is_ipv6()), |x, a| {
        x.leaf("ipv6Address", a);
    });
}
