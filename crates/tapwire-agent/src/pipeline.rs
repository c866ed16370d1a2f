//! The packet path of one interface: capture → parse → classify → segment/truncate →
//! encapsulate → batch → send.
//!
//! [`Pipeline`] is owned by the interface's capture thread and is driven by [`run`]. Per
//! frame it reads the flow key (tapwire-wire), asks the engine which session mirrors it
//! (`decide_counted`, which also keeps the per-session/per-rule counts), and writes the
//! copy into the next slot of the output batch: outer headers from the engine, the inner
//! frame copied once (stripped VLAN tag re-inserted, partial checksum completed) or, for
//! an offload super-frame, segmented or cut. A full batch is sent at once; a partial one
//! after every poll. Nothing is allocated per packet.
//!
//! Invariants: counters are indexed by the current classifier; when the configuration
//! changes they are folded into per-ID totals first, so the numbers people see are
//! cumulative per session and rule ID.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tapwire_mirror::sampling::{Gate, Verdict};
use tapwire_mirror::{Counters, Decision, RAW_IPV6_HEADERS_LEN, raw_headers, raw_headers_len};
use tapwire_model::Direction;
use tapwire_wire::{FlowError, FlowKey};

use crate::applied::{AppliedConfig, ConfigSlot, Path};
use crate::capture::{Capture, CapturedFrame, Origin, RingStatistics, StrippedVlan};
use crate::follow::Link;
use crate::offload::{self, OffloadMode, TcpSuperFrame};
use crate::output::{OutputBatch, SLOT_HEADROOM, SLOT_SIZE, SendOutcome, Transmit};
use crate::report::{DeliveryCounters, InterfaceCounters, InterfaceReport, RuleReport, SessionReport};

const VLAN_TAG_LEN: usize = 4;
/// Where the inner frame (without a re-inserted tag) starts in a slot: after room for the
/// longer (IPv6) outer headers; an IPv4 copy's headers start 20 bytes later.
const INNER_AT: usize = SLOT_HEADROOM + RAW_IPV6_HEADERS_LEN;

/// What happens to a copy larger than the path to its target carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Oversize {
    /// Cut to the path MTU, as the clouds do (the inner frame's tail is lost).
    #[default]
    Truncate,
    /// Sent whole as outer IP fragments (IPv4 fragments or IPv6 fragment headers), which
    /// the sensor's stack reassembles.
    Fragment,
}

impl std::str::FromStr for Oversize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "truncate" => Ok(Self::Truncate),
            "fragment" => Ok(Self::Fragment),
            other => Err(format!("unknown oversize mode {other:?} (truncate or fragment)")),
        }
    }
}

/// Settings of one interface's pipeline.
#[derive(Debug, Clone, Copy)]
pub struct PipelineSettings {
    /// How offload super-frames are copied.
    pub offload: OffloadMode,
    /// MTU of the captured interface: IP packets longer than this are super-frames.
    pub interface_mtu: usize,
    /// Datagrams per `sendmmsg`.
    pub batch_size: usize,
    /// Copies larger than the path MTU.
    pub oversize: Oversize,
}

/// One interface's packet path.
pub struct Pipeline<T: Transmit> {
    settings: PipelineSettings,
    slot: Arc<ConfigSlot>,
    generation: u64,
    config: Option<Arc<AppliedConfig>>,
    engine: Counters,
    delivery: Vec<DeliveryCounters>,
    /// Each session's sampling and caps, by classifier index.
    gates: Vec<Gate>,
    /// What the caps' buckets are refilled by.
    started: std::time::Instant,
    interface: InterfaceCounters,
    retired_sessions: BTreeMap<String, SessionReport>,
    retired_rules: BTreeMap<String, RuleReport>,
    batch: OutputBatch,
    transmit: T,
    /// Whether the first copy cut to a path MTU was logged.
    cut_logged: bool,
}

impl<T: Transmit> Pipeline<T> {
    /// A pipeline that takes its configurations from `slot` and sends through `transmit`.
    pub fn new(settings: PipelineSettings, slot: Arc<ConfigSlot>, transmit: T) -> Self {
        Self {
            batch: OutputBatch::new(settings.batch_size),
            settings,
            slot,
            generation: 0,
            config: None,
            engine: Counters::default(),
            delivery: Vec::new(),
            gates: Vec::new(),
            started: std::time::Instant::now(),
            interface: InterfaceCounters::default(),
            retired_sessions: BTreeMap::new(),
            retired_rules: BTreeMap::new(),
            transmit,
            cut_logged: false,
        }
    }

