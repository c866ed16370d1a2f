//! The generated cBPF pre-filter, run by a small interpreter written here, accepts every
//! packet the classifier mirrors with a snap length covering the copy, drops the
//! agent's own marked output, and stays within the kernel's limits.

#![allow(clippy::unwrap_used)]

mod common;

use common::Rng;
use proptest::prelude::*;
use tapwire_mirror::Classifier;
use tapwire_mirror::bpf::{self, SockFilter};
use tapwire_model::Direction;
use tapwire_wire::FlowKey;

/// Runs `program` over `packet` as Linux does; a load past the end returns 0. The packet
/// is one the interface received (`PACKET_HOST`).
fn run(program: &[SockFilter], packet: &[u8], mark: u32) -> u32 {
    run_as(program, packet, mark, 0)
}

/// The same for a packet of type `pkttype` (4: sent by the interface).
fn run_as(program: &[SockFilter], packet: &[u8], mark: u32, pkttype: u32) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |at: u32, size: usize| -> Option<u32> {
        if at == bpf::SKF_AD_OFF + bpf::SKF_AD_MARK && size == 4 {
            return Some(mark);
        }
        if at == bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE && size == 4 {
            return Some(pkttype);
        }
        let at = at as usize;
        let bytes = packet.get(at..at.checked_add(size)?)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    loop {
        let ins = *program.get(pc).expect("fell off the program");
        pc += 1;
        let size = match ins.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match ins.code & 0x07 {
            0x00 => {
                a = match ins.code & 0xe0 {
                    0x00 => ins.k,
                    0x20 => match load(ins.k, size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0x40 => match load(x.wrapping_add(ins.k), size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0x60 => mem[ins.k as usize % 16],
                    0x80 => packet.len() as u32,
                    other => panic!("unsupported ld mode {other:#x}"),
                }
            }
            0x01 => {
                x = match ins.code & 0xe0 {
                    0x00 => ins.k,
                    0x60 => mem[ins.k as usize % 16],
                    0x80 => packet.len() as u32,
                    0xa0 => match load(ins.k, 1) {
                        Some(v) => 4 * (v & 0x0f),
                        None => return 0,
                    },
                    other => panic!("unsupported ldx mode {other:#x}"),
                }
            }
            0x02 => mem[ins.k as usize % 16] = a,
            0x03 => mem[ins.k as usize % 16] = x,
            0x04 => {
                let operand = if ins.code & 0x08 != 0 { x } else { ins.k };
                a = match ins.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.wrapping_shl(operand),
                    0x70 => a.wrapping_shr(operand),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ operand,
                    other => panic!("unsupported alu op {other:#x}"),
                }
            }
            0x05 => {
                let operand = if ins.code & 0x08 != 0 { x } else { ins.k };
                let taken = match ins.code & 0xf0 {
                    0x00 => {
                        pc += ins.k as usize;
                        continue;
                    }
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    other => panic!("unsupported jump {other:#x}"),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            0x06 => return if ins.code & 0x10 != 0 { a } else { ins.k },
            _ => {
                if ins.code & 0xf8 == 0x80 {
                    a = x; // txa
                } else {
                    x = a; // tax
                }
            }
        }
    }
}

const MARK: u32 = 0x7461_7001;

fn check_seed(seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let cfg = common::config(&mut rng);
    let classifier = Classifier::compile(&cfg).unwrap();
    let prefilter = classifier.prefilter(Some(MARK));
    prop_assert!(bpf::is_well_formed(&prefilter.program));
    prop_assert!(prefilter.exact, "small rule sets fit");
    for _ in 0..64 {
        let p = common::packet(&mut rng);
        let frame = p.frame();
        let key = FlowKey::extract(&frame).unwrap();
        let verdict = run(&prefilter.program, &frame, 0);
        if let Some(d) = classifier.decide(p.direction, &key) {
            let needed = d.inner_len(frame.len()) as u32;
            prop_assert!(verdict >= needed, "accepted with {verdict} < {needed} bytes: {p:?}");
        }
        prop_assert_eq!(run(&prefilter.program, &frame, MARK), 0, "own output is dropped");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn prefilter_accepts_a_superset(seed in any::<u64>()) {
        check_seed(seed)?;
    }
}

#[test]
fn prefilter_is_not_trivially_accepting() {
    // A precise config: only TCP/443 from anywhere. ARP, UDP and other ports are dropped.
    let mut rng = Rng::new(1);
    let mut cfg = common::config(&mut rng);
    cfg.sessions.truncate(0);
    let doc = r#"{ "session_id": "tms-00000000000000001", "number": 1, "vni": 1, "enabled": true,
        "packet_length": 100, "target": { "address": "198.18.1.2" },
        "filter": { "filter_id": "tmf-00000000000000001",
          "ingress": [ { "rule_id": "tmfr-00000000000000011", "number": 1, "action": "accept", "protocol": 6,
                         "source_cidr": "0.0.0.0/0", "destination_cidr": "198.18.0.0/24",
                         "destination_ports": { "from": 443, "to": 443 } } ] } }"#;
    cfg.sessions.push(serde_json::from_str(doc).unwrap());
    let c = Classifier::compile(&cfg).unwrap();
    let pf = c.prefilter(None);
    assert_eq!(pf.snaplen, 100);
    use tapwire_wire::build::{FrameSpec, L4};
    let tcp = |port, dst: &str| {
        FrameSpec {
            destination: dst.parse().unwrap(),
            l4: L4::Tcp { source_port: 999, destination_port: port },
            ..Default::default()
        }
        .to_bytes()
    };
    assert_eq!(run(&pf.program, &tcp(443, "198.18.0.2"), 0), 100);
    assert_eq!(run(&pf.program, &tcp(444, "198.18.0.2"), 0), 0);
    assert_eq!(run(&pf.program, &tcp(443, "198.18.1.2"), 0), 0);
    let udp = FrameSpec { l4: L4::Udp { source_port: 999, destination_port: 443 }, ..Default::default() }.to_bytes();
    assert_eq!(run(&pf.program, &udp, 0), 0);
    assert_eq!(
        run(&pf.program, &tapwire_wire::build::arp_request([2, 0, 0, 0, 0, 1], [198, 18, 0, 1], [198, 18, 0, 2]), 0),
        0
    );
    // A session with no packet length makes the program return the whole-frame value.
    cfg.sessions[0].packet_length = None;
    let pf = Classifier::compile(&cfg).unwrap().prefilter(None);
    assert_eq!(run(&pf.program, &tcp(443, "198.18.0.2"), 0), bpf::WHOLE_FRAME_SNAPLEN);
    // No session can mirror anything: drop everything.
    cfg.sessions[0].enabled = false;
    let pf = Classifier::compile(&cfg).unwrap().prefilter(None);
    assert_eq!(run(&pf.program, &tcp(443, "198.18.0.2"), 0), 0);
}

#[test]
fn oversized_rule_sets_fall_back_to_all_ip() {
    let mut rng = Rng::new(3);
    let mut cfg = common::config(&mut rng);
    while cfg.sessions.is_empty() {
        cfg = common::config(&mut rng);
    }
    let s = &mut cfg.sessions[0];
    s.enabled = true;
    // 1,500 distinct accepting rules: far beyond 4,096 instructions.
    s.filter.ingress = (0..1500u32)
        .map(|i| {
            let doc = format!(
                r#"{{ "rule_id": "tmfr-{i:017x}", "number": {n}, "action": "accept", "protocol": 6,
                    "source_cidr": "198.18.{a}.{b}/32", "destination_cidr": "0.0.0.0/0",
                    "destination_ports": {{ "from": {p}, "to": {p} }} }}"#,
                n = i + 1,
                a = i / 256,
                b = i % 256,
                p = 1000 + i
            );
            serde_json::from_str(&doc).unwrap()
        })
        .collect();
    let c = Classifier::compile(&cfg).unwrap();
    let pf = c.prefilter(Some(MARK));
    assert!(!pf.exact);
    assert!(bpf::is_well_formed(&pf.program));
    for _ in 0..500 {
        let p = common::packet(&mut rng);
        let frame = p.frame();
        let key = FlowKey::extract(&frame).unwrap();
        if let Some(d) = c.decide(Direction::Ingress, &key) {
            assert!(run(&pf.program, &frame, 0) >= d.inner_len(frame.len()) as u32);
        }
    }
    let arp = tapwire_wire::build::arp_request([2, 0, 0, 0, 0, 1], [198, 18, 0, 1], [198, 18, 0, 2]);
    assert_eq!(run(&pf.program, &arp, 0), 0);
}

#[test]
fn the_capture_filter_takes_udp_to_its_port_and_first_fragments_only() {
    use tapwire_wire::build::{FrameSpec, L4};
    let program = bpf::udp_destination_port(4789);
    assert!(bpf::is_well_formed(&program));
    let v6 = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let udp = |port| L4::Udp { source_port: 50000, destination_port: port };
    let cases: [(&str, FrameSpec, bool); 9] = [
        ("IPv4 UDP to the port", FrameSpec { l4: udp(4789), ..FrameSpec::default() }, true),
        ("IPv4 UDP to another port", FrameSpec { l4: udp(4790), ..FrameSpec::default() }, false),
        (
            "IPv4 TCP to the port",
            FrameSpec { l4: L4::Tcp { source_port: 1, destination_port: 4789 }, ..FrameSpec::default() },
            false,
        ),
        ("IPv4 first fragment", FrameSpec { l4: udp(4789), more_fragments: true, ..FrameSpec::default() }, true),
        ("IPv4 later fragment", FrameSpec { l4: udp(4789), fragment_offset: 10, ..FrameSpec::default() }, false),
        (
            "IPv6 UDP to the port",
            FrameSpec {
                l4: udp(4789),
                source: v6("2001:db8::1"),
                destination: v6("2001:db8::2"),
                ..FrameSpec::default()
            },
            true,
        ),
        (
            "IPv6 first fragment",
            FrameSpec {
                l4: udp(4789),
                source: v6("2001:db8::1"),
                destination: v6("2001:db8::2"),
                more_fragments: true,
                ..FrameSpec::default()
            },
            true,
        ),
        (
            "IPv6 later fragment",
            FrameSpec {
                l4: udp(4789),
                source: v6("2001:db8::1"),
                destination: v6("2001:db8::2"),
                fragment_offset: 10,
                ..FrameSpec::default()
            },
            false,
        ),
        (
            "IPv6 UDP to another port",
            FrameSpec {
                l4: udp(53),
                source: v6("2001:db8::1"),
                destination: v6("2001:db8::2"),
                ..FrameSpec::default()
            },
            false,
        ),
    ];
    for (what, spec, accepted) in cases {
        let verdict = run(&program, &spec.to_bytes(), 0);
        assert_eq!(verdict != 0, accepted, "{what}");
        if accepted {
            assert_eq!(verdict, bpf::WHOLE_FRAME_SNAPLEN, "{what}: the frame is taken whole");
        }
    }
    let arp = tapwire_wire::build::arp_request([2, 0, 0, 0, 0, 1], [198, 18, 0, 1], [198, 18, 0, 2]);
    assert_eq!(run(&program, &arp, 0), 0);
    let sent = FrameSpec { l4: udp(4789), ..FrameSpec::default() }.to_bytes();
    assert_eq!(run_as(&program, &sent, 0, 4), 0, "the interface's own output is left out");
}
