//! `tapwire audit`: who did what, when and from where, newest first. A root key reads
//! every account's trail; any other key its own account's.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::client::ServerArgs;
use crate::output::{self, Output};

/// Largest page the server returns.
const PAGE: usize = 1000;

/// Arguments of `tapwire audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Only this account's records.
    #[arg(long)]
    account: Option<String>,
    /// Only records this recent (e.g. 1h, 30m, 7d).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Only these actions; `*` and `?` are wildcards (e.g. Create*).
    #[arg(long)]
    action: Option<String>,
    /// Most records shown.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// How to print them.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let since = match args.since {
        None => None,
        Some(d) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
            Some(now.saturating_sub(d.as_secs()))
        }
    };
    let mut records: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    while records.len() < args.limit {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &(args.limit - records.len()).min(PAGE).to_string());
        for (key, value) in [("account", args.account.clone()), ("action", args.action.clone())] {
            if let Some(v) = value {
                query.append_pair(key, &v);
            }
        }
        if let Some(s) = since {
            query.append_pair("since", &s.to_string());
        }
        if let Some(b) = before {
            query.append_pair("before", &b.to_string());
        }
        let page: Value = client.get(&format!("/tapwire/v1/audit?{}", query.finish()))?;
        let rows = page["Records"].as_array().context("the answer has no Records")?;
        records.extend(rows.iter().cloned());
        match page["Next"].as_u64() {
            Some(next) if !rows.is_empty() => before = Some(next),
            _ => break,
        }
    }
    let columns = [
        ("TIME", "EventTime"),
        ("ACCOUNT", "AccountId"),
        ("ACCESS KEY", "AccessKeyId"),
        ("SOURCE", "SourceIPAddress"),
        ("DIALECT", "Dialect"),
        ("ACTION", "EventName"),
        ("RESOURCES", "Resources"),
        ("RESULT", "Result"),
        ("REQUEST ID", "RequestId"),
    ];
    output::print(args.output, &Value::Array(records), &columns)
}
