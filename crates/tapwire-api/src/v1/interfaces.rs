//! The interface inventory, used by `tapwire interface …` and by agents.
//!
//! ```text
//! POST   /tapwire/v1/network-interfaces                 register (idempotent per host+ifname)
//! GET    /tapwire/v1/network-interfaces                 list
//! DELETE /tapwire/v1/network-interfaces/{eni}           deregister (its sessions go too)
//! GET    /tapwire/v1/network-interfaces/{eni}/config    the interface's config document;
//!        its `revision` is when its content last changed ([`ConfigChanges`]);
//!        ?after=R&wait=S  long poll: answer as soon as a write changes the document past
//!        R, or after S seconds (max 60) with 304 Not Modified
//! POST   /tapwire/v1/network-interfaces/{eni}/status    an agent's report: {"applied_revision":
//!        R, …counters…}; kept in [`crate::telemetry`] (in memory, not in the store: it is
//!        the agent's state, re-sent within its report interval) and shown by the list as
//!        "agent": {"applied_revision", "reported_at", "report"}
//! ```
//! Errors are `{"code": …, "message": …}` with EC2's codes and statuses.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use tapwire_control::ops::{InterfaceRegistration, Operation, Output};
use tapwire_control::{ApiError, Dialect, ErrorKind, ResourceKind};
use tapwire_model::NetworkInterfaceId;

use super::{Caller, JsonBody, error_response};
use crate::Api;
use crate::telemetry::Telemetry;
use crate::v1::config_changes::ConfigChanges;

/// Longest long-poll wait.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Runs a write as `caller` after its policy allows `tapwire:{action}`; refusals are
/// audited.
async fn execute(api: Arc<Api>, caller: Caller, action: &'static str, op: Operation) -> Result<Output, ApiError> {
    tokio::task::spawn_blocking(move || {
        caller.authorize(&api, action)?;
        let result = api.control.execute(&caller.context(&api, action), Dialect::Tapwire, op);
        if let Err(e) = &result {
            caller.note(&api, action, e);
        }
        result
    })
    .await
    .map_err(ApiError::internal)?
}

/// An interface of the caller's account, or its not-found; for an agent, an interface of
/// its own host, or a refusal (audited as `action`).
fn own_interface(api: &Api, caller: &Caller, eni: NetworkInterfaceId, action: &'static str) -> Result<(), ApiError> {
    let state = api.control.read();
    let iface = match state.interfaces.get(&eni) {
        Some(i) if i.scope.account == caller.who.account => i,
        _ => return Err(ApiError::not_found(ResourceKind::NetworkInterface, &eni.to_string())),
    };
    match &caller.who.agent_host {
        Some(host) if iface.host.as_deref() != Some(host.as_str()) => {
            let err = ApiError::new(
                ErrorKind::Unauthorized,
                format!("The agent of host '{host}' may use only that host's interfaces; {eni} is not one."),
            );
            caller.note(api, action, &err);
            Err(err)
        }
        _ => Ok(()),
    }
}

/// An agent registers its own host's interfaces only (an absent host is its own).
fn scope_registration(
    api: &Api,
    caller: &Caller,
    mut reg: InterfaceRegistration,
) -> Result<InterfaceRegistration, ApiError> {
    let Some(host) = &caller.who.agent_host else { return Ok(reg) };
    match &reg.host {
        None => reg.host = Some(host.clone()),
        Some(h) if h == host => {}
        Some(other) => {
            let err = ApiError::new(
                ErrorKind::Unauthorized,
                format!("The agent of host '{host}' may register only that host's interfaces, not host '{other}'s."),
            );
            caller.note(api, "RegisterNetworkInterface", &err);
            return Err(err);
        }
    }
    Ok(reg)
}

/// `POST /tapwire/v1/network-interfaces`.
pub async fn register(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    JsonBody(reg): JsonBody<InterfaceRegistration>,
) -> Response {
    let reg = match scope_registration(&api, &caller, reg) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    match execute(api, caller, "RegisterNetworkInterface", Operation::RegisterInterface(reg)).await {
        Ok(Output::Interface(i)) => Json(i).into_response(),
        Ok(other) => error_response(&ApiError::internal(format!("unexpected output {other:?}"))),
        Err(e) => error_response(&e),
    }
}

