//! `/`: the Query-protocol front both dialects share.
//!
//! In order: only `GET` and `POST` (else 405 with `Allow`); the body read within its size
//! and time limits; the dialect told apart ([`decode::envelope`]); the parameters decoded
//! strictly ([`decode::decode`]); on a shared store, for a read, the catch-up with other
//! replicas ([`catch_up`]; a write's commit checks the revision instead); the signature
//! checked and the key's bucket drawn from ([`crate::auth`]); then the dialect's handler
//! on a blocking thread, with a [`Cancel`] flag raised if the client goes first. On a shared store everything after the body runs
//! in that one trip to a blocking thread. Every refusal is answered in the dialect's own
//! envelope, and a refused signature is noted in the audit trail (a throttled request is
//! only counted: a flood must not become one).

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tapwire_control::{ApiError, ErrorKind};
use tapwire_model::AccountId;
use tapwire_model::identity::AuditRecord;

use crate::auth::{Identity, Signed};
use crate::cancel::Cancel;
use crate::decode::{self, Envelope};
use crate::{Api, alibaba, ec2};

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An answer with its content type and the request ID header the dialect's SDKs read
/// (the same ID as in the body).
fn typed(status: u16, body: String, content_type: &'static str, id_header: &'static str, request_id: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(id_header, v);
    }
    resp
}

/// Alibaba: JSON, `x-acs-request-id`.
fn json_response(status: u16, body: String, request_id: &str) -> Response {
    typed(status, body, "application/json;charset=utf-8", "x-acs-request-id", request_id)
}

/// EC2: XML, `x-amzn-RequestId` (the smithy SDKs read the ID only from this header).
fn xml_response(status: u16, body: String, request_id: &str) -> Response {
    typed(status, body, "text/xml;charset=UTF-8", "x-amzn-requestid", request_id)
}

/// An error in `envelope`'s form.
fn refuse(envelope: Envelope, err: &ApiError, request_id: &str) -> Response {
    match envelope {
        Envelope::Ec2 => {
            let reply = ec2::error_reply(err, request_id);
            xml_response(reply.status, reply.body, request_id)
        }
        Envelope::Alibaba => {
            let reply = alibaba::error_reply(err, request_id);
            json_response(reply.status, reply.body, request_id)
        }
    }
}

/// A header's value as text.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body within [`decode::MAX_BODY_BYTES`] and `timeout`.
async fn read_body(body: Body, timeout: Duration) -> Result<axum::body::Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, decode::MAX_BODY_BYTES)).await {
        Err(_) => Err(ApiError::new(ErrorKind::MalformedRequest, "The request body did not arrive in time.")),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorKind::MalformedRequest,
            format!("The request body is larger than {} bytes, or broken off.", decode::MAX_BODY_BYTES),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Who a refused request is put down to: the verified caller, or the key a request that
/// failed verification claimed.
#[derive(Debug, Clone, Default)]
pub(crate) struct By {
    pub account: Option<AccountId>,
    pub access_key: Option<String>,
}

impl From<&Identity> for By {
    fn from(who: &Identity) -> Self {
        Self { account: Some(who.account), access_key: who.key_id.clone() }
    }
}

/// An audit record of a refusal at the door or in a dialect.
pub(crate) fn refusal(
    control: &tapwire_control::Control,
    by: By,
    source: Option<&str>,
    dialect: &'static str,
    action: &str,
    code: &str,
    request_id: &str,
) {
    control.note_refusal(&AuditRecord {
        at: control.now(),
        account: by.account,
        access_key: by.access_key,
        source: source.map(str::to_owned),
        dialect: dialect.to_owned(),
        action: action.to_owned(),
        resources: Vec::new(),
        result: code.to_owned(),
        request_id: request_id.to_owned(),
    });
}

/// Refuses an agent credential: agents do not call the clouds' APIs.
fn no_agents(
    api: &Api,
    who: &Identity,
    source: Option<&str>,
    dialect: Envelope,
    action: &str,
    request_id: &str,
) -> Result<(), ApiError> {
    let Some(host) = &who.agent_host else { return Ok(()) };
    let api_name = match dialect {
        Envelope::Ec2 => "EC2",
        Envelope::Alibaba => "Alibaba",
    };
    let err = ApiError::new(
        ErrorKind::Unauthorized,
        format!("The agent credential of host '{host}' cannot call the {api_name} API."),
    );
    let code = error_code(dialect, &err.kind);
    refusal(&api.control, who.into(), source, dialect_name(dialect), action, code, request_id);
    Err(err)
}

/// Seconds since the epoch, with a fraction, for token buckets.
pub(crate) fn now_fractional() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The client's address, when the listener put it on the request (tests that call the
/// router in-process have none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// `/`: the answer, with a [`RequestNote`] for the request log.
pub async fn query_api(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut note = RequestNote { request_id: request_id(), ..RequestNote::default() };
    if method != Method::GET && method != Method::POST {
        let mut resp = (StatusCode::METHOD_NOT_ALLOWED, "Only GET and POST reach the APIs.\n").into_response();
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        resp.extensions_mut().insert(note);
        return resp;
    }
    let body = match read_body(body, api.config.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let mut resp = refuse(decode::envelope(uri.query(), &headers, b""), &e, &note.request_id);
            resp.extensions_mut().insert(note);
            return resp;
        }
    };
    let envelope = decode::envelope(uri.query(), &headers, &body);
    let cancel = Cancel::default();
    let _cancel_if_dropped = cancel.on_drop();
    let request_id = note.request_id.clone();
    let answered = if api.control.shared() {
        // One trip to a blocking thread for a read's catch-up (a round trip to the store),
        // the checks and the handler: a second would add two thread wake-ups to every request.
        tokio::task::spawn_blocking(move || {
            let mut caught_up = None;
            let mut resp = match admit(&api, peer, &method, &uri, &headers, &body, &mut note, &mut caught_up) {
                Ok(admitted) => admitted.handle(&api, &note.request_id, &cancel),
                Err(refused) => *refused,
            };
            mark_stale(&api, caught_up != Some(false), &mut resp);
            resp.extensions_mut().insert(note);
            resp
        })
        .await
    } else {
        // Nothing to catch up with: the checks run here, only the handler (which may wait
        // for a commit) on a blocking thread.
        let admitted = admit(&api, peer, &method, &uri, &headers, &body, &mut note, &mut None);
        let answered = match admitted {
            Ok(admitted) => {
                let id = request_id.clone();
                tokio::task::spawn_blocking(move || admitted.handle(&api, &id, &cancel)).await
            }
            Err(refused) => Ok(*refused),
        };
        answered.map(|mut resp| {
            resp.extensions_mut().insert(note);
            resp
        })
    };
    answered.unwrap_or_else(|panicked| {
        let mut resp = refuse(envelope, &ApiError::internal(panicked), &request_id);
        resp.extensions_mut().insert(RequestNote { request_id, ..RequestNote::default() });
        resp
    })
}

