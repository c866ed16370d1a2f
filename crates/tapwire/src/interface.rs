//! `tapwire interface …`: manage the network interface inventory.

use std::net::IpAddr;

use tapwire_control::ops::InterfaceRegistration;
use tapwire_model::resource::NetworkInterface;

use crate::client::{Client, DEFAULT_SERVER};

/// Arguments of `tapwire interface`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Control plane URL.
    #[arg(long, global = true, default_value = DEFAULT_SERVER, env = "TAPWIRE_SERVER")]
    server: String,
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
    /// List registered interfaces as JSON.
    List,
    /// Remove an interface; sessions whose source it is are deleted with it.
    Deregister {
        /// The interface, eni-….
        network_interface_id: String,
    },
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.server);
    match args.command {
        Command::Register { ips, mac, host, ifname, instance_id } => {
            let reg = InterfaceRegistration { host, ifname, instance_id, mac, addresses: ips };
            let iface: NetworkInterface = client.post("/tapwire/v1/network-interfaces", &reg)?;
            println!("{}", serde_json::to_string_pretty(&iface_json(&iface))?);
        }
        Command::List => {
            let all: Vec<Listed> = client.get("/tapwire/v1/network-interfaces")?;
            let out: Vec<serde_json::Value> = all
                .iter()
                .map(|l| {
                    let mut v = iface_json(&l.interface);
                    if let (Some(obj), Some(a)) = (v.as_object_mut(), &l.agent) {
                        obj.insert(
                            "Agent".to_owned(),
                            serde_json::json!({ "AppliedRevision": a.applied_revision, "ReportedAt": a.reported_at }),
                        );
                    }
                    v
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Deregister { network_interface_id } => {
            client.delete(&format!("/tapwire/v1/network-interfaces/{network_interface_id}"))?;
            println!("{}", serde_json::json!({ "NetworkInterfaceId": network_interface_id, "Deregistered": true }));
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
