//! Alibaba's error codes and HTTP statuses, and the `{RequestId, HostId, Code, Message}`
//! envelope.

use serde_json::json;
use tapwire_control::{ApiError, ErrorKind, Quota, ResourceKind};

use super::{HOST_ID, Reply};

/// Alibaba's code for an error kind.
pub fn error_code(kind: &ErrorKind) -> &'static str {
    use ResourceKind as R;
    match kind {
        ErrorKind::NotFound(R::Filter) | ErrorKind::MalformedId(R::Filter) => "ResourceNotFound.TrafficMirrorFilter",
        ErrorKind::NotFound(R::FilterRule) | ErrorKind::MalformedId(R::FilterRule) => {
            "ResourceNotFound.TrafficMirrorRule"
        }
        ErrorKind::NotFound(R::Session) | ErrorKind::MalformedId(R::Session) => "ResourceNotFound.TrafficMirrorSession",
        ErrorKind::NotFound(R::Target) | ErrorKind::MalformedId(R::Target) => "ResourceNotFound.TrafficMirrorTarget",
        ErrorKind::NotFound(R::Account) | ErrorKind::MalformedId(R::Account) => "ResourceNotFound.Account",
        ErrorKind::NotFound(R::AccessKey) | ErrorKind::MalformedId(R::AccessKey) => "InvalidAccessKeyId.NotFound",
        ErrorKind::NotFound(R::JoinToken) | ErrorKind::MalformedId(R::JoinToken) => "ResourceNotFound.JoinToken",
        ErrorKind::NotFound(R::Agent) | ErrorKind::MalformedId(R::Agent) => "ResourceNotFound.Agent",
        ErrorKind::NotFound(R::SensorGroup) | ErrorKind::MalformedId(R::SensorGroup) => "ResourceNotFound.SensorGroup",
        ErrorKind::AddressInUse => "InvalidIpAddress.AlreadyExist",
        ErrorKind::NotFound(R::NetworkInterface) | ErrorKind::MalformedId(R::NetworkInterface) => {
            "ResourceNotFound.NetworkInterface"
        }
        // In use by a session that may itself be Deleting: clients retry this code.
        ErrorKind::FilterInUse | ErrorKind::IncorrectStatus(R::Filter) => "IncorrectStatus.TrafficMirrorFilter",
        ErrorKind::IncorrectStatus(R::FilterRule) => "IncorrectStatus.TrafficMirrorRule",
        ErrorKind::IncorrectStatus(R::Session) => "IncorrectStatus.TrafficMirrorSession",
        ErrorKind::IncorrectStatus(
            R::Target | R::NetworkInterface | R::Account | R::AccessKey | R::JoinToken | R::Agent | R::SensorGroup,
        ) => "IncorrectStatus",
        ErrorKind::TargetInUse => "DependencyViolation.TrafficMirrorTarget",
        ErrorKind::SensorGroupInUse => "DependencyViolation.SensorGroup",
        ErrorKind::InterfaceInUseBySession
        | ErrorKind::InterfaceInUseByTarget
        | ErrorKind::LoadBalancerInUseByTarget => "OperationDenied.DuplicateRole",
        ErrorKind::InterfaceNotSupported => "OperationDenied.FreeNetworkInterface",
        ErrorKind::RuleAlreadyExists => "DuplicatedParam.Priority",
        ErrorKind::Quota(Quota::SessionsPerInterface) => "QuotaExceeded.SessionsPerSource",
        ErrorKind::Quota(Quota::SessionsPerTarget) => "QuotaExceeded.SessionsPerTarget",
        ErrorKind::Quota(Quota::SourcesPerTarget) => "QuotaExceeded.SourcesPerTarget",
        ErrorKind::Quota(Quota::SourcesPerSession) => "QuotaExceeded.SourcesPerSession",
        ErrorKind::Quota(Quota::Filters) => "QuotaExceeded.TrafficMirrorFilter",
        ErrorKind::Quota(Quota::Rules) => "QuotaExceeded.RulesPerDirection",
        ErrorKind::Quota(Quota::Sessions) => "QuotaExceeded.TrafficMirrorSession",
        ErrorKind::Quota(Quota::Targets) => "QuotaExceeded.TrafficMirrorTarget",
        ErrorKind::Quota(Quota::Interfaces) => "QuotaExceeded.NetworkInterface",
        ErrorKind::DuplicateSource => "DuplicatedParam.SourceInstanceIds",
        ErrorKind::SourceAlreadyInSession => "ResourceAlreadyAssociated.TrafficMirrorSource",
        ErrorKind::SourceNotInSession => "ResourceNotFound.TrafficMirrorSource",
        ErrorKind::NotRepresentable => "OperationDenied.NotRepresentable",
        ErrorKind::MissingParameter => "MissingParameter",
        ErrorKind::InvalidParameterValue
        | ErrorKind::InvalidParameterCombination
        | ErrorKind::UnknownParameter
        | ErrorKind::MalformedRequest
        | ErrorKind::UnsupportedMediaType
        | ErrorKind::InvalidFilter
        | ErrorKind::FilterLimitExceeded
        | ErrorKind::InvalidId
        | ErrorKind::MalformedLoadBalancer
        | ErrorKind::TargetDestinationCount => "InvalidParameter",
        ErrorKind::InvalidAction => "InvalidAction.NotFound",
        ErrorKind::InvalidNextToken => "InvalidNextToken",
        ErrorKind::TagLimitExceeded => "QuotaExceeded.TagNum",
        ErrorKind::InvalidTagKey => "InvalidTagKey",
        ErrorKind::DryRunOperation => "DryRunOperation",
        ErrorKind::IdempotentParameterMismatch => "IdempotentParameterMismatch",
        ErrorKind::OptInRequired => "OptInRequired.TrafficMirror",
        ErrorKind::UnknownRegion => "InvalidRegionId.NotFound",
        ErrorKind::AlreadyOpened => "ORDER.OPEND",
        ErrorKind::MissingAuthentication | ErrorKind::IncompleteSignature => "IncompleteSignature",
        ErrorKind::AuthFailure => "InvalidAccessKeyId.NotFound",
        ErrorKind::SignatureDoesNotMatch => "SignatureDoesNotMatch",
        ErrorKind::RequestExpired => "InvalidTimeStamp.Expired",
        ErrorKind::NonceUsed => "SignatureNonceUsed",
        ErrorKind::Unauthorized => "Forbidden.RAM",
        ErrorKind::Throttled => "Throttling.User",
        ErrorKind::RequestCancelled => "RequestCancelled",
        ErrorKind::Unavailable => "ServiceUnavailable",
        ErrorKind::Internal => "InternalError",
    }
}

/// Alibaba's HTTP status for an error kind: 404 for what does not exist, 500 for our own
/// failures, 503 when the store is out of reach, 400 for everything else (DryRunOperation included).
pub fn error_status(kind: &ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound(_)
        | ErrorKind::MalformedId(_)
        | ErrorKind::SourceNotInSession
        | ErrorKind::InvalidAction => 404,
        ErrorKind::AuthFailure => 404,
        ErrorKind::Unauthorized => 403,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal => 500,
        _ => 400,
    }
}

/// Renders an error.
pub fn error_reply(err: &ApiError, request_id: &str) -> Reply {
    let body = json!({
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": error_code(&err.kind),
        "Message": err.message,
    });
    Reply { status: error_status(&err.kind), body: body.to_string() }
}
