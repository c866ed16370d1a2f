//! The Alibaba Cloud VPC dialect (RPC style, API version 2016-04-28).
//!
//! Both request styles arrive at `/`: the Tea SDK's (action and version in the
//! `x-acs-action`/`x-acs-version` headers, ACS3-HMAC-SHA256 `Authorization`) and the legacy
//! SDK's (`Action`, `Version`, `AccessKeyId`, `Signature…` in the query string). Parameters
//! come from the query string and a form body alike ([`params`]).
//!
//! One function per action reads the parameters into an [`Operation`] (or a read of the
//! state), runs it, and answers a JSON object with `RequestId` and the fields the SDK
//! models name. Errors answer `{RequestId, HostId, Code, Message}` with [`error_code`] and
//! [`error_status`].
//!
//! Invariants:
//! - Every traffic-mirror action but the two service ones needs `RegionId`, and fails with
//!   `OptInRequired.TrafficMirror` until the service is opened in that account and region.
//! - The codec checks only Alibaba's own ranges and enums (rule priorities 1–10, packet
//!   length 64–8500, name rules); every other check is the control plane's.
//! - Writes put resources in `Creating`/`Modifying`/`Deleting`; [`lifecycle`] finishes them.

mod filters;
pub mod lifecycle;
pub mod list;
pub mod params;
mod sessions;
mod tags;

use serde_json::{Map, Value, json};
use tapwire_control::ops::{IdempotencyKey, Operation, Output, RequestContext};
use tapwire_control::{ApiError, Dialect, ErrorKind, Quota, ResourceKind, State};
use tapwire_model::AccountId;
use tapwire_model::resource::Scope;

use self::params::Params;
use crate::Api;

/// The API version this dialect speaks.
pub const VERSION: &str = "2016-04-28";

/// The `HostId` of error answers.
pub const HOST_ID: &str = "vpc.aliyuncs.com";

/// Longest ClientToken Alibaba accepts.
const CLIENT_TOKEN_MAX_CHARS: usize = 64;

/// A rendered answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON document.
    pub body: String,
}

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
        ErrorKind::NotFound(R::NetworkInterface) | ErrorKind::MalformedId(R::NetworkInterface) => {
            "ResourceNotFound.NetworkInterface"
        }
        // In use by a session that may itself be Deleting: clients retry this code.
        ErrorKind::FilterInUse | ErrorKind::IncorrectStatus(R::Filter) => "IncorrectStatus.TrafficMirrorFilter",
        ErrorKind::IncorrectStatus(R::FilterRule) => "IncorrectStatus.TrafficMirrorRule",
        ErrorKind::IncorrectStatus(R::Session) => "IncorrectStatus.TrafficMirrorSession",
        ErrorKind::IncorrectStatus(R::Target | R::NetworkInterface) => "IncorrectStatus",
        ErrorKind::TargetInUse => "DependencyViolation.TrafficMirrorTarget",
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
        ErrorKind::DuplicateSource => "DuplicatedParam.SourceInstanceIds",
        ErrorKind::SourceAlreadyInSession => "ResourceAlreadyAssociated.TrafficMirrorSource",
        ErrorKind::SourceNotInSession => "ResourceNotFound.TrafficMirrorSource",
        ErrorKind::NotRepresentable => "OperationDenied.NotRepresentable",
        ErrorKind::MissingParameter => "MissingParameter",
        ErrorKind::InvalidParameterValue
        | ErrorKind::InvalidParameterCombination
        | ErrorKind::UnknownParameter
        | ErrorKind::InvalidFilter
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
        ErrorKind::AlreadyOpened => "ORDER.OPEND",
        ErrorKind::AuthFailure => "InvalidAccessKeyId",
        ErrorKind::Internal => "InternalError",
    }
}

/// Alibaba's HTTP status for an error kind: 404 for what does not exist, 500 for our own
/// failures, 400 for everything else (DryRunOperation included).
pub fn error_status(kind: &ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound(_)
        | ErrorKind::MalformedId(_)
        | ErrorKind::SourceNotInSession
        | ErrorKind::InvalidAction => 404,
        ErrorKind::AuthFailure => 401,
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

/// Who is calling, before the action is known.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account.
    pub account: AccountId,
}

/// Handles one Alibaba request: `action` from the `Action` parameter or the `x-acs-action`
/// header, parameters decoded.
pub fn handle(api: &Api, caller: &Caller, action: &str, params: Params, request_id: &str) -> Reply {
    match dispatch(api, caller, action, &params, request_id) {
        Ok(body) => Reply { status: 200, body },
        Err(err) => error_reply(&err, request_id),
    }
}

/// A handler's answer: the fields besides `RequestId`.
type Fields = Map<String, Value>;

