//! Sensor groups (tapwire's own; `tapwire sensor-group`):
//! - `GET /tapwire/v1/sensor-groups` → the account's groups;
//! - `POST /tapwire/v1/sensor-groups` `{Name, Members, Mode}` → the group made, with the
//!   load-balancer names the clouds' target calls take;
//! - `POST /tapwire/v1/sensor-groups/{id}/members` `{Add, Remove}` → the group;
//! - `DELETE /tapwire/v1/sensor-groups/{id}` (refused while a target or session names it).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_control::ops::Operation;
use tapwire_control::{ApiError, Dialect, State as ControlState};
use tapwire_model::sensor_groups::{GroupMode, SensorGroup, parse_health_check};
use tapwire_model::{NetworkInterfaceId, SensorGroupId};

use super::{Caller, JsonBody, blocking, error_response};
use crate::Api;
use crate::telemetry::InterfaceTelemetry;

/// What the agents that send to member `eni` say of its health checks.
fn member_health(g: &SensorGroup, eni: NetworkInterfaceId, seen: &[(NetworkInterfaceId, InterfaceTelemetry)]) -> Value {
    if g.health_check.is_none() {
        return json!({ "Health": "unchecked" });
    }
    let (mut up, mut down, mut failed) = (0u64, 0u64, 0u64);
    let name = eni.to_string();
    for (_, t) in seen.iter().filter(|(_, t)| t.account == g.scope.account) {
        let rows = t.report["interface"]["member_health"].as_array().map_or(&[][..], Vec::as_slice);
        for r in rows.iter().filter(|r| r["network_interface_id"].as_str() == Some(name.as_str())) {
            if r["healthy"].as_bool().unwrap_or(true) {
                up += 1
            } else {
                down += 1
            }
            failed += r["failed_checks"].as_u64().unwrap_or(0);
        }
    }
    let health = match (up, down) {
        (0, 0) => "unknown",
        (_, 0) => "healthy",
        (0, _) => "unhealthy",
        _ => "mixed",
    };
    json!({ "Health": health, "HealthyFrom": up, "UnhealthyFrom": down, "FailedChecks": failed })
}

/// A group as every view shows it; `seen` is the agents' telemetry (member health).
pub fn group_json(state: &ControlState, g: &SensorGroup, seen: &[(NetworkInterfaceId, InterfaceTelemetry)]) -> Value {
    let users = state.sessions_to_group(g).count();
    json!({
        "SensorGroupId": g.id.to_string(),
        "Name": g.name,
        "Mode": g.mode.as_str(),
        "Members": g.members.iter().map(|m| {
            let mut row = member_health(g, *m, seen);
            row["NetworkInterfaceId"] = json!(m.to_string());
            row["Host"] = json!(state.interfaces.get(m).and_then(|i| i.host.clone()));
            row
        }).collect::<Vec<_>>(),
        "HealthCheck": g.health_check.map_or_else(|| "none".to_owned(), |p| format!("tcp:{p}")),
        "NetworkLoadBalancerArn": g.load_balancer_arn(),
        "GatewayLoadBalancerEndpointId": g.gateway_endpoint_id(),
        "SlbInstanceId": g.slb_instance_id(),
        "Sessions": users,
        "CreationTime": crate::time_text(g.created_at),
    })
}

/// `GET /tapwire/v1/sensor-groups`.
pub async fn list(State(api): State<Arc<Api>>, Extension(caller): Extension<Caller>) -> Response {
    if let Err(e) = caller.authorize(&api, "ListSensorGroups") {
        return error_response(&e);
    }
    let state = api.control.read();
    let seen = api.telemetry.snapshot(|eni| state.interfaces.contains_key(&eni));
    let groups: Vec<Value> = state
        .sensor_groups
        .values()
        .filter(|g| g.scope.account == caller.who.account)
        .map(|g| group_json(&state, g, &seen))
        .collect();
    Json(groups).into_response()
}

/// The body of `POST /tapwire/v1/sensor-groups`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NewGroup {
    name: String,
    members: Vec<NetworkInterfaceId>,
    #[serde(default)]
    mode: GroupMode,
    /// `tcp:PORT` or `none` (the default).
    #[serde(default)]
    health_check: Option<String>,
}

/// The body of `POST /tapwire/v1/sensor-groups/{id}/members`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MemberChanges {
    #[serde(default)]
    add: Vec<NetworkInterfaceId>,
    #[serde(default)]
    remove: Vec<NetworkInterfaceId>,
}

/// Runs one sensor-group operation as the caller, in its audit trail.
fn run(api: &Api, caller: &Caller, action: &'static str, op: Operation) -> Result<Value, ApiError> {
    caller.authorize(api, action)?;
    let out = api
        .control
        .execute(&caller.context(api, action), Dialect::Tapwire, op)
        .inspect_err(|e| caller.note(api, action, e))?;
    Ok(match out.into_sensor_group() {
        Ok(g) => group_json(&api.control.read(), &g, &[]),
        Err(_) => Value::Null,
    })
}

fn parse_id(raw: &str) -> Result<SensorGroupId, ApiError> {
    raw.parse().map_err(|_| ApiError::invalid(format!("'{raw}' is not a sensor group ID (tsg-…).")))
}

/// `POST /tapwire/v1/sensor-groups`.
pub async fn create(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewGroup>,
) -> Response {
    let result = blocking(move || {
        let health_check =
            body.health_check.as_deref().map(parse_health_check).transpose().map_err(ApiError::invalid)?.flatten();
        let op = Operation::CreateSensorGroup { name: body.name, members: body.members, mode: body.mode, health_check };
        run(&api, &caller, "CreateSensorGroup", op)
    })
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `POST /tapwire/v1/sensor-groups/{id}/members`.
pub async fn modify(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MemberChanges>,
) -> Response {
    let result = blocking(move || {
        let op = Operation::ModifySensorGroup { id: parse_id(&id)?, add: body.add, remove: body.remove };
        run(&api, &caller, "ModifySensorGroup", op)
    })
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `DELETE /tapwire/v1/sensor-groups/{id}`.
pub async fn delete(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result =
        blocking(move || run(&api, &caller, "DeleteSensorGroup", Operation::DeleteSensorGroup(parse_id(&id)?))).await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}
