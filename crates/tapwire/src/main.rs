//! `tapwire`: one binary for every role.
//!
//! Each subcommand lives in its own module (or crate) and exposes `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
mod server;
mod simulate;

/// Cloud-style traffic mirroring for Linux hosts you run yourself.
#[derive(Debug, Parser)]
#[command(name = "tapwire", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Replay a capture file through the mirroring rules of one interface.
    Simulate(simulate::Args),
    /// Receive VXLAN mirror copies and write them to pcapng/pcap.
    Receive(tapwire_receive::Args),
    /// Run the host agent: mirror this host's interfaces as the control plane says.
    Agent(agent::Args),
    /// Build a namespace lab, mirror real traffic end to end and show it (root).
    Demo(demo::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAPWIRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Interface(args) => interface::run(args),
        Command::Account(args) => accounts::run(args),
        Command::AccessKey(args) => access_keys::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Receive(args) => tapwire_receive::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tapwire: {err:#}");
            ExitCode::FAILURE
        }
    }
}
