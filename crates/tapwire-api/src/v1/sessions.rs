//! What each session is doing, from what its sources' agents report.
//!
//! ```text
//! GET /tapwire/v1/sessions/status[?session=tms-…]
//!   → [{TrafficMirrorSessionId, SessionNumber, VirtualNetworkId, Target, Sources: [{
//!        NetworkInterfaceId, Host, State, LastReport, AppliedRevision}], Counters: {…},
//!        PacketsPerSecond, BytesPerSecond, Rules: [{TrafficMirrorFilterRuleId, …}]}]
//! ```
//!
//! Counters are the totals of [`crate::telemetry`], summed over the session's sources; a
//! source's state is `active`, `failed: <reason>` (its agent set the session aside),
//! `stale` (no report for [`STALE_AFTER`] seconds) or `no report`.

use std::sync::Arc;

use axum::extract::{Query, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_control::State;
use tapwire_model::NetworkInterfaceId;
use tapwire_model::resource::{Session, SessionTarget};
use tapwire_model::sampling::{ALL_FLOWS_PPM, SessionLimits};

use super::{Caller, error_response};
use crate::Api;
use crate::telemetry::{InterfaceTelemetry, RULE_COUNTERS, SESSION_COUNTERS, Telemetry};

/// Seconds without a report after which a source's agent is shown stale (three of the
/// agent's default report intervals).
pub const STALE_AFTER: f64 = 30.0;

/// A source's state as the views show it.
pub fn source_state(seen: Option<&InterfaceTelemetry>, session: &str, now: f64) -> String {
    let Some(t) = seen else { return "no report".into() };
    if now - t.reported_at > STALE_AFTER {
        return "stale".into();
    }
    match t.sessions.get(session) {
        Some(s) => match &s.failed {
            Some(why) => format!("failed: {why}"),
            None if s.active => "active".into(),
            None => "not applied".into(),
        },
        None => "not applied".into(),
    }
}

/// How a session's destination reads.
pub fn target_text(target: &SessionTarget) -> String {
    match target {
        SessionTarget::Target(id) => id.to_string(),
        SessionTarget::NetworkInterface(eni) => eni.to_string(),
        SessionTarget::LoadBalancer(arn) => arn.clone(),
    }
}

/// The session's sampling and caps (its `tapwire:` tags) as status shows them.
fn limits_json(session: &Session) -> Value {
    let limits = SessionLimits::from_tags(&session.tags).unwrap_or_default();
    let mut out = serde_json::Map::new();
    if let Some(ppm) = limits.sample_flows_ppm {
        out.insert("SampleFlows".into(), json!(f64::from(ppm) / f64::from(ALL_FLOWS_PPM)));
    }
    if let Some(n) = limits.sample_packets {
        out.insert("SamplePackets".into(), json!(n));
    }
    if let Some(pps) = limits.max_pps {
        out.insert("MaxPps".into(), json!(pps));
    }
    if let Some(bps) = limits.max_bps {
        out.insert("MaxBps".into(), json!(bps));
    }
    Value::Object(out)
}

/// One session's status.
pub fn session_status(
    state: &State,
    session: &Session,
    telemetry: &[(NetworkInterfaceId, InterfaceTelemetry)],
    now: f64,
) -> Value {
    let id = session.id.to_string();
    let seen_of = |eni: NetworkInterfaceId| telemetry.iter().find(|(e, _)| *e == eni).map(|(_, t)| t);
    let mut totals = vec![0u64; SESSION_COUNTERS.len()];
    let (mut pps, mut bps) = (0.0, 0.0);
    let sources: Vec<Value> = session
        .sources
        .iter()
        .map(|eni| {
            let seen = seen_of(*eni);
            if let Some(s) = seen.and_then(|t| t.sessions.get(&id)) {
                for (i, total) in totals.iter_mut().enumerate() {
                    *total += s.series.total(i);
                }
                pps += s.series.packets_per_second;
                bps += s.series.bytes_per_second;
            }
            json!({
                "NetworkInterfaceId": eni.to_string(),
                "Host": state.interfaces.get(eni).and_then(|i| i.host.clone()),
                "State": source_state(seen, &id, now),
                "LastReport": seen.map(|t| crate::time_text(t.reported_at as i64)),
                "AppliedRevision": seen.and_then(|t| t.applied_revision),
            })
        })
        .collect();
    let counters: serde_json::Map<String, Value> =
        SESSION_COUNTERS.iter().zip(&totals).map(|(n, v)| ((*n).to_owned(), Value::from(*v))).collect();
    // What every view shows of them: copies cut by either limit, and lost by any reason.
    let sum_of = |names: &[&str]| -> u64 {
        names.iter().filter_map(|n| SESSION_COUNTERS.iter().position(|c| c == n)).map(|i| totals[i]).sum()
    };
    let cut = sum_of(&["truncated_path_mtu", "truncated_packet_length"]);
    let dropped = sum_of(&["dropped_send_busy", "dropped_send_error", "dropped_no_route", "rate_limited"]);
    let rules: Vec<Value> = state
        .rules_of(session.filter_id)
        .iter()
        .map(|r| {
            let rid = r.id.to_string();
            let mut hits = vec![0u64; RULE_COUNTERS.len()];
            for eni in &session.sources {
                if let Some(series) = seen_of(*eni).and_then(|t| t.rules.get(&rid)) {
                    for (i, h) in hits.iter_mut().enumerate() {
                        *h += series.total(i);
                    }
                }
            }
            json!({
                "TrafficMirrorFilterRuleId": rid,
                "TrafficDirection": r.direction.to_string(),
                "RuleNumber": r.number.get(),
                "RuleAction": format!("{:?}", r.action).to_lowercase(),
                "MatchedPackets": hits[0],
                "MatchedBytes": hits[1],
            })
        })
        .collect();
    json!({
        "TrafficMirrorSessionId": id,
        "SessionNumber": session.number.get(),
        "VirtualNetworkId": session.vni.get(),
        "Target": target_text(&session.target),
        "Sources": sources,
        "Counters": counters,
        "CutPackets": cut,
        "DroppedPackets": dropped,
        "Limits": limits_json(session),
        "PacketsPerSecond": pps,
        "BytesPerSecond": bps,
        "Rules": rules,
    })
}

/// Query of the status endpoint.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    session: Option<String>,
}

/// `GET /tapwire/v1/sessions/status`: the caller's account's sessions.
pub async fn status(
    AxumState(api): AxumState<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(telemetry): Extension<Arc<Telemetry>>,
    Query(q): Query<StatusQuery>,
) -> Response {
    if let Err(e) = caller.authorize(&api, "GetSessionStatus") {
        return error_response(&e);
    }
    let state = api.control.read();
    let snapshot = telemetry.snapshot(|eni| state.interfaces.contains_key(&eni));
    let now = crate::query::now_fractional();
    let sessions: Vec<Value> = state
        .sessions
        .values()
        .filter(|s| s.scope.account == caller.who.account)
        .filter(|s| q.session.as_ref().is_none_or(|want| s.id.to_string() == *want))
        .map(|s| session_status(&state, s, &snapshot, now))
        .collect();
    if let Some(want) = &q.session
        && sessions.is_empty()
    {
        return error_response(&tapwire_control::ApiError::not_found(tapwire_control::ResourceKind::Session, want));
    }
    Json(sessions).into_response()
}
