//! `tapwire sensor-group …`: several sensors behind one load-balancer name, for targets
//! (`aws ec2 create-traffic-mirror-target --network-load-balancer-arn …`) and Alibaba
//! sessions (`TrafficMirrorTargetType=SLB`).

use serde_json::{Value, json};

use crate::client::ServerArgs;
use crate::output::{self, Output};

/// Arguments of `tapwire sensor-group`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// How to print the answer (default: JSON).
    #[arg(long, global = true, value_enum, default_value = "json")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a group; prints its ID and the NLB ARN, GWLB endpoint ID and SLB instance ID
    /// that name it.
    Create {
        /// Name (letters, digits, hyphens; at most 32).
        #[arg(long)]
        name: String,
        /// A sensor's interface, eni-… (repeatable).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// flow-hash: each flow to one member (both directions alike); replicate: every
        /// copy to every member.
        #[arg(long, default_value = "flow-hash", value_parser = ["flow-hash", "replicate"])]
        mode: String,
        /// Agents probe each member: `tcp:PORT` (a member failing two probes in a row
        /// takes no flows until it passes two), or `none`.
        #[arg(long, default_value = "none")]
        health_check: String,
    },
    /// List the account's groups.
    List,
    /// Add a member.
    AddMember {
        /// The group, tsg-….
        sensor_group_id: String,
        /// The sensor's interface, eni-….
        network_interface_id: String,
    },
    /// Remove a member (a group keeps at least one).
    RemoveMember {
        /// The group, tsg-….
        sensor_group_id: String,
        /// The sensor's interface, eni-….
        network_interface_id: String,
    },
    /// Delete a group no target or session names.
    Delete {
        /// The group, tsg-….
        sensor_group_id: String,
    },
}

/// Prints groups: JSON as the server answers, or a table whose MEMBERS column lists the
/// members' interfaces with their health (`eni-…=healthy`).
fn print(output: Output, answer: Value, columns: output::Columns<'_>) -> anyhow::Result<()> {
    if !matches!(output, Output::Table) {
        return output::print(output, &answer, columns);
    }
    let mut rows = match answer {
        Value::Array(rows) => rows,
        one => vec![one],
    };
    for row in &mut rows {
        let members: Vec<String> = row["Members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some(format!("{}={}", m["NetworkInterfaceId"].as_str()?, m["Health"].as_str()?)))
            .collect();
        row["MemberList"] = Value::String(members.join(","));
    }
    output::print(output, &Value::Array(rows), columns)
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let columns = [
        ("GROUP", "SensorGroupId"),
        ("NAME", "Name"),
        ("MODE", "Mode"),
        ("CHECK", "HealthCheck"),
        ("MEMBERS", "MemberList"),
        ("SESSIONS", "Sessions"),
        ("SLB", "SlbInstanceId"),
    ];
    let members_path = |id: &str| format!("/tapwire/v1/sensor-groups/{id}/members");
    let answer: Value = match args.command {
        Command::Create { name, members, mode, health_check } => client.post(
            "/tapwire/v1/sensor-groups",
            &json!({ "Name": name, "Members": members, "Mode": mode, "HealthCheck": health_check }),
        )?,
        Command::List => client.get("/tapwire/v1/sensor-groups")?,
        Command::AddMember { sensor_group_id, network_interface_id } => {
            client.post(&members_path(&sensor_group_id), &json!({ "Add": [network_interface_id] }))?
        }
        Command::RemoveMember { sensor_group_id, network_interface_id } => {
            client.post(&members_path(&sensor_group_id), &json!({ "Remove": [network_interface_id] }))?
        }
        Command::Delete { sensor_group_id } => {
            client.delete(&format!("/tapwire/v1/sensor-groups/{sensor_group_id}"))?;
            return Ok(());
        }
    };
    print(args.output, answer, &columns)
}
