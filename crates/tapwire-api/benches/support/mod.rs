//! What the request-path benchmarks share: a real server on loopback (the durable SQLite
//! store, the server's own listener) with authentication off or on, and a client that
//! posts Query-protocol forms, signed when the server verifies.

#![allow(dead_code, reason = "each benchmark uses part of it")]

pub mod postgres;

use std::sync::Arc;

use rand::SeedableRng;
use tapwire_api::auth::{Authenticator, Mode, UNLIMITED};
use tapwire_api::{Api, ApiConfig, router};
use tapwire_auth::seal::SecretBox;
use tapwire_auth::sigv4;
use tapwire_control::{Control, ControlConfig, SystemClock};
use tapwire_model::limits::Quotas;

/// A server and what a client needs to reach it.
pub struct Server {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    /// `127.0.0.1:PORT`, the Host header a signature covers.
    pub host: String,
    /// The root key, when the server verifies.
    pub key: Option<(String, String)>,
    /// The CA (PEM) of a TLS listener.
    pub ca: Option<String>,
    /// The store, under the runtime's feet.
    pub api: Arc<Api>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// Starts a plain-HTTP server; `verify` turns signature checks on (with an unlimited
/// rate, so the bucket measures its cost and never refuses).
pub fn start_server(verify: bool) -> Server {
    start(verify, false)
}

/// A CA and a certificate it signs for 127.0.0.1, written to `dir`; returns the CA's PEM.
fn make_certificates(dir: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
    ca_cert.pem()
}

/// Starts a server, verifying signatures or not, over TLS or not.
pub fn start(verify: bool, tls: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = tapwire_store::SqliteStore::open_dir(dir.path()).unwrap();
    start_on(Box::new(store), dir, verify, tls, None)
}

/// Starts a server on `store`; `root` is the root key another replica of the same store
/// made (the first makes it). A shared store is followed, as `tapwire server` does.
pub fn start_on(
    store: Box<dyn tapwire_store::Store>,
    dir: tempfile::TempDir,
    verify: bool,
    tls: bool,
    root: Option<(String, String)>,
) -> Server {
    let control = Control::open(
        store,
        Box::new(SystemClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(1)),
        // The benchmarks create more filters, sessions per target and interfaces than the
        // default quotas allow.
        ControlConfig {
            quotas: Quotas {
                filters_per_account: usize::MAX,
                sources_per_interface_target: usize::MAX,
                interfaces_per_account: usize::MAX,
                ..Quotas::default()
            },
            ..ControlConfig::default()
        },
    )
    .unwrap();
    let mode = if verify { Mode::Verify(Box::new(SecretBox::new(&[7; 32]))) } else { Mode::Open };
    let api = Arc::new(Api {
        control,
        config: ApiConfig::default(),
        auth: Authenticator::new(mode, UNLIMITED),
        telemetry: Arc::default(),
    });
    let made = if verify { tapwire_api::v1::accounts::ensure_root(&api).unwrap() } else { None };
    let key = made.or(root);
    if api.control.shared() {
        let follower = api.clone();
        std::thread::spawn(move || {
            follower.control.follow(std::time::Duration::from_secs(1), &std::sync::atomic::AtomicBool::new(false));
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let host = listener.local_addr().unwrap().to_string();
    // The server's own listener (connection cap, timeouts), as `tapwire server` runs it.
    let stats = Arc::new(tapwire_api::serve::ServeStats::default());
    let mut config = tapwire_api::serve::ServeConfig::default();
    let ca = tls.then(|| {
        let ca = make_certificates(dir.path());
        let store = Arc::new(
            tapwire_api::tls::CertStore::load(&dir.path().join("server.pem"), &dir.path().join("server.key")).unwrap(),
        );
        config.tls = Some(tapwire_api::serve::Tls(tokio_rustls::TlsAcceptor::from(store.server_config())));
        ca
    });
    runtime.spawn(tapwire_api::serve::serve(listener, router(api.clone()), config, stats, std::future::pending()));
    let scheme = if tls { "https" } else { "http" };
    Server { url: format!("{scheme}://{host}/"), host, key, ca, api, _dir: dir, _runtime: runtime }
}

/// A form ready to send: its body and, when signed, its `x-amz-date` and `Authorization`.
#[derive(Clone)]
pub struct Form {
    body: String,
    signature: Option<(String, String)>,
}

impl Server {
    /// A keep-alive client of this server (trusting its CA, over TLS).
    pub fn agent(&self) -> ureq::Agent {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let mut config = ureq::Agent::config_builder().http_status_as_error(false);
        if let Some(ca) = &self.ca {
            let cert = Certificate::from_pem(ca.as_bytes()).unwrap();
            config = config.tls_config(TlsConfig::builder().root_certs(RootCerts::new_with_certs(&[cert])).build());
        }
        config.build().into()
    }

    /// The `x-amz-date` and `Authorization` of a signed `GET path?query` (service `tapwire`).
    pub fn sign_get(&self, path: &str, query: &[(String, String)]) -> (String, String) {
        sign_get(&self.host, self.key.as_ref().unwrap(), path, query)
    }

    /// `body` as the server's clients send it: signed with SigV4 (service `ec2`) now, when
    /// the server verifies. A signed form may be sent again for 15 minutes (SigV4 has no
    /// nonce), so the load measures the server's verification, not the client's signing.
    pub fn form(&self, body: &str) -> Form {
        let Some((key_id, secret)) = &self.key else { return Form { body: body.to_owned(), signature: None } };
        let signer = sigv4::Signer { access_key: key_id.clone(), secret: secret.clone(), region: "us-east-1".into() };
        let amz_date = sigv4::amz_date(time::OffsetDateTime::now_utc());
        let authorization = signer.authorization("ec2", &amz_date, &self.host, ("POST", "/", &[]), body.as_bytes());
        Form { body: body.to_owned(), signature: Some((amz_date, authorization)) }
    }
}

/// The `x-amz-date` and `Authorization` of a `GET path?query` to `host` signed with `key`
/// (service `tapwire`).
pub fn sign_get(host: &str, key: &(String, String), path: &str, query: &[(String, String)]) -> (String, String) {
    let (key_id, secret) = key;
    let signer = sigv4::Signer { access_key: key_id.clone(), secret: secret.clone(), region: "us-east-1".into() };
    let amz_date = sigv4::amz_date(time::OffsetDateTime::now_utc());
    let authorization = signer.authorization("tapwire", &amz_date, host, ("GET", path, query), b"");
    (amz_date, authorization)
}

/// Starts a verifying server on the PostgreSQL database `url`, with `root` the key an
/// earlier replica made.
pub fn start_postgres(url: &str, root: Option<(String, String)>) -> Server {
    let store = tapwire_store::PostgresStore::connect(url).unwrap();
    start_on(Box::new(store), tempfile::tempdir().unwrap(), true, false, root)
}

/// Posts `form` to `url`; the answer must be 200.
pub fn post(agent: &ureq::Agent, url: &str, form: &Form) -> String {
    let mut req = agent.post(url).header("content-type", "application/x-www-form-urlencoded; charset=utf-8");
    if let Some((date, authorization)) = &form.signature {
        req = req.header("x-amz-date", date).header("authorization", authorization);
    }
    let mut resp = req.send(&form.body).unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{text}");
    text
}

/// The ID in a CreateTrafficMirrorFilter answer.
pub fn created_id(xml: &str) -> String {
    let start = xml.find("<trafficMirrorFilterId>").unwrap() + "<trafficMirrorFilterId>".len();
    xml[start..start + 21].to_owned()
}
