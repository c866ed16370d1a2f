//! `tapwire server`: the control plane on one port, with the embedded SQLite store.
//!
//! [`bootstrap`] makes what a first start needs (master key, root account and key);
//! [`tls`] the private CA and certificate of `--tls auto`; [`housekeeping`] runs the
//! background chores.

mod bootstrap;
mod housekeeping;
mod tls;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tapwire_api::auth::{Authenticator, Mode};
use tapwire_api::serve::{ServeConfig, ServeStats, Tls};
use tapwire_api::tls::CertStore;
use tapwire_api::{Api, ApiConfig};
use tapwire_auth::bucket::Rate;
use tapwire_control::{Control, ControlConfig, SystemClock};
use tapwire_model::limits::Quotas;

/// Arguments of `tapwire server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to serve the APIs on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "TAPWIRE_LISTEN")]
    listen: SocketAddr,
    /// Directory of the embedded store, the master key, the TLS files and the root
    /// credentials.
    #[arg(long, default_value = "./tapwire-data", env = "TAPWIRE_DATA_DIR")]
    data_dir: PathBuf,
    /// The store: `sqlite:DIR` (default: the data directory) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, shared by several replicas (give
    /// them all the same --master-key).
    #[arg(long, env = "TAPWIRE_STORE", value_name = "URL")]
    store: Option<String>,
    /// Region for requests that name none.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Regions requests may address, comma-separated (default: every AWS and Alibaba
    /// Cloud region name). Anything else is refused before it is stored.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// DNS resolver that the `amazon-dns` network service stands for (repeatable).
    #[arg(long = "dns-resolver")]
    dns_resolvers: Vec<IpAddr>,
    /// JSON file overriding quotas, e.g. {"sessions_per_interface": 5}.
    #[arg(long)]
    quotas: Option<PathBuf>,
    /// How long an Alibaba resource stays Creating/Modifying/Deleting before the background
    /// task finishes it, in milliseconds.
    #[arg(long, default_value_t = 500)]
    alibaba_task_delay_ms: u64,
    /// How long a ClientToken's answer is kept (e.g. 24h).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    client_token_ttl: Duration,
    /// Connections open at once, long polls included; more are answered 503. Kept below
    /// the open-file limit.
    #[arg(long, default_value_t = ServeConfig::default().max_connections)]
    max_connections: usize,
    /// How long a connection may sit with no request (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// How long a request head may take once it has begun to arrive (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// How long a request body may take to arrive (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// `sigv4`: every request is signed by a known access key (SigV4 for EC2 and tapwire's
    /// own endpoints, V1/ACS3 for Alibaba). `none`: nobody is checked and every caller is
    /// the root account; only for a loopback listener.
    #[arg(long, default_value = "sigv4", value_parser = ["sigv4", "none"])]
    auth: String,
    /// Requests per second each access key may send (a token bucket; excess answers
    /// RequestLimitExceeded / Throttling.User).
    #[arg(long, default_value_t = tapwire_api::auth::DEFAULT_RATE.per_second)]
    rate: f64,
    /// Requests an access key may send at once above its rate.
    #[arg(long, default_value_t = tapwire_api::auth::DEFAULT_RATE.burst)]
    burst: f64,
    /// The key that seals access-key secrets in the store (default DATA_DIR/master.key;
    /// made at first start). Keep it on other storage than the store's backups.
    #[arg(long)]
    master_key: Option<PathBuf>,
    /// `auto`: serve HTTPS with a certificate from a private CA made in DATA_DIR/tls (its
    /// ca.pem is what clients trust). Or give --tls-cert and --tls-key.
    #[arg(long, value_parser = ["auto"], conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: Option<String>,
    /// Certificate chain (PEM) to serve HTTPS with; reread on SIGHUP.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert; reread on SIGHUP.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Another name or address the --tls auto certificate is for (repeatable).
    #[arg(long = "tls-san", requires = "tls")]
    tls_sans: Vec<String>,
    /// Serve plain HTTP on a non-loopback address: keys, configs and the audit trail
    /// cross the network in the clear. Only for a network you trust entirely.
    #[arg(long)]
    insecure_http: bool,
    /// How long audit records are kept (e.g. 90d).
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    audit_retention: Duration,
    /// Most audit records kept.
    #[arg(long, default_value_t = 1_000_000)]
    audit_max_records: usize,
}