type Handler = fn(&Exchange<'_>) -> Result<Fields, ApiError>;

/// An action's name, its ClientToken namespace (apart from EC2's actions of the same
/// name), and its handler.
macro_rules! action {
    ($name:literal, $handler:path) => {
        ($name, concat!("alibaba/", $name), $handler as Handler)
    };
}

/// Every action this dialect answers.
const ACTIONS: &[(&str, &str, Handler)] = &[
    action!("OpenTrafficMirrorService", open_service),
    action!("GetTrafficMirrorServiceStatus", service_status),
    action!("CreateTrafficMirrorFilter", filters::create_filter),
    action!("DeleteTrafficMirrorFilter", filters::delete_filter),
    action!("CreateTrafficMirrorFilterRules", filters::create_rules),
    action!("DeleteTrafficMirrorFilterRules", filters::delete_rules),
    action!("UpdateTrafficMirrorFilterAttribute", filters::update_filter),
    action!("UpdateTrafficMirrorFilterRuleAttribute", filters::update_rule),
    action!("ListTrafficMirrorFilters", filters::list_filters),
    action!("CreateTrafficMirrorSession", sessions::create_session),
    action!("DeleteTrafficMirrorSession", sessions::delete_session),
    action!("UpdateTrafficMirrorSessionAttribute", sessions::update_session),
    action!("AddSourcesToTrafficMirrorSession", sessions::add_sources),
    action!("RemoveSourcesFromTrafficMirrorSession", sessions::remove_sources),
    action!("ListTrafficMirrorSessions", sessions::list_sessions),
    action!("TagResources", tags::tag_resources),
    action!("UnTagResources", tags::untag_resources),
    action!("ListTagResources", tags::list_tag_resources),
    action!("MoveResourceGroup", tags::move_resource_group),
];

/// The names of every action this dialect answers.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|(name, _, _)| *name)
}

/// One request in flight.
struct Exchange<'a> {
    api: &'a Api,
    caller: &'a Caller,
    /// ClientToken namespace of the action.
    idempotency_scope: &'static str,
    params: &'a Params,
}

fn dispatch(api: &Api, caller: &Caller, action: &str, params: &Params, request_id: &str) -> Result<String, ApiError> {
    let Some((_, scope, handler)) = ACTIONS.iter().find(|(name, _, _)| *name == action) else {
        return Err(if action.is_empty() {
            ApiError::missing("Action")
        } else {
            ApiError::new(ErrorKind::InvalidAction, format!("The specified action {action} is not found."))
        });
    };
    let x = Exchange { api, caller, idempotency_scope: scope, params };
    let mut fields = handler(&x)?;
    fields.insert("RequestId".to_owned(), Value::from(request_id));
    Ok(Value::Object(fields).to_string())
}

impl Exchange<'_> {
    /// The region of a traffic-mirror action: `RegionId`, required.
    fn region(&self) -> Result<String, ApiError> {
        self.params.required("RegionId").map(str::to_owned)
    }

    fn scope(&self) -> Result<Scope, ApiError> {
        Ok(Scope { account: self.caller.account, region: self.region()? })
    }

    fn context(&self, region: String) -> Result<RequestContext, ApiError> {
        let token = self.params.get("ClientToken").filter(|t| !t.is_empty());
        if let Some(t) = token
            && (t.chars().count() > CLIENT_TOKEN_MAX_CHARS || !t.is_ascii())
        {
            return Err(ApiError::invalid(format!(
                "The ClientToken must be at most {CLIENT_TOKEN_MAX_CHARS} ASCII characters."
            )));
        }
        Ok(RequestContext {
            account: self.caller.account,
            region,
            dry_run: self.params.flag("DryRun")?.unwrap_or(false),
            idempotency: token.map(|token| IdempotencyKey {
                action: self.idempotency_scope,
                token: token.to_owned(),
                fingerprint: self.params.fingerprint(),
            }),
        })
    }

    /// Runs a write in the request's region.
    fn write(&self, op: Operation) -> Result<Output, ApiError> {
        let ctx = self.context(self.region()?)?;
        self.api.control.execute(&ctx, Dialect::Alibaba, op)
    }

    /// A snapshot for a List call, once the service is known to be open in the region.
    fn read(&self) -> Result<(std::sync::Arc<State>, Scope), ApiError> {
        let scope = self.scope()?;
        let state = self.api.control.read();
        if !state.service_open(&scope) {
            return Err(ApiError::new(
                ErrorKind::OptInRequired,
                format!(
                    "The traffic mirror service is not opened in region {}; call OpenTrafficMirrorService first.",
                    scope.region
                ),
            ));
        }
        Ok((state, scope))
    }

    /// The region of a service action: `RegionId` if given, else the server's.
    fn service_region(&self) -> String {
        match self.params.get("RegionId") {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => self.api.config.region.clone(),
        }
    }
}

/// Builds the fields of an answer from `json!({...})`.
fn fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn open_service(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let ctx = x.context(x.service_region())?;
    x.api.control.execute(&ctx, Dialect::Alibaba, Operation::OpenService)?;
    Ok(fields(json!({ "Code": "200", "Message": "successful" })))
}

fn service_status(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let scope = Scope { account: x.caller.account, region: x.service_region() };
    let enabled = x.api.control.read().service_open(&scope);
    Ok(fields(json!({ "Enabled": enabled })))
}

/// Name and description rules shared by filters and sessions: `max` characters at most,
/// not empty, not starting with a URL scheme.
fn check_text(params: &Params, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    let len = raw.chars().count();
    if len == 0 || len > max || raw.starts_with("http://") || raw.starts_with("https://") {
        return Err(ApiError::invalid(format!(
            "The {key} must be 1 to {max} characters long and must not start with http:// or https://."
        )));
    }
    Ok(Some(raw.to_owned()))
}

/// Longest resource name.
const NAME_MAX_CHARS: usize = 128;
/// Longest resource description.
const DESCRIPTION_MAX_CHARS: usize = 256;

/// Checks that a List or write touched an ID of the expected kind; malformed IDs are
/// reported as the kind's not-found.
fn parse_id<T: std::str::FromStr>(raw: &str, kind: ResourceKind) -> Result<T, ApiError> {
    raw.trim().parse().map_err(|_| ApiError::not_found(kind, raw))
}
