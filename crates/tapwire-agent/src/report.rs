//! What the agent tells people and the control plane: per-interface, per-session and
//! per-rule counters ([`InterfaceReport`]), as JSON (`/status`, the status report sent to
//! the server) and as Prometheus text (`/metrics`).
//!
//! Counters are cumulative for the life of the agent process: when a new configuration
//! replaces the classifier, a session's or rule's counts carry over by ID, and sessions
//! or rules that disappeared keep their final counts (with `active: false`).

use serde::{Deserialize, Serialize};
use tapwire_model::prometheus::Exposition;

use crate::health::MemberHealth;

/// What happened to the copies of one session after classification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounters {
    /// Copies handed to the kernel.
    pub mirrored_packets: u64,
    /// Bytes of those datagrams (outer IPv4 + UDP + VXLAN + inner frame).
    pub mirrored_bytes: u64,
    /// Copies cut to fit the path MTU to the target (`--oversize truncate`).
    pub truncated_path_mtu: u64,
    /// Copies larger than the path MTU sent as outer IP fragments (`--oversize fragment`).
    #[serde(default)]
    pub fragmented: u64,
    /// Super-frames copied cut (truncate mode, or not TCP, or not captured whole).
    pub truncated_offload: u64,
    /// Super-frames split into segments.
    pub segmented_frames: u64,
    /// Segments produced from them.
    pub segments: u64,
    /// Partial TCP/UDP checksums completed.
    pub checksums_completed: u64,
    /// Copies (of `mirrored_packets`) that went through the kernel's IP output rather
    /// than straight to the device: next hop not resolved yet, a device without Ethernet
    /// framing, outer fragments, `--send-path routed`, or the once-a-second probe.
    #[serde(default)]
    pub sent_routed: u64,
    /// Copies dropped: the send queue or device was full (the agent never blocks).
    pub dropped_send_busy: u64,
    /// Copies dropped: the kernel refused the send (no route, …).
    pub dropped_send_error: u64,
    /// Copies dropped: no outer source address or an unsupported target family.
    pub dropped_no_route: u64,
    /// Copies left out by the session's sampling (`tapwire:sample-flows`, `-packets`).
    #[serde(default)]
    pub sampled_out: u64,
    /// Copies dropped by the session's caps (`tapwire:max-pps`, `max-bps`).
    #[serde(default)]
    pub rate_limited: u64,
}

impl DeliveryCounters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &DeliveryCounters) {
        self.mirrored_packets += o.mirrored_packets;
        self.mirrored_bytes += o.mirrored_bytes;
        self.truncated_path_mtu += o.truncated_path_mtu;
        self.fragmented += o.fragmented;
        self.truncated_offload += o.truncated_offload;
        self.segmented_frames += o.segmented_frames;
        self.segments += o.segments;
        self.checksums_completed += o.checksums_completed;
        self.sent_routed += o.sent_routed;
        self.dropped_send_busy += o.dropped_send_busy;
        self.dropped_send_error += o.dropped_send_error;
        self.dropped_no_route += o.dropped_no_route;
        self.sampled_out += o.sampled_out;
        self.rate_limited += o.rate_limited;
    }

    /// Copies dropped for any reason (a cap included; sampling is not a drop).
    pub fn dropped(&self) -> u64 {
        self.dropped_send_busy + self.dropped_send_error + self.dropped_no_route + self.rate_limited
    }
}

/// Per-interface counters that belong to no session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    /// Frames received by the interface that passed the pre-filter.
    pub frames_ingress: u64,
    /// Frames sent by the interface that passed the pre-filter.
    pub frames_egress: u64,
    /// Looped-back duplicates ignored.
    pub ignored_loopback: u64,
    /// Non-IP frames ignored.
    pub ignored_not_ip: u64,
    /// Frames whose headers could not be read.
    pub ignored_malformed: u64,
    /// Frames seen before any configuration was applied.
    pub ignored_unconfigured: u64,
    /// Packets the kernel counted for the capture socket.
    pub ring_packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub ring_drops: u64,
    /// Times the ring was full.
    pub ring_freezes: u64,
    /// Pre-filters attached.
    pub filter_updates: u64,
    /// Pre-filters the kernel refused (the previous one stays).
    pub filter_errors: u64,
    /// Times the capture was re-opened on a new interface index (the interface was made
    /// again).
    #[serde(default)]
    pub reattached: u64,
    /// Capture polls that failed (the link was down or gone).
    #[serde(default)]
    pub poll_errors: u64,
}

