//! `tapwire simulate`: replay a capture file through one interface's mirroring
//! configuration, exactly as the agent would, and write the VXLAN copies to a pcap.
//!
//! The capture stands for the traffic of the interface: a frame whose destination IP is
//! one of the interface's addresses is ingress, one whose source is, egress (destination
//! is checked first); every other frame — non-IP, unparseable, or neither to nor from the
//! interface — is ignored and counted. Each mirrored frame is truncated to its session's
//! packet length and written as a complete Ethernet / IP / UDP / VXLAN frame, in input
//! order with the input timestamp, using the fixed outer MACs documented in
//! [`tapwire_mirror::encap`]. The output is classic pcap with nanosecond timestamps.
//! A session's sampling and caps apply as in the agent, the caps timed by the capture's
//! own timestamps; what they leave out is counted per session. A session to a sensor
//! group writes each copy to the member the agent would choose (`flow-hash`), or one to
//! every member (`replicate`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use tapwire_agent::applied::RouteLookup;
use tapwire_agent::groups::AppliedGroup;
use tapwire_mirror::encap::{OVERHEAD_V6, OuterMacs};
use tapwire_mirror::sampling::{Gate, Verdict};
use tapwire_mirror::{Classifier, Counters, Decision};
use tapwire_model::config::{InterfaceConfig, TargetEndpoint};
use tapwire_model::{Direction, NetworkInterfaceId, RuleAction};
use tapwire_wire::{FlowError, FlowKey};

use crate::client::ServerArgs;

/// Snap length written in the output header: the largest frame this tool can write.
const OUTPUT_SNAPLEN: u32 = 0x0004_0000;
/// The pcapng magic (a Section Header Block's type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Arguments of `tapwire simulate`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("config_source").required(true).args(["server", "config"])))]
pub struct Args {
    /// Capture of the interface's traffic (pcap or pcapng, Ethernet link type).
    #[arg(long, value_name = "IN")]
    pub pcap: PathBuf,
    /// Where to write the VXLAN copies (classic pcap, Ethernet).
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Control-plane URL to fetch the interface's configuration from.
    #[arg(long, value_name = "URL", requires = "network_interface")]
    pub server: Option<String>,
    /// The interface whose configuration is fetched from --server.
    #[arg(long = "network-interface", value_name = "ENI", requires = "server")]
    pub network_interface: Option<NetworkInterfaceId>,
    /// The server's data directory, whose `credentials` sign the fetch when the
    /// environment names no key (as for every command that calls the server).
    #[arg(long, requires = "server")]
    pub data_dir: Option<PathBuf>,
    /// CA certificate(s) (PEM) of an `https://` --server.
    #[arg(long, requires = "server", env = "TAPWIRE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// A configuration document (JSON, the same one agents receive).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Frame counts of one run.
#[derive(Debug, Default)]
struct Totals {
    read: u64,
    not_ip: u64,
    malformed: u64,
    not_this_interface: u64,
    not_mirrored: u64,
    mirrored: u64,
    /// Copies written (a replicated frame makes one per member).
    copies: u64,
    truncated: u64,
    /// Per session: copies left out by sampling, and dropped by a cap.
    sampled_out: Vec<u64>,
    rate_limited: Vec<u64>,
}

impl Totals {
    fn ignored(&self) -> u64 {
        self.not_ip + self.malformed + self.not_this_interface
    }
}

/// Runs the simulation.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let classifier = Classifier::compile(&config).context("compiling the configuration")?;
    let mut counters = classifier.new_counters();
    let sessions = classifier.sessions().len();
    let mut totals = Totals { sampled_out: vec![0; sessions], rate_limited: vec![0; sessions], ..Totals::default() };
    let mut gates: Vec<Gate> = classifier.sessions().iter().map(|s| Gate::new(&s.limits)).collect();
    let groups = session_groups(&config, &classifier)?;