/// How often a replica checks a shared store's revision when no notification came.
const STORE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs the control plane until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let quotas: Quotas = match &args.quotas {
        None => Quotas::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing quotas in {}", path.display()))?
        }
    };
    // Before anything is written: a listener that would be refused makes nothing.
    anyhow::ensure!(
        args.listen.ip().is_loopback() || args.insecure_http || args.tls.is_some() || args.tls_cert.is_some(),
        "--listen {} is not a loopback address: serve it with TLS (--tls auto, or --tls-cert FILE --tls-key FILE), \
         or accept plain HTTP with --insecure-http",
        args.listen
    );
    bootstrap::data_dir(&args.data_dir)?;
    let (tls, certs) = listener_tls(&args)?;
    let open_files = tapwire_api::serve::raise_open_file_limit().context("raising the open-file limit")?;
    let store = crate::store::open(args.store.as_deref(), &args.data_dir)?;
    let client_token_ttl = i64::try_from(args.client_token_ttl.as_secs()).context("--client-token-ttl is too long")?;
    let control = Control::open(
        store,
        Box::new(SystemClock),
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
        ControlConfig { quotas, client_token_ttl, ..ControlConfig::default() },
    )
    .context("loading the store")?;
    let regions: BTreeSet<String> =
        if args.regions.is_empty() { tapwire_api::regions::defaults() } else { args.regions.iter().cloned().collect() };
    anyhow::ensure!(regions.contains(&args.region), "--region {} is not among --regions", args.region);
    let mode = match args.auth.as_str() {
        "none" => {
            anyhow::ensure!(
                args.listen.ip().is_loopback(),
                "--auth none is only allowed on a loopback address (--listen 127.0.0.1:PORT); {} is not one",
                args.listen
            );
            eprintln!(
                "tapwire: WARNING: authentication is OFF (--auth none): every caller on {} is the root account.",
                args.listen
            );
            Mode::Open
        }
        _ => {
            let path = args.master_key.clone().unwrap_or_else(|| args.data_dir.join("master.key"));
            Mode::Verify(Box::new(bootstrap::master_key(&path)?))
        }
    };
    let control_now = control.now();
    let rate = Rate { per_second: args.rate, burst: args.burst.max(1.0) };
    let api = Arc::new(Api {
        control,
        config: ApiConfig {
            region: args.region.clone(),
            dns_resolvers: args.dns_resolvers.clone(),
            regions,
            body_timeout: args.body_timeout,
        },
        auth: Authenticator::new(mode, rate).started_at(control_now),
        telemetry: Arc::default(),
    });
    api.auth.check_master_key(&api.control.read()).map_err(anyhow::Error::msg)?;
    if api.auth.verifies()
        && let Some((key_id, secret)) =
            tapwire_api::v1::accounts::ensure_root(&api).map_err(|e| anyhow::anyhow!("{}", e.message))?
    {
        bootstrap::write_root_credentials(&args.data_dir, &key_id, &secret, &args.region)?;
    }
    let retention = housekeeping::Retention {
        age: i64::try_from(args.audit_retention.as_secs()).context("--audit-retention is too long")?,
        count: args.audit_max_records,
    };
    let serve_config = ServeConfig {
        max_connections: tapwire_api::serve::effective_cap(args.max_connections, open_files),
        idle_timeout: args.idle_timeout,
        header_timeout: args.header_timeout,
        tls,
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr()?;
        // Also finishes tasks left pending by a previous run.
        let worker = tokio::spawn(tapwire_api::alibaba::lifecycle::run(
            api.clone(),
            Duration::from_millis(args.alibaba_task_delay_ms),
        ));
        housekeeping::start(&api, retention);
        if api.control.shared() {
            // Other replicas' commits reach this one's long polls as soon as they land.
            let follower = api.clone();
            std::thread::Builder::new()
                .name("store-follower".into())
                .spawn(move || follower.control.follow(STORE_CHECK_EVERY, &std::sync::atomic::AtomicBool::new(false)))
                .context("starting the store follower")?;
        }
        if let Some(certs) = certs {
            tokio::spawn(reload_on_sighup(certs));
        }
        let scheme = if serve_config.tls.is_some() { "https" } else { "http" };
        eprintln!(
            "tapwire server listening on {scheme}://{local} (data in {}; at most {} connections)",
            args.data_dir.display(),
            serve_config.max_connections
        );
        let stats = Arc::new(ServeStats::default());
        tapwire_api::serve::serve(listener, tapwire_api::router(api.clone()), serve_config, stats, shutdown_signal())
            .await?;
        worker.abort();
        if let Err(e) = api.control.flush_audit() {
            tracing::warn!(error = %e, "the last refusals could not be added to the audit trail");
        }
        eprintln!("tapwire server stopped");
        anyhow::Ok(())
    })
}

/// The listener's TLS, from the flags; refuses plain HTTP on a non-loopback address
/// unless `--insecure-http` says so.
fn listener_tls(args: &Args) -> anyhow::Result<(Option<Tls>, Option<Arc<CertStore>>)> {
    let files = match (&args.tls, &args.tls_cert, &args.tls_key) {
        (Some(_), _, _) => {
            let made = tls::auto(&args.data_dir, args.listen, &args.tls_sans)?;
            eprintln!(
                "tapwire: TLS with the installation's CA {} (SHA-256 {}); give clients that file \
                 (aws --ca-bundle, tapwire --ca-cert)",
                made.ca.display(),
                made.ca_fingerprint
            );
            Some((made.cert, made.key))
        }
        (None, Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    let Some((cert, key)) = files else {
        if !args.listen.ip().is_loopback() {
            eprintln!(
                "tapwire: WARNING: plain HTTP on {} (--insecure-http): access-key signatures, agent credentials and \
                 mirror configurations cross the network in the clear.",
                args.listen
            );
        }
        return Ok((None, None));
    };
    let store = Arc::new(CertStore::load(&cert, &key)?);
    let tls = Tls(tokio_rustls::TlsAcceptor::from(store.server_config()));
    Ok((Some(tls), Some(store)))
}

/// Rereads the certificate files on every SIGHUP; a bad file keeps the old certificate.
async fn reload_on_sighup(certs: Arc<CertStore>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; the old one stays"),
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
