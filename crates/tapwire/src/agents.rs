//! `tapwire agent token …`, `tapwire agent list`, `tapwire agent revoke`: enrolling agents
//! and seeing and removing them (a key of the account; policies may limit it), and what
//! `tapwire agent` itself does with a token: exchange it once for a host-bound
//! credential kept in its state directory.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{Client, ServerArgs};
use crate::credentials::{Credentials, write_private};
use crate::output::{self, Output};

/// The file in the state directory that holds the agent's credential.
const CREDENTIAL_FILE: &str = "agent-credential.json";

/// Arguments of `tapwire agent token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// How to print the answer (default: the token alone on its line for `create`, a
    /// table for `list`).
    #[arg(long, global = true, value_enum)]
    output: Option<Output>,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a join token; prints it once.
    Create {
        /// The only host it may enroll.
        #[arg(long)]
        host: Option<String>,
        /// How long it lives (e.g. 1h, 24h; at most 30 days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// How many agents it may enroll.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// List live tokens (never their secrets).
    List,
    /// Delete a token before it expires.
    Delete {
        /// The token's ID, twjt-….
        token_id: String,
    },
}

/// Arguments of `tapwire agent list` and `tapwire agent revoke`.
#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// How to print the answer.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

/// Arguments of `tapwire agent revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The host whose agent credential stops working.
    host: String,
}

/// Runs `tapwire agent token …`.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        TokenCommand::Create { host, ttl, uses } => {
            let body = json!({ "host": host, "ttl_seconds": ttl.as_secs(), "uses": uses });
            let made: Value = client.post("/tapwire/v1/agents/tokens", &body)?;
            match args.output {
                None => println!("{}", made["Token"].as_str().unwrap_or_default()),
                Some(o) => {
                    output::print(o, &made, &[("TOKEN", "Token"), ("EXPIRES", "ExpiresAt"), ("USES", "UsesLeft")])?
                }
            }
            Ok(())
        }
        TokenCommand::List => {
            let all: Value = client.get("/tapwire/v1/agents/tokens")?;
            let columns =
                [("TOKEN ID", "TokenId"), ("HOST", "Host"), ("EXPIRES", "ExpiresAt"), ("USES LEFT", "UsesLeft")];
            output::print(args.output.unwrap_or(Output::Table), &all, &columns)
        }
        TokenCommand::Delete { token_id } => {
            client.delete(&format!("/tapwire/v1/agents/tokens/{token_id}"))?;
            let done = json!({ "TokenId": token_id, "Deleted": true });
            output::print(
                args.output.unwrap_or(Output::Json),
                &done,
                &[("TOKEN ID", "TokenId"), ("DELETED", "Deleted")],
            )
        }
    }
}

/// Runs `tapwire agent list`.
pub fn list(args: AgentsArgs) -> anyhow::Result<()> {
    let mut agents: Value = args.server.client()?.get("/tapwire/v1/agents")?;
    if let Value::Array(items) = &mut agents {
        for a in items.iter_mut() {
            let ifaces = a["Interfaces"].as_array().cloned().unwrap_or_default();
            let seen = |f: &str| {
                ifaces
                    .iter()
                    .filter_map(|i| i[f].as_str().map(str::to_owned).or(i[f].as_u64().map(|n| n.to_string())))
                    .max()
            };
            a["InterfaceList"] = Value::String(
                ifaces.iter().filter_map(|i| i["NetworkInterfaceId"].as_str()).collect::<Vec<_>>().join(","),
            );
            a["LastSeen"] = seen("LastSeen").map_or(Value::Null, Value::String);
            a["Revision"] = seen("AppliedRevision").map_or(Value::Null, Value::String);
        }
    }
    let columns = [
        ("HOST", "Host"),
        ("INTERFACES", "InterfaceList"),
        ("LAST SEEN", "LastSeen"),
        ("REVISION", "Revision"),
        ("CREDENTIAL", "AccessKeyId"),
        ("ENROLLED", "EnrolledAt"),
    ];
    output::print(args.output, &agents, &columns)
}

/// Runs `tapwire agent revoke HOST`.
pub fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    args.server.client()?.delete(&format!("/tapwire/v1/agents/{}", args.host))?;
    println!("{}", json!({ "Host": args.host, "Revoked": true }));
    Ok(())
}

/// What the state directory keeps of an enrollment.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "AccessKeyId")]
    key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret: String,
    #[serde(rename = "AccountId")]
    account: String,
    #[serde(rename = "Host")]
    host: String,
}

/// The agent's client of the control plane: its credential from `state_dir`, else one
/// got now by enrolling with `token` (and kept), else a key found as every command finds
/// one (an operator's, for a lab).
pub fn agent_client(server: &ServerArgs, state_dir: &Path, token: Option<&str>, host: &str) -> anyhow::Result<Client> {
    let path: PathBuf = state_dir.join(CREDENTIAL_FILE);
    let ca = server.ca_cert.as_deref();
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let stored: Stored =
            serde_json::from_str(&text).with_context(|| format!("{} is not a credential", path.display()))?;
        anyhow::ensure!(
            stored.host == host,
            "{} is the credential of host '{}', not '{host}': remove it and enroll again with --token",
            path.display(),
            stored.host
        );
        return Client::signed(&server.server, credentials(stored, &path), ca);
    }
    let Some(token) = token else { return server.client() };
    let made: Stored = Client::unsigned(&server.server, ca)?
        .post("/tapwire/v1/agents/enroll", &json!({ "token": token, "host": host }))
        .context("enrolling with the join token")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    write_private(&path, serde_json::to_string_pretty(&made)?.as_bytes())?;
    eprintln!("tapwire agent: enrolled host {host} (credential {}, kept in {})", made.key_id, path.display());
    Client::signed(&server.server, credentials(made, &path), ca)
}

fn credentials(stored: Stored, path: &Path) -> Credentials {
    Credentials { key_id: stored.key_id, secret: stored.secret, region: None, source: path.display().to_string() }
}