    let out_file = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let header = PcapHeader {
        snaplen: OUTPUT_SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        endianness: pcap_file::Endianness::native(),
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(BufWriter::new(out_file), header).context("writing the output header")?;
    let mut buffer = vec![0u8; OUTPUT_SNAPLEN as usize + OVERHEAD_V6];

    for_each_frame(&args.pcap, |timestamp, frame| {
        totals.read += 1;
        let key = match FlowKey::extract(frame) {
            Ok(key) => key,
            Err(FlowError::NotIp { .. }) => {
                totals.not_ip += 1;
                return Ok(());
            }
            Err(FlowError::Wire(_)) => {
                totals.malformed += 1;
                return Ok(());
            }
        };
        let Some(direction) = direction_of(&config.addresses, &key) else {
            totals.not_this_interface += 1;
            return Ok(());
        };
        let Some(decision) = classifier.decide_counted(direction, &key, frame.len(), &mut counters) else {
            totals.not_mirrored += 1;
            return Ok(());
        };
        let session = usize::from(decision.session);
        let now_ns = u64::try_from(timestamp.as_nanos()).unwrap_or(u64::MAX);
        match gates[session].admit(decision.flow_hash, decision.inner_len(frame.len()), now_ns) {
            Verdict::Pass => {}
            Verdict::SampledOut => {
                totals.sampled_out[session] += 1;
                return Ok(());
            }
            Verdict::RateLimited => {
                totals.rate_limited[session] += 1;
                return Ok(());
            }
        }
        totals.mirrored += 1;
        totals.truncated += u64::from(decision.truncates(frame.len()));
        // A sensor group's members, as the agent chooses them; else the one target.
        let targets: Vec<TargetEndpoint> = match &groups[session] {
            Some(g) => g.chosen(decision.flow_hash).map(|m| g.members[m].0).collect(),
            None => vec![decision.target],
        };
        for target in targets {
            totals.copies += 1;
            let decision = Decision { target, ..decision };
            let len = classifier
                .encapsulate(&decision, frame, OuterMacs::default(), &mut buffer)
                .context("encapsulating a mirrored frame")?;
            let copy = &buffer[..len];
            writer.write_packet(&PcapPacket::new(timestamp, len as u32, copy)).context("writing a copy")?;
        }
        Ok(())
    })?;
    writer.into_writer().flush().context("flushing the output")?;

    let mut stdout = std::io::stdout().lock();
    print_report(&mut stdout, &classifier, &counters, &totals)?;
    Ok(())
}

/// Each classifier session's sensor group, as the agent would run it with every member
/// reachable and healthy.
fn session_groups(config: &InterfaceConfig, classifier: &Classifier) -> anyhow::Result<Vec<Option<AppliedGroup>>> {
    let source_of = |t: IpAddr| config.addresses.iter().copied().find(|a| a.is_ipv4() == t.is_ipv4());
    classifier
        .sessions()
        .iter()
        .map(|s| {
            let group = config.sessions.iter().find(|c| c.session_id == s.session_id).and_then(|c| c.group.as_ref());
            group
                .map(|g| AppliedGroup::build(g, &source_of, &|_| RouteLookup::Unknown, &|_| true))
                .transpose()
                .map_err(|e| anyhow::anyhow!("session {}: {e}", s.session_id))
        })
        .collect()
}

fn load_config(args: &Args) -> anyhow::Result<InterfaceConfig> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let (Some(server), Some(eni)) = (&args.server, &args.network_interface) else {
        bail!("give --config FILE, or --server URL with --network-interface ENI");
    };
    let client = ServerArgs { server: server.clone(), data_dir: args.data_dir.clone(), ca_cert: args.ca_cert.clone() }
        .client()?;
    let path = format!("/tapwire/v1/network-interfaces/{eni}/config");
    let config: InterfaceConfig =
        client.get(&path).with_context(|| format!("fetching the configuration from {server}"))?;
    if config.network_interface_id != *eni {
        bail!("{server}{path} returned the configuration of {}, not {eni}", config.network_interface_id);
    }
    Ok(config)
}

/// Ingress when the destination is the interface's, egress when the source is.
fn direction_of(addresses: &[IpAddr], key: &FlowKey) -> Option<Direction> {
    if addresses.contains(&key.destination) {
        Some(Direction::Ingress)
    } else if addresses.contains(&key.source) {
        Some(Direction::Egress)
    } else {
        None
    }
}

/// Calls `each(timestamp, frame)` for every frame of a pcap or pcapng file, in order.
fn for_each_frame(path: &Path, mut each: impl FnMut(Duration, &[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut file = BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).with_context(|| format!("reading {}", path.display()))?;
    let file = BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    if magic == PCAPNG_MAGIC {
        return for_each_pcapng_frame(path, file, each);
    }
    let mut reader = PcapReader::new(file).with_context(|| format!("{} is neither pcap nor pcapng", path.display()))?;
    let datalink = reader.header().datalink;
    if datalink != DataLink::ETHERNET {
        bail!("{}: link type {datalink:?} is not Ethernet", path.display());
    }
    while let Some(packet) = reader.next_packet() {
        let packet = packet.with_context(|| format!("reading {}", path.display()))?;
        each(packet.timestamp, &packet.data)?;
    }
    Ok(())
}

fn for_each_pcapng_frame(
    path: &Path,
    file: BufReader<File>,
    mut each: impl FnMut(Duration, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader = PcapNgReader::new(file).with_context(|| format!("reading {}", path.display()))?;
    // (link type, if_tsresol) of each interface of the current section.
    let mut interfaces: Vec<(DataLink, u8)> = Vec::new();
    while let Some(block) = reader.next_block() {
        let block = block.with_context(|| format!("reading {}", path.display()))?;
        let (interface, raw_time, data) = match &block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                interfaces.push((idb.linktype, timestamp_resolution(&idb.options)));
                continue;
            }
            Block::EnhancedPacket(p) => (p.interface_id, Some(p.timestamp), &p.data),
            Block::SimplePacket(p) => (0, None, &p.data),
            _ => continue,
        };
        let Some(&(linktype, resolution)) = interfaces.get(interface as usize) else {
            bail!("{}: a packet names an interface the file does not describe", path.display());
        };
        if linktype != DataLink::ETHERNET {
            bail!("{}: link type {linktype:?} is not Ethernet", path.display());
        }
        // pcap-file 2 reads the raw 64-bit timestamp as nanoseconds whatever the
        // interface's if_tsresol says; rescale it.
        let timestamp = raw_time.map_or(Duration::ZERO, |t| rescale(t.as_nanos(), resolution));
        each(timestamp, data)?;
    }
    Ok(())
}

