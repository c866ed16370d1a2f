//! The EC2 Query dialect (API version 2016-11-15).
//!
//! Every action is parse → execute → render: a pure `parse_<action>(&Params)` builds the
//! [`tapwire_control::Operation`] (or the read's request), the [`exchange::Exchange`] runs
//! it, and the handler renders the `<ActionResponse>` document. Errors render as the
//! `<Response><Errors>` envelope with EC2's codes ([`errors`]).
//!
//! Rooms: this file dispatches; [`exchange`] is the request in flight; [`params`] the
//! typed readers; [`xml`] the writer; [`describe`] the Describe semantics; one file per
//! resource: [`filters`] (filters and their rules), [`sessions`], [`targets`], [`tags`],
//! [`interfaces`].

pub mod describe;
pub mod errors;
pub mod exchange;
pub mod filters;
pub mod interfaces;
pub mod params;
pub mod sessions;
pub mod tags;
pub mod targets;
pub mod xml;

use tapwire_control::{ApiError, ErrorKind};

use crate::Api;
use crate::cancel::Cancel;
use crate::query::Access;

pub use self::errors::{error_code, error_reply, error_status};
use self::exchange::Exchange;
use self::params::Params;

/// The API version this dialect speaks.
pub const VERSION: &str = "2016-11-15";

/// A rendered answer: HTTP status and XML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// XML document.
    pub body: String,
}

/// Who is calling and where, before the action is known.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account.
    pub account: tapwire_model::AccountId,
    /// Region (the SigV4 scope's).
    pub region: String,
    /// The verified caller.
    pub who: crate::auth::Identity,
    /// The client's address.
    pub source: Option<String>,
}

impl Caller {
    /// The root account in `region`, with authentication off (tests, tools in-process).
    pub fn root(region: &str) -> Self {
        let who = crate::auth::Identity::open_root();
        Self { account: who.account, region: region.to_owned(), who, source: None }
    }
}

type Handler = fn(&Exchange<'_>) -> Result<String, ApiError>;

/// Every action this dialect answers, whether it only reads, and its handler.
const ACTIONS: &[(&str, Access, Handler)] = &[
    ("CreateTrafficMirrorFilter", Access::Write, filters::create_filter),
    ("CreateTrafficMirrorFilterRule", Access::Write, filters::create_rule),
    ("CreateTrafficMirrorSession", Access::Write, sessions::create_session),
    ("CreateTrafficMirrorTarget", Access::Write, targets::create_target),
    ("DeleteTrafficMirrorFilter", Access::Write, filters::delete_filter),
    ("DeleteTrafficMirrorFilterRule", Access::Write, filters::delete_rule),
    ("DeleteTrafficMirrorSession", Access::Write, sessions::delete_session),
    ("DeleteTrafficMirrorTarget", Access::Write, targets::delete_target),
    ("DescribeTrafficMirrorFilters", Access::Read, filters::describe_filters),
    ("DescribeTrafficMirrorFilterRules", Access::Read, filters::describe_rules),
    ("DescribeTrafficMirrorSessions", Access::Read, sessions::describe_sessions),
    ("DescribeTrafficMirrorTargets", Access::Read, targets::describe_targets),
    ("ModifyTrafficMirrorFilterNetworkServices", Access::Write, filters::modify_network_services),
    ("ModifyTrafficMirrorFilterRule", Access::Write, filters::modify_rule),
    ("ModifyTrafficMirrorSession", Access::Write, sessions::modify_session),
    ("CreateTags", Access::Write, tags::create_tags),
    ("DeleteTags", Access::Write, tags::delete_tags),
    ("DescribeTags", Access::Read, tags::describe_tags),
    ("DescribeNetworkInterfaces", Access::Read, interfaces::describe_network_interfaces),
];

/// The names of every action this dialect answers.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|(name, _, _)| *name)
}

/// Whether `action` is one of this dialect's reads.
pub fn reads(action: &str) -> bool {
    ACTIONS.iter().any(|(name, access, _)| *name == action && *access == Access::Read)
}

/// Handles one EC2 request whose parameters are decoded; `cancel` is raised if the client
/// goes.
pub fn handle(api: &Api, caller: &Caller, params: Params, request_id: &str, cancel: &Cancel) -> Reply {
    let action = params.get("Action").unwrap_or_default().to_owned();
    match dispatch(api, caller, &action, &params, request_id, cancel) {
        Ok(body) => Reply { status: 200, body },
        Err(err) => error_reply(&err, request_id),
    }
}

fn dispatch(
    api: &Api,
    caller: &Caller,
    action: &str,
    params: &Params,
    request_id: &str,
    cancel: &Cancel,
) -> Result<String, ApiError> {
    let Some((name, _, handler)) = ACTIONS.iter().find(|(name, _, _)| *name == action) else {
        return Err(if action.is_empty() {
            ApiError::missing("Action")
        } else {
            ApiError::new(ErrorKind::InvalidAction, format!("The action {action} is not valid for this web service."))
        });
    };
    if !api.config.regions.contains(&caller.region) {
        return Err(ApiError::new(
            ErrorKind::UnknownRegion,
            format!("The region '{}' is not one this server serves.", caller.region),
        ));
    }
    handler(&Exchange::new(&api.control, caller, name, params, request_id, cancel))
}