    /// The transmitter (tests read what was sent).
    pub fn transmit(&self) -> &T {
        &self.transmit
    }

    /// The configuration in use.
    pub fn config(&self) -> Option<&Arc<AppliedConfig>> {
        self.config.as_ref()
    }

    /// Switches to a newly published configuration, if any; returns it so the caller can
    /// attach its pre-filter. One atomic load when nothing changed.
    pub fn refresh(&mut self) -> Option<Arc<AppliedConfig>> {
        if self.slot.generation() == self.generation {
            return None;
        }
        let (generation, config) = self.slot.load();
        let config = config?;
        self.flush();
        self.retire_counters();
        self.transmit.prepare(&config.every_path());
        self.engine = config.classifier.new_counters();
        self.delivery = vec![DeliveryCounters::default(); config.classifier.sessions().len()];
        self.gates = config.classifier.sessions().iter().map(|s| Gate::new(&s.limits)).collect();
        self.config = Some(Arc::clone(&config));
        self.generation = generation;
        self.slot.mark_applied(generation);
        Some(config)
    }

    /// Counts a capture re-opened on a new interface index.
    pub fn record_reattach(&mut self) {
        self.interface.reattached += 1;
    }

    /// Counts a failed capture poll (link down or gone).
    pub fn record_poll_error(&mut self) {
        self.interface.poll_errors += 1;
    }

    /// Notes the outcome of attaching a pre-filter.
    pub fn record_filter(&mut self, attached: bool) {
        if attached {
            self.interface.filter_updates += 1;
        } else {
            self.interface.filter_errors += 1;
        }
    }

    /// Adds kernel ring counters.
    pub fn record_ring(&mut self, stats: RingStatistics) {
        self.interface.ring_packets += stats.packets;
        self.interface.ring_drops += stats.drops;
        self.interface.ring_freezes += stats.freezes;
    }

    /// Processes one captured frame.
    pub fn handle(&mut self, frame: &CapturedFrame<'_>) {
        let direction = match frame.origin {
            Origin::Ingress => {
                self.interface.frames_ingress += 1;
                Direction::Ingress
            }
            Origin::Egress => {
                self.interface.frames_egress += 1;
                Direction::Egress
            }
            Origin::Loopback => {
                self.interface.ignored_loopback += 1;
                return;
            }
        };
        let Some(config) = self.config.clone() else {
            self.interface.ignored_unconfigured += 1;
            return;
        };
        let key = match FlowKey::extract(frame.data) {
            Ok(k) => k,
            Err(FlowError::NotIp { .. }) => {
                self.interface.ignored_not_ip += 1;
                return;
            }
            Err(FlowError::Wire(_)) => {
                self.interface.ignored_malformed += 1;
                return;
            }
        };
        let tag_len = if frame.vlan.is_some() { VLAN_TAG_LEN } else { 0 };
        let logical_len = frame.wire_len + tag_len;
        let Some(decision) = config.classifier.decide_counted(direction, &key, logical_len, &mut self.engine) else {
            return;
        };
        let session = usize::from(decision.session);
        let Some(&path) = config.paths.get(session) else {
            if let Some(d) = self.delivery.get_mut(session) {
                d.dropped_no_route += 1;
            }
            return;
        };
        if let Some(gate) = self.gates.get_mut(session) {
            let now_ns = if gate.capped() { self.started.elapsed().as_nanos() as u64 } else { 0 };
            match gate.admit(decision.flow_hash, decision.inner_len(logical_len), now_ns) {
                Verdict::Pass => {}
                Verdict::SampledOut => return self.delivery[session].sampled_out += 1,
                Verdict::RateLimited => return self.delivery[session].rate_limited += 1,
            }
        }
        match config.groups.get(session).and_then(Option::as_ref) {
            None => self.copy(Target { decision, path }, frame, &key, &config),
            Some(group) => {
                for m in group.chosen(decision.flow_hash) {
                    let (endpoint, path) = group.members[m];
                    self.copy(
                        Target { decision: Decision { target: endpoint, ..decision }, path },
                        frame,
                        &key,
                        &config,
                    );
                }
            }
        }
    }

