//! The one HTTP client the CLI commands use to talk to `tapwire server`: its JSON
//! endpoints (`/tapwire/v1/…`, SigV4 for the service `tapwire`) and the EC2 Query API
//! (SigV4 for `ec2`), every request signed with the key [`crate::credentials`] found.
//! The agent's own status endpoint is read unsigned ([`Client::unsigned`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tapwire_auth::sigv4;
use ureq::http;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};

use crate::credentials::{self, Credentials, ProcessEnvironment};

/// Default control-plane address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8787";
/// Region signed when neither the environment nor the profile names one.
const DEFAULT_REGION: &str = "us-east-1";

/// How a command reaches the server: flattened into every command that calls it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Control plane URL.
    #[arg(long, global = true, default_value = DEFAULT_SERVER, env = "TAPWIRE_SERVER")]
    pub server: String,
    /// The server's data directory: its `credentials` file (profile `tapwire`) is the key
    /// used when the environment names none.
    #[arg(long, global = true, env = "TAPWIRE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// CA certificate(s) (PEM) an `https://` server's certificate must chain to, e.g. the
    /// server's DATA_DIR/tls/ca.pem; without it, the Mozilla roots.
    #[arg(long, global = true, env = "TAPWIRE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl ServerArgs {
    /// A client of the server, signing with the discovered key.
    pub fn client(&self) -> anyhow::Result<Client> {
        let creds = credentials::discover(&ProcessEnvironment, self.data_dir.as_deref())?;
        Client::signed(&self.server, creds, self.ca_cert.as_deref())
    }
}

/// The TLS settings of a client: the given CA bundle, or the Mozilla roots.
fn tls_config(ca_cert: Option<&Path>) -> anyhow::Result<TlsConfig> {
    let roots = match ca_cert {
        None => RootCerts::WebPki,
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let certs: Vec<Certificate<'static>> = parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not PEM", path.display()))?;
            anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
            RootCerts::new_with_certs(&certs)
        }
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// Why a request of the agent failed: the two cases it reacts to differently.
#[derive(Debug)]
pub enum RequestError {
    /// 404: the server does not know the resource.
    NotFound(String),
    /// Anything else: connection refused or reset, timeout, refused key, 5xx, unreadable answer.
    Unreachable(String),
}

/// A client of one server; clones share its connections.
#[derive(Clone)]
pub struct Client {
    base: String,
    host: String,
    agent: ureq::Agent,
    signer: Option<sigv4::Signer>,
}

/// One request before it is signed.
struct Outgoing<'a> {
    method: &'static str,
    path: &'a str,
    query: Vec<(String, String)>,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    service: &'static str,
    timeout: Option<Duration>,
}

impl<'a> Outgoing<'a> {
    fn new(method: &'static str, path: &'a str) -> Self {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, form_urlencoded::parse(q.as_bytes()).into_owned().collect()),
            None => (path, Vec::new()),
        };
        Self { method, path, query, body: Vec::new(), content_type: None, service: "tapwire", timeout: None }
    }

    fn json<B: Serialize>(mut self, body: &B) -> anyhow::Result<Self> {
        self.body = serde_json::to_vec(body)?;
        self.content_type = Some("application/json");
        Ok(self)
    }
}

/// The `{"code", "message"}` of an error answer, or the text as it came.
fn error_text(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v["code"].is_string() => {
            format!("{}: {}", v["code"].as_str().unwrap_or(""), v["message"].as_str().unwrap_or(""))
        }
        _ => text.to_owned(),
    }
}

impl Client {
    /// A client that signs nothing, of a plain-HTTP endpoint: the agent's own status
    /// endpoint, the enrollment call (the token is the credential).
    pub fn unsigned(base: &str, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        Self::build(base, None, ca_cert)
    }

    /// A client that signs every request with `credentials`.
    pub fn signed(base: &str, credentials: Credentials, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        Self::build(base, Some(credentials), ca_cert)
    }