/// Read-your-writes across replicas: on a shared store, what other replicas committed is
/// caught up with before a read (or one of tapwire's own requests) is answered (one read
/// of the store's revision when nothing changed). `false` when the store could not be reached.
pub async fn catch_up(api: &Arc<Api>) -> bool {
    if !api.control.shared() {
        return true;
    }
    let api = api.clone();
    tokio::task::spawn_blocking(move || caught_up(&api)).await.unwrap_or(false)
}

/// [`catch_up`] on this (blocking) thread, for a shared store.
fn caught_up(api: &Api) -> bool {
    api.control.catch_up().is_ok()
}

/// Says on an answer that it came from the last state this replica had, because its
/// store was out of reach.
pub fn mark_stale(api: &Api, caught_up: bool, resp: &mut Response) {
    if !caught_up {
        let text = format!("unreachable; answered from revision {}", api.control.read().revision);
        if let Ok(value) = HeaderValue::from_str(&text) {
            resp.headers_mut().insert("x-tapwire-store", value);
        }
    }
}

/// What the request log says of a request beyond its method, path, status and time.
#[derive(Debug, Clone, Default)]
pub struct RequestNote {
    /// The ID the answer carries.
    pub request_id: String,
    /// `ec2`, `alibaba` or `tapwire`.
    pub dialect: &'static str,
    /// The action, when known.
    pub action: String,
    /// The caller's account, once verified.
    pub account: Option<AccountId>,
    /// The access key it signed with.
    pub access_key: Option<String>,
}

impl RequestNote {
    /// Notes the verified caller.
    pub fn caller(&mut self, who: &Identity) {
        self.account = Some(who.account);
        self.access_key.clone_from(&who.key_id);
    }
}

/// What an action does to the state, as each dialect's table of actions says: a read is
/// answered from a state caught up with the other replicas first; a write is not (see
/// [`admit`]). A name in no table is neither, and is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Describe, List, Get.
    Read,
    /// Everything else.
    Write,
}

