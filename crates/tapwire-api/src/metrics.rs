//! `GET /metrics`: the fleet in Prometheus text, from what agents report
//! ([`crate::telemetry`]), plus the server's own refusals.
//!
//! Authenticated like every own endpoint (SigV4 for the service `tapwire`, or HTTP Basic
//! with an access key ID and secret, which is what Prometheus' `basic_auth` sends, over
//! TLS); a key sees its account's series, a root key every account's. Labels come from
//! the store (sessions, rules and interfaces that exist) and never from what a report
//! says, so their number is bounded by the inventory.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tapwire_model::prometheus::Exposition;
use tapwire_model::{RuleId, SessionId};

use crate::Api;
use crate::telemetry::{INTERFACE_COUNTERS, RULE_COUNTERS, SESSION_COUNTERS, Telemetry};
use crate::v1::sessions::STALE_AFTER;
use crate::v1::{Caller, error_response};

/// `GET /metrics`.
pub async fn metrics(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(telemetry): Extension<Arc<Telemetry>>,
) -> Response {
    if let Err(e) = caller.authorize(&api, "GetMetrics") {
        return error_response(&e);
    }
    let state = api.control.read();
    let snapshot = telemetry.snapshot(|eni| state.interfaces.contains_key(&eni));
    let visible: Vec<_> = snapshot.iter().filter(|(_, t)| caller.who.root || t.account == caller.who.account).collect();
    let now = crate::query::now_fractional();
    let exists_session = |sid: &str| sid.parse::<SessionId>().is_ok_and(|id| state.sessions.contains_key(&id));
    let mut m = Exposition::new();
    for (i, name) in SESSION_COUNTERS.iter().enumerate() {
        let family = format!("tapwire_session_{name}_total");
        m.family(&family, "counter", &format!("Session {}, as its sources' agents counted.", name.replace('_', " ")));
        for (eni, t) in &visible {
            for (sid, seen) in &t.sessions {
                if !exists_session(sid) {
                    continue;
                }
                let (account, interface) = (t.account.to_string(), eni.to_string());
                m.sample(
                    &family,
                    &[("account", &account), ("session", sid), ("interface", &interface)],
                    seen.series.total(i),
                );
            }
        }
    }
    m.family(
        "tapwire_session_up",
        "gauge",
        "1 when the source's agent mirrors the session (0: failed, stale or not applied).",
    );
    for (eni, t) in &visible {
        for (sid, seen) in &t.sessions {
            if !exists_session(sid) {
                continue;
            }
            let up = seen.active && seen.failed.is_none() && now - t.reported_at <= STALE_AFTER;
            let (account, interface) = (t.account.to_string(), eni.to_string());
            m.sample(
                "tapwire_session_up",
                &[("account", &account), ("session", sid), ("interface", &interface)],
                u8::from(up),
            );
        }
    }
    for (i, name) in RULE_COUNTERS.iter().enumerate() {
        let family = format!("tapwire_rule_{name}_total");
        m.family(&family, "counter", &format!("Rule {}, as its sessions' agents counted.", name.replace('_', " ")));
        for (eni, t) in &visible {
            for (rid, series) in &t.rules {
                if !rid.parse::<RuleId>().is_ok_and(|id| state.rules.contains_key(&id)) {
                    continue;
                }
                let (account, interface) = (t.account.to_string(), eni.to_string());
                m.sample(&family, &[("account", &account), ("rule", rid), ("interface", &interface)], series.total(i));
            }
        }
    }
    for (i, name) in INTERFACE_COUNTERS.iter().enumerate() {
        let family = format!("tapwire_interface_{name}_total");
        m.family(
            &family,
            "counter",
            &format!("Capture {} on the interface, as its agent counted.", name.replace('_', " ")),
        );
        for (eni, t) in &visible {
            let host = state.interfaces.get(eni).and_then(|x| x.host.clone()).unwrap_or_default();
            let (account, interface) = (t.account.to_string(), eni.to_string());
            m.sample(
                &family,
                &[("account", &account), ("interface", &interface), ("host", &host)],
                t.interface.total(i),
            );
        }
    }
    m.family("tapwire_agent_last_report_timestamp_seconds", "gauge", "When the interface's agent last reported.");
    for (eni, t) in &visible {
        let (account, interface) = (t.account.to_string(), eni.to_string());
        m.sample(
            "tapwire_agent_last_report_timestamp_seconds",
            &[("account", &account), ("interface", &interface)],
            t.reported_at as u64,
        );
    }
    if caller.who.root {
        m.family(
            "tapwire_server_throttled_total",
            "counter",
            "Requests refused by an access key's (or enrollment's) bucket.",
        );
        m.sample("tapwire_server_throttled_total", &[], api.auth.throttled());
        m.family(
            "tapwire_server_audit_dropped_total",
            "counter",
            "Refusals that could not be added to the audit trail.",
        );
        m.sample("tapwire_server_audit_dropped_total", &[], api.control.audit_dropped());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.finish()).into_response()
}
