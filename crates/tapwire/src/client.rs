//! The one HTTP client the CLI commands use to talk to `tapwire server`'s JSON endpoints.

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Default control-plane address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8787";

/// A client of one server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8787`).
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Self { base: base.trim_end_matches('/').to_owned(), agent }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn decode<T: DeserializeOwned>(what: &str, mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<T> {
        let status = resp.status();
        let text = resp.body_mut().read_to_string().with_context(|| format!("reading the answer to {what}"))?;
        if !status.is_success() {
            bail!("{what}: server answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: unexpected answer {text}"))
    }

    /// `GET path` decoded as JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.agent.get(self.url(path)).call().with_context(|| format!("GET {}", self.url(path)))?;
        Self::decode(&format!("GET {path}"), resp)
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let resp =
            self.agent.post(self.url(path)).send_json(body).with_context(|| format!("POST {}", self.url(path)))?;
        Self::decode(&format!("POST {path}"), resp)
    }

    /// `DELETE path`; success is any 2xx.
    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        let mut resp =
            self.agent.delete(self.url(path)).call().with_context(|| format!("DELETE {}", self.url(path)))?;
        if !resp.status().is_success() {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            bail!("DELETE {path}: server answered {}: {text}", resp.status());
        }
        Ok(())
    }
}
