//! The one HTTP client the CLI commands use to talk to `tapwire server`'s JSON endpoints.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Default control-plane address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8787";

/// Why a request of the agent failed: the two cases it reacts to differently.
#[derive(Debug)]
pub enum RequestError {
    /// 404: the server does not know the resource.
    NotFound(String),
    /// Anything else: connection refused or reset, timeout, 5xx, unreadable answer.
    Unreachable(String),
}

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

    /// `GET path` as a long poll that may last `timeout`: `Ok(None)` on 304 Not Modified.
    pub fn get_long_poll<T: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<Option<T>, RequestError> {
        let resp = self
            .agent
            .get(self.url(path))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .map_err(|e| RequestError::Unreachable(format!("GET {}: {e}", self.url(path))))?;
        match resp.status().as_u16() {
            304 => Ok(None),
            404 => Err(RequestError::NotFound(format!("GET {path}"))),
            _ => Self::decode(&format!("GET {path}"), resp)
                .map(Some)
                .map_err(|e| RequestError::Unreachable(format!("{e:#}"))),
        }
    }

    /// `POST path` with a JSON body whose answer carries no content (204).
    pub fn post_no_content<B: Serialize>(&self, path: &str, body: &B, timeout: Duration) -> Result<(), RequestError> {
        let mut resp = self
            .agent
            .post(self.url(path))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send_json(body)
            .map_err(|e| RequestError::Unreachable(format!("POST {}: {e}", self.url(path))))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(RequestError::NotFound(format!("POST {path}"))),
            status => {
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                Err(RequestError::Unreachable(format!("POST {path}: server answered {status}: {text}")))
            }
        }
    }

    /// An EC2 Query API call (`Action`, `Version=2016-11-15`, then `params`) as a form
    /// post to `/`; returns the XML answer, or the error XML as the error.
    pub fn ec2_query(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form = vec![("Action", action), ("Version", "2016-11-15")];
        form.extend_from_slice(params);
        let mut resp =
            self.agent.post(self.url("/")).send_form(form).with_context(|| format!("{action}: POST {}", self.base))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().with_context(|| format!("reading the answer to {action}"))?;
        if !status.is_success() {
            bail!("{action}: server answered {status}: {text}");
        }
        Ok(text)
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
