//! The audit trail, through tapwire's own endpoint:
//!
//! ```text
//! GET /tapwire/v1/audit?account=&since=&action=&limit=&before= → {Records: [...], Next}
//! ```
//!
//! Newest first; the caller's account's records unless the caller is root.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_control::{ApiError, ErrorKind};
use tapwire_model::identity::AuditRecord;
use tapwire_store::RecordQuery;

use super::{Caller, blocking, error_response};
use crate::Api;

/// Most audit records one page returns.
const AUDIT_PAGE_MAX: usize = 1000;

/// An audit record as the endpoint shows it (CloudTrail's names where it has them).
fn record_json(r: &AuditRecord) -> Value {
    json!({
        "EventTime": crate::time_text(r.at),
        "AccountId": r.account.map(|a| a.to_string()),
        "AccessKeyId": r.access_key,
        "SourceIPAddress": r.source,
        "Dialect": r.dialect,
        "EventName": r.action,
        "Resources": r.resources,
        "Result": r.result,
        "RequestId": r.request_id,
    })
}

/// Query of `GET /tapwire/v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    account: Option<String>,
    /// Seconds since the epoch.
    since: Option<i64>,
    /// Wildcard pattern.
    action: Option<String>,
    limit: Option<usize>,
    before: Option<u64>,
}

/// `GET /tapwire/v1/audit`: newest first.
pub async fn audit(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(e) = caller.authorize(&api, "ReadAudit") {
        return error_response(&e);
    }
    let account = match (caller.who.root, q.account) {
        (true, a) => a,
        (false, Some(a)) if a != caller.who.account.to_string() => {
            let e = ApiError::new(
                ErrorKind::Unauthorized,
                "Another account's audit trail needs a key of the root account.",
            );
            caller.note(&api, "ReadAudit", &e);
            return error_response(&e);
        }
        (false, _) => Some(caller.who.account.to_string()),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, AUDIT_PAGE_MAX);
    let query = RecordQuery { kind: "", account, since: q.since, action: q.action, before: q.before, limit };
    let result = blocking(move || {
        let _ = api.control.flush_audit();
        api.control.audit_records(&query).map_err(ApiError::internal)
    })
    .await;
    match result {
        Ok(rows) => {
            let next = (rows.len() == limit).then(|| rows.last().map(|(id, _)| *id)).flatten();
            let records: Vec<Value> = rows.iter().map(|(_, r)| record_json(r)).collect();
            Json(json!({ "Records": records, "Next": next })).into_response()
        }
        Err(e) => error_response(&e),
    }
}
