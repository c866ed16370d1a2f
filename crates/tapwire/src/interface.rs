//! `tapwire interface …`: manage the network interface inventory.

use std::net::IpAddr;

use tapwire_control::ops::InterfaceRegistration;
use tapwire_model::resource::NetworkInterface;

use crate::client::ServerArgs;
use crate::output::{self, Output};

/// Arguments of `tapwire interface`.
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
    /// Register an interface (a sensor, or a host without an agent). Registering the same
    /// host (or instance) and interface name again returns the same eni-.
    Register {
        /// An address of the interface (repeatable; IPv4 and IPv6). The first IPv4 is primary.
        #[arg(long = "ip", required = true)]
        ips: Vec<IpAddr>,
        /// MAC address.
        #[arg(long)]
        mac: Option<String>,
        /// Host name.
        #[arg(long)]
        host: Option<String>,
        /// Interface name on the host.
        #[arg(long)]
        ifname: Option<String>,
        /// Instance the interface belongs to.
        #[arg(long)]
        instance_id: Option<String>,
    },
    /// List registered interfaces.
    List,
    /// Remove an interface; sessions whose source it is are deleted with it.
    Deregister {
        /// The interface, eni-….
        network_interface_id: String,
    },
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let columns = [
        ("INTERFACE", "NetworkInterfaceId"),
        ("OWNER", "OwnerId"),
        ("HOST", "Host"),
        ("NAME", "InterfaceName"),
        ("INSTANCE", "InstanceId"),
        ("ADDRESS", "PrivateIpAddress"),
    ];
    match args.command {
        Command::Register { ips, mac, host, ifname, instance_id } => {
            let reg = InterfaceRegistration { host, ifname, instance_id, mac, addresses: ips };
            let iface: NetworkInterface = client.post("/tapwire/v1/network-interfaces", &reg)?;
            output::print(args.output, &iface_json(&iface), &columns)?;
        }
        Command::List => {
            let all: Vec<Listed> = client.get("/tapwire/v1/network-interfaces")?;
            let out: Vec<serde_json::Value> = all
                .iter()
                .map(|l| {
                    let mut v = iface_json(&l.interface);
                    if let (Some(obj), Some(a)) = (v.as_object_mut(), &l.agent) {
                        // What the agent said of each session: mirrored, or set aside and why.
                        let sessions: Vec<serde_json::Value> = a.report["interface"]["sessions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|s| s["active"] == true || s["failed"].is_string())
                            .map(|s| {
                                let state = match s["failed"].as_str() {
                                    Some(why) => format!("failed: {why}"),
                                    None => "active".to_owned(),
                                };
                                serde_json::json!({ "TrafficMirrorSessionId": s["session_id"], "State": state })
                            })
                            .collect();
                        obj.insert(
                            "Agent".to_owned(),
                            serde_json::json!({
                                "AppliedRevision": a.applied_revision,
                                "ReportedAt": tapwire_api::time_text(i64::try_from(a.reported_at).unwrap_or(i64::MAX)),
                                "Sessions": sessions,
                            }),
                        );
                    }
                    v
                })
                .collect();
            let listed =
                [&columns[..], &[("REVISION", "/Agent/AppliedRevision"), ("LAST REPORT", "/Agent/ReportedAt")]]
                    .concat();
            output::print(args.output, &serde_json::Value::Array(out), &listed)?;
        }
        Command::Deregister { network_interface_id } => {
            client.delete(&format!("/tapwire/v1/network-interfaces/{network_interface_id}"))?;
            let done = serde_json::json!({ "NetworkInterfaceId": network_interface_id, "Deregistered": true });
            output::print(
                args.output,
                &done,
                &[("INTERFACE", "NetworkInterfaceId"), ("DEREGISTERED", "Deregistered")],
            )?;
        }
    }
    Ok(())
}

/// An interface as the list endpoint shows it: with its agent's latest report, if any.
#[derive(serde::Deserialize)]
struct Listed {
    #[serde(flatten)]
    interface: NetworkInterface,
    agent: Option<AgentSeen>,
}

/// What the list shows of an agent's report.
#[derive(serde::Deserialize)]
struct AgentSeen {
    applied_revision: Option<u64>,
    reported_at: u64,
    #[serde(default)]
    report: serde_json::Value,
}

/// The JSON people see, in the aws CLI's casing.
fn iface_json(i: &NetworkInterface) -> serde_json::Value {
    serde_json::json!({
        "NetworkInterfaceId": i.id,
        "OwnerId": i.scope.account,
        "Host": i.host,
        "InterfaceName": i.ifname,
        "InstanceId": i.instance_id,
        "MacAddress": i.mac,
        "PrivateIpAddress": i.primary_ipv4(),
        "Addresses": i.addresses,
    })
}
