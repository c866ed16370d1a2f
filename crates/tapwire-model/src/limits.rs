//! Every validation range and quota, in one place.
//!
//! Ranges are facts of the APIs and fixed; quotas are defaults that an operator may change
//! through [`Quotas`]. Ranges of a single field that both dialects share are validated
//! newtypes in [`crate::numbers`].

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// Alibaba rule priorities per direction.
pub const ALIBABA_RULE_PRIORITY: RangeInclusive<u32> = 1..=10;
/// Alibaba packet length.
pub const ALIBABA_PACKET_LENGTH: RangeInclusive<u32> = 64..=8500;
/// Alibaba default packet length.
pub const ALIBABA_DEFAULT_PACKET_LENGTH: u16 = 1500;
/// Packet length reported for EC2 sessions whose target is a load balancer and which set none.
pub const NLB_DEFAULT_PACKET_LENGTH: u16 = 8500;
/// EC2 Describe page sizes.
pub const EC2_MAX_RESULTS: RangeInclusive<u32> = 5..=1000;
/// Alibaba List page sizes.
pub const ALIBABA_MAX_RESULTS: RangeInclusive<u32> = 1..=100;
/// Alibaba default page size.
pub const ALIBABA_DEFAULT_MAX_RESULTS: u32 = 10;

/// Longest account name.
pub const ACCOUNT_NAME_MAX_CHARS: usize = 64;
/// Accounts of one installation.
pub const MAX_ACCOUNTS: usize = 10_000;
/// Access keys of one account.
pub const ACCESS_KEYS_PER_ACCOUNT: usize = 20;
/// Agent credentials of one account (one per enrolled host).
pub const AGENT_CREDENTIALS_PER_ACCOUNT: usize = 10_000;
/// Join tokens of one account that are still live.
pub const JOIN_TOKENS_PER_ACCOUNT: usize = 1_000;
/// Longest life of a join token, in seconds (30 days).
pub const JOIN_TOKEN_MAX_TTL: i64 = 30 * 24 * 3600;
/// Most enrollments one join token allows.
pub const JOIN_TOKEN_MAX_USES: u32 = 10_000;
/// A host name, as a join token or an agent carries it.
pub const HOST_NAME_MAX_CHARS: usize = 253;
/// A key's policy document, as IAM bounds a managed policy.
pub const POLICY_MAX_CHARS: usize = 6_144;

/// EC2 tag rules.
pub mod ec2_tags {
    /// Tags on one resource.
    pub const PER_RESOURCE: usize = 50;
    /// Longest key, in characters.
    pub const KEY_MAX_CHARS: usize = 127;
    /// Longest value, in characters.
    pub const VALUE_MAX_CHARS: usize = 256;
    /// Reserved key prefix.
    pub const RESERVED_PREFIX: &str = "aws:";
    /// Resource IDs in one CreateTags/DeleteTags call.
    pub const IDS_PER_CALL: usize = 1000;
}

/// Alibaba tag rules.
pub mod alibaba_tags {
    /// Tags per request and per resource.
    pub const PER_RESOURCE: usize = 20;
    /// Longest key, in characters.
    pub const KEY_MAX_CHARS: usize = 128;
    /// Longest value, in characters.
    pub const VALUE_MAX_CHARS: usize = 128;
    /// Key prefixes reserved for the cloud itself.
    pub const RESERVED_PREFIXES: &[&str] = &["aliyun", "acs:"];
}

/// Quotas: defaults as EC2 has them, all changeable by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Sessions whose source is one interface.
    pub sessions_per_interface: usize,
    /// Rules per filter and direction.
    pub rules_per_filter_direction: usize,
    /// Sessions per account.
    pub sessions_per_account: usize,
    /// Filters per account.
    pub filters_per_account: usize,
    /// Targets per account.
    pub targets_per_account: usize,
    /// Distinct source interfaces whose sessions point at one interface target.
    pub sources_per_interface_target: usize,
    /// Sessions pointing at one target (0 = unlimited).
    pub sessions_per_target: usize,
    /// Source interfaces of one session (Alibaba; EC2 sessions have exactly one).
    pub sources_per_session: usize,
    /// Registered network interfaces per account (the inventory).
    pub interfaces_per_account: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            sessions_per_interface: 3,
            rules_per_filter_direction: 10,
            sessions_per_account: 10_000,
            filters_per_account: 10_000,
            targets_per_account: 10_000,
            sources_per_interface_target: 10,
            sessions_per_target: 0,
            sources_per_session: 10,
            interfaces_per_account: 50_000,
        }
    }
}
