//! tapwire's host agent: mirrors the packets of local interfaces to VXLAN targets the way
//! AWS/Alibaba VPC Traffic Mirroring does, driven by the control plane.
//!
//! Per monitored interface, `workers` capture threads and a watcher:
//! - **capture** ([`pipeline::run`]), one per worker: an AF_PACKET TPACKET_V3 ring
//!   ([`capture`]; with several workers, the rings form one `PACKET_FANOUT_HASH` group,
//!   so each flow, both directions, stays on one worker, in order) with the
//!   engine's cBPF pre-filter → flow key (tapwire-wire) → session decision (the engine's
//!   [`tapwire_mirror::Classifier`]) → offload segmentation or truncation ([`offload`]) →
//!   outer headers and inner frame written once into a preallocated batch → `sendmmsg`
//!   through the worker's own sockets ([`output`]). Each worker publishes its own
//!   counters; readers add them up ([`shared::InterfaceShared::counters`]);
//! - **watch** ([`watch::watch`]): registers the interface, long-polls its configuration
//!   by revision, compiles it off the packet path and hands it over through a
//!   [`applied::ConfigSlot`] (an atomic generation + an `Arc` behind a mutex the capture
//!   thread takes only when the generation moved), then reports what was applied.
//!
//! Plus one thread serving `/metrics` and `/status` ([`metrics`]). Counters are kept per
//! session and per rule ([`report`]). The agent's own copies carry `SO_MARK` = `mark` and
//! the pre-filter drops marked packets first, so its output never re-enters its capture.
//!
//! `sys` holds the only `unsafe` code of the crate.

pub mod applied;
pub mod capture;
pub mod follow;
pub mod groups;
pub mod health;
pub mod host;
pub mod metrics;
pub mod nexthop;
pub mod offload;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod shared;
pub mod sys;
pub mod watch;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapwire_mirror::SockFilter;
use tapwire_mirror::bpf::op;

use crate::capture::{FanoutGroup, RingCapture};
use crate::offload::OffloadMode;
use crate::output::{SendPath, SocketTransmit};
pub use crate::pipeline::Oversize;
use crate::pipeline::{Pipeline, PipelineSettings};
use crate::report::AgentStatus;
pub use crate::sys::ring::RingGeometry;
use crate::watch::{ApplySettings, ControlPlane, InterfaceShared, Registration, WatchOptions};

/// The default `SO_MARK` of mirror copies ("tw" in ASCII, then 0x4d31).
pub const DEFAULT_MARK: u32 = 0x7477_4d31;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Interfaces to monitor.
    pub interfaces: Vec<String>,
    /// Host name registered.
    pub host: String,
    /// Instance ID registered.
    pub instance_id: Option<String>,
    /// Offload super-frame handling.
    pub offload: OffloadMode,
    /// Copies larger than the path MTU: cut or fragmented.
    pub oversize: Oversize,
    /// Copies straight to the device where the next hop is known, or always routed.
    pub send_path: SendPath,
    /// `SO_MARK` of the output.
    pub mark: u32,
    /// Capture ring per interface.
    pub ring: RingGeometry,
    /// Datagrams per `sendmmsg`.
    pub batch_size: usize,
    /// Send buffer of the output socket.
    pub send_buffer: usize,
    /// Longest wait for a ring block before housekeeping runs.
    pub poll_timeout: Duration,
    /// Config watch timing.
    pub watch: WatchOptions,
    /// Capture threads per interface (at least one).
    pub workers: usize,
    /// CPUs to pin the capture threads to, worker `i` to `capture_cpus[i % len]` (keeps
    /// mirroring off the CPUs that run the host's own work); empty lets the scheduler
    /// decide.
    pub capture_cpus: Vec<usize>,
}

/// The most capture workers per interface chosen by default (each has its own ring).
pub const MAX_DEFAULT_WORKERS: usize = 4;

