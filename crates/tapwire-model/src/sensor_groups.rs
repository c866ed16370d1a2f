//! Sensor groups: several sensors behind one name, what a load balancer target stands for
//! in a self-hosted fleet. Neither cloud API makes one (an NLB, a GWLB endpoint or an SLB
//! is made elsewhere), so tapwire does (`tapwire sensor-group create`), and gives each
//! group the three names the clouds' target calls take: an NLB ARN, a GWLB endpoint ID
//! and an SLB instance ID, all derived from the group's ID, stable for its life.
//!
//! Modes: `flow-hash` sends each flow to one member (Maglev consistent hashing over the
//! symmetric flow hash: both directions to the same sensor, and a member change moves only
//! that member's share); `replicate` sends every copy to every member.

use serde::{Deserialize, Serialize};

use crate::ids::{NetworkInterfaceId, SensorGroupId};
use crate::resource::Scope;

/// Longest group name (an NLB name's limit).
pub const NAME_MAX_CHARS: usize = 32;
/// Most members in a group.
pub const MAX_MEMBERS: usize = 64;

/// How a group spreads copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupMode {
    /// Each flow to one member.
    #[default]
    FlowHash,
    /// Every copy to every member.
    Replicate,
}

impl GroupMode {
    /// The name the CLI and JSON use.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupMode::FlowHash => "flow-hash",
            GroupMode::Replicate => "replicate",
        }
    }
}

impl std::str::FromStr for GroupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flow-hash" => Ok(GroupMode::FlowHash),
            "replicate" => Ok(GroupMode::Replicate),
            other => Err(format!("a sensor group's mode is flow-hash or replicate, not {other}")),
        }
    }
}

/// A sensor group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorGroup {
    /// Identity.
    pub id: SensorGroupId,
    /// Owner and region.
    pub scope: Scope,
    /// Name, unique per account (groups are account-wide, like interfaces): letters,
    /// digits and hyphens.
    pub name: String,
    /// The sensors: registered interfaces of the account, in the order added.
    pub members: Vec<NetworkInterfaceId>,
    /// How copies are spread.
    pub mode: GroupMode,
    /// The TCP port agents probe each member on; `None`: no checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<u16>,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

impl SensorGroup {
    /// The NLB ARN that names this group in `CreateTrafficMirrorTarget`.
    pub fn load_balancer_arn(&self) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/net/{}/{}",
            self.scope.region,
            self.scope.account,
            self.name,
            &self.id.suffix().as_str()[1..]
        )
    }

    /// The GWLB endpoint ID that names this group (`vpce-…`, as EC2 spells them).
    pub fn gateway_endpoint_id(&self) -> String {
        format!("vpce-{}", self.id.suffix().as_str())
    }

    /// The SLB instance ID that names this group in Alibaba's `TrafficMirrorTargetId`.
    pub fn slb_instance_id(&self) -> String {
        format!("lb-{}", self.id.suffix().as_str())
    }

    /// Whether `name` (an NLB ARN, GWLB endpoint ID or SLB instance ID) is one of this
    /// group's.
    pub fn is_named(&self, name: &str) -> bool {
        name == self.gateway_endpoint_id() || name == self.slb_instance_id() || name == self.load_balancer_arn()
    }
}

/// Reads `--health-check`: `tcp:PORT` (1 to 65535), or `none`.
pub fn parse_health_check(s: &str) -> Result<Option<u16>, String> {
    if s == "none" {
        return Ok(None);
    }
    s.strip_prefix("tcp:")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .map(Some)
        .ok_or_else(|| format!("a health check is tcp:PORT (1 to 65535) or none, not {s}"))
}

/// Checks a group name: 1 to 32 letters, digits and hyphens, not starting or ending with
/// a hyphen (an NLB name's rules).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "A sensor group name is 1 to {NAME_MAX_CHARS} letters, digits and hyphens, not starting or ending with a hyphen."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountId;

    #[test]
    fn a_group_answers_to_its_three_load_balancer_names() {
        let g = SensorGroup {
            id: "tsg-0123456789abcdef0".parse().unwrap(),
            scope: Scope { account: AccountId::DEFAULT, region: "us-east-1".into() },
            name: "ids".into(),
            members: vec![],
            mode: GroupMode::FlowHash,
            health_check: None,
            created_at: 0,
        };
        let arn = g.load_balancer_arn();
        assert_eq!(arn, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/123456789abcdef0");
        assert!(g.is_named(&arn) && g.is_named("vpce-0123456789abcdef0") && g.is_named("lb-0123456789abcdef0"));
        assert!(!g.is_named("lb-0123456789abcdef1"));
        assert!(check_name("ids-1").is_ok() && check_name("-x").is_err() && check_name("a_b").is_err());
        assert_eq!("replicate".parse::<GroupMode>(), Ok(GroupMode::Replicate));
    }
}
