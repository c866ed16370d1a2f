//! The packet path without root: frames from memory go through the real pipeline and the
//! datagrams it would send are decoded with tapwire-wire and checked field by field.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tapwire_agent::applied::{AppliedConfig, RouteLookup};
use tapwire_agent::capture::{Capture, CapturedFrame, MemoryCapture, Origin, OwnedFrame, RingStatistics, StrippedVlan};
use tapwire_agent::follow::Link;
use tapwire_agent::offload::OffloadMode;
use tapwire_agent::output::RecordingTransmit;
use tapwire_agent::pipeline::{self, Oversize, Pipeline, PipelineSettings};
use tapwire_agent::report::InterfaceReport;
use tapwire_mirror::{SockFilter, outer_source_port};
use tapwire_wire::ip::protocol;
use tapwire_wire::{FlowKey, checksum, ipv4, tcp, udp, vxlan};

/// One decoded copy.
#[derive(Debug)]
struct Copy {
    outer_source: IpAddr,
    outer_destination: IpAddr,
    dont_fragment: bool,
    datagram_len: usize,
    source_port: u16,
    destination_port: u16,
    vni: u32,
    inner: Vec<u8>,
}

fn decode(datagram: &[u8], to: SocketAddr) -> Copy {
    let ip = ipv4::Packet::new_checked(datagram).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(usize::from(ip.total_len()), datagram.len());
    assert_eq!(ip.protocol(), protocol::UDP);
    assert_eq!(IpAddr::V4(ip.destination()), to.ip());
    let u = udp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(usize::from(u.len_field()), ip.payload().len());
    let v = vxlan::Packet::new_checked(u.payload()).unwrap();
    Copy {
        outer_source: IpAddr::V4(ip.source()),
        outer_destination: IpAddr::V4(ip.destination()),
        dont_fragment: ip.dont_fragment(),
        datagram_len: datagram.len(),
        source_port: u.source_port(),
        destination_port: u.destination_port(),
        vni: v.vni(),
        inner: v.payload().to_vec(),
    }
}

fn feed(h: &mut Harness, frames: Vec<OwnedFrame>) -> Vec<Copy> {
    let before = h.pipeline.transmit().sent.len();
    let mut capture = MemoryCapture { queue: frames, ..Default::default() };
    capture.poll(Duration::ZERO, &mut |f| h.pipeline.handle(f)).unwrap();
    h.pipeline.flush();
    h.pipeline.transmit().sent[before..].iter().map(|(d, to)| decode(d, *to)).collect()
}

fn one_session(vni: u32, packet_length: Option<u16>) -> tapwire_model::config::InterfaceConfig {
    config(1, &[S { number: 1, vni, packet_length, ingress: vec![accept_all(100)], egress: vec![accept_all(100)] }])
}

#[test]
fn a_matching_frame_becomes_one_vxlan_copy_with_aws_headers() {
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(42, None), 1500);
    let frame = udp_frame("198.18.0.2", "198.18.0.1", 5001, 100);
    let copies = feed(&mut h, vec![OwnedFrame::new(frame.clone(), Origin::Ingress)]);
    assert_eq!(copies.len(), 1);
    let c = &copies[0];
    assert_eq!(c.outer_source, INTERFACE_V4.parse::<IpAddr>().unwrap());
    assert_eq!(c.outer_destination, TARGET_V4.parse::<IpAddr>().unwrap());
    assert!(c.dont_fragment);
    assert_eq!((c.destination_port, c.vni), (4789, 42));
    assert_eq!(c.source_port, outer_source_port(&FlowKey::extract(&frame).unwrap()));
    assert_eq!(c.inner, frame);
    let report = h.pipeline.report("eth0");
    assert_eq!(report.sessions[0].matched_packets, 1);
    assert_eq!(report.sessions[0].delivery.mirrored_packets, 1);
    assert_eq!(report.sessions[0].delivery.mirrored_bytes, (36 + frame.len()) as u64);
    assert_eq!(report.rules.iter().map(|r| r.matched_packets).sum::<u64>(), 1);
    assert_eq!(report.counters.frames_ingress, 1);
}