    /// Sends the copies of one frame to one target: segmented, cut or whole.
    fn copy(&mut self, target: Target, frame: &CapturedFrame<'_>, key: &FlowKey, config: &AppliedConfig) {
        let session = usize::from(target.decision.session);
        let interface_mtu = config.interface_mtu.unwrap_or(self.settings.interface_mtu);
        // A super-frame: the kernel says it is one (a segment size), or it is longer than
        // the interface could send (no virtio_net_hdr to ask).
        let superframe =
            frame.gso_size.is_some() || frame.wire_len.saturating_sub(usize::from(key.l3_offset)) > interface_mtu;
        if superframe {
            let whole = frame.data.len() == frame.wire_len;
            if self.settings.offload == OffloadMode::Segment
                && whole
                && let Some(sf) = TcpSuperFrame::parse(frame.data, key)
            {
                // The segment size the frames were built from, when the kernel says it;
                // else what the interface's MTU leaves.
                let mss = match frame.gso_size {
                    Some(g) if g > 0 => usize::from(g),
                    _ => interface_mtu.saturating_sub(sf.ip_headers_len()).max(1),
                };
                let count = sf.segment_count(mss);
                self.delivery[session].segmented_frames += 1;
                self.delivery[session].segments += count as u64;
                for i in 0..count {
                    self.place(&target, frame.vlan, sf.segment_len(i, mss), |out| {
                        (sf.write_segment(i, mss, out).0, false)
                    });
                }
                return;
            }
            self.delivery[session].truncated_offload += 1;
        }
        let data = frame.data;
        let partial = frame.checksum_partial && data.len() == frame.wire_len;
        let completed = self.place(&target, frame.vlan, frame.wire_len, |out| {
            let n = out.len().min(data.len());
            out[..n].copy_from_slice(&data[..n]);
            (n, partial && n == data.len() && offload::complete_checksum(&mut out[..n], key))
        });
        if completed {
            self.delivery[session].checksums_completed += 1;
        }
    }

    /// Writes one copy of an `untagged_len`-byte frame into the next slot. `write` fills
    /// the untagged inner frame (the buffer it gets is already cut to what fits) and
    /// returns the bytes it wrote and whether it completed a checksum; the latter is
    /// returned.
    fn place(
        &mut self,
        target: &Target,
        vlan: Option<StrippedVlan>,
        untagged_len: usize,
        write: impl FnOnce(&mut [u8]) -> (usize, bool),
    ) -> bool {
        if self.batch.is_full() {
            self.flush();
        }
        let session = usize::from(target.decision.session);
        let Some(slot) = self.batch.next_slot() else { return false };
        let headers_len = raw_headers_len(target.decision.target.address);
        let carried = (target.path.path_mtu as usize).min(SLOT_SIZE);
        let room = match self.settings.oversize {
            Oversize::Truncate => carried,
            Oversize::Fragment => SLOT_SIZE,
        } - headers_len;
        let tag = vlan.filter(|_| untagged_len >= 14);
        let tag_len = if tag.is_some() { VLAN_TAG_LEN } else { 0 };
        let wanted = target.decision.inner_len(untagged_len + tag_len);
        let inner_cap = wanted.min(room);
        let untagged_cap = inner_cap.saturating_sub(tag_len);
        let (written, completed) = write(&mut slot[INNER_AT..INNER_AT + untagged_cap]);
        let written = written.min(untagged_cap);
        let inner_at = match tag {
            Some(t) if written >= 12 => {
                // Shift the MAC addresses 4 bytes forward and put the tag after them.
                slot.copy_within(INNER_AT..INNER_AT + 12, INNER_AT - VLAN_TAG_LEN);
                let at = INNER_AT - VLAN_TAG_LEN + 12;
                slot[at..at + 2].copy_from_slice(&t.tpid.to_be_bytes());
                slot[at + 2..at + 4].copy_from_slice(&t.tci.to_be_bytes());
                INNER_AT - VLAN_TAG_LEN
            }
            _ => INNER_AT,
        };
        let start = inner_at - headers_len;
        let inner_len = INNER_AT - inner_at + written;
        if raw_headers(target.path.source, &target.decision, inner_len, &mut slot[start..]).is_err() {
            self.delivery[session].dropped_no_route += 1;
            return false;
        }
        let datagram_len = headers_len + inner_len;
        if inner_len < wanted && wanted > room {
            self.delivery[session].truncated_path_mtu += 1;
            self.log_first_cut(target, headers_len + wanted);
        } else if datagram_len > carried {
            self.delivery[session].fragmented += 1;
        }
        self.batch.commit(start, datagram_len, target.path.destination, target.decision.session);
        completed
    }

