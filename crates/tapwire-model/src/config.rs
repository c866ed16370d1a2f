//! The per-interface configuration document (schema 1).
//!
//! The control plane renders one document per source interface from its sessions,
//! filters and targets; agents apply it and `tapwire simulate --config` reads it. It is
//! self-contained: everything the data plane needs, nothing it does not. JSON, with
//! unknown fields rejected so a typo never silently disables a rule.
//!
//! ```json
//! { "schema": 1, "revision": 7, "network_interface_id": "eni-0123456789abcdef0",
//!   "addresses": ["198.18.0.2", "2001:db8::2"], "dns_resolvers": ["198.18.0.53"],
//!   "sessions": [ { "session_id": "tms-0123456789abcdef0", "number": 1, "vni": 42,
//!     "packet_length": 128, "enabled": true,
//!     "target": { "address": "198.18.1.2", "port": 4789 },
//!     "filter": { "filter_id": "tmf-0123456789abcdef0", "network_services": [],
//!       "ingress": [ { "rule_id": "tmfr-0123456789abcdef0", "number": 100,
//!                      "action": "accept", "protocol": 6,
//!                      "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
//!                      "destination_ports": { "from": 443, "to": 443 } } ],
//!       "egress": [] } } ] }
//! ```
//!
//! Invariants: VNIs, packet lengths and session and rule numbers are in range when the
//! document is read (they are [`crate::numbers`] types); [`InterfaceConfig::validate`]
//! checks the rest: the schema is 1, session numbers are unique, rule numbers are unique
//! per direction, both CIDRs of a rule share a family.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{FilterId, NetworkInterfaceId, RuleId, SessionId};
use crate::numbers::{PacketLength, RuleNumber, SessionNumber, Vni};
use crate::resource::NetworkService;
use crate::rule::{RuleAction, RuleMatch};
use crate::sampling::SessionLimits;
use crate::sensor_groups::GroupMode;

/// The schema version this build writes and reads.
pub const CONFIG_SCHEMA: u32 = 1;

/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;

/// Everything the data plane needs to mirror one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Always [`CONFIG_SCHEMA`].
    pub schema: u32,
    /// Control-plane revision this document was rendered at; increases with every change.
    pub revision: u64,
    /// The source interface.
    pub network_interface_id: NetworkInterfaceId,
    /// The interface's addresses; the first IPv4 is the outer source of VXLAN copies.
    pub addresses: Vec<IpAddr>,
    /// DNS resolvers that the `amazon-dns` network service stands for.
    #[serde(default)]
    pub dns_resolvers: Vec<IpAddr>,
    /// Sessions whose source is this interface, in any order.
    pub sessions: Vec<SessionConfig>,
    /// Sessions of this interface the control plane cannot render for a data plane
    /// (e.g. load-balancer targets), with why: the agent reports them as failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<UnsupportedSession>,
}

/// A session the document names but carries no target for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsupportedSession {
    /// The session.
    pub session_id: SessionId,
    /// Its number.
    pub number: SessionNumber,
    /// Why it cannot be mirrored.
    pub reason: String,
}

/// One session as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Session identity, for counters.
    pub session_id: SessionId,
    /// Lower numbers are tried first.
    pub number: SessionNumber,
    /// VXLAN network identifier.
    pub vni: Vni,
    /// Bytes of the inner frame to copy; absent = whole frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_length: Option<PacketLength>,
    /// Disabled sessions are skipped.
    pub enabled: bool,
    /// Where copies go.
    pub target: TargetEndpoint,
    /// What is copied.
    pub filter: FilterConfig,
    /// Sampling and rate caps (from the session's `tapwire:` tags).
    #[serde(default, skip_serializing_if = "SessionLimits::is_none")]
    pub limits: SessionLimits,
    /// A sensor group's members, when the target is one (`target` is then the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupConfig>,
}

/// A sensor group as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// How copies are spread.
    pub mode: GroupMode,
    /// The TCP port agents probe members on; absent: no checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<u16>,
    /// Each member's endpoint, with the name that places it in the consistent hash.
    pub members: Vec<GroupMember>,
}

/// One member of a sensor group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMember {
    /// The member's interface: its place in the hash does not depend on the others.
    pub network_interface_id: NetworkInterfaceId,
    /// Where its copies go.
    pub target: TargetEndpoint,
}

impl SessionConfig {
    /// Rule numbers unique per direction, both CIDRs of a rule of one family.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for rules in [&self.filter.ingress, &self.filter.egress] {
            let mut seen = HashSet::new();
            for r in rules {
                if !seen.insert(r.number) {
                    return Err(ConfigError::DuplicateRuleNumber(self.filter.filter_id, r.number));
                }
                let m = &r.matches;
                if m.source_cidr.addr().is_ipv4() != m.destination_cidr.addr().is_ipv4() {
                    return Err(ConfigError::CidrFamily(r.rule_id));
                }
            }
        }
        Ok(())
    }
}