/// Decodes and verifies a request: the request admitted, or the refusal to answer.
///
/// On a shared store a read first catches up with what other replicas committed
/// (read-your-writes); `fresh` says how that went (`None`: not tried). A write does
/// not: its commit's revision check and the writer's [`crate::auth::standing`] check do
/// that job, a round trip fewer. Only an unknown key depends on the state the door
/// reads, so a write refused for one is looked at again once caught up (a key made on
/// another replica a moment ago).
#[allow(clippy::too_many_arguments, reason = "the request's parts, as the route hands them over")]
fn admit(
    api: &Arc<Api>,
    peer: Option<SocketAddr>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    note: &mut RequestNote,
    fresh: &mut Option<bool>,
) -> Result<Admitted, Box<Response>> {
    let query = uri.query();
    let source = peer.map(|addr| addr.ip().to_string());
    let request_id = note.request_id.clone();
    let envelope = decode::envelope(query, headers, body);
    note.dialect = dialect_name(envelope);
    let params = match decode::decode(method, query, headers, body) {
        Ok(p) => p,
        Err(e) => return Err(Box::new(refuse(envelope, &e, &request_id))),
    };
    let find = |key: &str| params.all.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let version = find("Version").or_else(|| header_text(headers, "x-acs-version").map(str::to_owned));
    let (dialect, action) = match version.as_deref() {
        Some(alibaba::VERSION) => (
            Envelope::Alibaba,
            find("Action").or_else(|| header_text(headers, "x-acs-action").map(str::to_owned)).unwrap_or_default(),
        ),
        Some(ec2::VERSION) => (Envelope::Ec2, find("Action").unwrap_or_default()),
        other => {
            let err = match other {
                None => ApiError::missing("Version"),
                Some(v) => ApiError::new(
                    ErrorKind::InvalidAction,
                    format!(
                        "The API version '{v}' is not supported; this endpoint speaks EC2 2016-11-15 and Alibaba VPC 2016-04-28."
                    ),
                ),
            };
            return Err(Box::new(refuse(envelope, &err, &request_id)));
        }
    };
    let name = dialect_name(dialect);
    note.dialect = name;
    note.action.clone_from(&action);
    let shared = api.control.shared();
    let reads = match dialect {
        Envelope::Ec2 => ec2::reads(&action),
        Envelope::Alibaba => alibaba::reads(&action),
    };
    if shared && reads {
        *fresh = Some(caught_up(api));
    }
    let signed =
        Signed { method: method.as_str(), path: uri.path(), query: &params.query, params: &params.all, headers, body };
    let now = api.control.now();
    let verify = |state: &tapwire_control::State| match dialect {
        Envelope::Alibaba => api.auth.alibaba(state, &signed, now, now_fractional()).map(|who| (who, String::new())),
        Envelope::Ec2 => api.auth.sigv4(state, &signed, "ec2", now).and_then(|(who, region)| {
            api.auth.throttle(&who, now_fractional())?;
            Ok((who, region))
        }),
    };
    let mut state = api.control.read();
    let mut verified = verify(&state);
    if shared && fresh.is_none() && verified.as_ref().is_err_and(|e| e.kind == ErrorKind::AuthFailure) {
        *fresh = Some(caught_up(api));
        let later = api.control.read();
        if later.revision != state.revision {
            state = later;
            verified = verify(&state);
        }
    }
    let (who, region) = match verified {
        Ok(pair) => pair,
        Err(e) => {
            if !matches!(e.kind, ErrorKind::Throttled) {
                let by = api.auth.claimed(&state, &signed);
                refusal(&api.control, by, source.as_deref(), name, &action, error_code(dialect, &e.kind), &request_id);
            }
            return Err(Box::new(refuse(dialect, &e, &request_id)));
        }
    };
    drop(state);
    note.caller(&who);
    if let Err(e) = no_agents(api, &who, source.as_deref(), dialect, &action, &request_id) {
        return Err(Box::new(refuse(dialect, &e, &request_id)));
    }
    Ok(match dialect {
        Envelope::Alibaba => Admitted::Alibaba {
            caller: alibaba::Caller { account: who.account, who, source },
            action,
            params: params.all,
        },
        Envelope::Ec2 => {
            let region = if region.is_empty() { api.config.region.clone() } else { region };
            Admitted::Ec2 { caller: ec2::Caller { account: who.account, region, who, source }, params: params.all }
        }
    })
}

/// A dialect's name in the request log and the audit trail.
fn dialect_name(dialect: Envelope) -> &'static str {
    match dialect {
        Envelope::Ec2 => "ec2",
        Envelope::Alibaba => "alibaba",
    }
}

/// A refusal's code in `dialect`.
fn error_code(dialect: Envelope, kind: &ErrorKind) -> &'static str {
    match dialect {
        Envelope::Ec2 => ec2::error_code(kind),
        Envelope::Alibaba => alibaba::error_code(kind),
    }
}

/// A request through the door: decoded, verified, its caller known; what is left is its
/// dialect's handler.
enum Admitted {
    Alibaba { caller: alibaba::Caller, action: String, params: Vec<(String, String)> },
    Ec2 { caller: ec2::Caller, params: Vec<(String, String)> },
}

impl Admitted {
    /// Runs the handler (on a blocking thread: a write waits for its commit).
    fn handle(self, api: &Arc<Api>, request_id: &str, cancel: &Cancel) -> Response {
        match self {
            Admitted::Alibaba { caller, action, params } => {
                let reply = alibaba::handle(api, &caller, &action, alibaba::params::Params::new(params), request_id);
                json_response(reply.status, reply.body, request_id)
            }
            Admitted::Ec2 { caller, params } => {
                let reply = ec2::handle(api, &caller, ec2::params::Params::new(params), request_id, cancel);
                xml_response(reply.status, reply.body, request_id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables' read flags agree with how both clouds name their reads.
    #[test]
    fn the_reads_are_the_describes_lists_and_gets() {
        for name in ec2::action_names() {
            assert_eq!(ec2::reads(name), name.starts_with("Describe"), "{name}");
        }
        for name in alibaba::action_names() {
            assert_eq!(alibaba::reads(name), name.starts_with("List") || name.starts_with("Get"), "{name}");
        }
        assert!(!ec2::reads("DescribeNothing") && !alibaba::reads(""), "a name in no table reads nothing");
    }
}