    /// One line, the first time a copy is cut to the path MTU: what happened and the two
    /// ways out.
    fn log_first_cut(&mut self, target: &Target, needed: usize) {
        if self.cut_logged {
            return;
        }
        self.cut_logged = true;
        tracing::warn!(
            target = %target.path.destination,
            path_mtu = target.path.path_mtu,
            needed,
            "a copy was cut to the path MTU (counted per session as cut_mtu): give the path to the sensor \
             50 bytes (70 over IPv6) more than the source's MTU, or run the agent with --oversize fragment"
        );
    }

    /// Sends whatever is batched.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = &self.batch;
        let delivery = &mut self.delivery;
        self.transmit.transmit(batch, &mut |i, outcome| {
            let Some(d) = delivery.get_mut(usize::from(batch.session(i))) else { return };
            match outcome {
                SendOutcome::Sent => {
                    d.mirrored_packets += 1;
                    d.mirrored_bytes += batch.datagram(i).0.len() as u64;
                }
                SendOutcome::Busy => d.dropped_send_busy += 1,
                SendOutcome::Failed(_) => d.dropped_send_error += 1,
            }
        });
        self.batch.clear();
    }

    fn retire_counters(&mut self) {
        let (sessions, rules) = self.current_reports();
        for s in sessions {
            let entry = self.retired_sessions.entry(s.session_id.clone()).or_default();
            let mut merged = s.clone();
            add_session(&mut merged, entry);
            merged.active = false;
            *entry = merged;
        }
        for r in rules {
            let entry = self.retired_rules.entry(r.rule_id.clone()).or_default();
            let mut merged = r.clone();
            merged.matched_packets += entry.matched_packets;
            merged.matched_bytes += entry.matched_bytes;
            merged.truncated_packets += entry.truncated_packets;
            merged.active = false;
            *entry = merged;
        }
    }

    /// Counters of the current classifier only.
    fn current_reports(&self) -> (Vec<SessionReport>, Vec<RuleReport>) {
        let Some(config) = &self.config else { return (Vec::new(), Vec::new()) };
        let c = &config.classifier;
        let sessions = c
            .sessions()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let e = self.engine.sessions.get(i).copied().unwrap_or_default();
                SessionReport {
                    session_id: s.session_id.to_string(),
                    number: s.number,
                    vni: s.vni,
                    target: SocketAddr::new(s.target.address, s.target.port).to_string(),
                    active: true,
                    failed: None,
                    matched_packets: e.mirrored_packets,
                    matched_bytes: e.mirrored_bytes,
                    truncated_packet_length: e.truncated_packets,
                    network_service_packets: e.network_service_packets,
                    delivery: self.delivery.get(i).copied().unwrap_or_default(),
                }
            })
            .collect();
        let rules = c
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let e = self.engine.rules.get(i).copied().unwrap_or_default();
                RuleReport {
                    rule_id: r.rule_id.to_string(),
                    session_id: c
                        .sessions()
                        .get(usize::from(r.session))
                        .map(|s| s.session_id.to_string())
                        .unwrap_or_default(),
                    direction: r.direction.to_string(),
                    number: r.number,
                    action: format!("{:?}", r.action).to_lowercase(),
                    active: true,
                    matched_packets: e.matched_packets,
                    matched_bytes: e.matched_bytes,
                    truncated_packets: e.truncated_packets,
                }
            })
            .collect();
        (sessions, rules)
    }

    /// Cumulative counters: current sessions and rules (with what they had before the
    /// last configuration change), then those no longer configured.
    pub fn report(&self, interface: &str) -> InterfaceReport {
        let (mut sessions, mut rules) = self.current_reports();
        let mut seen_sessions = std::collections::BTreeSet::new();
        for s in &mut sessions {
            if let Some(old) = self.retired_sessions.get(&s.session_id) {
                add_session(s, old);
            }
            seen_sessions.insert(s.session_id.clone());
        }
        // Sessions of the document set aside: shown with why, and what they had before.
        if let Some(config) = &self.config {
            for f in &config.failed {
                let id = f.session_id.to_string();
                let doc = config.config.sessions.iter().find(|s| s.session_id == f.session_id);
                let mut report = self.retired_sessions.get(&id).cloned().unwrap_or_default();
                report.session_id.clone_from(&id);
                report.number = f.number;
                if let Some(doc) = doc {
                    report.vni = doc.vni.get();
                    report.target = SocketAddr::new(doc.target.address, doc.target.port).to_string();
                }
                report.active = false;
                report.failed = Some(f.reason.clone());
                seen_sessions.insert(id);
                sessions.push(report);
            }
        }
        sessions.extend(self.retired_sessions.values().filter(|s| !seen_sessions.contains(&s.session_id)).cloned());
        let mut seen_rules = std::collections::BTreeSet::new();
        for r in &mut rules {
            if let Some(old) = self.retired_rules.get(&r.rule_id) {
                r.matched_packets += old.matched_packets;
                r.matched_bytes += old.matched_bytes;
                r.truncated_packets += old.truncated_packets;
            }
            seen_rules.insert(r.rule_id.clone());
        }
        rules.extend(self.retired_rules.values().filter(|r| !seen_rules.contains(&r.rule_id)).cloned());
        InterfaceReport {
            interface: interface.to_owned(),
            applied_revision: self.config.as_ref().map(|c| c.revision()),
            counters: self.interface,
            sessions,
            rules,
            ..Default::default()
        }
    }
}