    fn build(base: &str, credentials: Option<Credentials>, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let host = match &credentials {
            None => String::new(),
            Some(_) => {
                let uri: http::Uri = base.parse().with_context(|| format!("{base} is not a URL"))?;
                uri.authority().with_context(|| format!("{base} names no host"))?.as_str().to_owned()
            }
        };
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).tls_config(tls_config(ca_cert)?).build().into();
        let signer = credentials.map(|c| sigv4::Signer {
            access_key: c.key_id,
            secret: c.secret,
            region: c.region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        });
        Ok(Self { base, host, agent, signer })
    }

    fn send(&self, out: Outgoing<'_>) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let mut target = format!("{}{}", self.base, out.path);
        if !out.query.is_empty() {
            target.push('?');
            target.push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(&out.query).finish());
        }
        let mut req = http::Request::builder().method(out.method).uri(&target);
        if let Some(ct) = out.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(signer) = &self.signer {
            let amz_date = sigv4::amz_date(time::OffsetDateTime::now_utc());
            let authorization =
                signer.authorization(out.service, &amz_date, &self.host, (out.method, out.path, &out.query), &out.body);
            req = req.header("host", &self.host).header("x-amz-date", amz_date).header("authorization", authorization);
        }
        let req = req.body(out.body).map_err(ureq::Error::from)?;
        match out.timeout {
            None => self.agent.run(req),
            Some(t) => self.agent.run(self.agent.configure_request(req).timeout_global(Some(t)).build()),
        }
    }

    /// `send`, with what a person needs to know when the certificate is not trusted.
    fn call(&self, out: Outgoing<'_>) -> anyhow::Result<http::Response<ureq::Body>> {
        let what = format!("{} {}{}", out.method, self.base, out.path);
        self.send(out).map_err(|e| {
            let text = e.to_string();
            let hint = if text.contains("certificate") || text.contains("UnknownIssuer") {
                " (is the server's CA given? --ca-cert FILE or TAPWIRE_CA_CERT, e.g. its DATA_DIR/tls/ca.pem)"
            } else {
                ""
            };
            anyhow::anyhow!("{what}: {text}{hint}")
        })
    }

    fn decode<T: DeserializeOwned>(what: &str, mut resp: http::Response<ureq::Body>) -> anyhow::Result<T> {
        let status = resp.status();
        let text = resp.body_mut().read_to_string().with_context(|| format!("reading the answer to {what}"))?;
        if !status.is_success() {
            bail!("{what}: server answered {status}: {}", error_text(&text));
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: unexpected answer {text}"))
    }

    /// `GET path` decoded as JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.call(Outgoing::new("GET", path))?;
        Self::decode(&format!("GET {path}"), resp)
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let resp = self.call(Outgoing::new("POST", path).json(body)?)?;
        Self::decode(&format!("POST {path}"), resp)
    }

    /// `DELETE path`; success is any 2xx.
    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        let mut resp =
            self.send(Outgoing::new("DELETE", path)).with_context(|| format!("DELETE {}{path}", self.base))?;
        if !resp.status().is_success() {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            bail!("DELETE {path}: server answered {}: {}", resp.status(), error_text(&text));
        }
        Ok(())
    }

    /// `GET path` as a long poll that may last `timeout`: `Ok(None)` on 304 Not Modified.
    pub fn get_long_poll<T: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<Option<T>, RequestError> {
        let out = Outgoing { timeout: Some(timeout), ..Outgoing::new("GET", path) };
        let resp = self.call(out).map_err(|e| RequestError::Unreachable(format!("{e:#}")))?;
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
        let out = Outgoing { timeout: Some(timeout), ..Outgoing::new("POST", path) }
            .json(body)
            .map_err(|e| RequestError::Unreachable(format!("{e:#}")))?;
        let mut resp =
            self.send(out).map_err(|e| RequestError::Unreachable(format!("POST {}{path}: {e}", self.base)))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(RequestError::NotFound(format!("POST {path}"))),
            status => {
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                Err(RequestError::Unreachable(format!("POST {path}: server answered {status}: {}", error_text(&text))))
            }
        }
    }

    /// An EC2 Query API call (`Action`, `Version=2016-11-15`, then `params`) as a signed
    /// form post to `/`; returns the XML answer, or the error XML as the error.
    pub fn ec2_query(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action).append_pair("Version", "2016-11-15");
        form.extend_pairs(params);
        let out = Outgoing {
            body: form.finish().into_bytes(),
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            service: "ec2",
            ..Outgoing::new("POST", "/")
        };
        let mut resp = self.call(out).with_context(|| action.to_owned())?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().with_context(|| format!("reading the answer to {action}"))?;
        if !status.is_success() {
            bail!("{action}: server answered {status}: {text}");
        }
        Ok(text)
    }
}