/// The if_tsresol option of an interface; 6 (microseconds) when absent.
fn timestamp_resolution(options: &[InterfaceDescriptionOption<'_>]) -> u8 {
    options
        .iter()
        .find_map(|o| match o {
            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
            _ => None,
        })
        .unwrap_or(6)
}

/// Converts `units` ticks of the pcapng resolution `resolution` (if_tsresol) to a duration.
fn rescale(units: u128, resolution: u8) -> Duration {
    let nanos = if resolution & 0x80 != 0 {
        let shift = u32::from(resolution & 0x7f).min(127);
        units.saturating_mul(1_000_000_000) >> shift
    } else {
        let exp = u32::from(resolution).min(38);
        if exp <= 9 { units * 10u128.pow(9 - exp) } else { units / 10u128.pow(exp - 9) }
    };
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn print_report(
    out: &mut impl Write,
    classifier: &Classifier,
    counters: &Counters,
    totals: &Totals,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<22} {:>6} {:<23} {:>6} {:<8} {:<7} {:>10} {:>12}",
        "SESSION", "NUMBER", "RULE", "NUMBER", "DIR", "ACTION", "PACKETS", "BYTES"
    )?;
    for (index, session) in classifier.sessions().iter().enumerate() {
        let state = if session.enabled { "" } else { " (disabled)" };
        for (rule_index, rule) in classifier.rules().iter().enumerate().filter(|(_, r)| usize::from(r.session) == index)
        {
            let hits = counters.rules[rule_index];
            let action = match rule.action {
                RuleAction::Accept => "accept",
                RuleAction::Reject => "reject",
            };
            writeln!(
                out,
                "{:<22} {:>6} {:<23} {:>6} {:<8} {:<7} {:>10} {:>12}{state}",
                session.session_id.to_string(),
                session.number,
                rule.rule_id.to_string(),
                rule.number,
                rule.direction.as_str(),
                action,
                hits.matched_packets,
                hits.matched_bytes
            )?;
        }
        if session.amazon_dns {
            let s = counters.sessions[index];
            writeln!(
                out,
                "{:<22} {:>6} {:<23} {:>6} {:<8} {:<7} {:>10} {:>12}{state}",
                session.session_id.to_string(),
                session.number,
                "amazon-dns",
                "-",
                "both",
                "accept",
                s.network_service_packets,
                s.network_service_bytes
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<22} {:>6} {:>9} {:>10} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "SESSION", "NUMBER", "VNI", "MATCHED", "BYTES", "COPIED", "TRUNCATED", "SAMPLED-OUT", "RATE-LIMITED"
    )?;
    for (index, session) in classifier.sessions().iter().enumerate() {
        let s = counters.sessions[index];
        writeln!(
            out,
            "{:<22} {:>6} {:>9} {:>10} {:>12} {:>12} {:>10} {:>12} {:>12}",
            session.session_id.to_string(),
            session.number,
            session.vni,
            s.mirrored_packets,
            s.mirrored_bytes,
            s.copied_bytes,
            s.truncated_packets,
            totals.sampled_out[index],
            totals.rate_limited[index]
        )?;
    }
    writeln!(out)?;
    writeln!(out, "frames read:   {}", totals.read)?;
    writeln!(
        out,
        "ignored:       {} (not IP: {}, malformed: {}, not to/from the interface: {})",
        totals.ignored(),
        totals.not_ip,
        totals.malformed,
        totals.not_this_interface
    )?;
    writeln!(out, "not mirrored:  {}", totals.not_mirrored)?;
    writeln!(out, "mirrored:      {}", totals.mirrored)?;
    writeln!(out, "copies:        {}", totals.copies)?;
    writeln!(out, "sampled out:   {}", totals.sampled_out.iter().sum::<u64>())?;
    writeln!(out, "rate limited:  {}", totals.rate_limited.iter().sum::<u64>())?;
    writeln!(out, "truncated:     {}", totals.truncated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_resolutions_rescale() {
        assert_eq!(rescale(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(rescale(1_500_000_000, 9), Duration::from_millis(1500));
        assert_eq!(rescale(15, 1), Duration::from_millis(1500));
        assert_eq!(rescale(3 << 10, 0x8a), Duration::from_secs(3));
    }
}
