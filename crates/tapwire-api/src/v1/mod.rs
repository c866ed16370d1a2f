//! tapwire's own JSON endpoints (`/tapwire/v1/…`), one file per resource: `interfaces`
//! (the inventory, config long polls, status reports), `agents` (join tokens, enrollment,
//! revocation), `accounts`, `access_keys`, `audit`. This file holds what they share: the
//! authentication layer, the caller, the answers.
//!
//! Every route but enrollment sits behind [`authenticate`]: the request must be signed
//! with SigV4 for the service `tapwire` by a known access key (the `tapwire` CLI and agents
//! do this), within its rate; an agent credential reaches only the register, config and
//! status routes. The layer puts the [`Caller`] on the request; handlers check what it may do and
//! answer `{"code", "message"}` errors with EC2's codes and statuses (404 for what does
//! not exist).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tapwire_control::audit::AuditContext;
use tapwire_control::ops::RequestContext;
use tapwire_control::{ApiError, ErrorKind};

pub mod access_keys;
pub mod accounts;
pub mod agents;
pub mod audit;
pub mod config_changes;
pub mod interfaces;
pub mod sensor_groups;
pub mod sessions;
pub mod targets;

use crate::auth::standing::WriteStanding;
use crate::auth::{Identity, Signed};
use crate::query::{Peer, RequestNote};
use crate::{Api, ec2};

/// Largest JSON body of an own endpoint.
const MAX_BODY: usize = 1024 * 1024;
/// How long a body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The caller of an own endpoint, once verified.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who signed.
    pub who: Identity,
    /// The client's address.
    pub source: Option<String>,
    /// This request's ID.
    pub request_id: String,
}

impl Caller {
    /// The context of a write this caller makes, audited under `action`; the writer
    /// checks again, on the state the write lands on, that the caller's key is still
    /// there (deleted or revoked on another replica after this one caught up, it no
    /// longer writes).
    pub fn context(&self, api: &Api, action: &'static str) -> RequestContext {
        let standing = WriteStanding::own(&self.who);
        RequestContext {
            audit: Some(AuditContext {
                access_key: self.who.key_id.clone(),
                source: self.source.clone(),
                dialect: "tapwire",
                action,
                request_id: self.request_id.clone(),
            }),
            standing: Some(Arc::new(standing)),
            ..RequestContext::system(self.who.account, &api.config.region)
        }
    }

    /// Refuses unless the caller is the root account (administration).
    pub fn require_root(&self, api: &Api, action: &'static str) -> Result<(), ApiError> {
        if self.who.root {
            return Ok(());
        }
        let err = ApiError::new(ErrorKind::Unauthorized, format!("{action} needs a key of the root account."));
        self.note(api, action, &err);
        Err(err)
    }

    /// Checks the key's policy for `tapwire:{action}`.
    pub fn authorize(&self, api: &Api, action: &'static str) -> Result<(), ApiError> {
        crate::auth::authorize(&self.who, &format!("tapwire:{action}"), &[]).inspect_err(|e| self.note(api, action, e))
    }

    /// Notes a refusal in the audit trail.
    pub fn note(&self, api: &Api, action: &'static str, err: &ApiError) {
        crate::query::refusal(
            &api.control,
            (&self.who).into(),
            self.source.as_deref(),
            "tapwire",
            action,
            ec2::error_code(&err.kind),
            &self.request_id,
        );
    }
}

/// A JSON request body; one that does not parse is answered as every own error is,
/// `{"code": "MalformedQueryString", "message"}` with 400, never axum's plain text.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(error_response(&ApiError::new(
                ErrorKind::MalformedRequest,
                format!("The body is not the JSON this endpoint takes: {}", rejection.body_text()),
            ))),
        }
    }
}

/// Runs `f` on a blocking thread (store commits, key sealing).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// An error answer: `{"code", "message"}` with EC2's code and status, except that what
/// does not exist is 404, as a JSON endpoint's clients (the agent) expect.
pub fn error_response(err: &ApiError) -> Response {
    let status = match err.kind {
        ErrorKind::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::from_u16(ec2::error_status(&err.kind)).unwrap_or(StatusCode::BAD_REQUEST),
    };
    let body = serde_json::json!({ "code": ec2::error_code(&err.kind), "message": err.message });
    (status, Json(body)).into_response()
}

