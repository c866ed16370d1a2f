//! Accounts, through tapwire's own endpoints (a root-account key only):
//!
//! ```text
//! POST /tapwire/v1/accounts  {"name"}  → {AccountId, Name, AccessKeyId, SecretAccessKey}
//! GET  /tapwire/v1/accounts            → [{AccountId, Name, Root, CreatedAt}]
//! ```
//!
//! A new account comes with its first access key; the secret is shown once, in that
//! answer. [`ensure_root`] makes the root account at first start.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tapwire_control::ops::{Operation, RequestContext};
use tapwire_control::{ApiError, Dialect};
use tapwire_model::AccountId;
use tapwire_model::identity::Account;

use super::access_keys::make_key;
use super::{Caller, JsonBody, blocking, error_response};
use crate::Api;

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

fn account_json(a: &Account) -> Value {
    json!({ "AccountId": a.id.to_string(), "Name": a.name, "Root": a.root, "CreatedAt": crate::time_text(a.created_at) })
}

/// The body of `POST /tapwire/v1/accounts`.
#[derive(Debug, Deserialize)]
pub struct NewAccount {
    name: String,
}

/// `POST /tapwire/v1/accounts`.
pub async fn create_account(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewAccount>,
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
