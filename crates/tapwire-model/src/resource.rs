//! The resources, in the one shape both dialects are rendered from.
//!
//! Field notes:
//! - Times are seconds since the Unix epoch, supplied by the control plane's clock.
//! - `status` is Alibaba's lifecycle of the control plane's own background task; EC2 does
//!   not show it. Whether agents have applied a change is tracked apart (per interface).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use crate::numbers::{PacketLength, RuleNumber, SessionNumber, Vni};
use crate::rule::{Direction, RuleAction, RuleMatch};

/// A key/value tag. Keys are unique per resource; order of insertion is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    /// Tag key (case-sensitive).
    pub key: String,
    /// Tag value, possibly empty.
    pub value: String,
}

/// Tags of one resource, unique by key, in insertion order.
pub type Tags = Vec<Tag>;

/// Sets or replaces `tag` in `tags`, keeping the position of an existing key.
pub fn upsert_tag(tags: &mut Tags, tag: Tag) {
    match tags.iter_mut().find(|t| t.key == tag.key) {
        Some(existing) => existing.value = tag.value,
        None => tags.push(tag),
    }
}

/// Alibaba's lifecycle of a resource's background task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceStatus {
    /// Being created.
    Creating,
    /// Idle: the last change is done.
    Created,
    /// A change is being applied.
    Modifying,
    /// Being deleted; gone when the task ends.
    Deleting,
}

impl ResourceStatus {
    /// The spelling both Alibaba and tapwire use.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Creating => "Creating",
            ResourceStatus::Created => "Created",
            ResourceStatus::Modifying => "Modifying",
            ResourceStatus::Deleting => "Deleting",
        }
    }
}

/// Traffic that a filter can mirror regardless of its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NetworkService {
    /// DNS to the resolvers the operator configures for the fleet.
    #[serde(rename = "amazon-dns")]
    AmazonDns,
}

impl NetworkService {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkService::AmazonDns => "amazon-dns",
        }
    }
}

/// Where a resource lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// Owning account.
    pub account: AccountId,
    /// Region name, e.g. `us-east-1` or `cn-hangzhou`.
    pub region: String,
}

/// A traffic mirror filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Identity.
    pub id: FilterId,
    /// Owner and region.
    pub scope: Scope,
    /// Alibaba `TrafficMirrorFilterName`; EC2 has none.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Services mirrored regardless of rules.
    pub network_services: BTreeSet<NetworkService>,
    /// Tags.
    pub tags: Tags,
    /// Alibaba resource group.
    pub resource_group: Option<String>,
    /// Lifecycle of the background task.
    pub status: ResourceStatus,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

/// A rule of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// Identity.
    pub id: RuleId,
    /// Owning filter.
    pub filter_id: FilterId,
    /// Direction it applies to.
    pub direction: Direction,
    /// EC2 rule number or Alibaba priority: evaluated ascending, unique per direction.
    pub number: RuleNumber,
    /// Accept (mirror) or reject.
    pub action: RuleAction,
    /// What it matches.
    #[serde(flatten)]
    pub matches: RuleMatch,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Lifecycle of the background task.
    pub status: ResourceStatus,
}

/// What a session sends its copies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id")]
pub enum SessionTarget {
    /// An EC2 target resource.
    Target(TargetId),
    /// An interface named directly (Alibaba `TrafficMirrorTargetType=NetworkInterface`).
    NetworkInterface(NetworkInterfaceId),
    /// A load balancer named directly (Alibaba `SLB`).
    LoadBalancer(String),
}

/// A traffic mirror session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Identity.
    pub id: SessionId,
    /// Owner and region.
    pub scope: Scope,
    /// Source interfaces; EC2 sessions have exactly one.
    pub sources: Vec<NetworkInterfaceId>,
    /// Destination.
    pub target: SessionTarget,
    /// Filter deciding what is mirrored.
    pub filter_id: FilterId,
    /// EC2 session number / Alibaba priority: lower is tried first.
    pub number: SessionNumber,
    /// VXLAN network identifier.
    pub vni: Vni,
    /// Bytes of the inner frame to copy; `None` = whole frame.
    pub packet_length: Option<PacketLength>,
    /// Disabled sessions mirror nothing (Alibaba `Enabled`; EC2 sessions are enabled).
    pub enabled: bool,
    /// Alibaba name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Alibaba resource group.
    pub resource_group: Option<String>,
    /// Lifecycle of the background task.
    pub status: ResourceStatus,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

/// Where a target delivers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id")]
pub enum TargetDestination {
    /// A registered interface.
    NetworkInterface(NetworkInterfaceId),
    /// A network load balancer, by ARN.
    NetworkLoadBalancer(String),
    /// A gateway load balancer endpoint, `vpce-…`.
    GatewayLoadBalancerEndpoint(String),
}

impl TargetDestination {
    /// EC2 `type` value.
    pub fn ec2_type(&self) -> &'static str {
        match self {
            TargetDestination::NetworkInterface(_) => "network-interface",
            TargetDestination::NetworkLoadBalancer(_) => "network-load-balancer",
            TargetDestination::GatewayLoadBalancerEndpoint(_) => "gateway-load-balancer-endpoint",
        }
    }
}

/// A traffic mirror target (EC2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Identity.
    pub id: TargetId,
    /// Owner and region.
    pub scope: Scope,
    /// Destination.
    pub destination: TargetDestination,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

/// An interface in the inventory: registered by an agent, or by an operator for a sensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// Identity, stable per (host, interface name).
    pub id: NetworkInterfaceId,
    /// Owner and region.
    pub scope: Scope,
    /// Host name; with `ifname` the stable identity of the interface.
    pub host: Option<String>,
    /// Interface name on the host, e.g. `eth0`.
    pub ifname: Option<String>,
    /// Instance the interface is attached to; an interface with no instance and no host is
    /// "free" and cannot be a source.
    pub instance_id: Option<String>,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Addresses; the first IPv4 is the primary (outer source/destination of VXLAN).
    pub addresses: Vec<IpAddr>,
    /// Registration time (seconds since the epoch).
    pub created_at: i64,
    /// Tags (EC2 CreateTags on an `eni-`); registrations written before interfaces had
    /// tags read as none.
    #[serde(default)]
    pub tags: Tags,
}

impl NetworkInterface {
    /// The primary IPv4 address, if any.
    pub fn primary_ipv4(&self) -> Option<IpAddr> {
        self.addresses.iter().copied().find(IpAddr::is_ipv4)
    }

    /// Whether the interface is attached to nothing (cannot be a source).
    pub fn is_free(&self) -> bool {
        self.instance_id.is_none() && self.host.is_none()
    }
}