struct Target {
    decision: Decision,
    path: Path,
}

fn add_session(s: &mut SessionReport, old: &SessionReport) {
    s.matched_packets += old.matched_packets;
    s.matched_bytes += old.matched_bytes;
    s.truncated_packet_length += old.truncated_packet_length;
    s.network_service_packets += old.network_service_packets;
    s.delivery.add(&old.delivery);
}

/// How often ring statistics are read and counters published.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the capture loop until `stop`: follows `link` to a new interface index (the
/// interface was made again), applies new configurations (re-attaching the pre-filter),
/// feeds every frame to the pipeline, flushes after every poll, and publishes the
/// interface report into `published` every [`PUBLISH_INTERVAL`] and once more on the way
/// out. A failing poll (the link is down or gone) is logged once, then waited out.
pub fn run<T: Transmit>(
    capture: &mut dyn Capture,
    pipeline: &mut Pipeline<T>,
    interface: &str,
    poll_timeout: Duration,
    stop: &AtomicBool,
    published: &Mutex<InterfaceReport>,
    link: &Link,
) {
    let mut last_publish = Instant::now();
    let mut link_generation = link.generation();
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        if link.generation() != link_generation {
            link_generation = link.generation();
            let filter = pipeline.config().map(|c| c.prefilter.clone()).unwrap_or_default();
            match capture.reattach(link.ifindex(), &filter) {
                Ok(()) => {
                    pipeline.record_reattach();
                    tracing::info!(interface, ifindex = link.ifindex(), "capture re-attached");
                }
                Err(e) => tracing::warn!(interface, error = %e, "re-attaching the capture failed"),
            }
        }
        if let Some(config) = pipeline.refresh() {
            let attached = capture.set_filter(&config.prefilter);
            if let Err(e) = &attached {
                tracing::error!(interface, error = %e, "the kernel refused the pre-filter; keeping the previous one");
            }
            pipeline.record_filter(attached.is_ok());
            // Right away, so the watcher's report names the revision now in use.
            publish(capture, pipeline, interface, published);
        }
        match capture.poll(poll_timeout, &mut |frame| pipeline.handle(frame)) {
            Ok(_) if failing => {
                failing = false;
                tracing::info!(interface, "capture resumed");
            }
            Ok(_) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(interface, error = %e, "capture poll failed; waiting for the link");
                }
                failing = true;
                pipeline.record_poll_error();
                std::thread::sleep(poll_timeout);
            }
        }
        pipeline.flush();
        if last_publish.elapsed() >= PUBLISH_INTERVAL {
            last_publish = Instant::now();
            publish(capture, pipeline, interface, published);
        }
    }
    pipeline.flush();
    publish(capture, pipeline, interface, published);
}

fn publish<T: Transmit>(
    capture: &mut dyn Capture,
    pipeline: &mut Pipeline<T>,
    interface: &str,
    published: &Mutex<InterfaceReport>,
) {
    match capture.statistics() {
        Ok(stats) => pipeline.record_ring(stats),
        Err(e) => tracing::warn!(interface, error = %e, "reading ring statistics failed"),
    }
    let report = pipeline.report(interface);
    *published.lock().unwrap_or_else(PoisonError::into_inner) = report;
}