impl InterfaceCounters {
    /// Adds another capture worker's counters: frames and ring counts add up; what every
    /// worker's socket goes through once (a filter attached or refused, a re-attachment,
    /// a failed poll) is counted once per interface, as the most any worker saw.
    pub fn add_worker(&mut self, o: &InterfaceCounters) {
        self.frames_ingress += o.frames_ingress;
        self.frames_egress += o.frames_egress;
        self.ignored_loopback += o.ignored_loopback;
        self.ignored_not_ip += o.ignored_not_ip;
        self.ignored_malformed += o.ignored_malformed;
        self.ignored_unconfigured += o.ignored_unconfigured;
        self.ring_packets += o.ring_packets;
        self.ring_drops += o.ring_drops;
        self.ring_freezes += o.ring_freezes;
        self.filter_updates = self.filter_updates.max(o.filter_updates);
        self.filter_errors = self.filter_errors.max(o.filter_errors);
        self.reattached = self.reattached.max(o.reattached);
        self.poll_errors = self.poll_errors.max(o.poll_errors);
    }
}

/// One session's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    /// `tms-…`.
    pub session_id: String,
    /// Session number.
    pub number: u32,
    /// VNI.
    pub vni: u32,
    /// Target `address:port`.
    pub target: String,
    /// In the applied configuration.
    pub active: bool,
    /// Why the agent does not mirror it, when it set the session aside (`active` is then
    /// false); absent for a session that applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Packets this session's filter accepted.
    pub matched_packets: u64,
    /// Bytes of those frames.
    pub matched_bytes: u64,
    /// Copies cut to the session's packet length.
    pub truncated_packet_length: u64,
    /// Packets taken by the `amazon-dns` network service.
    pub network_service_packets: u64,
    /// Delivery.
    #[serde(flatten)]
    pub delivery: DeliveryCounters,
}

impl SessionReport {
    /// Adds `o`'s counts (the same session, counted elsewhere or earlier).
    pub fn add_counts(&mut self, o: &SessionReport) {
        self.matched_packets += o.matched_packets;
        self.matched_bytes += o.matched_bytes;
        self.truncated_packet_length += o.truncated_packet_length;
        self.network_service_packets += o.network_service_packets;
        self.delivery.add(&o.delivery);
    }
}

/// One rule's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleReport {
    /// `tmfr-…`.
    pub rule_id: String,
    /// Its session.
    pub session_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// Rule number.
    pub number: u32,
    /// `accept` or `reject`.
    pub action: String,
    /// In the applied configuration.
    pub active: bool,
    /// Packets this rule decided.
    pub matched_packets: u64,
    /// Bytes of those frames.
    pub matched_bytes: u64,
    /// Copies cut to the packet length.
    pub truncated_packets: u64,
}

impl RuleReport {
    /// Adds `o`'s counts (the same rule, counted elsewhere or earlier).
    pub fn add_counts(&mut self, o: &RuleReport) {
        self.matched_packets += o.matched_packets;
        self.matched_bytes += o.matched_bytes;
        self.truncated_packets += o.truncated_packets;
    }
}

/// Control-plane connection state of one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    /// The last exchange with the server succeeded.
    pub connected: bool,
    /// The last error, if the last exchange failed.
    pub last_error: Option<String>,
    /// Why the last configuration could not be applied, if it could not.
    pub config_error: Option<String>,
    /// Why the interface cannot be captured now (e.g. it was deleted), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_error: Option<String>,
}

/// Everything about one monitored interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceReport {
    /// Interface name on the host.
    pub interface: String,
    /// `eni-…` once registered.
    pub network_interface_id: Option<String>,
    /// Revision of the applied configuration.
    pub applied_revision: Option<u64>,
    /// Control-plane state.
    pub control: ControlState,
    /// Interface counters.
    pub counters: InterfaceCounters,
    /// Sessions (current, then retired).
    pub sessions: Vec<SessionReport>,
    /// Rules.
    pub rules: Vec<RuleReport>,
    /// Health checks of the sensor-group members this interface's copies may go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_health: Vec<MemberHealthReport>,
    /// Each capture worker's share of `counters` (several workers split the interface
    /// by flow hash), so a worker that gets most of the traffic shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerReport>,
}

/// What one capture worker of an interface took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Frames its ring delivered (every direction, looped-back duplicates included).
    pub frames: u64,
    /// Packets the kernel dropped because its ring was full.
    pub ring_drops: u64,
}

