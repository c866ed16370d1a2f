//! `tapwire demo`: tapwire end to end in a throwaway network-namespace lab (root).
//!
//! ```text
//!   ns twdemo-src  eth0 198.18.0.1 2001:db8::1 ─┐   (the agent runs here)
//!   ns twdemo-peer eth0 198.18.0.2 2001:db8::2 ─┼─ br0 in ns twdemo-net
//!   ns twdemo-sens eth0 198.18.0.3             ─┤   (kernel vxlan device vx42 decapsulates)
//!   root ns        twdemo-ctl 198.18.0.254     ─┘   (tapwire server listens here)
//! ```
//! Steps: build the lab, start `tapwire server` (temporary data directory, `--tls auto`)
//! and `tapwire agent` in the source namespace (enrolled with a one-use join token, over
//! TLS), create a filter, rules, a target and a
//! session through the EC2 Query API, send ping, UDP and TCP between peer and source,
//! then show what the sensor's vxlan device received, a few decoded packets (tcpdump,
//! when installed) and the agent's counters. Everything is removed afterwards — on
//! success, on failure and on Ctrl-C (the lab guard's `Drop`).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tapwire_agent::sys::netdev::enter_network_namespace;
use tapwire_control::ops::InterfaceRegistration;
use tapwire_model::resource::NetworkInterface;

use crate::client::Client;
use crate::credentials;

const SERVER: &str = "198.18.0.254:8787";
const SRC: &str = "198.18.0.1";
const PEER: &str = "198.18.0.2";
const SENSOR: &str = "198.18.0.3";
const SRC_V6: &str = "2001:db8::1";
const VNI: &str = "42";
const ROLES: [&str; 4] = ["src", "peer", "sens", "net"];
const ROOT_LINK: &str = "twdemo-ctl";
/// What the columns of `tapwire agent status` and `tapwire session status` count.
const COLUMNS: &str = "
  MATCHED      frames the session's filter accepted, both directions
  MIRRORED     VXLAN copies sent to the target: more than MATCHED when the kernel handed over a
               TCP super-frame (offload), which is copied as the SEGMENTS the wire carried
  CUT_LEN      copies cut to the session's packet length
  CUT_MTU/CUT  copies cut to the path MTU towards the sensor
  FRAGMENTED   copies sent whole as outer IP fragments (agent --oversize fragment)
  DROPPED      copies lost: send buffer full, send error or no route (--json says which)
  RULE MATCHED frames each filter rule decided, with their bytes";

/// Arguments of `tapwire demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the lab until Ctrl-C after the demo (to poke at it with `ip netns exec`).
    #[arg(long)]
    keep: bool,
}

