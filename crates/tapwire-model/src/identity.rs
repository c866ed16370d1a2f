//! Who may call: accounts, their access keys, and the audit trail of what callers did.
//!
//! - Every installation has one root account (`root: true`), made at first start; its keys
//!   administer accounts and keys and read every account's audit. Resources made before
//!   accounts existed belong to it ([`AccountId::DEFAULT`]).
//! - An access key belongs to one account and works in both dialects (EC2 SigV4 and
//!   Alibaba V1/ACS3). Its secret is stored sealed (`tapwire-auth::seal`), never in the
//!   clear; its policy, when it has one, is an IAM-style JSON document checked when the key
//!   is made (`tapwire-auth::policy`).
//! - An agent credential is an access key bound to one host (`agent_host`), made by
//!   exchanging a [`JoinToken`]; tokens are stored as a hash of their secret half.
//! - Audit records are append-only and kept apart from the resources (they are not part of
//!   the state a replica loads).

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;

/// An account: the owner of resources, quotas and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// 12 digits.
    pub id: AccountId,
    /// Name given at creation.
    pub name: String,
    /// The installation's administrator account.
    pub root: bool,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

/// An access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `TWAK…`.
    pub id: String,
    /// Owner.
    pub account: AccountId,
    /// The secret, sealed under the installation's master key.
    pub sealed_secret: String,
    /// IAM-style policy document; `None` = everything the account may do.
    pub policy: Option<String>,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
    /// An agent credential: the host it is bound to. Such a key may only register that
    /// host's interfaces, read their configuration and report their status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_host: Option<String>,
}

/// A join token: exchanged once (or `uses_left` times) for an agent credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// `twjt-…`, the public half of the token text.
    pub id: String,
    /// The account the agents it enrolls belong to.
    pub account: AccountId,
    /// SHA-256 (hex) of the secret half; the secret itself is never stored.
    pub secret_hash: String,
    /// The only host it may enroll, when bound.
    pub host: Option<String>,
    /// Expiry (seconds since the epoch).
    pub expires_at: i64,
    /// Enrollments left.
    pub uses_left: u32,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

/// One audited event: a write, a refused authentication, a denied action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When (seconds since the epoch).
    pub at: i64,
    /// The caller's account, once known.
    pub account: Option<AccountId>,
    /// The access key (or agent credential) used, if any.
    pub access_key: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// `ec2`, `alibaba` or `tapwire`.
    pub dialect: String,
    /// The action, e.g. `CreateTrafficMirrorFilter`.
    pub action: String,
    /// IDs of the resources it touched.
    pub resources: Vec<String>,
    /// `OK`, or the error code answered.
    pub result: String,
    /// The request ID both the answer and this record carry.
    pub request_id: String,
}
