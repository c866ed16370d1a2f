//! tapwire's HTTP front door.
//!
//! One port speaks every dialect. A request to `/` is EC2 Query when its `Version` (in the
//! form body or the query string) is `2016-11-15`, and Alibaba RPC when its `Version` (in
//! the body, the query string or the `x-acs-version` header) is `2016-04-28` ([`query`]);
//! tapwire's own JSON endpoints live under `/tapwire/v1/` ([`agent`]). Parameters are read
//! from the query string and the form body together, strictly ([`decode`]).
//! Handlers are thin: decode → [`tapwire_control::Control`] → encode. [`serve`] is the
//! listener: connection cap and timeouts.

pub mod agent;
pub mod alibaba;
pub mod auth;
pub mod cancel;
pub mod decode;
pub mod ec2;
mod flat;
pub mod query;
pub mod regions;
pub mod serve;

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
}

/// The router serving every dialect and the agent endpoints.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", any(query::query_api))
        .route("/tapwire/v1/network-interfaces", get(agent::list).post(agent::register))
        .route("/tapwire/v1/network-interfaces/{eni}", axum::routing::delete(agent::deregister))
        .route("/tapwire/v1/network-interfaces/{eni}/config", get(agent::config))
        .route("/tapwire/v1/network-interfaces/{eni}/status", axum::routing::post(agent::report_status))
        .layer(axum::Extension(Arc::new(agent::AgentReports::default())))
        .with_state(api)
}
