//! tapwire's pipeline, in-process: `workers` capture threads in the sender namespace (one
//! `PACKET_FANOUT_HASH` group when more than one, as `tapwire agent --workers N` runs
//! them), each with its ring, its sockets and its counters, mirroring the session's one
//! egress rule to the sensor (VNI 42).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tapwire_agent::AgentOptions;
use tapwire_agent::applied::{AppliedConfig, ConfigSlot};
use tapwire_agent::capture::{Capture, FanoutGroup, RingCapture};
use tapwire_agent::follow::Link;
use tapwire_agent::host::route_lookup;
use tapwire_agent::offload::OffloadMode;
use tapwire_agent::output::{SendPath, SocketTransmit};
use tapwire_agent::pipeline::{self, Oversize, Pipeline, PipelineSettings};
use tapwire_agent::report::InterfaceReport;
use tapwire_model::config::InterfaceConfig;

use crate::cpu::thread_cpu_ns;
use crate::lab::{A, B, LINK_MTU, SENDER, VXLAN_PORT, in_ns};

/// A running pipeline.
pub struct Running {
    stop: Arc<AtomicBool>,
    workers: Vec<(JoinHandle<u64>, Arc<Mutex<InterfaceReport>>)>,
}

/// The session: every egress packet of `protocol` to `port`, to the sensor.
fn config(protocol: u8, port: u16) -> InterfaceConfig {
    serde_json::from_value(serde_json::json!({
        "schema": 1, "revision": 1, "network_interface_id": "eni-0123456789abcdef0", "addresses": [A],
        "sessions": [{"session_id": "tms-0123456789abcdef0", "number": 1, "vni": 42, "enabled": true,
            "target": {"address": B, "port": VXLAN_PORT},
            "filter": {"filter_id": "tmf-0123456789abcdef0", "network_services": [], "ingress": [],
                "egress": [{"rule_id": "tmfr-0123456789abcdef0", "number": 1, "action": "accept",
                    "protocol": protocol, "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                    "destination_ports": {"from": port, "to": port}}]}}]
    }))
    .unwrap()
}

/// Starts `workers` capture threads, worker i on `cpus[i % len]`.
pub fn start(rule: (u8, u16), send_path: SendPath, workers: usize, cpus: &[usize]) -> Running {
    // Built in the sender's namespace: the path MTU comes from its route to the sensor.
    let applied = in_ns(SENDER, move || {
        AppliedConfig::build(config(rule.0, rule.1), tapwire_agent::DEFAULT_MARK, OffloadMode::Segment, &route_lookup)
            .unwrap()
    })
    .join()
    .unwrap();
    let slot = Arc::new(ConfigSlot::default());
    slot.publish(Arc::new(applied));
    let stop = Arc::new(AtomicBool::new(false));
    let fanout = (workers > 1).then(|| Arc::new(FanoutGroup::default()));
    let workers = (0..workers)
        .map(|w| {
            let published = Arc::new(Mutex::new(InterfaceReport::default()));
            let (stop, slot, out, fanout, cpu) =
                (Arc::clone(&stop), Arc::clone(&slot), Arc::clone(&published), fanout.clone(), cpus[w % cpus.len()]);
            let thread = in_ns(SENDER, move || {
                tapwire_agent::sys::pin_current_thread(cpu).unwrap();
                let options = AgentOptions::default();
                let ifindex = tapwire_agent::sys::netdev::interface_index("veth0").unwrap();
                let prefilter = slot.load().1.unwrap().prefilter.clone();
                let mut capture = RingCapture::open(ifindex, options.ring, &prefilter, fanout).unwrap();
                let transmit = SocketTransmit::open(
                    options.mark,
                    options.send_buffer,
                    options.batch_size,
                    Oversize::Truncate,
                    send_path,
                )
                .unwrap();
                let settings = PipelineSettings {
                    offload: OffloadMode::Segment,
                    interface_mtu: LINK_MTU,
                    batch_size: options.batch_size,
                    oversize: Oversize::Truncate,
                };
                let mut p = Pipeline::new(settings, slot, transmit);
                let cap: &mut dyn Capture = &mut capture;
                let before = thread_cpu_ns();
                pipeline::run(cap, &mut p, "veth0", options.poll_timeout, &stop, &out, &Link::default());
                thread_cpu_ns() - before
            });
            (thread, published)
        })
        .collect();
    Running { stop, workers }
}

impl Running {
    /// Stops the workers (after they flush): their CPU nanoseconds, summed, and their
    /// counters added up.
    pub fn stop(self) -> (u64, InterfaceReport) {
        self.stop.store(true, Ordering::Relaxed);
        let mut cpu = 0;
        let mut reports = Vec::new();
        for (thread, published) in self.workers {
            cpu += thread.join().unwrap();
            reports.push(published.lock().unwrap().clone());
        }
        (cpu, InterfaceReport::of_workers(&reports))
    }
}