/// The routes an agent credential may call: register, config, status.
fn agent_may_call(method: &axum::http::Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches("/tapwire/v1/").split('/').collect();
    matches!(
        (method.as_str(), segments.as_slice()),
        ("POST", ["network-interfaces"])
            | ("GET", ["network-interfaces", _, "config"])
            | ("POST", ["network-interfaces", _, "status"])
    )
}

/// The layer in front of every own route: verify, throttle, put the caller on the request;
/// the answer carries a [`RequestNote`] for the request log.
pub async fn authenticate(State(api): State<Arc<Api>>, Peer(peer): Peer, req: Request, next: Next) -> Response {
    let path =
        req.extensions().get::<OriginalUri>().map_or_else(|| req.uri().path().to_owned(), |o| o.path().to_owned());
    let mut note = RequestNote {
        request_id: uuid::Uuid::new_v4().to_string(),
        dialect: "tapwire",
        action: format!("{} {path}", req.method()),
        ..RequestNote::default()
    };
    let caught_up = crate::query::catch_up(&api).await;
    let mut resp = verify_then(&api, peer, req, next, &mut note).await;
    crate::query::mark_stale(&api, caught_up, &mut resp);
    resp.extensions_mut().insert(note);
    resp
}

async fn verify_then(
    api: &Arc<Api>,
    peer: Option<std::net::SocketAddr>,
    req: Request,
    next: Next,
    note: &mut RequestNote,
) -> Response {
    let request_id = note.request_id.clone();
    let source = peer.map(|a| a.ip().to_string());
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        _ => {
            let err = ApiError::new(ErrorKind::MalformedRequest, "The body is too large or did not arrive in time.");
            return error_response(&err);
        }
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    // Under `nest`, the URI has lost its `/tapwire/v1` prefix; the signature covers it.
    let path =
        parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.path().to_owned(), |o| o.path().to_owned());
    let signed = Signed {
        method: parts.method.as_str(),
        path: &path,
        query: &query,
        params: &query,
        headers: &parts.headers,
        body: &body,
    };
    let now = api.control.now();
    let state = api.control.read();
    // Reads may also come with Basic credentials (Prometheus, the web view's sign-in).
    let basic = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).filter(|v| v.starts_with("Basic "));
    let verdict = match basic {
        Some(header) if parts.method == axum::http::Method::GET => api.auth.basic(&state, header),
        _ => api.auth.sigv4(&state, &signed, "tapwire", now).map(|(who, _)| who),
    }
    .and_then(|who| api.auth.throttle(&who, crate::query::now_fractional()).map(|()| who));
    let who = match verdict {
        Ok(who) => who,
        Err(e) => {
            if !matches!(e.kind, ErrorKind::Throttled) {
                let action = format!("{} {path}", parts.method);
                let by = api.auth.claimed(&state, &signed);
                let code = ec2::error_code(&e.kind);
                crate::query::refusal(&api.control, by, source.as_deref(), "tapwire", &action, code, &request_id);
            }
            let mut resp = error_response(&e);
            // A scraper or curl told how to sign in. Not for the web view's fetches: the
            // challenge would open the browser's own password dialog over the page's form.
            if path == "/metrics" && resp.status() == axum::http::StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Basic realm=\"tapwire\", charset=\"UTF-8\""),
                );
            }
            return resp;
        }
    };
    drop(state);
    note.caller(&who);
    if who.agent_host.is_some() && !agent_may_call(&parts.method, &path) {
        let err = ApiError::new(
            ErrorKind::Unauthorized,
            "An agent credential may only register its host's interfaces, read their configuration and report their status.",
        );
        let action = format!("{} {path}", parts.method);
        crate::query::refusal(
            &api.control,
            (&who).into(),
            source.as_deref(),
            "tapwire",
            &action,
            ec2::error_code(&err.kind),
            &request_id,
        );
        return error_response(&err);
    }
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(Caller { who, source, request_id });
    next.run(req).await
}
