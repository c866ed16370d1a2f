//! tapwire's domain model, shared by every other crate.
//!
//! This crate is pure: no I/O, no clocks, no randomness (IDs are built from bytes the
//! caller supplies). It holds
//! - typed resource IDs ([`ids`]) that cannot be confused with one another,
//! - the resources themselves ([`resource`]) as both API dialects see them,
//! - accounts, access keys and audit records ([`identity`]),
//! - the matching vocabulary of filter rules ([`rule`]), shared with the data plane,
//! - every validation range and quota ([`limits`]), kept in one place, and the validated
//!   numbers whose range both dialects share ([`numbers`]),
//! - sensor groups, the load balancers sessions' copies are spread over ([`sensor_groups`]),
//! - a session's sampling and rate caps, set through reserved tag keys ([`sampling`]),
//! - `*`/`?` patterns as EC2 filters and IAM policies have them ([`wildcard`]),
//! - the versioned per-interface configuration document the control plane hands to
//!   agents and `tapwire simulate` reads ([`config`]).
//!
//! Invariant: a value of a model type that came through a `parse`/`new` constructor is
//! valid; dialect codecs and the control plane never re-check ranges by hand.

pub mod config;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod numbers;
pub mod prometheus;
pub mod resource;
pub mod rule;
pub mod sampling;
pub mod sensor_groups;
pub mod wildcard;

pub use ids::{AccountId, FilterId, IdParseError, NetworkInterfaceId, RuleId, SensorGroupId, SessionId, TargetId};
pub use numbers::{PacketLength, RangeError, RuleNumber, SessionNumber, Vni};
pub use rule::{Direction, PortRange, RuleAction, RuleMatch};