#[test]
fn packet_length_and_path_mtu_cut_copies_and_are_counted_apart() {
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(7, Some(64)), 1500);
    let frame = udp_frame("198.18.0.2", "198.18.0.1", 5001, 300);
    let copies = feed(&mut h, vec![OwnedFrame::new(frame.clone(), Origin::Ingress)]);
    assert_eq!(copies[0].inner, frame[..64]);
    let s = &h.pipeline.report("eth0").sessions[0];
    assert_eq!((s.truncated_packet_length, s.delivery.truncated_path_mtu), (1, 0));

    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(7, None), 600);
    let frame = udp_frame("198.18.0.2", "198.18.0.1", 5001, 1400);
    let copies = feed(&mut h, vec![OwnedFrame::new(frame.clone(), Origin::Ingress)]);
    assert_eq!(copies[0].datagram_len, 600, "the datagram fills the path MTU exactly");
    assert_eq!(copies[0].inner, frame[..600 - 36]);
    let s = &h.pipeline.report("eth0").sessions[0];
    assert_eq!((s.truncated_packet_length, s.delivery.truncated_path_mtu), (0, 1));
}

#[test]
fn the_lowest_numbered_accepting_session_wins_and_a_reject_passes_the_packet_on() {
    let mut h = harness(OffloadMode::Segment, 1500);
    let cfg = config(
        1,
        &[
            S { number: 2, vni: 20, packet_length: None, ingress: vec![accept_all(100)], egress: vec![] },
            S {
                number: 1,
                vni: 10,
                packet_length: None,
                ingress: vec![udp_port(10, "reject", 5002), accept_all(100)],
                egress: vec![],
            },
        ],
    );
    h.apply(cfg, 1500);
    let copies = feed(
        &mut h,
        vec![
            OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress),
            OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5002, 10), Origin::Ingress),
            // Egress: neither session has egress rules.
            OwnedFrame::new(udp_frame("198.18.0.1", "198.18.0.2", 5001, 10), Origin::Egress),
        ],
    );
    assert_eq!(copies.iter().map(|c| c.vni).collect::<Vec<_>>(), vec![10, 20]);
    let report = h.pipeline.report("eth0");
    let reject = report.rules.iter().find(|r| r.action == "reject").unwrap();
    assert_eq!(reject.matched_packets, 1);
    assert_eq!(report.counters.frames_egress, 1);
}

#[test]
fn direction_ipv6_vlan_and_loopback_duplicates() {
    let mut h = harness(OffloadMode::Segment, 1500);
    let cfg =
        config(1, &[S { number: 1, vni: 5, packet_length: None, ingress: vec![], egress: vec![accept_all_v6(1)] }]);
    h.apply(cfg, 1500);
    let v6 = udp_frame("2001:db8::1", "2001:db8::2", 53, 20);
    let mut tagged = OwnedFrame::new(v6.clone(), Origin::Egress);
    tagged.vlan = Some(StrippedVlan { tci: 0x0123, tpid: 0x8100 });
    let copies = feed(
        &mut h,
        vec![
            OwnedFrame::new(v6.clone(), Origin::Egress),
            OwnedFrame::new(v6.clone(), Origin::Ingress),
            OwnedFrame::new(v6.clone(), Origin::Loopback),
            tagged,
        ],
    );
    assert_eq!(copies.len(), 2, "egress only, loopback duplicate ignored");
    assert_eq!(copies[0].inner, v6);
    let mut expected = v6[..12].to_vec();
    expected.extend_from_slice(&[0x81, 0x00, 0x01, 0x23]);
    expected.extend_from_slice(&v6[12..]);
    assert_eq!(copies[1].inner, expected, "the stripped tag is back in place");
    assert_eq!(h.pipeline.report("eth0").counters.ignored_loopback, 1);
}

#[test]
fn tcp_super_frames_are_segmented_to_the_interface_mtu_with_valid_checksums() {
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(42, None), 9000);
    let frame = tcp_frame("198.18.0.1", "198.18.0.2", 20_000);
    let mut captured = OwnedFrame::new(frame.clone(), Origin::Egress);
    captured.checksum_partial = true;
    let copies = feed(&mut h, vec![captured]);
    assert_eq!(copies.len(), 20_000usize.div_ceil(1460));
    let mut payload = Vec::new();
    for c in &copies {
        assert!(c.inner.len() <= 1514, "segment of {} bytes", c.inner.len());
        let key = FlowKey::extract(&c.inner).unwrap();
        let ip = ipv4::Packet::new_checked(&c.inner[14..]).unwrap();
        assert!(ip.verify_checksum());
        let l4 = &c.inner[usize::from(key.l4_offset)..];
        assert_eq!(checksum::upper_layer(key.source, key.destination, protocol::TCP, l4), 0);
        payload.extend_from_slice(tcp::Packet::new_checked(l4).unwrap().payload());
    }
    assert_eq!(payload.len(), 20_000);
    assert_eq!(payload[..], frame[54..]);
    let s = &h.pipeline.report("eth0").sessions[0];
    assert_eq!((s.delivery.segmented_frames, s.delivery.segments), (1, copies.len() as u64));
    assert_eq!(s.delivery.mirrored_packets, copies.len() as u64, "more copies than the batch holds all went out");

    let mut h = harness(OffloadMode::Truncate, 1500);
    h.apply(one_session(42, None), 1500);
    let copies = feed(&mut h, vec![OwnedFrame::new(frame.clone(), Origin::Egress)]);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].inner, frame[..1500 - 36]);
    let s = &h.pipeline.report("eth0").sessions[0];
    assert_eq!((s.delivery.truncated_offload, s.delivery.segmented_frames), (1, 0));
}