/// The UDP endpoint of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEndpoint {
    /// Outer destination address.
    pub address: IpAddr,
    /// Outer destination port, 4789 unless a test says otherwise.
    #[serde(default = "default_vxlan_port")]
    pub port: u16,
}

fn default_vxlan_port() -> u16 {
    VXLAN_PORT
}

/// A filter with its rules split by direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Filter identity, for counters.
    pub filter_id: FilterId,
    /// Services mirrored regardless of rules.
    #[serde(default)]
    pub network_services: BTreeSet<NetworkService>,
    /// Rules for packets received by the interface, any order.
    #[serde(default)]
    pub ingress: Vec<RuleConfig>,
    /// Rules for packets sent by the interface, any order.
    #[serde(default)]
    pub egress: Vec<RuleConfig>,
}

/// One rule as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule identity, for counters.
    pub rule_id: RuleId,
    /// Evaluated ascending; unique per direction.
    pub number: RuleNumber,
    /// Accept (mirror) or reject.
    pub action: RuleAction,
    /// What it matches.
    #[serde(flatten)]
    pub matches: RuleMatch,
}

/// Why a configuration document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Unknown schema.
    #[error("unsupported config schema {0} (this build reads schema {CONFIG_SCHEMA})")]
    Schema(u32),
    /// Two sessions share a number.
    #[error("session number {0} is used twice")]
    DuplicateSessionNumber(SessionNumber),
    /// Two rules of a direction share a number.
    #[error("filter {0}: rule number {1} is used twice in one direction")]
    DuplicateRuleNumber(FilterId, RuleNumber),
    /// A rule mixes IPv4 and IPv6.
    #[error("rule {0}: source and destination CIDRs are of different families")]
    CidrFamily(RuleId),
}

impl InterfaceConfig {
    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_document()?;
        self.sessions.iter().try_for_each(SessionConfig::validate)
    }

    /// Checks what the whole document must hold (schema, unique session numbers); a
    /// session's own invariants are [`SessionConfig::validate`], so a data plane can set
    /// aside one bad session and apply the others.
    pub fn validate_document(&self) -> Result<(), ConfigError> {
        if self.schema != CONFIG_SCHEMA {
            return Err(ConfigError::Schema(self.schema));
        }
        let mut numbers = HashSet::new();
        for s in &self.sessions {
            if !numbers.insert(s.number) {
                return Err(ConfigError::DuplicateSessionNumber(s.number));
            }
        }
        Ok(())
    }

    /// The outer source address of this interface's copies: its first IPv4, else its first
    /// address.
    pub fn outer_source(&self) -> Option<IpAddr> {
        self.addresses.iter().copied().find(IpAddr::is_ipv4).or_else(|| self.addresses.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{ "schema": 1, "revision": 7, "network_interface_id": "eni-0123456789abcdef0",
      "addresses": ["198.18.0.2", "2001:db8::2"], "dns_resolvers": ["198.18.0.53"],
      "sessions": [ { "session_id": "tms-0123456789abcdef0", "number": 1, "vni": 42,
        "packet_length": 128, "enabled": true,
        "target": { "address": "198.18.1.2", "port": 4789 },
        "filter": { "filter_id": "tmf-0123456789abcdef0", "network_services": [],
          "ingress": [ { "rule_id": "tmfr-0123456789abcdef0", "number": 100,
                         "action": "accept", "protocol": 6,
                         "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                         "destination_ports": { "from": 443, "to": 443 } } ],
          "egress": [] } } ] }"#;

    #[test]
    fn documented_example_parses_and_validates() {
        let cfg: InterfaceConfig = serde_json::from_str(DOC).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.outer_source(), Some("198.18.0.2".parse().unwrap()));
        let rule = &cfg.sessions[0].filter.ingress[0];
        assert_eq!(rule.matches.protocol, Some(6));
        assert_eq!(rule.matches.source_ports, None);
        let back: InterfaceConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(serde_json::from_str::<InterfaceConfig>(&DOC.replace("\"vni\"", "\"vnii\"")).is_err());
        assert!(serde_json::from_str::<InterfaceConfig>(&DOC.replace("\"vni\": 42", "\"vni\": 16777216")).is_err());
        assert!(
            serde_json::from_str::<InterfaceConfig>(&DOC.replace("\"packet_length\": 128", "\"packet_length\": 0"))
                .is_err()
        );
        let mut cfg: InterfaceConfig = serde_json::from_str(DOC).unwrap();
        cfg.sessions[0].filter.ingress[0].matches.destination_cidr = "::/0".parse().unwrap();
        assert!(matches!(cfg.validate(), Err(ConfigError::CidrFamily(..))));
        let mut cfg: InterfaceConfig = serde_json::from_str(DOC).unwrap();
        cfg.schema = 2;
        assert!(matches!(cfg.validate(), Err(ConfigError::Schema(2))));
    }
}
