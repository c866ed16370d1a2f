//! `tapwire access-key …`: make, list and delete access keys (needs a key of the root
//! account). A key may carry an IAM-style policy; the server checks it and names the bad
//! part. Secrets are printed once, by `create`; `list` never shows them.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::ServerArgs;
use crate::output::{self, Output};

/// Arguments of `tapwire access-key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// How to print the answer.
    #[arg(long, global = true, value_enum)]
    output: Option<Output>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a key; prints its secret, once.
    Create {
        /// The key's account (default: the caller's).
        #[arg(long)]
        account: Option<String>,
        /// A JSON policy document limiting what the key may do (default: all its account may).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List keys, without their secrets.
    List {
        /// Only this account's keys.
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete a key: requests signed with it are refused at once.
    Delete {
        /// The key, TWAK….
        access_key_id: String,
    },
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        Command::Create { account, policy } => {
            let policy: Option<Value> = match &policy {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    Some(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?)
                }
            };
            let made: Value =
                client.post("/tapwire/v1/access-keys", &json!({ "account": account, "policy": policy }))?;
            let columns = [("ACCOUNT", "AccountId"), ("ACCESS KEY", "AccessKeyId"), ("SECRET", "SecretAccessKey")];
            output::print(args.output.unwrap_or(Output::Json), &made, &columns)
        }
        Command::List { account } => {
            let path = match &account {
                Some(a) => format!("/tapwire/v1/access-keys?account={a}"),
                None => "/tapwire/v1/access-keys".to_owned(),
            };
            let mut keys: Value = client.get(&path)?;
            if let Value::Array(items) = &mut keys {
                for k in items.iter_mut() {
                    let limited = !k["Policy"].is_null();
                    k["Limited"] = Value::Bool(limited);
                }
            }
            let columns = [
                ("ACCESS KEY", "AccessKeyId"),
                ("ACCOUNT", "AccountId"),
                ("CREATED", "CreatedAt"),
                ("POLICY", "Limited"),
            ];
            output::print(args.output.unwrap_or(Output::Table), &keys, &columns)
        }
        Command::Delete { access_key_id } => {
            client.delete(&format!("/tapwire/v1/access-keys/{access_key_id}"))?;
            let done = json!({ "AccessKeyId": access_key_id, "Deleted": true });
            output::print(
                args.output.unwrap_or(Output::Json),
                &done,
                &[("ACCESS KEY", "AccessKeyId"), ("DELETED", "Deleted")],
            )
        }
    }
}