#[test]
fn partial_checksums_are_completed_in_the_copy() {
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(1, None), 1500);
    let good = udp_frame("198.18.0.1", "198.18.0.2", 5001, 40);
    let mut partial = good.clone();
    partial[14 + 20 + 6] ^= 0xff;
    let mut f = OwnedFrame::new(partial, Origin::Egress);
    f.checksum_partial = true;
    let copies = feed(&mut h, vec![f]);
    assert_eq!(copies[0].inner, good);
    assert_eq!(h.pipeline.report("eth0").sessions[0].delivery.checksums_completed, 1);
}

#[test]
fn a_full_send_queue_drops_copies_and_counts_them() {
    let h = harness(OffloadMode::Segment, 1500);
    let applied =
        AppliedConfig::build(one_session(1, None), MARK, OffloadMode::Segment, &|_| RouteLookup::Mtu(1500)).unwrap();
    h.slot.publish(Arc::new(applied));
    let settings = PipelineSettings {
        offload: OffloadMode::Segment,
        interface_mtu: 1500,
        batch_size: 8,
        oversize: Oversize::Truncate,
    };
    let mut p = Pipeline::new(settings, Arc::clone(&h.slot), RecordingTransmit { sent: Vec::new(), capacity: Some(3) });
    assert!(p.refresh().is_some());
    let frames =
        (0..5).map(|_| OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress)).collect();
    let mut capture = MemoryCapture { queue: frames, ..Default::default() };
    capture.poll(Duration::ZERO, &mut |f| p.handle(f)).unwrap();
    p.flush();
    let d = p.report("eth0").sessions[0].delivery;
    assert_eq!((d.mirrored_packets, d.dropped_send_busy), (3, 2));
}

#[test]
fn counters_carry_over_a_configuration_change_by_session_id() {
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(one_session(42, None), 1500);
    feed(&mut h, vec![OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress)]);
    // Same session, new VNI (a modify); plus a second session.
    let cfg = config(
        2,
        &[
            S { number: 1, vni: 43, packet_length: None, ingress: vec![accept_all(100)], egress: vec![] },
            S { number: 2, vni: 44, packet_length: None, ingress: vec![accept_all(100)], egress: vec![] },
        ],
    );
    h.apply(cfg, 1500);
    let copies = feed(&mut h, vec![OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress)]);
    assert_eq!(copies[0].vni, 43);
    let report = h.pipeline.report("eth0");
    assert_eq!(report.applied_revision, Some(2));
    let first = report.sessions.iter().find(|s| s.session_id == "tms-00000000000000001").unwrap();
    assert_eq!((first.vni, first.matched_packets, first.delivery.mirrored_packets), (43, 2, 2));
    assert!(first.active);
}

/// A capture that stops the loop after a few polls and records its filters.
struct Scripted<'a> {
    inner: MemoryCapture,
    polls: usize,
    stop: &'a AtomicBool,
}

impl Capture for Scripted<'_> {
    fn poll(&mut self, t: Duration, sink: &mut dyn FnMut(&CapturedFrame<'_>)) -> std::io::Result<usize> {
        self.polls += 1;
        if self.polls >= 3 {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.inner.poll(t, sink)
    }
    fn set_filter(&mut self, filter: &[SockFilter]) -> std::io::Result<()> {
        self.inner.set_filter(filter)
    }
    fn statistics(&mut self) -> std::io::Result<RingStatistics> {
        // Like PACKET_STATISTICS: counts since the previous read.
        self.inner.statistics()
    }
}

#[test]
fn the_run_loop_attaches_the_prefilter_of_each_configuration_and_publishes_counters() {
    let mut h = harness(OffloadMode::Segment, 1500);
    let applied =
        AppliedConfig::build(one_session(42, None), MARK, OffloadMode::Segment, &|_| RouteLookup::Unknown).unwrap();
    let expected_filter = applied.prefilter.clone();
    h.slot.publish(Arc::new(applied));
    // 0x20 = ld abs; the program starts by loading skb->mark and dropping the agent's mark.
    assert_eq!((expected_filter[0].code, expected_filter[1].k), (0x20, MARK));
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let frames = vec![OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress)];
    let next_statistics = RingStatistics { packets: 10, drops: 2, freezes: 1 };
    let mut capture =
        Scripted { inner: MemoryCapture { queue: frames, next_statistics, ..Default::default() }, polls: 0, stop };
    let published = Mutex::new(InterfaceReport::default());
    pipeline::run(&mut capture, &mut h.pipeline, "eth0", Duration::ZERO, stop, &published, &Link::default());
    assert_eq!(capture.inner.filters, vec![expected_filter]);
    assert_eq!(h.pipeline.transmit().sent.len(), 1);
    let report = published.lock().unwrap().clone();
    assert_eq!(report.counters.filter_updates, 1);
    assert_eq!((report.counters.ring_packets, report.counters.ring_drops), (10, 2));
    assert_eq!(h.slot.applied_generation(), 1);
}

