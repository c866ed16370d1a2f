//! `tapwire agent`: the host agent (capture, classify, VXLAN copies; see the
//! tapwire-agent crate), and `tapwire agent status`, a person's view of a running agent.
//!
//! The control plane is reached with the CLI's one HTTP client ([`crate::client`]): this
//! module adapts it to the agent's `ControlPlane` trait.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tapwire_agent::offload::OffloadMode;
use tapwire_agent::output::SendPath;
use tapwire_agent::report::AgentStatus;
use tapwire_agent::watch::{ControlError, ControlPlane, Registration, StatusReport};
use tapwire_agent::{Agent, AgentOptions, DEFAULT_MARK, Oversize, RingGeometry};
use tapwire_control::ops::InterfaceRegistration;
use tapwire_model::NetworkInterfaceId;
use tapwire_model::config::InterfaceConfig;
use tapwire_model::resource::NetworkInterface;

use crate::agents;
use crate::client::{Client, RequestError, ServerArgs};

/// Default address of the agent's metrics and status endpoint.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9797";

/// Arguments of `tapwire agent`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run(RunArgs),
    /// Show a running agent's state and counters.
    Status(StatusArgs),
    /// Make, list and delete join tokens (an agent exchanges one for its credential).
    Token(agents::TokenArgs),
    /// List the enrolled agents: hosts, interfaces, last seen, revision.
    List(agents::AgentsArgs),
    /// Revoke a host's agent credential: it stops working at once.
    Revoke(agents::RevokeArgs),
}

/// Arguments of `tapwire agent [run]`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A join token (from `tapwire agent token create`), exchanged once for this host's
    /// credential, which is kept in --state-dir for the next starts.
    #[arg(long, env = "TAPWIRE_JOIN_TOKEN")]
    token: Option<String>,
    /// Where the agent keeps its credential (mode 0700; the file 0600).
    #[arg(long, default_value = "/var/lib/tapwire")]
    state_dir: PathBuf,
    /// Interface to monitor (repeatable).
    #[arg(long = "interface", value_name = "IFNAME")]
    interfaces: Vec<String>,
    /// Instance ID registered with the interfaces.
    #[arg(long)]
    instance_id: Option<String>,
    /// Host name registered (default: the system's host name). An agent whose host name
    /// differs from an operator's registration claims it by MAC, or by --instance-id and
    /// interface name.
    #[arg(long)]
    host: Option<String>,
    /// Offload super-frames (TSO/GSO/GRO, larger than the MTU): `segment` copies the
    /// MTU-sized frames the wire carried; `truncate` copies the first bytes only.
    #[arg(long, default_value = "segment")]
    offload: OffloadMode,
    /// Copies larger than the path to the sensor: `truncate` cuts them to the path MTU (as
    /// the clouds do; counted as cut_mtu); `fragment` sends them whole as outer IP
    /// fragments, which the sensor's kernel (vxlan device, Suricata, Wireshark) reassembles.
    #[arg(long, default_value = "truncate")]
    oversize: Oversize,
    /// How copies leave: `direct` sends them as Ethernet frames straight to the device
    /// where the next hop's MAC is known (cheapest; the kernel's IP output otherwise,
    /// counted as sent_routed); `routed` always goes through the kernel's IP output.
    #[arg(long, default_value = "direct")]
    send_path: SendPath,
    /// Address of the /metrics (Prometheus) and /status (JSON) endpoint.
    #[arg(long, default_value = DEFAULT_METRICS_LISTEN)]
    metrics_listen: SocketAddr,
    /// How often counters are reported to the control plane (1s to 10m; also after every
    /// configuration change).
    #[arg(long, default_value = "10s", value_parser = report_interval)]
    report_interval: Duration,
    /// SO_MARK of the agent's copies; its capture filter drops packets with this mark.
    #[arg(long, default_value_t = DEFAULT_MARK)]
    mark: u32,
    /// Capture ring blocks per interface (256 KiB each; each is handed over after at most
    /// --block-timeout-ms, so blocks × timeout is how long the capture thread may stall).
    #[arg(long, default_value_t = 128)]
    ring_blocks: u32,
    /// Milliseconds after which a partly filled ring block is handed over (1-10).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    block_timeout_ms: u32,
    /// Pin the capture threads to these CPUs, e.g. `--cpu 2,3` (keeps mirroring off the
    /// CPUs doing the host's work); worker i runs on the i-th, round the list.
    #[arg(long, value_delimiter = ',')]
    cpu: Vec<usize>,
    /// Capture threads per interface, sharing it by flow hash (PACKET_FANOUT_HASH: a flow
    /// stays on one worker, in order). Default: one per CPU the agent may use (those of
    /// --cpu if given), at most 4.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
}

