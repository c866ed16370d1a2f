//! EC2's error codes and HTTP statuses, and the `<Response><Errors>` envelope.

use tapwire_control::{ApiError, ErrorKind, Quota, ResourceKind};

use super::Reply;
use super::xml;

/// EC2's code for an error kind.
pub fn error_code(kind: &ErrorKind) -> &'static str {
    use ResourceKind as R;
    match kind {
        ErrorKind::NotFound(R::Filter) | ErrorKind::MalformedId(R::Filter) => "InvalidTrafficMirrorFilterId.NotFound",
        ErrorKind::NotFound(R::FilterRule) | ErrorKind::MalformedId(R::FilterRule) => {
            "InvalidTrafficMirrorFilterRuleId.NotFound"
        }
        ErrorKind::NotFound(R::Session) | ErrorKind::MalformedId(R::Session) => {
            "InvalidTrafficMirrorSessionId.NotFound"
        }
        ErrorKind::NotFound(R::Target) | ErrorKind::MalformedId(R::Target) => "InvalidTrafficMirrorTargetId.NotFound",
        ErrorKind::NotFound(R::NetworkInterface) => "InvalidNetworkInterfaceID.NotFound",
        ErrorKind::NotFound(R::Account) | ErrorKind::MalformedId(R::Account) => "InvalidAccountID.NotFound",
        ErrorKind::NotFound(R::AccessKey) | ErrorKind::MalformedId(R::AccessKey) => "InvalidAccessKeyId.NotFound",
        ErrorKind::NotFound(R::JoinToken) | ErrorKind::MalformedId(R::JoinToken) => "InvalidJoinToken.NotFound",
        ErrorKind::NotFound(R::Agent) | ErrorKind::MalformedId(R::Agent) => "InvalidAgent.NotFound",
        ErrorKind::NotFound(R::SensorGroup) | ErrorKind::MalformedId(R::SensorGroup) => "InvalidSensorGroupId.NotFound",
        ErrorKind::AddressInUse => "InvalidIPAddress.InUse",
        ErrorKind::MalformedId(R::NetworkInterface) => "InvalidNetworkInterfaceId.Malformed",
        ErrorKind::FilterInUse => "TrafficMirrorFilterInUse",
        ErrorKind::TargetInUse => "TrafficMirrorTargetInUseException",
        ErrorKind::SensorGroupInUse => "SensorGroupInUseException",
        ErrorKind::InterfaceInUseBySession => "InterfaceInUseByTrafficMirrorSession",
        ErrorKind::InterfaceInUseByTarget => "InterfaceInUseByTrafficMirrorTarget",
        ErrorKind::LoadBalancerInUseByTarget => "NlbInUseByTrafficMirrorTargetException",
        ErrorKind::MalformedLoadBalancer => "InvalidNetworkLoadBalancerArn.Malformed",
        ErrorKind::InterfaceNotSupported => "NetworkInterfaceNotSupported",
        ErrorKind::RuleAlreadyExists => "TrafficMirrorFilterRuleAlreadyExists",
        ErrorKind::Quota(Quota::SessionsPerInterface) => "TrafficMirrorSessionsPerInterfaceLimitExceeded",
        ErrorKind::Quota(Quota::SessionsPerTarget) => "TrafficMirrorSessionsPerTargetLimitExceeded",
        ErrorKind::Quota(Quota::SourcesPerTarget) => "TrafficMirrorSourcesPerTargetLimitExceeded",
        ErrorKind::Quota(Quota::Filters) => "TrafficMirrorFilterLimitExceeded",
        ErrorKind::Quota(Quota::Rules) => "TrafficMirrorFilterRuleLimitExceeded",
        ErrorKind::Quota(Quota::Sessions) => "TrafficMirrorSessionLimitExceeded",
        ErrorKind::Quota(Quota::Targets) => "TrafficMirrorTargetLimitExceeded",
        ErrorKind::Quota(Quota::Interfaces) => "NetworkInterfaceLimitExceeded",
        ErrorKind::Quota(Quota::SourcesPerSession)
        | ErrorKind::DuplicateSource
        | ErrorKind::SourceAlreadyInSession
        | ErrorKind::SourceNotInSession
        | ErrorKind::InvalidParameterValue
        | ErrorKind::UnknownRegion => "InvalidParameterValue",
        ErrorKind::NotRepresentable => "UnsupportedOperation",
        ErrorKind::TargetDestinationCount => "InvalidInput",
        ErrorKind::IncorrectStatus(_) => "IncorrectState",
        ErrorKind::MissingParameter => "MissingParameter",
        ErrorKind::InvalidParameterCombination => "InvalidParameterCombination",
        ErrorKind::UnknownParameter => "UnknownParameter",
        ErrorKind::MalformedRequest | ErrorKind::UnsupportedMediaType => "MalformedQueryString",
        ErrorKind::InvalidAction => "InvalidAction",
        ErrorKind::InvalidFilter => "InvalidFilter",
        ErrorKind::FilterLimitExceeded => "FilterLimitExceeded",
        ErrorKind::RequestCancelled => "RequestCancelled",
        ErrorKind::InvalidNextToken => "InvalidNextToken",
        ErrorKind::TagLimitExceeded => "TagLimitExceeded",
        ErrorKind::InvalidTagKey => "InvalidTagKey.Malformed",
        ErrorKind::InvalidId => "InvalidID",
        ErrorKind::DryRunOperation => "DryRunOperation",
        ErrorKind::IdempotentParameterMismatch => "IdempotentParameterMismatch",
        ErrorKind::OptInRequired => "OptInRequired",
        ErrorKind::AlreadyOpened => "InvalidParameterValue",
        ErrorKind::MissingAuthentication => "MissingAuthenticationToken",
        ErrorKind::AuthFailure => "AuthFailure",
        ErrorKind::SignatureDoesNotMatch => "SignatureDoesNotMatch",
        ErrorKind::IncompleteSignature => "IncompleteSignature",
        ErrorKind::RequestExpired => "RequestExpired",
        ErrorKind::NonceUsed => "InvalidParameterValue",
        ErrorKind::Unauthorized => "UnauthorizedOperation",
        ErrorKind::Throttled => "RequestLimitExceeded",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Internal => "InternalError",
    }
}

/// EC2's HTTP status for an error kind.
pub fn error_status(kind: &ErrorKind) -> u16 {
    match kind {
        ErrorKind::DryRunOperation => 412,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::MissingAuthentication | ErrorKind::AuthFailure => 401,
        ErrorKind::SignatureDoesNotMatch | ErrorKind::Unauthorized => 403,
        ErrorKind::Throttled | ErrorKind::Unavailable => 503,
        ErrorKind::Internal => 500,
        _ => 400,
    }
}

/// Renders an error.
pub fn error_reply(err: &ApiError, request_id: &str) -> Reply {
    Reply {
        status: error_status(&err.kind),
        body: xml::error_document(error_code(&err.kind), &err.message, request_id),
    }
}
