//! `tapwire receive`: the sensor side. VXLAN mirror copies in, pcapng or pcap out.
//!
//! Layout, pure parts first:
//! - [`decap`]: VXLAN datagram → (VNI, inner Ethernet frame), with a named reason for
//!   every datagram skipped.
//! - [`dedup`]: `--dedup`, the copies of one packet mirrored at both ends dropped but one.
//! - [`encode`]: pcapng/pcap encoding and [`encode::CaptureWriter`], one stream with its
//!   own interface table (one pcapng interface per (outer source, VNI)).
//! - [`rotate`]: split keys, file names, the size/time rotation policy.
//! - [`sink`]: [`sink::Output`], the demultiplexer that owns files, limits and counters.
//! - [`receiver`]: sockets (`SO_REUSEPORT`, `recvmmsg`), worker threads, status line.
//! - [`capture`]: `--capture IFACE`, the same datagrams read from TPACKET_V3 rings.
//! - `sys`: the only `unsafe` (the `recvmmsg` wrapper and two tiny syscalls).
//!
//! Shutdown: SIGINT/SIGTERM set a flag; workers wake within 100 ms (`SO_RCVTIMEO`),
//! drain their sockets, everything is flushed, a final summary line goes to stderr and
//! the command exits 0. A second SIGINT/SIGTERM exits at once with status 1.

pub mod capture;
pub mod decap;
pub mod dedup;
pub mod encode;
pub mod receiver;
pub mod rotate;
pub mod sink;
mod sys;

/// The maps looked up for every datagram (streams, interfaces, per-VNI counts): foldhash
/// rather than SipHash, which cost more than encoding a 64-byte frame; still seeded
/// per map, as the keys (sources, VNIs) come from the network.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;

pub use encode::Format;
pub use receiver::{Receiver, Summary, human};
pub use rotate::SplitBy;
pub use sink::{Output, Stats, Target};
pub use sys::thread_cpu_time;

/// Arguments of `tapwire receive`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["write", "write_dir", "stdout"])))]
pub struct Args {
    /// Address to listen on, IPv4 or IPv6 (`[::]:4789`). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:4789")]
    pub listen: SocketAddr,

    /// Write every frame to FILE (rotated files get `.1`, `.2`, … appended).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Write into DIR: `mirror.pcapng`, or one file per key with --split-by.
    #[arg(long, value_name = "DIR")]
    pub write_dir: Option<PathBuf>,

    /// Write a live stream to standard output (e.g. `| tshark -r -`), flushed after
    /// every batch.
    #[arg(long)]
    pub stdout: bool,

    /// With --write-dir: one file per VNI (`vni-42.pcapng`) or per outer source
    /// address (`src-198.18.0.2.pcapng`).
    #[arg(long, value_enum, requires = "write_dir")]
    pub split_by: Option<SplitBy>,

    /// With --split-by: most keys given a file of their own (each holds a descriptor and
    /// a 64 KiB buffer; sources can be spoofed). Frames of later keys all go to
    /// `src-other.<ext>` or `vni-other.<ext>`, counted as split_overflow.
    #[arg(
        long,
        value_name = "N",
        requires = "split_by",
        default_value_t = sink::DEFAULT_SPLIT_LIMIT,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub split_limit: u16,

    /// Output format. Classic pcap cannot record sources or VNIs per interface.
    #[arg(long, value_enum, default_value_t = Format::Pcapng)]
    pub format: Format,

    /// Start a new file before one would grow past SIZE (e.g. 100MB; KB/MB/GB are
    /// powers of 1000, KiB/MiB/GiB of 1024).
    #[arg(long, value_name = "SIZE", value_parser = rotate::parse_size, conflicts_with = "stdout")]
    pub rotate: Option<u64>,

    /// Start a new file once one has been open this long (e.g. 60s, 5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = rotate::parse_duration, conflicts_with = "stdout")]
    pub rotate_interval: Option<Duration>,

    /// Read the datagrams to --listen's port from capture rings on IFACE (TPACKET_V3
    /// with a kernel filter; no system call per datagram) instead of a socket: every
    /// datagram to the port that IFACE receives, whatever its address. Needs
    /// CAP_NET_RAW. Outer fragments cannot be reassembled from a capture: they are
    /// counted as fragmented and skipped.
    #[arg(long, value_name = "IFACE")]
    pub capture: Option<String>,

    /// Receive sockets (SO_REUSEPORT), or with --capture rings (one fanout group), one
    /// thread each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,

