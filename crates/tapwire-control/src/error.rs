//! Errors the control plane returns, by meaning. Each dialect maps a kind to its own code
//! and HTTP status; the message is safe to show to callers.

use std::fmt;

/// The kinds of resource that can be missing, busy or in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A filter.
    Filter,
    /// A filter rule.
    FilterRule,
    /// A session.
    Session,
    /// A target.
    Target,
    /// A network interface.
    NetworkInterface,
    /// An account.
    Account,
    /// An access key.
    AccessKey,
    /// A join token.
    JoinToken,
    /// An enrolled agent (its host's credential).
    Agent,
    /// A sensor group.
    SensorGroup,
}

/// What went wrong, independent of dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A referenced resource does not exist.
    NotFound(ResourceKind),
    /// An address is already held by another interface of the account.
    AddressInUse,
    /// An ID is not even of the right shape.
    MalformedId(ResourceKind),
    /// A filter is still used by a session.
    FilterInUse,
    /// A target is still used by a session.
    TargetInUse,
    /// The interface is already the source of a session.
    InterfaceInUseBySession,
    /// The interface is already a target.
    InterfaceInUseByTarget,
    /// A load balancer ARN is malformed.
    MalformedLoadBalancer,
    /// The load balancer is already a target.
    LoadBalancerInUseByTarget,
    /// A sensor group is still named by a target or a session.
    SensorGroupInUse,
    /// The interface cannot be a source (it is attached to nothing).
    InterfaceNotSupported,
    /// A rule with this number already exists in this direction.
    RuleAlreadyExists,
    /// A quota would be exceeded.
    Quota(Quota),
    /// A target names zero or several destinations.
    TargetDestinationCount,
    /// The resource's background task has not finished (Alibaba lifecycle).
    IncorrectStatus(ResourceKind),
    /// The same interface is given twice.
    DuplicateSource,
    /// The interface is already a source of this session.
    SourceAlreadyInSession,
    /// The interface is not a source of this session.
    SourceNotInSession,
    /// The resource exists but this dialect cannot show it faithfully (e.g. an EC2 view of
    /// a session with several sources).
    NotRepresentable,
    /// A required parameter is missing.
    MissingParameter,
    /// A parameter has a bad value.
    InvalidParameterValue,
    /// Parameters that cannot be used together.
    InvalidParameterCombination,
    /// A parameter the operation does not take.
    UnknownParameter,
    /// The request itself is malformed: a bad escape, invalid UTF-8, a key given twice,
    /// a body where none belongs.
    MalformedRequest,
    /// The body is not a form.
    UnsupportedMediaType,
    /// The action is unknown.
    InvalidAction,
    /// A Describe filter name is unknown.
    InvalidFilter,
    /// Too many Describe filters or filter values.
    FilterLimitExceeded,
    /// The client went away before the answer was ready (never seen by that client).
    RequestCancelled,
    /// A pagination token is not one this server issued.
    InvalidNextToken,
    /// Too many tags.
    TagLimitExceeded,
    /// A tag key is malformed or reserved.
    InvalidTagKey,
    /// A resource ID names no taggable resource kind.
    InvalidId,
    /// DryRun: every check passed, nothing was written.
    DryRunOperation,
    /// A ClientToken was reused with different parameters.
    IdempotentParameterMismatch,
    /// The region is not one this server serves.
    UnknownRegion,
    /// The region's traffic mirror service is not opened (Alibaba).
    OptInRequired,
    /// The service is already opened (Alibaba `ORDER.OPEND`).
    AlreadyOpened,
    /// The request carries no signature.
    MissingAuthentication,
    /// The access key is unknown (or deleted).
    AuthFailure,
    /// The signature is not the key's over this request.
    SignatureDoesNotMatch,
    /// The signature is missing a part or malformed.
    IncompleteSignature,
    /// The request's time is too far from the server's.
    RequestExpired,
    /// An Alibaba nonce seen within the replay window.
    NonceUsed,
    /// The key's policy does not allow the action.
    Unauthorized,
    /// The key sent more requests than its rate allows.
    Throttled,
    /// The store cannot be reached: a write was refused and changed nothing.
    Unavailable,
    /// Something broke inside the server.
    Internal,
}

/// Quotas that can be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Sessions per source interface.
    SessionsPerInterface,
    /// Sessions per target.
    SessionsPerTarget,
    /// Distinct sources per interface target.
    SourcesPerTarget,
    /// Sources of one session.
    SourcesPerSession,
    /// Filters per account.
    Filters,
    /// Rules per filter direction.
    Rules,
    /// Sessions per account.
    Sessions,
    /// Targets per account.
    Targets,
    /// Network interfaces per account.
    Interfaces,
}

/// An error to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A sentence for people.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// `InvalidParameterValue` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameterValue, message)
    }

    /// `MissingParameter` for `name`.
    pub fn missing(name: &str) -> Self {
        Self::new(ErrorKind::MissingParameter, format!("The request must contain the parameter {name}"))
    }

    /// Not-found for `kind` and the ID the caller gave.
    pub fn not_found(kind: ResourceKind, id: &str) -> Self {
        let what = match kind {
            ResourceKind::Filter => "traffic mirror filter",
            ResourceKind::FilterRule => "traffic mirror filter rule",
            ResourceKind::Session => "traffic mirror session",
            ResourceKind::Target => "traffic mirror target",
            ResourceKind::NetworkInterface => "network interface",
            ResourceKind::Account => "account",
            ResourceKind::AccessKey => "access key",
            ResourceKind::JoinToken => "join token",
            ResourceKind::Agent => "agent",
            ResourceKind::SensorGroup => "sensor group",
        };
        Self::new(ErrorKind::NotFound(kind), format!("The {what} '{id}' does not exist."))
    }

    /// `NotRepresentable` for a session EC2 cannot show.
    pub fn not_representable(id: &str) -> Self {
        Self::new(
            ErrorKind::NotRepresentable,
            format!(
                "The traffic mirror session '{id}' has several or no sources, is disabled, or names its destination without a traffic mirror target; the EC2 API cannot show it. Use the Alibaba Cloud VPC API."
            ),
        )
    }

    /// An internal failure; the detail is logged, not shown.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorKind::Internal, "An internal error has occurred.")
    }

    /// A store failure: `Unavailable` when the database cannot be reached (try again
    /// later), else internal.
    pub fn from_store(err: tapwire_store::StoreError) -> Self {
        match err {
            tapwire_store::StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::new(ErrorKind::Unavailable, "The service cannot reach its store; nothing was changed. Try again.")
            }
            other => Self::internal(other),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}