impl WorkerReport {
    /// The worker's share of an interface's counters.
    pub fn of(c: &InterfaceCounters) -> Self {
        Self { frames: c.frames_ingress + c.frames_egress + c.ignored_loopback, ring_drops: c.ring_drops }
    }
}

impl InterfaceReport {
    /// The interface's report from its workers' reports, in worker order: their counters
    /// added up ([`InterfaceReport::add_worker`]) and each one's share in `workers`.
    pub fn of_workers<'a>(reports: impl IntoIterator<Item = &'a InterfaceReport>) -> InterfaceReport {
        let mut total: Option<InterfaceReport> = None;
        let mut workers = Vec::new();
        for report in reports {
            workers.push(WorkerReport::of(&report.counters));
            match &mut total {
                Some(total) => total.add_worker(report),
                None => total = Some(report.clone()),
            }
        }
        InterfaceReport { workers, ..total.unwrap_or_default() }
    }

    /// Folds in another capture worker's report of the same interface: counters add up
    /// by session and rule ID; the applied revision is the one every worker has (none
    /// until all have one).
    pub fn add_worker(&mut self, o: &InterfaceReport) {
        self.applied_revision = match (self.applied_revision, o.applied_revision) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.counters.add_worker(&o.counters);
        for s in &o.sessions {
            match self.sessions.iter_mut().find(|m| m.session_id == s.session_id) {
                Some(m) => {
                    m.add_counts(s);
                    m.active |= s.active;
                }
                None => self.sessions.push(s.clone()),
            }
        }
        for r in &o.rules {
            match self.rules.iter_mut().find(|m| m.rule_id == r.rule_id) {
                Some(m) => {
                    m.add_counts(r);
                    m.active |= r.active;
                }
                None => self.rules.push(r.clone()),
            }
        }
    }
}

/// One probed sensor-group member, as this agent sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHealthReport {
    /// The member, `eni-…`.
    pub network_interface_id: String,
    /// Its health here.
    #[serde(flatten)]
    pub health: MemberHealth,
}

/// The agent's whole status, served at `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Host name.
    pub host: String,
    /// Agent version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Interfaces.
    pub interfaces: Vec<InterfaceReport>,
}

type Field<T> = (&'static str, &'static str, fn(&T) -> u64);

