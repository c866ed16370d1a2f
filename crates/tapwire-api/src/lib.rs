//! tapwire's HTTP front door.
//!
//! One port speaks every dialect. A request to `/` is EC2 Query when its `Version` (in the
//! form body or the query string) is `2016-11-15`, and Alibaba RPC when its `Version` (in
//! the body, the query string or the `x-acs-version` header) is `2016-04-28`; tapwire's own
//! JSON endpoints live under `/tapwire/v1/`. Parameters are read from the query string and
//! the form body together.
//! Handlers are thin: decode → [`tapwire_control::Control`] → encode.

pub mod agent;
pub mod alibaba;
pub mod auth;
pub mod ec2;
mod flat;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tapwire_control::{ApiError, Control, ErrorKind};

/// Settings of the HTTP front.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Region used when a request names none (unsigned requests, tapwire endpoints).
    pub region: String,
    /// Resolvers that the `amazon-dns` network service stands for.
    pub dns_resolvers: Vec<IpAddr>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { region: "us-east-1".to_owned(), dns_resolvers: Vec::new() }
    }
}

/// Shared state of every handler.
#[derive(Debug)]
pub struct Api {
    /// The control logic.
    pub control: Control,
    /// Settings.
    pub config: ApiConfig,
}

/// The router serving every dialect and the agent endpoints.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", any(query_api))
        .route("/tapwire/v1/network-interfaces", get(agent::list).post(agent::register))
        .route("/tapwire/v1/network-interfaces/{eni}", axum::routing::delete(agent::deregister))
        .route("/tapwire/v1/network-interfaces/{eni}/config", get(agent::config))
        .route("/tapwire/v1/network-interfaces/{eni}/status", axum::routing::post(agent::report_status))
        .layer(axum::Extension(Arc::new(agent::AgentReports::default())))
        .with_state(api)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Decodes the query string and, for form posts, the body, into one parameter list (the
/// decoder both dialects share).
pub fn collect_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        pairs.extend(form_urlencoded::parse(body).into_owned());
    }
    pairs
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    resp
}

/// A header's value as text.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn xml_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    resp
}

/// `/`: the Query-protocol dialects.
async fn query_api(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = collect_params(query.as_deref(), &headers, &body);
    let version = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.clone())
        .or_else(|| header_text(&headers, "x-acs-version").map(str::to_owned));
    let request_id = request_id();
    match version.as_deref() {
        Some(alibaba::VERSION) => {
            let action = pairs
                .iter()
                .rev()
                .find(|(k, _)| k == "Action")
                .map(|(_, v)| v.clone())
                .or_else(|| header_text(&headers, "x-acs-action").map(str::to_owned))
                .unwrap_or_default();
            let access_key_param = pairs.iter().find(|(k, _)| k == "AccessKeyId").map(|(_, v)| v.clone());
            let creds = auth::acs_credentials(&headers, access_key_param.as_deref());
            let caller = alibaba::Caller { account: auth::account_for(&creds) };
            let rid = request_id.clone();
            let reply = tokio::task::spawn_blocking(move || {
                alibaba::handle(&api, &caller, &action, alibaba::params::Params::new(pairs), &rid)
            })
            .await
            .unwrap_or_else(|e| alibaba::error_reply(&ApiError::internal(e), &request_id));
            json_response(reply.status, reply.body)
        }
        Some(ec2::VERSION) => {
            let credential = pairs.iter().find(|(k, _)| k == "X-Amz-Credential").map(|(_, v)| v.clone());
            let creds = auth::sigv4_credentials(&headers, credential.as_deref());
            let caller = ec2::Caller {
                account: auth::account_for(&creds),
                region: creds.region.unwrap_or_else(|| api.config.region.clone()),
            };
            let rid = request_id.clone();
            let reply = tokio::task::spawn_blocking(move || {
                ec2::handle(&api.control, &caller, ec2::params::Params::new(pairs), &rid)
            })
            .await
            .unwrap_or_else(|e| ec2::error_reply(&ApiError::internal(e), &request_id));
            xml_response(reply.status, reply.body)
        }
        other => {
            let message = match other {
                None => "The request must contain the parameter Version".to_owned(),
                Some(v) => format!(
                    "The API version '{v}' is not supported; this endpoint speaks EC2 2016-11-15 and Alibaba VPC 2016-04-28."
                ),
            };
            let err = ApiError::new(
                if other.is_none() { ErrorKind::MissingParameter } else { ErrorKind::InvalidAction },
                message,
            );
            let reply = ec2::error_reply(&err, &request_id);
            xml_response(reply.status, reply.body)
        }
    }
}
