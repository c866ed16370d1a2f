//! The packet path of one interface: capture → parse → classify → segment/truncate →
//! encapsulate → batch → send.
//!
//! [`Pipeline`] is owned by the interface's capture thread and is driven by [`run`]. Per
//! frame it parses and decides in one pass (`decide_frame_counted`, which also keeps the
//! per-session/per-rule counts; the full flow key is read only for super-frames and
//! partial checksums), and writes the
//! copy into the next slot of the output batch: outer headers from the engine, the inner
//! frame copied once (stripped VLAN tag re-inserted, partial checksum completed) or, for
//! an offload super-frame, segmented or cut. A full batch is sent at once; a partial one
//! after every poll. Nothing is allocated per packet.
//!
//! Invariants: counters are indexed by the current classifier; when the configuration
//! changes they are folded into per-ID totals first, so the numbers people see are
//! cumulative per session and rule ID (`reports`). The loop around it is in `run`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use tapwire_mirror::sampling::{Gate, Verdict};
use tapwire_mirror::{Counters, Decision, RAW_IPV6_HEADERS_LEN, raw_headers, raw_headers_len};
use tapwire_model::Direction;
use tapwire_wire::{FlowError, FlowKey};

use crate::applied::{AppliedConfig, ConfigSlot, Path};
use crate::capture::{CapturedFrame, Origin, RingStatistics, StrippedVlan};
use crate::offload::{self, OffloadMode, TcpSuperFrame};
use crate::output::{OutputBatch, SLOT_HEADROOM, SLOT_SIZE, SendOutcome, Transmit};
use crate::report::{DeliveryCounters, InterfaceCounters, RuleReport, SessionReport};

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
    /// Each uncapped session's sampling, by classifier index (capped sessions use the
    /// configuration's shared gate).
    gates: Vec<Gate>,
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
        let tag_len = if frame.vlan.is_some() { VLAN_TAG_LEN } else { 0 };
        let logical_len = frame.wire_len + tag_len;
        // One pass parses and decides; the full flow key is read again only for the
        // frames whose copy needs its offsets (super-frames, partial checksums).
        let decision =
            match config.classifier.decide_frame_counted(direction, frame.data, logical_len, &mut self.engine) {
                Ok(Some(decision)) => decision,
                Ok(None) => return,
                Err(FlowError::NotIp { .. }) => return self.interface.ignored_not_ip += 1,
                Err(FlowError::Wire(_)) => return self.interface.ignored_malformed += 1,
            };
        let session = usize::from(decision.session);
        let Some(&path) = config.paths.get(session) else {
            if let Some(d) = self.delivery.get_mut(session) {
                d.dropped_no_route += 1;
            }
            return;
        };
        let inner_len = decision.inner_len(logical_len);
        let verdict = match config.admit_capped(session, decision.flow_hash, inner_len) {
            Some(verdict) => verdict,
            None => self.gates.get_mut(session).map_or(Verdict::Pass, |g| g.admit(decision.flow_hash, inner_len, 0)),
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::SampledOut => return self.delivery[session].sampled_out += 1,
            Verdict::RateLimited => return self.delivery[session].rate_limited += 1,
        }
        let interface_mtu = config.interface_mtu.unwrap_or(self.settings.interface_mtu);
        // Shorter than an Ethernet header plus the MTU: not a super-frame.
        let key = if frame.checksum_partial
            || frame.gso_size.is_some()
            || frame.wire_len > interface_mtu + tapwire_wire::ethernet::HEADER_LEN
        {
            FlowKey::extract(frame.data).ok()
        } else {
            None
        };
        let key = key.as_ref();
        match config.groups.get(session).and_then(Option::as_ref) {
            None => self.copy(Target { decision, path }, frame, key, interface_mtu),
            Some(group) => {
                for m in group.chosen(decision.flow_hash) {
                    let (endpoint, path) = group.members[m];
                    self.copy(
                        Target { decision: Decision { target: endpoint, ..decision }, path },
                        frame,
                        key,
                        interface_mtu,
                    );
                }
            }
        }
    }

    /// Sends the copies of one frame to one target: segmented, cut or whole. `key` is the
    /// frame's flow key when the frame may be a super-frame or has a partial checksum.
    fn copy(&mut self, target: Target, frame: &CapturedFrame<'_>, key: Option<&FlowKey>, interface_mtu: usize) {
        let session = usize::from(target.decision.session);
        // A super-frame: the kernel says it is one (a segment size), or it is longer than
        // the interface could send (no virtio_net_hdr to ask).
        let superframe = frame.gso_size.is_some()
            || key.is_some_and(|k| frame.wire_len.saturating_sub(usize::from(k.l3_offset)) > interface_mtu);
        if superframe {
            let whole = frame.data.len() == frame.wire_len;
            if self.settings.offload == OffloadMode::Segment
                && whole
                && let Some(key) = key
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
            let whole = partial && n == data.len();
            (n, whole && key.is_some_and(|k| offload::complete_checksum(&mut out[..n], k)))
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
        if let (IpAddr::V6(_), IpAddr::V6(_)) = (target.path.source, target.decision.target.address) {
            // RFC 7348 requires the outer UDP checksum over IPv6; a copy sent straight to
            // the device carries the one written here (the routed path's kernel rewrites it).
            let udp_at = start + tapwire_wire::ipv6::HEADER_LEN;
            let _ = tapwire_wire::udp::fill_checksum(
                &mut slot[udp_at..start + datagram_len],
                target.path.source,
                target.decision.target.address,
            );
        }
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
                SendOutcome::SentRouted => {
                    d.mirrored_packets += 1;
                    d.mirrored_bytes += batch.datagram(i).0.len() as u64;
                    d.sent_routed += 1;
                }
                SendOutcome::Busy => d.dropped_send_busy += 1,
                SendOutcome::Failed(_) => d.dropped_send_error += 1,
            }
        });
        self.batch.clear();
    }
}

struct Target {
    decision: Decision,
    path: Path,
}

mod reports;
mod run;

pub use run::{PUBLISH_INTERVAL, run};
