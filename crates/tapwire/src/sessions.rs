//! `tapwire session status [tms-…]`: what each session is doing, from its sources' agents
//! (counters summed over sources, each source's state, per-rule hits), as a table or
//! `--output json`. `tapwire top` redraws the same every second.

use serde_json::Value;

use crate::client::{Client, ServerArgs};
use crate::output::Output;
use tapwire_receive::human;

/// Arguments of `tapwire session`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Counters, rates, source states and rule hits of the account's sessions.
    Status {
        /// Only this session.
        session: Option<String>,
        /// How to print them.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        /// First wait (up to this long, e.g. 30s) until every source of the session(s) is
        /// active: its agent has applied the session and reported since.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        wait_active: Option<std::time::Duration>,
    },
}

/// The status of the sessions (all, or `session`).
pub fn fetch(client: &Client, session: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let path = match session {
        Some(id) => format!("/tapwire/v1/sessions/status?session={id}"),
        None => "/tapwire/v1/sessions/status".to_owned(),
    };
    client.get(&path)
}

/// Copies a session lost, by any reason (the server sums them).
pub fn dropped(s: &Value) -> u64 {
    s["DroppedPackets"].as_u64().unwrap_or(0)
}

/// One line per session (and its sources' states); `highlight` marks drops and stale
/// sources with terminal colours.
pub fn table(sessions: &[Value], highlight: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>5} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}  {:<10} SOURCES",
        "SESSION", "NUM", "VNI", "MATCHED", "MIRRORED", "BYTES", "CUT", "FRAG", "SAMPLED", "DROPPED", "PKT/S", "LIMITS"
    );
    for s in sessions {
        let c = &s["Counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        let sources: Vec<String> = s["Sources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|src| {
                let state = src["State"].as_str().unwrap_or("?");
                let text = format!("{}={state}", src["NetworkInterfaceId"].as_str().unwrap_or("?"));
                if highlight && state != "active" { format!("\x1b[33m{text}\x1b[0m") } else { text }
            })
            .collect();
        let lost = dropped(s);
        let dropped_text =
            if highlight && lost > 0 { format!("\x1b[31m{lost:>8}\x1b[0m") } else { format!("{lost:>8}") };
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {dropped_text} {:>9}  {:<10} {}",
            s["TrafficMirrorSessionId"].as_str().unwrap_or("?"),
            s["SessionNumber"].as_u64().unwrap_or(0),
            s["VirtualNetworkId"].as_u64().unwrap_or(0),
            n("matched_packets"),
            n("mirrored_packets"),
            human(n("mirrored_bytes") as f64),
            s["CutPackets"].as_u64().unwrap_or(0),
            n("fragmented"),
            n("sampled_out"),
            human(s["PacketsPerSecond"].as_f64().unwrap_or(0.0)),
            limits_text(&s["Limits"]),
            sources.join(" ")
        );
    }
    out
}

/// A session's sampling and caps in a few characters: `flows=0.1,1/4,1000pps,8000bps`,
/// or `-`.
fn limits_text(limits: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(f) = limits["SampleFlows"].as_f64() {
        parts.push(format!("flows={f}"));
    }
    if let Some(n) = limits["SamplePackets"].as_u64() {
        parts.push(format!("1/{n}"));
    }
    if let Some(pps) = limits["MaxPps"].as_u64() {
        parts.push(format!("{pps}pps"));
    }
    if let Some(bps) = limits["MaxBps"].as_u64() {
        parts.push(format!("{bps}bps"));
    }
    if parts.is_empty() { "-".to_owned() } else { parts.join(",") }
}

fn rules_table(s: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "  {:<24} {:<8} {:>6} {:<7} {:>10} {:>12}", "RULE", "DIR", "NUM", "ACTION", "HITS", "BYTES");
    for r in s["Rules"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<24} {:<8} {:>6} {:<7} {:>10} {:>12}",
            r["TrafficMirrorFilterRuleId"].as_str().unwrap_or("?"),
            r["TrafficDirection"].as_str().unwrap_or("?"),
            r["RuleNumber"].as_u64().unwrap_or(0),
            r["RuleAction"].as_str().unwrap_or("?"),
            r["MatchedPackets"].as_u64().unwrap_or(0),
            r["MatchedBytes"].as_u64().unwrap_or(0)
        );
    }
    out
}

/// Sources of `sessions` that are not active, as `eni=state`.
fn inactive_sources(sessions: &[Value]) -> Vec<String> {
    sessions
        .iter()
        .flat_map(|s| s["Sources"].as_array().into_iter().flatten())
        .filter(|src| src["State"] != "active")
        .map(|src| {
            format!("{}={}", src["NetworkInterfaceId"].as_str().unwrap_or("?"), src["State"].as_str().unwrap_or("?"))
        })
        .collect()
}

/// Polls until the sessions exist and every source is active, or `limit` has passed.
fn until_active(client: &Client, session: Option<&str>, limit: std::time::Duration) -> anyhow::Result<Vec<Value>> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let sessions = fetch(client, session)?;
        let waiting = inactive_sources(&sessions);
        if !sessions.is_empty() && waiting.is_empty() {
            return Ok(sessions);
        }
        if std::time::Instant::now() >= deadline {
            let what = if sessions.is_empty() { "no session yet".to_owned() } else { waiting.join(" ") };
            anyhow::bail!("not active after {}: {what}", humantime::format_duration(limit));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        Command::Status { session, output, wait_active } => {
            let sessions = match wait_active {
                Some(limit) => until_active(&client, session.as_deref(), limit)?,
                None => fetch(&client, session.as_deref())?,
            };
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&sessions)?),
                Output::Table => {
                    print!("{}", table(&sessions, false));
                    if session.is_some() {
                        for s in &sessions {
                            print!("{}", rules_table(s));
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
