//! The Alibaba Cloud VPC dialect (RPC style, API version 2016-04-28).
//!
//! Both request styles arrive at `/`: the Tea SDK's (action and version in the
//! `x-acs-action`/`x-acs-version` headers, ACS3-HMAC-SHA256 `Authorization`) and the legacy
//! SDK's (`Action`, `Version`, `AccessKeyId`, `Signature…` in the query string). Parameters
//! come from the query string and a form body alike ([`params`]).
//!
//! Every action is parse → execute → render: a pure `parse_<action>(&Params)` builds the
//! operation (or the List's request), the [`exchange::Exchange`] runs it, and the handler
//! answers a JSON object with `RequestId` and the fields the SDK models name. Errors
//! answer `{RequestId, HostId, Code, Message}` ([`errors`]).
//!
//! Rooms: this file dispatches; [`exchange`], [`params`], [`list`] (List semantics),
//! [`errors`]; one file per resource: [`filters`] (filters and their rules), [`sessions`],
//! [`tags`], [`service`]; [`lifecycle`] is the background task.
//!
//! Invariants:
//! - Every traffic-mirror action but the two service ones needs `RegionId`, and fails with
//!   `OptInRequired.TrafficMirror` until the service is opened in that account and region.
//! - The codec checks only Alibaba's own ranges and enums (rule priorities 1–10, packet
//!   length 64–8500, name rules); every other check is the control plane's.
//! - Writes put resources in `Creating`/`Modifying`/`Deleting`; [`lifecycle`] finishes them.

pub mod errors;
pub mod exchange;
pub mod filters;
pub mod lifecycle;
pub mod list;
pub mod params;
pub mod service;
pub mod sessions;
pub mod tags;

use serde_json::{Map, Value};
use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::AccountId;

pub use self::errors::{error_code, error_reply, error_status};
use self::exchange::Exchange;
use self::params::Params;
use crate::Api;
use crate::query::Access;

/// The API version this dialect speaks.
pub const VERSION: &str = "2016-04-28";

/// The `HostId` of error answers.
pub const HOST_ID: &str = "vpc.aliyuncs.com";

/// A rendered answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON document.
    pub body: String,
}

/// Who is calling, before the action is known.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account.
    pub account: AccountId,
    /// The verified caller.
    pub who: crate::auth::Identity,
    /// The client's address.
    pub source: Option<String>,
}

impl Caller {
    /// The root account, with authentication off (tests, tools in-process).
    pub fn root() -> Self {
        let who = crate::auth::Identity::open_root();
        Self { account: who.account, who, source: None }
    }
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
    ($name:literal, $access:ident, $handler:path) => {
        ($name, concat!("alibaba/", $name), Access::$access, $handler as Handler)
    };
}

/// Every action this dialect answers.
const ACTIONS: &[(&str, &str, Access, Handler)] = &[
    action!("OpenTrafficMirrorService", Write, service::open_service),
    action!("GetTrafficMirrorServiceStatus", Read, service::service_status),
    action!("CreateTrafficMirrorFilter", Write, filters::create_filter),
    action!("DeleteTrafficMirrorFilter", Write, filters::delete_filter),
    action!("CreateTrafficMirrorFilterRules", Write, filters::create_rules),
    action!("DeleteTrafficMirrorFilterRules", Write, filters::delete_rules),
    action!("UpdateTrafficMirrorFilterAttribute", Write, filters::update_filter),
    action!("UpdateTrafficMirrorFilterRuleAttribute", Write, filters::update_rule),
    action!("ListTrafficMirrorFilters", Read, filters::list_filters),
    action!("CreateTrafficMirrorSession", Write, sessions::create_session),
    action!("DeleteTrafficMirrorSession", Write, sessions::delete_session),
    action!("UpdateTrafficMirrorSessionAttribute", Write, sessions::update_session),
    action!("AddSourcesToTrafficMirrorSession", Write, sessions::add_sources),
    action!("RemoveSourcesFromTrafficMirrorSession", Write, sessions::remove_sources),
    action!("ListTrafficMirrorSessions", Read, sessions::list_sessions),
    action!("TagResources", Write, tags::tag_resources),
    action!("UnTagResources", Write, tags::untag_resources),
    action!("ListTagResources", Read, tags::list_tag_resources),
    action!("MoveResourceGroup", Write, tags::move_resource_group),
];

/// The names of every action this dialect answers.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|(name, _, _, _)| *name)
}

/// Whether `action` is one of this dialect's reads.
pub fn reads(action: &str) -> bool {
    ACTIONS.iter().any(|(name, _, access, _)| *name == action && *access == Access::Read)
}

fn dispatch(api: &Api, caller: &Caller, action: &str, params: &Params, request_id: &str) -> Result<String, ApiError> {
    let Some((name, scope, _, handler)) = ACTIONS.iter().find(|(name, _, _, _)| *name == action) else {
        return Err(if action.is_empty() {
            ApiError::missing("Action")
        } else {
            ApiError::new(ErrorKind::InvalidAction, format!("The specified action {action} is not found."))
        });
    };
    let mut fields = handler(&Exchange::new(api, caller, name, scope, params, request_id))?;
    fields.insert("RequestId".to_owned(), Value::from(request_id));
    Ok(Value::Object(fields).to_string())
}

/// Builds the fields of an answer from `json!({...})`.
pub(crate) fn fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Name and description rules shared by filters and sessions: `max` characters at most,
/// not empty, not starting with a URL scheme.
pub(crate) fn check_text(params: &Params, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    let len = raw.chars().count();
    let head = raw.trim_start().get(..8).unwrap_or(raw.trim_start()).to_ascii_lowercase();
    if len == 0 || len > max || head.starts_with("http://") || head.starts_with("https://") {
        return Err(ApiError::invalid(format!(
            "The {key} must be 1 to {max} characters long and must not start with http:// or https://."
        )));
    }
    Ok(Some(raw.to_owned()))
}

/// Longest resource name.
pub(crate) const NAME_MAX_CHARS: usize = 128;
/// Longest resource description.
pub(crate) const DESCRIPTION_MAX_CHARS: usize = 256;

/// Checks that a List or write touched an ID of the expected kind; malformed IDs are
/// reported as the kind's not-found.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str, kind: ResourceKind) -> Result<T, ApiError> {
    raw.trim().parse().map_err(|_| ApiError::not_found(kind, raw))
}
