//! `tapwire server`: the control plane on one port, with the embedded SQLite store.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
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
}

/// Runs the control plane until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let quotas: Quotas = match &args.quotas {
        None => Quotas::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing quotas in {}", path.display()))?
        }
    };
    let store = SqliteStore::open_dir(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let control = Control::open(
        Box::new(store),
        Box::new(SystemClock),
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
        ControlConfig { quotas },
    )
    .context("loading the store")?;
    let api = Arc::new(Api {
        control,
        config: ApiConfig { region: args.region.clone(), dns_resolvers: args.dns_resolvers.clone() },
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr()?;
        // Also finishes tasks left pending by a previous run.
        let worker = tokio::spawn(tapwire_api::alibaba::lifecycle::run(
            api.clone(),
            std::time::Duration::from_millis(args.alibaba_task_delay_ms),
        ));
        eprintln!("tapwire server listening on http://{local} (data in {})", args.data_dir.display());
        axum::serve(listener, tapwire_api::router(api)).with_graceful_shutdown(shutdown_signal()).await?;
        worker.abort();
        eprintln!("tapwire server stopped");
        anyhow::Ok(())
    })
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