/// The default number of capture workers: one per CPU the agent may run on (all of
/// `cpus` when it is pinned), at most [`MAX_DEFAULT_WORKERS`].
pub fn default_workers(cpus: &[usize]) -> usize {
    let allowed = match cpus.len() {
        0 => sys::allowed_cpus().unwrap_or(1),
        n => n,
    };
    allowed.clamp(1, MAX_DEFAULT_WORKERS)
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            host: host::host_name(),
            instance_id: None,
            offload: OffloadMode::Segment,
            oversize: Oversize::Truncate,
            send_path: SendPath::Direct,
            mark: DEFAULT_MARK,
            // Many small blocks rather than a few big ones: the retire timer hands blocks
            // over partly filled, so below block_size / retire_timeout (50 MB/s here) the
            // ring rides out blocks × timeout of capture-thread stall (640 ms), not
            // 16 × 5 ms. 256 KiB still holds three 64 KiB offload super-frames.
            ring: RingGeometry { block_size: 256 << 10, block_count: 128, retire_timeout_ms: 5 },
            batch_size: 64,
            send_buffer: 4 << 20,
            poll_timeout: Duration::from_millis(50),
            watch: WatchOptions::default(),
            workers: 1,
            capture_cpus: Vec::new(),
        }
    }
}

/// A running agent.
pub struct Agent {
    interfaces: Vec<Arc<InterfaceShared>>,
    stop: Arc<AtomicBool>,
    capture_threads: Vec<JoinHandle<()>>,
    started: Instant,
    host: String,
}

/// A pre-filter that accepts nothing: in place until the first configuration arrives
/// (and while a ring joins its fanout group).
pub(crate) const DROP_ALL: [SockFilter; 1] = [SockFilter { code: op::RET | op::K, jt: 0, jf: 0, k: 0 }];

impl Agent {
    /// Opens every interface's ring and output socket and starts the threads;
    /// `control` makes one control-plane client per interface.
    pub fn start<C: ControlPlane + 'static>(
        options: &AgentOptions,
        mut control: impl FnMut() -> C,
    ) -> io::Result<Agent> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut interfaces = Vec::new();
        let mut all_settings = Vec::new();
        let mut capture_threads = Vec::new();
        let health = Arc::new(health::Health::default());
        for name in &options.interfaces {
            let described = host::describe(name)?;
            let workers = options.workers.max(1);
            let shared = Arc::new(InterfaceShared::new(&described, workers).with_health(Arc::clone(&health)));
            let fanout = (workers > 1).then(|| Arc::new(FanoutGroup::default()));
            for worker in 0..workers {
                let thread = start_worker(options, name, &described, &shared, fanout.clone(), worker, &stop)?;
                capture_threads.push(thread);
            }

            let registration = Registration {
                host: options.host.clone(),
                ifname: name.clone(),
                instance_id: options.instance_id.clone(),
                mac: described.mac.clone(),
                addresses: described.addresses.clone(),
            };
            let apply = Arc::new(ApplySettings {
                mark: options.mark,
                offload: options.offload,
                route: Box::new(host::route_lookup),
            });
            let mut client = control();
            let (watch_shared, watch_stop, watch_options) = (Arc::clone(&shared), Arc::clone(&stop), options.watch);
            let watch_apply = Arc::clone(&apply);
            // Detached: a long poll cannot be interrupted, and the thread holds nothing
            // the data plane needs.
            std::thread::Builder::new().name(format!("tw-watch-{name}")).spawn(move || {
                watch::watch(&mut client, &registration, &watch_shared, &watch_apply, watch_options, &watch_stop)
            })?;
            interfaces.push(shared);
            all_settings.push(apply);
        }
        let all_settings = Arc::new(all_settings);
        let (follow_interfaces, follow_settings, follow_stop) =
            (interfaces.clone(), Arc::clone(&all_settings), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("tw-follow".into())
            .spawn(move || follow::follow(&follow_interfaces, &follow_settings, &follow_stop))?;
        let (probe_interfaces, probe_stop) = (interfaces.clone(), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("tw-health".into())
            .spawn(move || probe(&health, &probe_interfaces, &all_settings, &probe_stop))?;
        Ok(Agent { interfaces, stop, capture_threads, started: Instant::now(), host: options.host.clone() })
    }

    /// A snapshot of every interface's state and counters.
    pub fn status(&self) -> AgentStatus {
        status_of(&self.host, self.started, &self.interfaces)
    }

    /// A function producing [`Agent::status`] that can live on another thread.
    pub fn status_source(&self) -> Arc<dyn Fn() -> AgentStatus + Send + Sync> {
        let (host, started, interfaces) = (self.host.clone(), self.started, self.interfaces.clone());
        Arc::new(move || status_of(&host, started, &interfaces))
    }

    /// Serves `/metrics` and `/status` on `listener` from a thread of its own.
    pub fn serve_metrics(&self, listener: TcpListener) -> io::Result<()> {
        let (source, stop) = (self.status_source(), Arc::clone(&self.stop));
        std::thread::Builder::new().name("tw-metrics".into()).spawn(move || metrics::serve(listener, source, &stop))?;
        Ok(())
    }

    /// Stops the capture threads (after they flush) and the metrics server.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.capture_threads {
            if t.join().is_err() {
                tracing::error!("a capture thread panicked");
            }
        }
    }
}

