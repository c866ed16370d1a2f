//! `tapwire`: one binary for every role.
//!
//! Each subcommand lives in its own module (or crate) and exposes `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Replay a capture file through the mirroring rules of one interface.
    Simulate(simulate::Args),
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
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tapwire: {err:#}");
            ExitCode::FAILURE
        }
    }
}
