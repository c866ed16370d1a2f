//! `tapwire server`: the control plane on one port, with the embedded SQLite store.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tapwire_api::serve::{ServeConfig, ServeStats};
use tapwire_api::{Api, ApiConfig};
use tapwire_control::{Control, ControlConfig, SystemClock};
use tapwire_model::limits::Quotas;
use tapwire_store::SqliteStore;

/// Arguments of `tapwire server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to serve the APIs on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "TAPWIRE_LISTEN")]
    listen: SocketAddr,
    /// Directory of the embedded store.
    #[arg(long, default_value = "./tapwire-data", env = "TAPWIRE_DATA_DIR")]
    data_dir: PathBuf,
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
}

/// How often expired ClientTokens are swept, and how many at most per sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: usize = 10_000;

/// Runs the control plane until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let quotas: Quotas = match &args.quotas {
        None => Quotas::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing quotas in {}", path.display()))?
        }
    };
    let open_files = tapwire_api::serve::raise_open_file_limit().context("raising the open-file limit")?;
    let store = SqliteStore::open_dir(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let client_token_ttl = i64::try_from(args.client_token_ttl.as_secs()).context("--client-token-ttl is too long")?;
    let control = Control::open(
        Box::new(store),
        Box::new(SystemClock),
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
        ControlConfig { quotas, client_token_ttl },
    )
    .context("loading the store")?;
    let regions: BTreeSet<String> =
        if args.regions.is_empty() { tapwire_api::regions::defaults() } else { args.regions.iter().cloned().collect() };
    anyhow::ensure!(regions.contains(&args.region), "--region {} is not among --regions", args.region);
    let api = Arc::new(Api {
        control,
        config: ApiConfig {
            region: args.region.clone(),
            dns_resolvers: args.dns_resolvers.clone(),
            regions,
            body_timeout: args.body_timeout,
        },
    });
    let serve_config = ServeConfig {
        max_connections: tapwire_api::serve::effective_cap(args.max_connections, open_files),
        idle_timeout: args.idle_timeout,
        header_timeout: args.header_timeout,
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
        let sweeper = tokio::spawn(sweep_client_tokens(api.clone()));
        eprintln!(
            "tapwire server listening on http://{local} (data in {}; at most {} connections)",
            args.data_dir.display(),
            serve_config.max_connections
        );
        let stats = Arc::new(ServeStats::default());
        tapwire_api::serve::serve(listener, tapwire_api::router(api), serve_config, stats, shutdown_signal()).await?;
        worker.abort();
        sweeper.abort();
        eprintln!("tapwire server stopped");
        anyhow::Ok(())
    })
}

/// Forgets expired ClientToken answers, once a minute.
async fn sweep_client_tokens(api: Arc<Api>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        let api = api.clone();
        match tokio::task::spawn_blocking(move || api.control.expire_client_tokens(SWEEP_BATCH)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(expired = n, "forgot expired client tokens"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not expire client tokens"),
            Err(e) => tracing::warn!(error = %e, "client token sweep failed"),
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
