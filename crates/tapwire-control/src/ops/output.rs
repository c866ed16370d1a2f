//! What a successful operation returns ([`Output`]), stored as-is for ClientToken
//! replays, with typed accessors for the callers that know what they asked.

use serde::{Deserialize, Serialize};
use tapwire_model::identity::{AccessKey, Account, JoinToken};
use tapwire_model::resource::{Filter, FilterRule, NetworkInterface, Session, Target};
use tapwire_model::sensor_groups::SensorGroup;

/// A filter with its rules, the way both dialects show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterView {
    /// The filter.
    pub filter: Filter,
    /// Its rules, ordered by direction then number.
    pub rules: Vec<FilterRule>,
}

/// What a successful operation returns; stored as-is for ClientToken replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// A filter.
    Filter(FilterView),
    /// A rule.
    Rule(FilterRule),
    /// Rules, in request order.
    Rules(Vec<FilterRule>),
    /// A session.
    Session(Session),
    /// A target.
    Target(Target),
    /// An interface.
    Interface(NetworkInterface),
    /// An account.
    Account(Account),
    /// An access key (sealed secret included; never echoed to a caller as is).
    AccessKey(AccessKey),
    /// A join token (hashed secret only).
    JoinToken(JoinToken),
    /// A sensor group.
    SensorGroup(SensorGroup),
    /// The ID of what was deleted.
    Deleted(String),
    /// Done; nothing to show.
    Done,
}

/// Typed views of an [`Output`]: each codec knows what its operation returns; a mismatch
/// is a bug inside the server, answered as an internal error.
impl Output {
    fn mismatch(self, expected: &str) -> crate::error::ApiError {
        crate::error::ApiError::internal(format!("expected {expected}, got {self:?}"))
    }

    /// The filter of a filter operation.
    pub fn into_filter(self) -> Result<FilterView, crate::error::ApiError> {
        match self {
            Output::Filter(v) => Ok(v),
            other => Err(other.mismatch("a filter")),
        }
    }

    /// The rule of a one-rule operation.
    pub fn into_rule(self) -> Result<FilterRule, crate::error::ApiError> {
        match self {
            Output::Rule(r) => Ok(r),
            other => Err(other.mismatch("a rule")),
        }
    }

    /// The rules of a several-rule operation, in request order.
    pub fn into_rules(self) -> Result<Vec<FilterRule>, crate::error::ApiError> {
        match self {
            Output::Rules(r) => Ok(r),
            other => Err(other.mismatch("rules")),
        }
    }

    /// The session of a session operation.
    pub fn into_session(self) -> Result<Session, crate::error::ApiError> {
        match self {
            Output::Session(s) => Ok(s),
            other => Err(other.mismatch("a session")),
        }
    }

    /// The target of a target operation.
    pub fn into_target(self) -> Result<Target, crate::error::ApiError> {
        match self {
            Output::Target(t) => Ok(t),
            other => Err(other.mismatch("a target")),
        }
    }

    /// The interface of an interface operation.
    pub fn into_interface(self) -> Result<NetworkInterface, crate::error::ApiError> {
        match self {
            Output::Interface(i) => Ok(i),
            other => Err(other.mismatch("an interface")),
        }
    }

    /// The account of an account operation.
    pub fn into_account(self) -> Result<Account, crate::error::ApiError> {
        match self {
            Output::Account(a) => Ok(a),
            other => Err(other.mismatch("an account")),
        }
    }

    /// The join token made.
    pub fn into_join_token(self) -> Result<JoinToken, crate::error::ApiError> {
        match self {
            Output::JoinToken(t) => Ok(t),
            other => Err(other.mismatch("a join token")),
        }
    }

    /// The sensor group, or an internal error.
    pub fn into_sensor_group(self) -> Result<SensorGroup, crate::error::ApiError> {
        match self {
            Output::SensorGroup(g) => Ok(g),
            other => Err(other.mismatch("a sensor group")),
        }
    }

    /// The key of an access-key operation.
    pub fn into_access_key(self) -> Result<AccessKey, crate::error::ApiError> {
        match self {
            Output::AccessKey(k) => Ok(k),
            other => Err(other.mismatch("an access key")),
        }
    }

    /// The ID a delete removed.
    pub fn into_deleted(self) -> Result<String, crate::error::ApiError> {
        match self {
            Output::Deleted(id) => Ok(id),
            other => Err(other.mismatch("a deleted ID")),
        }
    }
}
