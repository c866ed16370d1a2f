//! Agents: join tokens, enrollment, the enrolled hosts, revocation.
//!
//! ```text
//! POST   /tapwire/v1/agents/tokens  {"host", "ttl_seconds", "uses"}
//!                                   → {Token, TokenId, AccountId, Host, ExpiresAt, UsesLeft}
//! GET    /tapwire/v1/agents/tokens  → [{TokenId, AccountId, Host, ExpiresAt, UsesLeft, CreatedAt}]
//! DELETE /tapwire/v1/agents/tokens/{id}                                    → 204
//! POST   /tapwire/v1/agents/enroll  {"token", "host"}
//!                                   → {AccessKeyId, SecretAccessKey, AccountId, Host}
//! GET    /tapwire/v1/agents         → [{Host, AccessKeyId, EnrolledAt, Interfaces: [...]}]
//! DELETE /tapwire/v1/agents/{host}                                        → 204
//! ```
//!
//! - A token is `twjt-<16 hex>.<64 hex>`: an ID and a secret, of which only the SHA-256 is
//!   stored. It is shown once, in the answer that made it.
//! - `enroll` is the one own endpoint without a signature (the token is the credential);
//!   all enrollments share one bucket, and every attempt is audited.
//! - The credential it returns is an access key bound to the host; `DELETE agents/{host}`
//!   revokes it, and the host's open long polls answer 401 at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_auth::encode::sha256_hex;
use tapwire_control::audit::AuditContext;
use tapwire_control::ops::{Operation, RequestContext};
use tapwire_control::{ApiError, Dialect, ErrorKind};
use tapwire_model::identity::JoinToken;

use super::access_keys::{DrawnKey, draw_key};
use super::{Caller, JsonBody, blocking, error_response};
use crate::Api;
use crate::query::Peer;
use crate::telemetry::Telemetry;

/// A join token's life when none is asked for: one day.
const DEFAULT_TTL: i64 = 24 * 3600;

fn token_json(t: &JoinToken) -> Value {
    json!({
        "TokenId": t.id,
        "AccountId": t.account.to_string(),
        "Host": t.host,
        "ExpiresAt": crate::time_text(t.expires_at),
        "UsesLeft": t.uses_left,
        "CreatedAt": crate::time_text(t.created_at),
    })
}

/// The body of `POST /tapwire/v1/agents/tokens`.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    host: Option<String>,
    ttl_seconds: Option<i64>,
    uses: Option<u32>,
}