fn ns(role: &str) -> String {
    format!("twdemo-{role}")
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The lab and the processes in it; dropping it removes everything.
struct Lab {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Lab {
    fn remove_namespaces() {
        for role in ROLES {
            let _ = Command::new("ip").args(["netns", "del", &ns(role)]).stderr(Stdio::null()).status();
        }
        let _ = Command::new("ip").args(["link", "del", ROOT_LINK]).stderr(Stdio::null()).status();
    }

    fn build() -> anyhow::Result<Lab> {
        Self::remove_namespaces(); // leftovers of a killed run
        let dir = std::env::temp_dir().join(format!("tapwire-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let lab = Lab { children: Vec::new(), dir };
        for role in ROLES {
            ip(&["netns", "add", &ns(role)])?;
        }
        let net = ns("net");
        ip(&["-n", &net, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &net, "link", "set", "br0", "up"])?;
        for (role, v4, v6) in [("src", SRC, Some(SRC_V6)), ("peer", PEER, Some("2001:db8::2")), ("sens", SENSOR, None)]
        {
            let host = ns(role);
            let port = format!("p-{role}");
            ip(&["link", "add", "eth0", "netns", &host, "type", "veth", "peer", "name", &port, "netns", &net])?;
            ip(&["-n", &net, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
            if let Some(v6) = v6 {
                ip(&["-n", &host, "addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
            }
        }
        ip(&["link", "add", ROOT_LINK, "type", "veth", "peer", "name", "p-root", "netns", &net])?;
        ip(&["-n", &net, "link", "set", "p-root", "master", "br0", "up"])?;
        ip(&["addr", "add", "198.18.0.254/24", "dev", ROOT_LINK])?;
        ip(&["link", "set", ROOT_LINK, "up"])?;
        let sens = ns("sens");
        ip(&["-n", &sens, "link", "add", "vx42", "type", "vxlan", "id", VNI, "dstport", "4789", "local", SENSOR])?;
        ip(&["-n", &sens, "link", "set", "vx42", "up"])?;
        Ok(lab)
    }

    /// Starts `args` (in namespace `role`, or the root one for `None`), output to a log.
    fn spawn(&mut self, name: &str, role: Option<&str>, args: &[&str]) -> anyhow::Result<PathBuf> {
        let log = self.dir.join(format!("{name}.log"));
        let mut cmd = match role {
            Some(r) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns(r)]).args(args);
                c
            }
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(self.dir.join(format!("{name}.err")))?)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(log)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            // SIGTERM through `kill` lets the agent and server stop cleanly.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Self::remove_namespaces();
        let _ = std::fs::remove_dir_all(&self.dir);
        println!("\nlab removed (namespaces {}, link {ROOT_LINK})", ROLES.map(ns).join(", "));
    }
}

fn step(stop: &AtomicBool, what: &str) -> anyhow::Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    println!("\n== {what}");
    Ok(())
}

fn wait_until<T>(stop: &AtomicBool, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if let Some(v) = f() {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out waiting for {what}")
}

/// The text of the first `<tag>…</tag>` in an EC2 XML answer.
fn xml_field(xml: &str, tag: &str) -> anyhow::Result<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).with_context(|| format!("no <{tag}> in {xml}"))? + open.len();
    let end = xml[start..].find('<').map_or(xml.len(), |e| start + e);
    Ok(xml[start..end].to_owned())
}

/// Runs `f` on a thread that entered namespace `role`.
fn in_namespace<T: Send + 'static>(
    role: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<anyhow::Result<T>> {
    let path = Path::new("/var/run/netns").join(ns(role));
    std::thread::spawn(move || {
        enter_network_namespace(&path).with_context(|| format!("entering {}", path.display()))?;
        f()
    })
}

fn joined<T>(h: std::thread::JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    h.join().map_err(|_| anyhow::anyhow!("traffic thread panicked"))?
}

/// Runs the demo.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(std::fs::metadata("/proc/self/ns/net").is_ok(), "network namespaces are needed");
    let uid = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(|v| v.split_whitespace().next().unwrap_or("").to_owned()));
    anyhow::ensure!(uid.as_deref() == Some("0"), "tapwire demo builds network namespaces: run it as root");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let exe = std::env::current_exe().context("locating the tapwire binary")?;
    let exe = exe.to_str().context("binary path is not UTF-8")?.to_owned();

    step(&stop, "building the lab: namespaces twdemo-{src,peer,sens,net}, 198.18.0.0/24, 2001:db8::/64")?;
    let mut lab = Lab::build()?;
    println!("source {SRC} / {SRC_V6}, peer {PEER}, sensor {SENSOR} (vxlan device vx42, VNI {VNI})");

    step(
        &stop,
        &format!("starting tapwire server on https://{SERVER} (TLS from its own CA) and the agent in twdemo-src"),
    )?;
    let data = lab.dir.join("data");
    let data_text = data.to_str().context("temp path")?.to_owned();
    lab.spawn("server", None, &[&exe, "server", "--listen", SERVER, "--data-dir", &data_text, "--tls", "auto"])?;
    let url = format!("https://{SERVER}");
    // The server writes the root key and its CA at first start; the demo trusts that CA
    // and signs with that key, as an operator would.
    let credentials = wait_until(&stop, "the server's root key", || {
        credentials::read_profile(&data.join("credentials"), credentials::PROFILE).ok()
    })?;
    let ca = data.join("tls").join("ca.pem");
    let ca_text = ca.to_str().context("temp path")?.to_owned();
    let client = wait_until(&stop, "the server", || {
        let client = Client::signed(&url, credentials.clone(), Some(&ca)).ok()?;
        client.get::<Vec<serde_json::Value>>("/tapwire/v1/network-interfaces").ok().map(|_| client)
    })?;
    // The agent enrolls with a one-use join token bound to its host, over TLS.
    let token: serde_json::Value = client.post(
        "/tapwire/v1/agents/tokens",
        &serde_json::json!({ "host": "demo-web1", "ttl_seconds": 600, "uses": 1 }),
    )?;
    let token = token["Token"].as_str().context("the server made no token")?.to_owned();
    let state_dir = lab.dir.join("agent-state");
    let state_text = state_dir.to_str().context("temp path")?.to_owned();
    println!(
        "join token for host demo-web1 made (one use, 10 minutes); the agent keeps its credential in {state_text}"
    );
    lab.spawn(
        "agent",
        Some("src"),
        &[
            &exe,
            "agent",
            "--server",
            &url,
            "--ca-cert",
            &ca_text,
            "--token",
            &token,
            "--state-dir",
            &state_text,
            "--interface",
            "eth0",
            "--instance-id",
            "i-demo-web1",
            "--host",
            "demo-web1",
            // Counters reach the control plane each second, so its view below is current.
            "--report-interval",
            "1s",
        ],
    )?;
    let source: NetworkInterface = wait_until(&stop, "the agent to register", || {
        let all: Vec<NetworkInterface> = client.get("/tapwire/v1/network-interfaces").ok()?;
        all.into_iter().find(|i| i.host.as_deref() == Some("demo-web1"))
    })?;
    println!("agent registered eth0 of host demo-web1 as {}", source.id);
    let sensor: NetworkInterface = client.post(
        "/tapwire/v1/network-interfaces",
        &InterfaceRegistration {
            host: Some("demo-sensor".into()),
            ifname: Some("eth0".into()),
            instance_id: None,
            mac: None,
            addresses: vec![SENSOR.parse()?],
        },
    )?;
    println!("sensor registered as {}", sensor.id);

    step(&stop, "creating a filter, rules, a target and a session with the EC2 Query API")?;
    let target = xml_field(
        &client.ec2_query("CreateTrafficMirrorTarget", &[("NetworkInterfaceId", &sensor.id.to_string())])?,
        "trafficMirrorTargetId",
    )?;
    let filter = xml_field(
        &client.ec2_query("CreateTrafficMirrorFilter", &[("Description", "demo")])?,
        "trafficMirrorFilterId",
    )?;
    let rules: [(&str, &str, &str, &str); 4] = [
        ("ingress", "100", "0.0.0.0/0", "all IPv4 received"),
        ("egress", "100", "0.0.0.0/0", "all IPv4 sent"),
        ("ingress", "200", "::/0", "all IPv6 received"),
        ("egress", "200", "::/0", "all IPv6 sent"),
    ];
    for (direction, number, cidr, what) in rules {
        client.ec2_query(
            "CreateTrafficMirrorFilterRule",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("TrafficDirection", direction),
                ("RuleNumber", number),
                ("RuleAction", "accept"),
                ("SourceCidrBlock", cidr),
                ("DestinationCidrBlock", cidr),
                ("Description", what),
            ],
        )?;
    }
    let session = xml_field(
        &client.ec2_query(
            "CreateTrafficMirrorSession",
            &[
                ("NetworkInterfaceId", &source.id.to_string()),
                ("TrafficMirrorTargetId", &target),
                ("TrafficMirrorFilterId", &filter),
                ("SessionNumber", "1"),
                ("VirtualNetworkId", VNI),
            ],
        )?,
        "trafficMirrorSessionId",
    )?;
    let created = Instant::now();
    println!("target {target}, filter {filter} (4 accept rules), session {session} (VNI {VNI})");
    let revision = wait_until(&stop, "the agent to apply the session", || {
        let all: Vec<serde_json::Value> = client.get("/tapwire/v1/network-interfaces").ok()?;
        let me = all.into_iter().find(|i| i["id"] == source.id.to_string())?;
        let applied = me["agent"]["applied_revision"].as_u64()?;
        let cfg: serde_json::Value =
            client.get(&format!("/tapwire/v1/network-interfaces/{}/config", source.id)).ok()?;
        (cfg["sessions"].as_array().is_some_and(|s| !s.is_empty()) && applied >= cfg["revision"].as_u64()?)
            .then_some(applied)
    })?;
    println!("the agent runs revision {revision} (reported {} ms after the API call)", created.elapsed().as_millis());

    let tcpdump = Command::new("tcpdump").arg("--version").output().is_ok();
    let dump = if tcpdump {
        // Only the traffic the demo sends: the lab's own neighbour discovery is mirrored too,
        // but it is not what a newcomer wants to look at.
        let only_demo_traffic = "ip and (udp port 5001 or tcp port 5201 or icmp)";
        Some(lab.spawn(
            "tcpdump",
            Some("sens"),
            &["tcpdump", "-n", "-l", "-e", "-i", "vx42", "-c", "12", only_demo_traffic],
        )?)
    } else {
        None
    };
    std::thread::sleep(Duration::from_millis(500));

    step(&stop, "sending traffic between peer and source: ping, ping -6, 20 UDP datagrams, a 256 KiB TCP transfer")?;
    if Command::new("ping").arg("-V").output().is_ok() {
        for (flag, to) in [("-4", SRC), ("-6", SRC_V6)] {
            let status = Command::new("ip")
                .args(["netns", "exec", &ns("peer"), "ping", flag, "-c", "3", "-i", "0.2", "-q", to])
                .stdout(Stdio::null())
                .status()?;
            println!("ping {to}: {}", if status.success() { "ok" } else { "failed" });
        }
    } else {
        println!("(ping is not installed: skipping ICMP)");
    }
    let sink = in_namespace("src", || {
        let listener = TcpListener::bind((SRC, 5201))?;
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    });
    // Something listens on the UDP port, so the source answers no "port unreachable".
    let udp_sink = in_namespace("src", || {
        let socket = UdpSocket::bind((SRC, 5001))?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut buf = [0u8; 2048];
        let mut datagrams = 0;
        while datagrams < 20 && socket.recv(&mut buf).is_ok() {
            datagrams += 1;
        }
        Ok(datagrams)
    });
    std::thread::sleep(Duration::from_millis(100));
    let sender = in_namespace("peer", || {
        let udp = UdpSocket::bind("0.0.0.0:0")?;
        for i in 0..20u8 {
            udp.send_to(&[i; 100], (SRC, 5001))?;
        }
        let mut tcp = TcpStream::connect((SRC, 5201))?;
        tcp.write_all(&vec![0x5a; 256 * 1024])?;
        Ok(())
    });
    joined(sender)?;
    let received = joined(sink)?;
    let datagrams = joined(udp_sink)?;
    println!("UDP: {datagrams} of 20 datagrams to {SRC}:5001 arrived; TCP: {received} bytes to {SRC}:5201");
    std::thread::sleep(Duration::from_millis(700));

    step(&stop, "what the sensor's kernel vxlan device (VNI 42) received")?;
    print!("{}", ip(&["-n", &ns("sens"), "-s", "link", "show", "vx42"])?);
    if let Some(path) = dump {
        println!("\nfirst decapsulated frames of the demo's traffic (tcpdump -e -i vx42 in twdemo-sens):");
        std::thread::sleep(Duration::from_millis(300));
        print!("{}", std::fs::read_to_string(path).unwrap_or_default());
    } else {
        println!("(install tcpdump to see decoded frames)");
    }

    step(&stop, "the agent's counters (tapwire agent status, in twdemo-src)")?;
    let out = Command::new("ip").args(["netns", "exec", &ns("src"), &exe, "agent", "status"]).output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let json = Command::new("ip").args(["netns", "exec", &ns("src"), &exe, "agent", "status", "--json"]).output()?;
    if let Ok(status) = serde_json::from_slice::<tapwire_agent::report::AgentStatus>(&json.stdout) {
        let sessions = status.interfaces.iter().flat_map(|i| &i.sessions);
        let (cut, sent) =
            sessions.fold((0, 0), |(c, s), x| (c + x.delivery.truncated_path_mtu, s + x.delivery.mirrored_packets));
        if cut > 0 {
            println!(
                "\n{cut} of {sent} copies were cut to the 1500-byte path to the sensor (CUT_MTU): a full-size frame needs \
             50 bytes more on that path, or run the agent with --oversize fragment"
            );
        }
    }

    println!("{COLUMNS}");

    step(&stop, "the same at the control plane (tapwire session status), where an operator looks")?;
    std::thread::sleep(Duration::from_millis(1500));
    let sessions: Vec<serde_json::Value> = client.get("/tapwire/v1/sessions/status")?;
    print!("{}", crate::sessions::table(&sessions, false));

    if args.keep {
        println!("\nlab kept: try `ip netns exec twdemo-sens tcpdump -n -i vx42`; Ctrl-C removes it");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(lab);
    Ok(())
}
