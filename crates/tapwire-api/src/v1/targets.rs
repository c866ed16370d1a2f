//! The account's targets, for the web view: `GET /tapwire/v1/targets` →
//! `[{TrafficMirrorTargetId, DeliversTo, Sessions}]` (the EC2 and Alibaba APIs describe
//! them in full).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use tapwire_model::resource::{SessionTarget, TargetDestination};

use super::{Caller, error_response};
use crate::Api;

/// `GET /tapwire/v1/targets`.
pub async fn list(State(api): State<Arc<Api>>, Extension(caller): Extension<Caller>) -> Response {
    if let Err(e) = caller.authorize(&api, "ListTargets") {
        return error_response(&e);
    }
    let state = api.control.read();
    let targets: Vec<Value> = state
        .targets
        .values()
        .filter(|t| t.scope.account == caller.who.account)
        .map(|t| {
            let to = match &t.destination {
                TargetDestination::NetworkInterface(eni) => eni.to_string(),
                TargetDestination::NetworkLoadBalancer(arn) | TargetDestination::GatewayLoadBalancerEndpoint(arn) => {
                    arn.clone()
                }
            };
            let sessions = state.sessions_to(&SessionTarget::Target(t.id)).count();
            json!({ "TrafficMirrorTargetId": t.id.to_string(), "DeliversTo": to, "Sessions": sessions })
        })
        .collect();
    Json(targets).into_response()
}
