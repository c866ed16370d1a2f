//! `/`: the Query-protocol front both dialects share.
//!
//! In order: only `GET` and `POST` (else 405 with `Allow`); the body read within its size
//! and time limits; the dialect told apart ([`decode::envelope`]); the parameters decoded
//! strictly ([`decode::decode`]); the caller and region found; then the dialect's handler
//! on a blocking thread, with a [`Cancel`] flag raised if the client goes first. Every
//! refusal is answered in the dialect's own envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tapwire_control::{ApiError, ErrorKind};

use crate::cancel::Cancel;
use crate::decode::{self, Envelope};
use crate::{Api, alibaba, auth, ec2};

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

/// `/`.
pub async fn query_api(
    State(api): State<Arc<Api>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::GET && method != Method::POST {
        let mut resp = (StatusCode::METHOD_NOT_ALLOWED, "Only GET and POST reach the APIs.\n").into_response();
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return resp;
    }
    let request_id = request_id();
    let body = match read_body(body, api.config.body_timeout).await {
        Ok(b) => b,
        Err(e) => return refuse(decode::envelope(query.as_deref(), &headers, b""), &e, &request_id),
    };
    let envelope = decode::envelope(query.as_deref(), &headers, &body);
    let pairs = match decode::decode(&method, query.as_deref(), &headers, &body) {
        Ok(p) => p,
        Err(e) => return refuse(envelope, &e, &request_id),
    };
    let find = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let version = find("Version").or_else(|| header_text(&headers, "x-acs-version").map(str::to_owned));
    let cancel = Cancel::default();
    let _cancel_if_dropped = cancel.on_drop();
    match version.as_deref() {
        Some(alibaba::VERSION) => {
            let action =
                find("Action").or_else(|| header_text(&headers, "x-acs-action").map(str::to_owned)).unwrap_or_default();
            let creds = auth::acs_credentials(&headers, find("AccessKeyId").as_deref());
            let caller = alibaba::Caller { account: auth::account_for(&creds) };
            let rid = request_id.clone();
            let reply = tokio::task::spawn_blocking(move || {
                alibaba::handle(&api, &caller, &action, alibaba::params::Params::new(pairs), &rid)
            })
            .await
            .unwrap_or_else(|e| alibaba::error_reply(&ApiError::internal(e), &request_id));
            json_response(reply.status, reply.body, &request_id)
        }
        Some(ec2::VERSION) => {
            let creds = auth::sigv4_credentials(&headers, find("X-Amz-Credential").as_deref());
            let caller = ec2::Caller {
                account: auth::account_for(&creds),
                region: creds.region.unwrap_or_else(|| api.config.region.clone()),
            };
            let rid = request_id.clone();
            let reply = tokio::task::spawn_blocking(move || {
                ec2::handle(&api, &caller, ec2::params::Params::new(pairs), &rid, &cancel)
            })
            .await
            .unwrap_or_else(|e| ec2::error_reply(&ApiError::internal(e), &request_id));
            xml_response(reply.status, reply.body, &request_id)
        }
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
            refuse(envelope, &err, &request_id)
        }
    }
}