/// The body of a status report: the applied revision, the rest kept as sent.
#[derive(Debug, Deserialize)]
pub struct StatusBody {
    /// Revision in use, `null` before the first configuration.
    applied_revision: Option<u64>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// `GET /tapwire/v1/network-interfaces`: the caller's account's.
pub async fn list(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(telemetry): Extension<Arc<Telemetry>>,
) -> Response {
    if let Err(e) = caller.authorize(&api, "ListNetworkInterfaces") {
        return error_response(&e);
    }
    let state = api.control.read();
    let all: Vec<serde_json::Value> = state
        .interfaces
        .values()
        .filter(|i| i.scope.account == caller.who.account)
        .map(|i| {
            let mut v = serde_json::to_value(i).unwrap_or(serde_json::Value::Null);
            if let (Some(obj), Some(r)) = (v.as_object_mut(), telemetry.latest(i.id)) {
                obj.insert("agent".to_owned(), serde_json::to_value(r).unwrap_or(serde_json::Value::Null));
            }
            v
        })
        .collect();
    Json(all).into_response()
}

/// `POST /tapwire/v1/network-interfaces/{eni}/status`.
pub async fn report_status(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(telemetry): Extension<Arc<Telemetry>>,
    Path(eni): Path<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> Response {
    let eni = match parse_eni(&eni)
        .and_then(|eni| caller.authorize(&api, "ReportStatus").map(|()| eni))
        .and_then(|eni| own_interface(&api, &caller, eni, "ReportStatus").map(|()| eni))
    {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    let at = crate::query::now_fractional();
    match telemetry.record(eni, caller.who.account, body.applied_revision, serde_json::Value::Object(body.rest), at) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&ApiError::new(ErrorKind::MalformedRequest, e.to_string())),
    }
}

fn parse_eni(raw: &str) -> Result<NetworkInterfaceId, ApiError> {
    raw.parse().map_err(|_| {
        let mut e = ApiError::not_found(ResourceKind::NetworkInterface, raw);
        e.kind = ErrorKind::MalformedId(ResourceKind::NetworkInterface);
        e
    })
}

/// `DELETE /tapwire/v1/network-interfaces/{eni}`.
pub async fn deregister(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(eni): Path<String>,
) -> Response {
    let eni = match parse_eni(&eni) {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    match execute(api, caller, "DeregisterNetworkInterface", Operation::DeregisterInterface(eni)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

/// Long-poll parameters.
#[derive(Debug, Deserialize)]
pub struct ConfigQuery {
    /// Answer only with a revision greater than this.
    after: Option<u64>,
    /// Seconds to wait for one.
    wait: Option<u64>,
}

/// `GET /tapwire/v1/network-interfaces/{eni}/config`.
pub async fn config(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(configs): Extension<Arc<ConfigChanges>>,
    Path(eni): Path<String>,
    Query(q): Query<ConfigQuery>,
) -> Response {
    let eni = match parse_eni(&eni)
        .and_then(|eni| caller.authorize(&api, "GetConfig").map(|()| eni))
        .and_then(|eni| own_interface(&api, &caller, eni, "GetConfig").map(|()| eni))
    {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    let mut changes = api.control.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    loop {
        changes.borrow_and_update();
        let state = api.control.read();
        // A key deleted or an agent revoked while the poll waited: its answer is a refusal
        // (revoking commits, which is what woke this poll).
        if let Some(key) = &caller.who.key_id
            && !state.access_keys.contains_key(key)
        {
            let err = ApiError::new(ErrorKind::AuthFailure, "The credential has been revoked.");
            caller.note(&api, "GetConfig", &err);
            return error_response(&err);
        }
        let Some(config) = configs.render(&state, eni, &api.config.dns_resolvers) else {
            return error_response(&ApiError::not_found(ResourceKind::NetworkInterface, &eni.to_string()));
        };
        // Without `after`, or past it: answer. An `after` ahead of the whole store is from
        // before a restore or a move to another store: answer too. Else wait for a write
        // that changes the document.
        if q.after.is_none_or(|after| config.revision > after || after > state.revision) {
            return Json(config).into_response();
        }
        drop(state);
        if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
    }
}