/// Renders the status as Prometheus text exposition (version 0.0.4).
pub fn prometheus(status: &AgentStatus) -> String {
    let mut m = Exposition::new();
    m.family("tapwire_agent_uptime_seconds", "gauge", "Seconds since the agent started.");
    m.sample("tapwire_agent_uptime_seconds", &[("host", &status.host)], status.uptime_seconds);

    let interface_fields: [Field<InterfaceReport>; 3] = [
        ("tapwire_agent_applied_revision", "Revision of the applied configuration.", |i| {
            i.applied_revision.unwrap_or(0)
        }),
        ("tapwire_agent_control_plane_connected", "1 when the last exchange with the server succeeded.", |i| {
            u64::from(i.control.connected)
        }),
        ("tapwire_agent_config_error", "1 when the last configuration could not be applied.", |i| {
            u64::from(i.control.config_error.is_some())
        }),
    ];
    for (name, help, get) in interface_fields {
        m.family(name, "gauge", help);
        for i in &status.interfaces {
            let eni = i.network_interface_id.clone().unwrap_or_default();
            m.sample(name, &[("interface", &i.interface), ("eni", &eni)], get(i));
        }
    }
    let counter_fields: [Field<InterfaceCounters>; 8] = [
        ("tapwire_agent_ring_packets_total", "Packets the kernel passed to the capture ring.", |c| c.ring_packets),
        ("tapwire_agent_ring_drops_total", "Packets the kernel dropped because the capture ring was full.", |c| {
            c.ring_drops
        }),
        ("tapwire_agent_ring_freezes_total", "Times the capture ring was full.", |c| c.ring_freezes),
        ("tapwire_agent_ignored_loopback_total", "Looped-back duplicates ignored.", |c| c.ignored_loopback),
        ("tapwire_agent_ignored_not_ip_total", "Non-IP frames ignored.", |c| c.ignored_not_ip),
        ("tapwire_agent_ignored_malformed_total", "Frames with unreadable headers.", |c| c.ignored_malformed),
        ("tapwire_agent_filter_updates_total", "Kernel pre-filters attached.", |c| c.filter_updates),
        ("tapwire_agent_filter_errors_total", "Kernel pre-filters refused.", |c| c.filter_errors),
    ];
    m.family("tapwire_agent_frames_total", "counter", "Frames captured, by direction.");
    for i in &status.interfaces {
        for (direction, v) in [("ingress", i.counters.frames_ingress), ("egress", i.counters.frames_egress)] {
            m.sample("tapwire_agent_frames_total", &[("interface", &i.interface), ("direction", direction)], v);
        }
    }
    for (name, help, get) in counter_fields {
        m.family(name, "counter", help);
        for i in &status.interfaces {
            m.sample(name, &[("interface", &i.interface)], get(&i.counters));
        }
    }
    let worker_fields: [Field<WorkerReport>; 2] = [
        ("tapwire_agent_worker_frames_total", "Frames each capture worker's ring delivered.", |w| w.frames),
        ("tapwire_agent_worker_ring_drops_total", "Packets dropped because a worker's ring was full.", |w| {
            w.ring_drops
        }),
    ];
    for (name, help, get) in worker_fields {
        m.family(name, "counter", help);
        for i in &status.interfaces {
            for (n, w) in i.workers.iter().enumerate() {
                m.sample(name, &[("interface", &i.interface), ("worker", &n.to_string())], get(w));
            }
        }
    }

    let session_fields: [Field<SessionReport>; 13] = [
        ("tapwire_session_matched_packets_total", "Packets the session's filter accepted.", |s| s.matched_packets),
        ("tapwire_session_matched_bytes_total", "Bytes of frames the session's filter accepted.", |s| s.matched_bytes),
        ("tapwire_session_mirrored_packets_total", "VXLAN copies sent.", |s| s.delivery.mirrored_packets),
        ("tapwire_session_mirrored_bytes_total", "Bytes of VXLAN copies sent (outer headers included).", |s| {
            s.delivery.mirrored_bytes
        }),
        ("tapwire_session_truncated_packet_length_total", "Copies cut to the session's packet length.", |s| {
            s.truncated_packet_length
        }),
        ("tapwire_session_truncated_path_mtu_total", "Copies cut to fit the path MTU (--oversize truncate).", |s| {
            s.delivery.truncated_path_mtu
        }),
        ("tapwire_session_fragmented_total", "Copies sent as outer IP fragments (--oversize fragment).", |s| {
            s.delivery.fragmented
        }),
        ("tapwire_session_truncated_offload_total", "Offload super-frames copied cut.", |s| {
            s.delivery.truncated_offload
        }),
        ("tapwire_session_segmented_frames_total", "Offload super-frames split into segments.", |s| {
            s.delivery.segmented_frames
        }),
        ("tapwire_session_segments_total", "Segments produced from super-frames.", |s| s.delivery.segments),
        ("tapwire_session_checksums_completed_total", "Partial checksums completed in copies.", |s| {
            s.delivery.checksums_completed
        }),
        ("tapwire_session_sampled_out_packets_total", "Copies left out by the session's sampling.", |s| {
            s.delivery.sampled_out
        }),
        (
            "tapwire_session_sent_routed_packets_total",
            "Copies sent through the kernel's IP output rather than straight to the device.",
            |s| s.delivery.sent_routed,
        ),
    ];
    for (name, help, get) in session_fields {
        m.family(name, "counter", help);
        for i in &status.interfaces {
            for s in &i.sessions {
                let vni = s.vni.to_string();
                m.sample(name, &[("interface", &i.interface), ("session", &s.session_id), ("vni", &vni)], get(s));
            }
        }
    }
    m.family("tapwire_session_dropped_packets_total", "counter", "Copies dropped, by reason.");
    for i in &status.interfaces {
        for s in &i.sessions {
            for (reason, v) in [
                ("send_busy", s.delivery.dropped_send_busy),
                ("send_error", s.delivery.dropped_send_error),
                ("no_route", s.delivery.dropped_no_route),
                ("rate_limited", s.delivery.rate_limited),
            ] {
                m.sample(
                    "tapwire_session_dropped_packets_total",
                    &[("interface", &i.interface), ("session", &s.session_id), ("reason", reason)],
                    v,
                );
            }
        }
    }
    let rule_fields: [Field<RuleReport>; 3] = [
        ("tapwire_rule_matched_packets_total", "Packets the rule decided.", |r| r.matched_packets),
        ("tapwire_rule_matched_bytes_total", "Bytes of frames the rule decided.", |r| r.matched_bytes),
        ("tapwire_rule_truncated_packets_total", "Copies cut to the packet length.", |r| r.truncated_packets),
    ];
    for (name, help, get) in rule_fields {
        m.family(name, "counter", help);
        for i in &status.interfaces {
            for r in &i.rules {
                let number = r.number.to_string();
                m.sample(
                    name,
                    &[
                        ("interface", &i.interface),
                        ("session", &r.session_id),
                        ("rule", &r.rule_id),
                        ("direction", &r.direction),
                        ("number", &number),
                        ("action", &r.action),
                    ],
                    get(r),
                );
            }
        }
    }
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_one_sample_per_session_and_reason() {
        let status = AgentStatus {
            host: "h\"1".into(),
            interfaces: vec![InterfaceReport {
                interface: "eth0".into(),
                applied_revision: Some(7),
                sessions: vec![SessionReport {
                    session_id: "tms-1".into(),
                    vni: 42,
                    matched_packets: 5,
                    delivery: DeliveryCounters { mirrored_packets: 4, dropped_send_busy: 1, ..Default::default() },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = prometheus(&status);
        assert!(text.contains("tapwire_agent_uptime_seconds{host=\"h\\\"1\"} 0"));
        assert!(text.contains("tapwire_agent_applied_revision{interface=\"eth0\",eni=\"\"} 7"));
        assert!(
            text.contains("tapwire_session_mirrored_packets_total{interface=\"eth0\",session=\"tms-1\",vni=\"42\"} 4")
        );
        assert!(text.contains(
            "tapwire_session_dropped_packets_total{interface=\"eth0\",session=\"tms-1\",reason=\"send_busy\"} 1"
        ));
        assert_eq!(text.matches("# TYPE tapwire_session_matched_packets_total counter").count(), 1);
    }

    #[test]
    fn workers_add_up_by_session_and_rule_and_agree_on_the_oldest_revision() {
        let session = |id: &str, n| SessionReport {
            session_id: id.into(),
            active: true,
            matched_packets: n,
            delivery: DeliveryCounters { mirrored_packets: n, ..Default::default() },
            ..Default::default()
        };
        let rule = |n| RuleReport { rule_id: "tmfr-1".into(), matched_packets: n, ..Default::default() };
        let counters = |frames, filters| InterfaceCounters {
            frames_ingress: frames,
            ring_drops: 1,
            filter_updates: filters,
            ..Default::default()
        };
        let mut total = InterfaceReport {
            applied_revision: Some(3),
            counters: counters(10, 2),
            sessions: vec![session("tms-1", 4)],
            rules: vec![rule(4)],
            ..Default::default()
        };
        let other = InterfaceReport {
            applied_revision: Some(2),
            counters: counters(5, 2),
            sessions: vec![session("tms-1", 3), session("tms-2", 1)],
            rules: vec![rule(3)],
            ..Default::default()
        };
        total.add_worker(&other);
        assert_eq!(total.applied_revision, Some(2));
        assert_eq!((total.counters.frames_ingress, total.counters.ring_drops), (15, 2));
        // Each worker attached the same two filters: the interface had two.
        assert_eq!(total.counters.filter_updates, 2);
        let by_id: Vec<_> = total.sessions.iter().map(|s| (s.session_id.as_str(), s.matched_packets)).collect();
        assert_eq!(by_id, [("tms-1", 7), ("tms-2", 1)]);
        assert_eq!(total.sessions[0].delivery.mirrored_packets, 7);
        assert_eq!(total.rules.len(), 1);
        assert_eq!(total.rules[0].matched_packets, 7);
        total.add_worker(&InterfaceReport::default());
        assert_eq!(total.applied_revision, None, "a worker with nothing applied yet holds the revision back");
    }

    #[test]
    fn the_interface_report_shows_each_workers_share() {
        let worker = |frames, drops| InterfaceReport {
            counters: InterfaceCounters { frames_ingress: frames, ring_drops: drops, ..Default::default() },
            ..Default::default()
        };
        let total = InterfaceReport::of_workers(&[worker(10, 1), worker(5, 0)]);
        assert_eq!(total.counters.frames_ingress, 15);
        assert_eq!(
            total.workers,
            [WorkerReport { frames: 10, ring_drops: 1 }, WorkerReport { frames: 5, ring_drops: 0 }]
        );
    }
}
