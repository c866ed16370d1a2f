//! The vocabulary of filter rules, shared by the API (which stores them) and the data
//! plane (which evaluates them).
//!
//! Semantics (AWS and Alibaba agree): rules of one direction are tried in ascending
//! number; the first rule that matches decides. A rule matches when its protocol (if set)
//! equals the packet's, both CIDRs contain the packet's addresses (an IPv4 rule never
//! matches IPv6 and the reverse), and, if a port range is set, the packet is TCP or UDP
//! with the port inside it.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Which way a packet crossed the source interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received by the source interface (EC2 "ingress", Alibaba inbound).
    Ingress,
    /// Sent by the source interface (EC2 "egress", Alibaba outbound).
    Egress,
}

impl Direction {
    /// The wire spelling shared by both APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl FromStr for Direction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ingress" => Ok(Direction::Ingress),
            "egress" => Ok(Direction::Egress),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a matching rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Mirror the packet (both dialects say `accept`).
    Accept,
    /// Do not mirror it (EC2 `reject`, Alibaba `drop`).
    Reject,
}

impl RuleAction {
    /// EC2 spelling.
    pub fn ec2(self) -> &'static str {
        match self {
            RuleAction::Accept => "accept",
            RuleAction::Reject => "reject",
        }
    }

    /// Alibaba spelling.
    pub fn alibaba(self) -> &'static str {
        match self {
            RuleAction::Accept => "accept",
            RuleAction::Reject => "drop",
        }
    }
}

/// An inclusive port range; `from <= to` always (deserialising refuses an inverted one, so
/// the classifier's interval arithmetic never sees one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PortRangeFields")]
pub struct PortRange {
    /// First port in the range.
    pub from: u16,
    /// Last port in the range (inclusive).
    pub to: u16,
}

/// [`PortRange`] as written, before its invariant is checked.
#[derive(Deserialize)]
struct PortRangeFields {
    from: u16,
    to: u16,
}

impl TryFrom<PortRangeFields> for PortRange {
    type Error = String;

    fn try_from(f: PortRangeFields) -> Result<Self, String> {
        Self::new(f.from, f.to).ok_or_else(|| format!("port range {}-{} ends before it starts", f.from, f.to))
    }
}

impl PortRange {
    /// A range; `None` when `from > to`.
    pub fn new(from: u16, to: u16) -> Option<Self> {
        (from <= to).then_some(Self { from, to })
    }

    /// Whether `port` lies inside the range.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.from <= port && port <= self.to
    }
}

/// IANA protocol numbers; their one home is the wire crate.
pub use tapwire_wire::ip::protocol;

/// The match part of a rule: everything but its identity, number and action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleMatch {
    /// IANA protocol number; `None` matches every protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// Source CIDR; same family as `destination_cidr`.
    pub source_cidr: IpNet,
    /// Destination CIDR.
    pub destination_cidr: IpNet,
    /// Source port range; only TCP and UDP packets can match when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<PortRange>,
    /// Destination port range; only TCP and UDP packets can match when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ports: Option<PortRange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_is_inclusive_and_ordered() {
        let r = PortRange::new(80, 443).unwrap();
        assert!(r.contains(80) && r.contains(443) && !r.contains(79) && !r.contains(444));
        assert!(PortRange::new(2, 1).is_none());
        let read = |json: &str| serde_json::from_str::<PortRange>(json).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"from": 80, "to": 443}"#), Ok(r));
        assert!(read(r#"{"from": 92, "to": 22}"#).unwrap_err().contains("port range 92-22 ends before it starts"));
    }

    #[test]
    fn directions_round_trip() {
        for d in [Direction::Ingress, Direction::Egress] {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(d));
        }
        assert!("Ingress".parse::<Direction>().is_err());
    }
}