#[test]
fn sessions_the_host_cannot_serve_are_set_aside_and_the_rest_apply() {
    let mut cfg = config(
        3,
        &[
            S { number: 1, vni: 41, packet_length: None, ingress: vec![accept_all(1)], egress: vec![] },
            S { number: 2, vni: 42, packet_length: None, ingress: vec![accept_all(1)], egress: vec![] },
            S { number: 3, vni: 43, packet_length: None, ingress: vec![accept_all(1)], egress: vec![] },
        ],
    );
    // Session 1's target has no route; session 3 breaks its own invariants.
    cfg.sessions[0].target.address = "198.18.99.9".parse().unwrap();
    let dup = cfg.sessions[2].filter.ingress[0].clone();
    cfg.sessions[2].filter.ingress.push(dup);
    let route = |a: std::net::IpAddr| {
        if a.to_string() == "198.18.99.9" {
            RouteLookup::Unreachable("Network is unreachable".into())
        } else {
            RouteLookup::Mtu(1500)
        }
    };
    let applied = AppliedConfig::build(cfg, MARK, OffloadMode::Segment, &route).unwrap();
    let failed: Vec<(u32, &str)> = applied.failed.iter().map(|f| (f.number, f.reason.as_str())).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].0 == 1 && failed[0].1.contains("no route to the target 198.18.99.9"), "{failed:?}");
    assert!(failed[1].0 == 3 && failed[1].1.contains("used twice"), "{failed:?}");
    assert_eq!(applied.classifier.sessions().len(), 1);
    let mut h = harness(OffloadMode::Segment, 1500);
    h.slot.publish(std::sync::Arc::new(applied));
    assert!(h.pipeline.refresh().is_some());
    let copies = feed(&mut h, vec![OwnedFrame::new(udp_frame("198.18.0.2", "198.18.0.1", 5001, 10), Origin::Ingress)]);
    assert_eq!(
        copies.iter().map(|c| c.vni).collect::<Vec<_>>(),
        vec![42],
        "the lower-numbered broken session is skipped"
    );
    let report = h.pipeline.report("eth0");
    let states: Vec<(u32, bool, Option<String>)> =
        report.sessions.iter().map(|s| (s.number, s.active, s.failed.clone())).collect();
    assert_eq!(states.len(), 3);
    assert!(states.iter().any(|(n, active, why)| *n == 2 && *active && why.is_none()));
    assert!(
        states
            .iter()
            .any(|(n, active, why)| *n == 1 && !*active && why.as_deref().is_some_and(|w| w.contains("no route")))
    );
}

#[test]
fn an_ipv6_target_gets_an_ipv6_outer_header() {
    let mut cfg =
        config(4, &[S { number: 1, vni: 46, packet_length: None, ingress: vec![accept_all(1)], egress: vec![] }]);
    cfg.sessions[0].target.address = "2001:db8::3".parse().unwrap();
    let mut h = harness(OffloadMode::Segment, 1500);
    h.apply(cfg, 1500);
    let frame = udp_frame("198.18.0.2", "198.18.0.1", 5001, 10);
    h.pipeline.handle(&tapwire_agent::capture::CapturedFrame {
        data: &frame,
        wire_len: frame.len(),
        origin: Origin::Ingress,
        checksum_partial: false,
        vlan: None,
        gso_size: None,
        timestamp: std::time::Duration::ZERO,
    });
    h.pipeline.flush();
    let (datagram, to) = h.pipeline.transmit().sent[0].clone();
    assert_eq!(to, "[2001:db8::3]:4789".parse().unwrap());
    assert_eq!(datagram[0] >> 4, 6, "an IPv6 header leads the datagram");
    assert_eq!(
        &datagram[8..24],
        &"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        "from the interface's IPv6"
    );
    assert_eq!(datagram.len(), 40 + 8 + 8 + frame.len());
    assert_eq!(&datagram[56..], &frame[..]);
}