    /// Receive buffer per socket (SO_RCVBUF; forced past net.core.rmem_max when the
    /// process has CAP_NET_ADMIN).
    #[arg(long, value_name = "SIZE", default_value = "32MiB", value_parser = rotate::parse_size)]
    pub rcvbuf: u64,

    /// Drop a copy identical to one received within WINDOW (e.g. 2ms) from any source or
    /// VNI: the IP packet compared without its TTL or hop limit, IPv4 header checksum,
    /// Ethernet header and VLAN tags, as when both ends of a flow are mirrored. Counted.
    #[arg(long, value_name = "WINDOW", value_parser = rotate::parse_duration)]
    pub dedup: Option<Duration>,

    /// Accept VXLAN only from these outer sources (CIDRs, repeat or comma-separate;
    /// e.g. the agents' subnet). Datagrams from anywhere else are counted as
    /// refused_source and written nowhere. Without it every source is accepted, as the
    /// kernel's vxlan device does.
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = parse_source)]
    pub allow_source: Vec<ipnet::IpNet>,

    /// Exit 0 after writing N frames.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// A `--allow-source` entry: a CIDR, or one address (a /32 or /128).
fn parse_source(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("'{text}' is not a CIDR (198.18.0.0/15) or an address"))
}

impl Args {
    fn target(&self) -> anyhow::Result<Target> {
        match (&self.write, &self.write_dir, self.stdout) {
            (Some(file), None, false) => Ok(Target::File(file.clone())),
            (None, Some(dir), false) => Ok(Target::Dir { dir: dir.clone(), split: self.split_by }),
            (None, None, true) => Ok(Target::Stdout),
            _ => anyhow::bail!("give exactly one of --write, --write-dir, --stdout"),
        }
    }
}

/// Runs `tapwire receive` until SIGINT/SIGTERM or `--count`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the second signal finds the flag set and exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let workers = usize::from(args.workers);
    let receiver = match &args.capture {
        Some(interface) => Receiver::capture(interface, args.listen, workers)?,
        None => Receiver::bind(args.listen, workers, usize::try_from(args.rcvbuf).unwrap_or(usize::MAX))?,
    };
    let mut output = Output::new(
        args.target()?,
        args.format,
        rotate::Rotation { max_bytes: args.rotate, max_age: args.rotate_interval },
        args.count,
    )
    .context("cannot open output")?
    .with_split_limit(usize::from(args.split_limit));
    if let Some(window) = args.dedup {
        output = output.with_dedup(window);
    }
    output = output.with_allowed_sources(args.allow_source.clone());
    let sources = match args.allow_source.as_slice() {
        [] => "from any source".to_owned(),
        nets => format!("from {}", nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    // Tests and scripts wait for this line before sending.
    let workers = format!("{} worker{}", receiver.workers(), if receiver.workers() == 1 { "" } else { "s" });
    match &args.capture {
        Some(interface) => {
            eprintln!(
                "tapwire receive: listening on {} (capturing on {interface}, {workers}, {sources})",
                receiver.local_addr()
            )
        }
        None => eprintln!(
            "tapwire receive: listening on {} ({workers}, rcvbuf {} bytes, {sources})",
            receiver.local_addr(),
            receiver.rcvbuf()
        ),
    }

    let summary = receiver.run(output, stop, std::io::stderr().is_terminal());
    eprintln!("{}", summary_line(&summary));
    match summary.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The final line: `tapwire receive: received=… written=… malformed=… (…)`.
pub fn summary_line(summary: &Summary) -> String {
    let s = &summary.stats;
    format!(
        "tapwire receive: received={} written={} malformed={} (short={} no_i_flag={} runt={} truncated={}) \
         duplicates={} (evicted_early={}) bytes={} files={} over_count={} batches={} elapsed={:.3}s \
         fragmented={} outer_malformed={} ring_drops={} split_overflow={} interface_overflow={} \
         other_vni_frames={} refused_source={} other_destination={}",
        s.received,
        s.written,
        s.malformed(),
        s.short,
        s.no_i_flag,
        s.runt,
        s.truncated,
        s.duplicates,
        s.dedup_evicted,
        s.written_bytes,
        s.files,
        s.over_limit,
        s.batches,
        summary.elapsed.as_secs_f64(),
        s.fragmented,
        s.outer_malformed,
        s.ring_drops,
        s.split_overflow,
        s.interface_overflow,
        s.other_vnis.frames,
        s.refused_source,
        s.other_destination,
    )
}
