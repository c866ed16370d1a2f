//! tapwire's HTTP front door.
//!
//! One port speaks every dialect. A request to `/` is EC2 Query when its `Version` (in the
//! form body or the query string) is `2016-11-15`, and Alibaba RPC when its `Version` (in
//! the body, the query string or the `x-acs-version` header) is `2016-04-28` ([`query`]);
//! tapwire's own JSON endpoints live under `/tapwire/v1/` ([`v1`]). Parameters are read
//! from the query string and the form body together, strictly ([`decode`]).
//! Handlers are thin: decode → [`tapwire_control::Control`] → encode. [`serve`] is the
//! listener: connection cap and timeouts.

pub mod alibaba;
pub mod auth;
pub mod cancel;
pub mod decode;
pub mod ec2;
mod flat;
pub mod metrics;
pub mod query;
pub mod regions;
pub mod request_log;
pub mod serve;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod v1;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use tapwire_control::Control;

/// Settings of the HTTP front.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Region used when a request names none (unsigned requests, tapwire endpoints).
    pub region: String,
    /// Resolvers that the `amazon-dns` network service stands for.
    pub dns_resolvers: Vec<IpAddr>,
    /// Regions requests may address ([`regions::defaults`] unless configured).
    pub regions: BTreeSet<String>,
    /// How long a client may take to send a request body.
    pub body_timeout: std::time::Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            dns_resolvers: Vec::new(),
            regions: regions::defaults(),
            body_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Shared state of every handler.
#[derive(Debug)]
pub struct Api {
    /// The control logic.
    pub control: Control,
    /// Settings.
    pub config: ApiConfig,
    /// Who may call.
    pub auth: auth::Authenticator,
    /// What agents report.
    pub telemetry: Arc<telemetry::Telemetry>,
}

impl Api {
    /// An API with authentication off (every caller is the root account): for tests and
    /// tools that run in-process, never for a listener.
    pub fn unauthenticated(control: Control, config: ApiConfig) -> Self {
        Self {
            control,
            config,
            auth: auth::Authenticator::new(auth::Mode::Open, auth::UNLIMITED),
            telemetry: Arc::default(),
        }
    }
}

/// A time as people read it everywhere tapwire shows one: RFC 3339, UTC, to the second.
pub fn time_text(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The router serving every dialect and the agent endpoints.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", any(query::query_api))
        .nest("/tapwire/v1", v1_routes(api.clone()))
        .route("/ui", get(ui::to_index))
        .route("/ui/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route(
            "/metrics",
            get(metrics::metrics).route_layer(axum::middleware::from_fn_with_state(api.clone(), v1::authenticate)),
        )
        .layer(axum::Extension(api.telemetry.clone()))
        .layer(axum::Extension(Arc::new(v1::config_changes::ConfigChanges::default())))
        .layer(axum::middleware::from_fn(request_log::log_requests))
        .with_state(api)
}

/// tapwire's own endpoints, each behind the signature check of [`v1::authenticate`] but
/// enrollment, whose join token is its credential.
fn v1_routes(api: Arc<Api>) -> Router<Arc<Api>> {
    use axum::routing::{delete, post};
    use v1::{access_keys, accounts, agents, audit, interfaces, sensor_groups, sessions, targets};
    Router::new()
        .route("/network-interfaces", get(interfaces::list).post(interfaces::register))
        .route("/network-interfaces/{eni}", delete(interfaces::deregister))
        .route("/network-interfaces/{eni}/config", get(interfaces::config))
        .route("/network-interfaces/{eni}/status", post(interfaces::report_status))
        .route("/agents", get(agents::list))
        .route("/agents/{host}", delete(agents::revoke))
        .route("/agents/tokens", get(agents::list_tokens).post(agents::create_token))
        .route("/agents/tokens/{id}", delete(agents::delete_token))
        .route("/accounts", get(accounts::list_accounts).post(accounts::create_account))
        .route("/access-keys", get(access_keys::list_keys).post(access_keys::create_key))
        .route("/access-keys/{id}", delete(access_keys::delete_key))
        .route("/audit", get(audit::audit))
        .route("/sessions/status", get(sessions::status))
        .route("/targets", get(targets::list))
        .route("/sensor-groups", get(sensor_groups::list).post(sensor_groups::create))
        .route("/sensor-groups/{id}", delete(sensor_groups::delete))
        .route("/sensor-groups/{id}/members", post(sensor_groups::modify))
        .route_layer(axum::middleware::from_fn_with_state(api, v1::authenticate))
        .route("/agents/enroll", post(agents::enroll))
}
