//! `tapwire account …`: make and list accounts (needs a key of the root account).

use serde_json::{Value, json};

use crate::client::ServerArgs;
use crate::output::{self, Output};

/// Arguments of `tapwire account`.
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
    /// Make an account and its first access key; prints the secret, once.
    Create {
        /// A name for people (1-64 characters).
        #[arg(long)]
        name: String,
    },
    /// List the accounts.
    List,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        Command::Create { name } => {
            let made: Value = client.post("/tapwire/v1/accounts", &json!({ "name": name }))?;
            let columns = [
                ("ACCOUNT", "AccountId"),
                ("NAME", "Name"),
                ("ACCESS KEY", "AccessKeyId"),
                ("SECRET", "SecretAccessKey"),
            ];
            output::print(args.output.unwrap_or(Output::Json), &made, &columns)
        }
        Command::List => {
            let all: Value = client.get("/tapwire/v1/accounts")?;
            let columns = [("ACCOUNT", "AccountId"), ("NAME", "Name"), ("ROOT", "Root"), ("CREATED", "CreatedAt")];
            output::print(args.output.unwrap_or(Output::Table), &all, &columns)
        }
    }
}
