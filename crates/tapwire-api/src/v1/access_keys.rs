//! Access keys, through tapwire's own endpoints (a root-account key only):
//!
//! ```text
//! POST   /tapwire/v1/access-keys   {"account", "policy"} → {AccountId, AccessKeyId, SecretAccessKey}
//! GET    /tapwire/v1/access-keys?account=ID              → [{AccessKeyId, AccountId, CreatedAt, Policy, AgentHost}]
//! DELETE /tapwire/v1/access-keys/{id}                    → 204
//! ```
//!
//! A secret is shown once, in the answer that made it, and never stored or logged in the
//! clear. A policy document is checked when the key is made; the error names the part
//! that is wrong.

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
use tapwire_model::identity::AccessKey;
use tapwire_model::{AccountId, limits};

use super::{Caller, JsonBody, blocking, error_response};
use crate::Api;

/// A fresh key: its ID, its secret (the only time it is in the clear) and the secret
/// sealed under the master key.
pub struct DrawnKey {
    /// `TWAK…`.
    pub key_id: String,
    /// The secret.
    pub secret: String,
    /// The secret, sealed.
    pub sealed_secret: String,
}

/// Draws a key ID and secret and seals the secret.
pub fn draw_key(api: &Api) -> Result<DrawnKey, ApiError> {
    let secrets = api.auth.secret_box().ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidParameterValue,
            "Authentication is off (--auth none): keys and agent credentials cannot be made.",
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
    Ok(DrawnKey { key_id, secret, sealed_secret })
}

/// Draws a new key and stores it.
pub fn make_key(
    api: &Api,
    ctx_caller: Option<&Caller>,
    account: AccountId,
    policy: Option<String>,
) -> Result<(AccessKey, String), ApiError> {
    let DrawnKey { key_id, secret, sealed_secret } = draw_key(api)?;
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

fn key_json(k: &AccessKey) -> Value {
    let policy = k.policy.as_ref().and_then(|p| serde_json::from_str::<Value>(p).ok());
    json!({
        "AccessKeyId": k.id,
        "AccountId": k.account.to_string(),
        "CreatedAt": crate::time_text(k.created_at),
        "Policy": policy,
        "AgentHost": k.agent_host,
    })
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
    JsonBody(body): JsonBody<NewKey>,
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