fn report_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
        return Err("the report interval is 1s to 10m".into());
    }
    Ok(d)
}

/// Arguments of `tapwire agent status`.
#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The agent's metrics/status endpoint.
    #[arg(long, default_value = DEFAULT_METRICS_LISTEN)]
    metrics_listen: SocketAddr,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Status(status)) => show_status(&status),
        Some(Command::Token(a)) => agents::token(a),
        Some(Command::List(a)) => agents::list(a),
        Some(Command::Revoke(a)) => agents::revoke(a),
        Some(Command::Run(run)) => run_agent(run),
        None => run_agent(args.run),
    }
}

fn run_agent(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.interfaces.is_empty(), "name at least one --interface to monitor");
    let defaults = AgentOptions::default();
    let options = AgentOptions {
        interfaces: args.interfaces.clone(),
        host: args.host.clone().unwrap_or(defaults.host.clone()),
        instance_id: args.instance_id.clone(),
        offload: args.offload,
        oversize: args.oversize,
        send_path: args.send_path,
        mark: args.mark,
        ring: RingGeometry {
            block_count: args.ring_blocks.max(2),
            retire_timeout_ms: args.block_timeout_ms,
            ..defaults.ring
        },
        workers: args.workers.map_or_else(|| tapwire_agent::default_workers(&args.cpu), usize::from),
        capture_cpus: args.cpu.clone(),
        watch: tapwire_agent::watch::WatchOptions { status_interval: args.report_interval, ..defaults.watch },
        ..defaults
    };
    let listener = TcpListener::bind(args.metrics_listen)
        .with_context(|| format!("listening for metrics on {}", args.metrics_listen))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    // The credential is found (or enrolled for) once, before capture starts.
    let client = agents::agent_client(&args.server, &args.state_dir, args.token.as_deref(), &options.host)?;
    let agent = Agent::start(&options, || HttpControlPlane { client: client.clone() }).map_err(|e| {
        // Say what is wrong: only a refused permission is about root.
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => " (the agent needs root: CAP_NET_RAW and CAP_NET_ADMIN)",
            _ => "",
        };
        anyhow::anyhow!("starting the agent: {e}{hint}")
    })?;
    agent.serve_metrics(listener)?;
    eprintln!(
        "tapwire agent: host {} monitoring {} (offload {:?}); control plane {}; metrics on http://{}/metrics",
        options.host,
        options.interfaces.join(", "),
        options.offload,
        args.server.server,
        args.metrics_listen
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.stop();
    eprintln!("tapwire agent stopped");
    Ok(())
}

/// The control plane over HTTP, with the CLI's client.
struct HttpControlPlane {
    client: Client,
}

fn control_error(e: RequestError) -> ControlError {
    match e {
        RequestError::NotFound(what) => ControlError::UnknownInterface(what),
        RequestError::Unreachable(what) => ControlError::Unavailable(what),
    }
}

impl ControlPlane for HttpControlPlane {
    fn register(&mut self, r: &Registration) -> Result<NetworkInterfaceId, ControlError> {
        let body = InterfaceRegistration {
            host: Some(r.host.clone()),
            ifname: Some(r.ifname.clone()),
            instance_id: r.instance_id.clone(),
            mac: r.mac.clone(),
            addresses: r.addresses.clone(),
        };
        let iface: NetworkInterface = self
            .client
            .post("/tapwire/v1/network-interfaces", &body)
            .map_err(|e| ControlError::Unavailable(format!("{e:#}")))?;
        Ok(iface.id)
    }

