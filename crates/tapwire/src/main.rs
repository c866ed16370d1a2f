//! `tapwire`: one binary for every role.
//!
//! Each subcommand lives in its own module (or crate) and exposes `Args` and `run`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod access_keys;
mod accounts;
mod agent;
mod agents;
mod audit;
mod client;
mod credentials;
mod demo;
mod interface;
mod output;
mod sensor_groups;
mod server;
mod sessions;
mod simulate;
mod store;
mod top;

/// Cloud-style traffic mirroring for Linux hosts you run yourself.
#[derive(Debug, Parser)]
#[command(name = "tapwire", version, about)]
struct Cli {
    /// Log lines as plain text (colours only on a terminal) or one JSON object each.
    #[arg(long, global = true, value_enum, default_value = "text", env = "TAPWIRE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// `TIME LEVEL target: message key=value …`.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (EC2 and Alibaba APIs, agent endpoints) with its store.
    Server(server::Args),
    /// Manage the network interface inventory.
    Interface(interface::Args),
    /// Make and list accounts (root key).
    Account(accounts::Args),
    /// Make, list and delete access keys (root key).
    AccessKey(access_keys::Args),
    /// Show who did what: writes, refused authentications, denied actions.
    Audit(audit::Args),
    /// What each session is doing: counters, rates, source states, rule hits.
    Session(sessions::Args),
    /// A live view of the sessions, busiest first.
    Top(top::Args),
    /// Sensor groups: several sensors behind one load-balancer target.
    SensorGroup(sensor_groups::Args),
    /// Move an installation's store into another (SQLite to PostgreSQL).
    Store(store::Args),
    /// Replay a capture file through the mirroring rules of one interface.
    Simulate(simulate::Args),
    /// Receive VXLAN mirror copies and write them to pcapng/pcap.
    Receive(tapwire_receive::Args),
    /// Run the host agent: mirror this host's interfaces as the control plane says.
    Agent(agent::Args),
    /// Build a namespace lab, mirror real traffic end to end and show it (root).
    Demo(demo::Args),
    /// Print a shell completion script: `tapwire completions bash > /etc/bash_completion.d/tapwire`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Prints the completion script; a reader that stops early (`| head`) is not an error.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tapwire", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAPWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        // Colour codes only where a person reads a terminal, never in a file or a journal.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Interface(args) => interface::run(args),
        Command::Account(args) => accounts::run(args),
        Command::AccessKey(args) => access_keys::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Session(args) => sessions::run(args),
        Command::Top(args) => top::run(args),
        Command::SensorGroup(args) => sensor_groups::run(args),
        Command::Store(args) => store::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Receive(args) => tapwire_receive::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tapwire: {err:#}");
            ExitCode::FAILURE
        }
    }
}