/// Opens worker `worker`'s ring (in `fanout` when there are several) and output sockets
/// and starts its capture thread, which publishes into its own counter slot.
fn start_worker(
    options: &AgentOptions,
    name: &str,
    described: &host::HostInterface,
    shared: &Arc<InterfaceShared>,
    fanout: Option<Arc<FanoutGroup>>,
    worker: usize,
    stop: &Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let mut capture = RingCapture::open(described.ifindex, options.ring, &DROP_ALL, fanout)
        .map_err(|e| io::Error::new(e.kind(), format!("capture ring on {name}: {e}")))?;
    let transmit = SocketTransmit::open(
        options.mark,
        options.send_buffer,
        options.batch_size,
        options.oversize,
        options.send_path,
    )
    .map_err(|e| io::Error::new(e.kind(), format!("output socket: {e}")))?;
    let settings = PipelineSettings {
        offload: options.offload,
        interface_mtu: described.mtu,
        batch_size: options.batch_size,
        oversize: options.oversize,
    };
    let mut pipeline = Pipeline::new(settings, Arc::clone(&shared.slot), transmit);
    let (shared, stop, poll) = (Arc::clone(shared), Arc::clone(stop), options.poll_timeout);
    let cpu = (!options.capture_cpus.is_empty()).then(|| options.capture_cpus[worker % options.capture_cpus.len()]);
    let thread_name = match worker {
        0 => format!("tw-capture-{name}"),
        n => format!("tw-capture-{name}-{n}"),
    };
    std::thread::Builder::new().name(thread_name).spawn(move || {
        if let Some(cpu) = cpu
            && let Err(e) = sys::pin_current_thread(cpu)
        {
            tracing::warn!(cpu, error = %e, "could not pin the capture thread");
        }
        pipeline::run(&mut capture, &mut pipeline, &shared.name, poll, &stop, &shared.counters[worker], &shared.link)
    })
}

/// Probes the checked sensor-group members every [`health::PROBE_EVERY`] until `stop`;
/// a verdict that changed rebuilds every interface's configuration (only the groups
/// whose members changed differ, so only they are published anew).
fn probe(
    health: &health::Health,
    interfaces: &[Arc<InterfaceShared>],
    settings: &[Arc<ApplySettings>],
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut probes: Vec<std::net::SocketAddr> = interfaces.iter().flat_map(|i| i.probes()).collect();
        probes.sort();
        probes.dedup();
        if health.probe_all(&probes) {
            tracing::info!("a sensor-group member's health changed; rebuilding");
            for (shared, apply) in interfaces.iter().zip(settings) {
                watch::rebuild(shared, apply);
            }
        }
        std::thread::sleep(health::PROBE_EVERY.saturating_sub(started.elapsed()));
    }
}

fn status_of(host: &str, started: Instant, interfaces: &[Arc<InterfaceShared>]) -> AgentStatus {
    AgentStatus {
        host: host.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: started.elapsed().as_secs(),
        interfaces: interfaces.iter().map(|i| i.report()).collect(),
    }
}
