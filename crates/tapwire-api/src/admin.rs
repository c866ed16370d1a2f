//! Administration through tapwire's own endpoints: accounts, access keys, the audit trail.
//!
//! ```text
//! POST   /tapwire/v1/accounts            {"name"}            → {AccountId, Name, AccessKeyId, SecretAccessKey}
//! GET    /tapwire/v1/accounts                                → [{AccountId, Name, Root, CreatedAt}]
//! POST   /tapwire/v1/access-keys         {"account", "policy"} → {AccountId, AccessKeyId, SecretAccessKey}
//! GET    /tapwire/v1/access-keys?account=ID                  → [{AccessKeyId, AccountId, CreatedAt, Policy}]
//! DELETE /tapwire/v1/access-keys/{id}                        → 204
//! GET    /tapwire/v1/audit?account=&since=&action=&limit=&before= → {Records: [...], Next}
//! ```
//!
//! Accounts and keys need a root-account key; the audit trail is the caller's account's
//! unless the caller is root. A secret is shown once, in the answer that made it, and never
//! stored or logged in the clear. A policy document is checked when the key is made; the
//! error names the part that is wrong.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_auth::policy::Policy;
use tapwire_control::ops::{Operation, RequestContext};
use tapwire_control::{ApiError, Dialect, ErrorKind};
use tapwire_model::identity::{AccessKey, Account, AuditRecord};
use tapwire_model::{AccountId, limits};
use tapwire_store::RecordQuery;

use crate::Api;
use crate::v1::{Caller, error_response};

/// Most audit records one page returns.
const AUDIT_PAGE_MAX: usize = 1000;

/// Draws a new key ID and secret, seals the secret, and stores the key.
pub fn make_key(
    api: &Api,
    ctx_caller: Option<&Caller>,
    account: AccountId,
    policy: Option<String>,
) -> Result<(AccessKey, String), ApiError> {
    let secrets = api.auth.secret_box().ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidParameterValue,
            "Authentication is off (--auth none): access keys cannot be made.",
        )
    })?;
    let mut rng = rand::rng();
    let (mut id_bytes, mut secret_bytes, mut nonce) = ([0u8; 16], [0u8; 40], [0u8; 12]);
    rng.fill_bytes(&mut id_bytes);
    rng.fill_bytes(&mut secret_bytes);
    rng.fill_bytes(&mut nonce);
    let key_id = tapwire_auth::keys::key_id(id_bytes);
    let secret = tapwire_auth::keys::secret(secret_bytes);
    let sealed_secret = secrets.seal(&key_id, &secret, nonce);
    let ctx = match ctx_caller {
        Some(c) => c.context(api, "CreateAccessKey"),
        None => RequestContext::system(account, &api.config.region),
    };
    let key = api
        .control
        .execute(&ctx, Dialect::Tapwire, Operation::CreateAccessKey { account, key_id, sealed_secret, policy })?
        .into_access_key()?;
    Ok((key, secret))
}

/// Makes the root account and its first key if the installation has none; returns the
/// new key's ID and secret (the only time the secret exists in the clear).
pub fn ensure_root(api: &Api) -> Result<Option<(String, String)>, ApiError> {
    if api.control.read().root_account().is_some() {
        return Ok(None);
    }
    let ctx = RequestContext::system(AccountId::DEFAULT, &api.config.region);
    let root = api
        .control
        .execute(&ctx, Dialect::Tapwire, Operation::CreateAccount { name: "root".into(), root: true })?
        .into_account()?;
    let (key, secret) = make_key(api, None, root.id, None)?;
    Ok(Some((key.id, secret)))
}

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

fn account_json(a: &Account) -> Value {
    json!({ "AccountId": a.id.to_string(), "Name": a.name, "Root": a.root, "CreatedAt": crate::time_text(a.created_at) })
}

fn key_json(k: &AccessKey) -> Value {
    let policy = k.policy.as_ref().and_then(|p| serde_json::from_str::<Value>(p).ok());
    json!({ "AccessKeyId": k.id, "AccountId": k.account.to_string(), "CreatedAt": crate::time_text(k.created_at), "Policy": policy })
}

/// The body of `POST /tapwire/v1/accounts`.
#[derive(Debug, Deserialize)]
pub struct NewAccount {
    name: String,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// `POST /tapwire/v1/accounts`.
pub async fn create_account(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewAccount>,
) -> Response {
    let result = blocking(move || {
        caller.require_root(&api, "CreateAccount")?;
        let account = api
            .control
            .execute(&caller.context(&api, "CreateAccount"), Dialect::Tapwire, Operation::CreateAccount { name: body.name, root: false })?
            .into_account()?;
        let (key, secret) = make_key(&api, Some(&caller), account.id, None)?;
        Ok(json!({ "AccountId": account.id.to_string(), "Name": account.name, "AccessKeyId": key.id, "SecretAccessKey": secret }))
    })
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `GET /tapwire/v1/accounts`.
pub async fn list_accounts(State(api): State<Arc<Api>>, Extension(caller): Extension<Caller>) -> Response {
    if let Err(e) = caller.require_root(&api, "ListAccounts") {
        return error_response(&e);
    }
    let state = api.control.read();
    Json(state.accounts.values().map(account_json).collect::<Vec<_>>()).into_response()
}

/// The body of `POST /tapwire/v1/access-keys`.
#[derive(Debug, Deserialize)]
pub struct NewKey {
    account: Option<String>,
    policy: Option<Value>,
}

/// `POST /tapwire/v1/access-keys`.
pub async fn create_key(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewKey>,
) -> Response {
    let result = blocking(move || {
        caller.require_root(&api, "CreateAccessKey")?;
        let account = match &body.account {
            None => caller.who.account,
            Some(raw) => {
                raw.parse().map_err(|_| ApiError::invalid(format!("'{raw}' is not a 12-digit account ID.")))?
            }
        };
        let policy = match body.policy {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(doc) => Some(doc.to_string()),
        };
        if let Some(text) = &policy {
            if text.chars().count() > limits::POLICY_MAX_CHARS {
                return Err(ApiError::invalid(format!(
                    "The policy is longer than {} characters.",
                    limits::POLICY_MAX_CHARS
                )));
            }
            Policy::parse(text).map_err(|e| ApiError::invalid(format!("The policy is not valid: {e}")))?;
        }
        let (key, secret) = make_key(&api, Some(&caller), account, policy)?;
        Ok(json!({ "AccountId": key.account.to_string(), "AccessKeyId": key.id, "SecretAccessKey": secret }))
    })
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// Query of `GET /tapwire/v1/access-keys`.
#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    account: Option<String>,
}

/// `GET /tapwire/v1/access-keys`.
pub async fn list_keys(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Err(e) = caller.require_root(&api, "ListAccessKeys") {
        return error_response(&e);
    }
    let state = api.control.read();
    let keys: Vec<Value> = state
        .access_keys
        .values()
        .filter(|k| q.account.as_ref().is_none_or(|a| k.account.to_string() == *a))
        .map(key_json)
        .collect();
    Json(keys).into_response()
}

/// `DELETE /tapwire/v1/access-keys/{id}`.
pub async fn delete_key(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = blocking(move || {
        caller.require_root(&api, "DeleteAccessKey")?;
        api.control.execute(&caller.context(&api, "DeleteAccessKey"), Dialect::Tapwire, Operation::DeleteAccessKey(id))
    })
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
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
