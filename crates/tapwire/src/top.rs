//! `tapwire top`: the account's sessions, busiest first, redrawn every interval until
//! Ctrl-C; drops in red and sources that are not mirroring (failed, stale) in yellow
//! when the output is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::client::ServerArgs;
use crate::sessions;

/// Arguments of `tapwire top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Time between two redraws.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

/// Runs the view until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    let terminal = std::io::stdout().is_terminal();
    while !stop.load(Ordering::Relaxed) {
        let screen = match sessions::fetch(&client, None) {
            Ok(mut all) => {
                all.sort_by(|a, b| {
                    let rate = |v: &serde_json::Value| v["PacketsPerSecond"].as_f64().unwrap_or(0.0);
                    rate(b).total_cmp(&rate(a))
                });
                let lost: u64 = all.iter().map(sessions::dropped).sum();
                format!(
                    "tapwire top  {}  {} sessions  {lost} copies dropped  (Ctrl-C quits)\n\n{}",
                    tapwire_api::time_text(time::OffsetDateTime::now_utc().unix_timestamp()),
                    all.len(),
                    sessions::table(&all, terminal)
                )
            }
            Err(e) => format!("tapwire top: {e:#}\n"),
        };
        let mut out = std::io::stdout().lock();
        // Home and clear, then the screen: one write, no flicker of half a table.
        let _ = write!(out, "\x1b[H\x1b[2J{screen}");
        let _ = out.flush();
        drop(out);
        let mut waited = Duration::ZERO;
        while waited < args.interval && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            waited += Duration::from_millis(50);
        }
    }
    Ok(())
}