    fn fetch_config(
        &mut self,
        eni: NetworkInterfaceId,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<Option<InterfaceConfig>, ControlError> {
        let query = after.map(|a| format!("?after={a}&wait={}", wait.as_secs())).unwrap_or_default();
        let path = format!("/tapwire/v1/network-interfaces/{eni}/config{query}");
        self.client.get_long_poll(&path, wait + Duration::from_secs(10)).map_err(control_error)
    }

    fn report_status(&mut self, eni: NetworkInterfaceId, report: &StatusReport) -> Result<(), ControlError> {
        let path = format!("/tapwire/v1/network-interfaces/{eni}/status");
        self.client.post_no_content(&path, report, Duration::from_secs(10)).map_err(control_error)
    }
}

fn show_status(args: &StatusArgs) -> anyhow::Result<()> {
    let client = Client::unsigned(&format!("http://{}", args.metrics_listen), None)?;
    let status: AgentStatus =
        client.get("/status").context("is `tapwire agent` running with this --metrics-listen?")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    print!("{}", status_table(&status));
    Ok(())
}

/// The status as tables for a person.
pub fn status_table(status: &AgentStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "host {}  agent {}  up {}s", status.host, status.version, status.uptime_seconds);
    for i in &status.interfaces {
        let c = &i.counters;
        let control = match (&i.control.connected, &i.control.last_error) {
            (true, _) => "connected".to_owned(),
            (false, Some(e)) => format!("disconnected ({e})"),
            (false, None) => "connecting".to_owned(),
        };
        let _ = writeln!(
            out,
            "\ninterface {}  {}  revision {}  control plane {}",
            i.interface,
            i.network_interface_id.as_deref().unwrap_or("(unregistered)"),
            i.applied_revision.map_or("-".to_owned(), |r| r.to_string()),
            control
        );
        if let Some(e) = &i.control.config_error {
            let _ = writeln!(out, "  configuration refused: {e}");
        }
        let _ = writeln!(
            out,
            "  frames in {}  out {}  ring packets {}  ring drops {}  ignored: loopback {} non-IP {} malformed {}",
            c.frames_ingress,
            c.frames_egress,
            c.ring_packets,
            c.ring_drops,
            c.ignored_loopback,
            c.ignored_not_ip,
            c.ignored_malformed
        );
        if i.workers.len() > 1 {
            let shares: Vec<String> =
                i.workers.iter().map(|w| format!("{} frames, {} ring drops", w.frames, w.ring_drops)).collect();
            let _ = writeln!(out, "  workers {}: {}", i.workers.len(), shares.join("; "));
        }
        let _ = writeln!(
            out,
            "  {:<22} {:>5} {:>8} {:<21} {:>10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "SESSION",
            "NUM",
            "VNI",
            "TARGET",
            "MATCHED",
            "MIRRORED",
            "MIRRORED_B",
            "CUT_LEN",
            "CUT_MTU",
            "FRAGMENTED",
            "SEGMENTS",
            "DROPPED"
        );
        for s in &i.sessions {
            let d = &s.delivery;
            let state = match (&s.failed, s.active) {
                (Some(why), _) => format!("  FAILED: {why}"),
                (None, true) => String::new(),
                (None, false) => "  (removed)".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<22} {:>5} {:>8} {:<21} {:>10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8}{state}",
                s.session_id,
                s.number,
                s.vni,
                s.target,
                s.matched_packets,
                d.mirrored_packets,
                d.mirrored_bytes,
                s.truncated_packet_length,
                d.truncated_path_mtu,
                d.fragmented,
                d.segments,
                d.dropped(),
            );
        }
        let _ = writeln!(
            out,
            "  {:<24} {:<22} {:<8} {:>6} {:<7} {:>10} {:>12}",
            "RULE", "SESSION", "DIR", "NUM", "ACTION", "MATCHED", "BYTES"
        );
        for r in &i.rules {
            let _ = writeln!(
                out,
                "  {:<24} {:<22} {:<8} {:>6} {:<7} {:>10} {:>12}{}",
                r.rule_id,
                r.session_id,
                r.direction,
                r.number,
                r.action,
                r.matched_packets,
                r.matched_bytes,
                if r.active { "" } else { "  (removed)" }
            );
        }
    }
    out
}