/// `POST /tapwire/v1/agents/tokens`.
pub async fn create_token(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewToken>,
) -> Response {
    let result = blocking(move || {
        caller.authorize(&api, "CreateJoinToken")?;
        let mut rng = rand::rng();
        let (mut id, mut secret) = ([0u8; 8], [0u8; 32]);
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let (id, secret) = (format!("twjt-{}", hex::encode(id)), hex::encode(secret));
        let now = api.control.now();
        let token = JoinToken {
            id: id.clone(),
            account: caller.who.account,
            secret_hash: sha256_hex(secret.as_bytes()),
            host: body.host,
            expires_at: now.saturating_add(body.ttl_seconds.unwrap_or(DEFAULT_TTL)),
            uses_left: body.uses.unwrap_or(1),
            created_at: now,
        };
        let made = api
            .control
            .execute(&caller.context(&api, "CreateJoinToken"), Dialect::Tapwire, Operation::CreateJoinToken(token))
            .inspect_err(|e| caller.note(&api, "CreateJoinToken", e))?
            .into_join_token()?;
        let mut out = token_json(&made);
        out["Token"] = Value::String(format!("{id}.{secret}"));
        Ok(out)
    })
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `GET /tapwire/v1/agents/tokens`: the caller's account's live tokens.
pub async fn list_tokens(State(api): State<Arc<Api>>, Extension(caller): Extension<Caller>) -> Response {
    if let Err(e) = caller.authorize(&api, "ListJoinTokens") {
        return error_response(&e);
    }
    let (state, now) = (api.control.read(), api.control.now());
    let tokens: Vec<Value> = state
        .join_tokens
        .values()
        .filter(|t| t.account == caller.who.account && t.expires_at > now)
        .map(token_json)
        .collect();
    Json(tokens).into_response()
}

/// `DELETE /tapwire/v1/agents/tokens/{id}`.
pub async fn delete_token(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = blocking(move || {
        caller.authorize(&api, "DeleteJoinToken")?;
        api.control
            .execute(&caller.context(&api, "DeleteJoinToken"), Dialect::Tapwire, Operation::DeleteJoinToken(id))
            .inspect_err(|e| caller.note(&api, "DeleteJoinToken", e))
    })
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

/// The body of `POST /tapwire/v1/agents/enroll`.
#[derive(Debug, Deserialize)]
pub struct Enrollment {
    token: String,
    host: String,
}

/// `(id, secret)` of a token's text, if it has the token's shape.
fn split_token(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.split_once('.')?;
    let hexes = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.strip_prefix("twjt-").is_some_and(|h| hexes(h, 16)) && hexes(secret, 64)).then_some((id, secret))
}

/// `POST /tapwire/v1/agents/enroll`: a join token for a host-bound credential.
pub async fn enroll(State(api): State<Arc<Api>>, Peer(peer): Peer, JsonBody(body): JsonBody<Enrollment>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let source = peer.map(|a| a.ip().to_string());
    let parts = split_token(&body.token).map(|(id, secret)| (id.to_owned(), sha256_hex(secret.as_bytes())));
    let account = parts.as_ref().and_then(|(id, _)| api.control.read().join_tokens.get(id).map(|t| t.account));
    let by = crate::query::By { account, access_key: parts.as_ref().map(|(id, _)| id.clone()) };
    let result = blocking({
        let (api, request_id, source) = (api.clone(), request_id.clone(), source.clone());
        move || {
            api.auth.throttle_enrollment(crate::query::now_fractional())?;
            let (Some((token_id, presented_hash)), Some(account)) = (parts, account) else {
                return Err(ApiError::new(ErrorKind::AuthFailure, "The join token is not valid."));
            };
            let DrawnKey { key_id, secret, sealed_secret } = draw_key(&api)?;
            let ctx = RequestContext {
                audit: Some(AuditContext {
                    access_key: Some(token_id.clone()),
                    source,
                    dialect: "tapwire",
                    action: "EnrollAgent",
                    request_id,
                }),
                ..RequestContext::system(account, &api.config.region)
            };
            let op = Operation::EnrollAgent { token_id, presented_hash, host: body.host, key_id, sealed_secret };
            let key = api.control.execute(&ctx, Dialect::Tapwire, op)?.into_access_key()?;
            Ok(json!({
                "AccessKeyId": key.id,
                "SecretAccessKey": secret,
                "AccountId": key.account.to_string(),
                "Host": key.agent_host,
            }))
        }
    })
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => {
            if !matches!(e.kind, ErrorKind::Throttled) {
                let code = crate::ec2::error_code(&e.kind);
                crate::query::refusal(&api.control, by, source.as_deref(), "tapwire", "EnrollAgent", code, &request_id);
            }
            error_response(&e)
        }
    }
}

/// `GET /tapwire/v1/agents`: each enrolled host of the caller's account, with its
/// interfaces and what their agent last reported.
pub async fn list(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Extension(telemetry): Extension<Arc<Telemetry>>,
) -> Response {
    if let Err(e) = caller.authorize(&api, "ListAgents") {
        return error_response(&e);
    }
    let state = api.control.read();
    let agents: Vec<Value> = state
        .access_keys_of(caller.who.account)
        .filter_map(|k| k.agent_host.as_ref().map(|h| (h, k)))
        .map(|(host, key)| {
            let interfaces: Vec<Value> = state
                .interfaces
                .values()
                .filter(|i| i.scope.account == caller.who.account && i.host.as_deref() == Some(host))
                .map(|i| {
                    let seen = telemetry.latest(i.id);
                    json!({
                        "NetworkInterfaceId": i.id.to_string(),
                        "InterfaceName": i.ifname,
                        "AppliedRevision": seen.as_ref().and_then(|r| r.applied_revision),
                        "LastSeen": seen.map(|r| crate::time_text(i64::try_from(r.reported_at).unwrap_or(i64::MAX))),
                    })
                })
                .collect();
            json!({
                "Host": host,
                "AccessKeyId": key.id,
                "EnrolledAt": crate::time_text(key.created_at),
                "Interfaces": interfaces,
            })
        })
        .collect();
    Json(agents).into_response()
}

/// `DELETE /tapwire/v1/agents/{host}`: the host's credential stops working at once.
pub async fn revoke(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(host): Path<String>,
) -> Response {
    let result = blocking(move || {
        caller.authorize(&api, "RevokeAgent")?;
        api.control
            .execute(&caller.context(&api, "RevokeAgent"), Dialect::Tapwire, Operation::RevokeAgent { host })
            .inspect_err(|e| caller.note(&api, "RevokeAgent", e))
    })
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}
