//! Packets classified per second per core: tapwire (`Classifier::decide_frame_counted`,
//! the agent's per-frame call: parse and decide in one pass, per-session and per-rule
//! counters kept) against
//! libpcap's BPF filter (`pcap_offline_filter`) evaluating the equivalent tcpdump
//! expression, on the same realistic mix (TCP/UDP/ICMP, IPv4/IPv6, 802.1Q), with 1, 10,
//! 100 and 1,000 rules per direction in each of 3 sessions.
//!
//! Rules are all `accept`, so "mirrored" is the OR of the rules and the tcpdump
//! expression is exactly equivalent; setup checks both agree on every packet. Criterion
//! ids are `classify/tapwire/N` and `classify/libpcap/N`; a summary with decisions per
//! second, the ratio (tapwire and libpcap run in alternate rounds; the median of the
//! pairs' ratios, so a machine whose speed drifts moves both sides alike), and
//! nanoseconds per packet of flow-key extraction alone, of the
//! decision on a ready key alone, of both in sequence (`FlowKey::extract` + `decide`)
//! and of the fused `decide_frame` (the headline figure) is printed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ipnet::IpNet;
use tapwire_mirror::{Classifier, Counters};
use tapwire_model::config::{FilterConfig, InterfaceConfig, RuleConfig, SessionConfig, TargetEndpoint};
use tapwire_model::ids::IdSuffix;
use tapwire_model::{Direction, FilterId, NetworkInterfaceId, PortRange, RuleAction, RuleId, RuleMatch, SessionId};
use tapwire_wire::FlowKey;
use tapwire_wire::build::{FrameSpec, L4};

const RULE_COUNTS: [usize; 4] = [1, 10, 100, 1000];
const PACKETS: usize = 4096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn suffix(n: u64) -> IdSuffix {
    let b = n.to_be_bytes();
    IdSuffix::from_random([0, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn v4_addr(rng: &mut Rng) -> IpAddr {
    // 198.18.0.0/15, clustered so rules hit.
    IpAddr::from([198, 18 + rng.below(2) as u8, rng.below(256) as u8, rng.below(256) as u8])
}

fn v6_addr(rng: &mut Rng) -> IpAddr {
    let mut o = [0u8; 16];
    o[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    o[5] = rng.below(256) as u8;
    o[7] = rng.below(4) as u8;
    o[15] = rng.below(256) as u8;
    IpAddr::from(o)
}

fn rule(rng: &mut Rng, number: u32, id: u64) -> RuleConfig {
    let v6 = rng.below(10) < 3;
    let addr = |rng: &mut Rng| if v6 { v6_addr(rng) } else { v4_addr(rng) };
    let prefix = |rng: &mut Rng| -> u8 {
        if v6 {
            [0u8, 48, 56, 64, 128][rng.below(5) as usize]
        } else {
            [0u8, 16, 20, 24, 24, 28, 32][rng.below(7) as usize]
        }
    };
    let p1 = prefix(rng);
    // At most one side is "anywhere".
    let p2 = match prefix(rng) {
        0 if p1 == 0 => {
            if v6 {
                64
            } else {
                24
            }
        }
        p => p,
    };
    let source_cidr = IpNet::new(addr(rng), p1).unwrap().trunc();
    let destination_cidr = IpNet::new(addr(rng), p2).unwrap().trunc();
    let protocol = [None, Some(6), Some(6), Some(17), Some(if v6 { 58 } else { 1 })][rng.below(5) as usize];
    let ported = protocol.is_none_or(|p| p == 6 || p == 17) && rng.below(3) > 0;
    let range = |rng: &mut Rng| {
        let from = [22u16, 80, 443, 1024, 5000, 8080, 30000][rng.below(7) as usize];
        PortRange::new(from, from + [0u16, 0, 10, 1000][rng.below(4) as usize]).unwrap()
    };
    RuleConfig {
        rule_id: RuleId::from_suffix(suffix(id)),
        number: tapwire_model::RuleNumber::new(number).expect("rule numbers start at 1"),
        action: RuleAction::Accept,
        matches: RuleMatch {
            protocol,
            source_cidr,
            destination_cidr,
            source_ports: (ported && rng.below(4) == 0).then(|| range(rng)),
            destination_ports: ported.then(|| range(rng)),
        },
    }
}

fn config(rules_per_direction: usize) -> InterfaceConfig {
    let mut rng = Rng(rules_per_direction as u64);
    let mut id = 0u64;
    let sessions = (1..=3u32)
        .map(|number| {
            let mut list = |rng: &mut Rng| {
                (0..rules_per_direction)
                    .map(|i| {
                        id += 1;
                        rule(rng, i as u32 + 1, id)
                    })
                    .collect::<Vec<_>>()
            };
            let ingress = list(&mut rng);
            let egress = list(&mut rng);
            SessionConfig {
                session_id: SessionId::from_suffix(suffix(1_000_000 + u64::from(number))),
                number: tapwire_model::SessionNumber::new(number).expect("session numbers start at 1"),
                vni: tapwire_model::Vni::new(number).expect("small numbers are VNIs"),
                packet_length: tapwire_model::PacketLength::new(128),
                enabled: true,
                target: TargetEndpoint { address: "198.18.255.1".parse().unwrap(), port: 4789 },
                filter: FilterConfig {
                    filter_id: FilterId::from_suffix(suffix(2_000_000 + u64::from(number))),
                    network_services: Default::default(),
                    ingress,
                    egress,
                },
                limits: Default::default(),
                group: None,
            }
        })
        .collect();
    InterfaceConfig {
        schema: 1,
        revision: 1,
        network_interface_id: NetworkInterfaceId::from_suffix(suffix(1)),
        addresses: vec!["198.18.0.2".parse().unwrap()],
        dns_resolvers: vec![],
        sessions,
        unsupported: Vec::new(),
    }
}

/// The packet mix: 45 % TCP, 35 % UDP, 20 % ICMP; 30 % IPv6; 20 % 802.1Q-tagged.
/// The mix, back to back in one buffer at 16-byte boundaries as frames sit in a
/// TPACKET_V3 ring block (separate allocations would make the first read of each frame a
/// cache miss the agent never pays for).
fn packets() -> Vec<&'static [u8]> {
    let frames = frames();
    let aligned = |n: usize| n.div_ceil(16) * 16;
    let mut storage = Vec::with_capacity(frames.iter().map(|f| aligned(f.len())).sum());
    for f in &frames {
        storage.extend_from_slice(f);
        storage.resize(aligned(storage.len()), 0);
    }
    let storage: &'static [u8] = Box::leak(storage.into_boxed_slice());
    let mut at = 0;
    frames
        .iter()
        .map(|f| {
            let frame = &storage[at..at + f.len()];
            at += aligned(f.len());
            frame
        })
        .collect()
}

fn frames() -> Vec<Vec<u8>> {
    let mut rng = Rng(42);
    (0..PACKETS)
        .map(|_| {
            let v6 = rng.below(10) < 3;
            let addr = |rng: &mut Rng| if v6 { v6_addr(rng) } else { v4_addr(rng) };
            let port = |rng: &mut Rng| {
                if rng.below(2) == 0 {
                    [22u16, 80, 443, 1024, 5000, 8080, 30000][rng.below(7) as usize]
                } else {
                    1024 + rng.below(60000) as u16
                }
            };
            let l4 = match rng.below(20) {
                0..=8 => L4::Tcp { source_port: port(&mut rng), destination_port: port(&mut rng) },
                9..=15 => L4::Udp { source_port: port(&mut rng), destination_port: port(&mut rng) },
                _ => L4::Icmp { message_type: if v6 { 128 } else { 8 }, code: 0 },
            };
            let vlan_tags = if rng.below(5) == 0 { vec![(0x8100, 10 + rng.below(100) as u16)] } else { vec![] };
            FrameSpec {
                vlan_tags,
                source: addr(&mut rng),
                destination: addr(&mut rng),
                l4,
                payload_len: rng.below(200) as usize,
                ..FrameSpec::default()
            }
            .to_bytes()
        })
        .collect()
}

/// The tcpdump expression equivalent to the ingress rules of every session.
fn expression(cfg: &InterfaceConfig) -> String {
    let terms: Vec<String> = cfg
        .sessions
        .iter()
        .flat_map(|s| s.filter.ingress.iter())
        .map(|r| {
            let m = &r.matches;
            let v6 = m.source_cidr.addr().is_ipv6();
            let family = if v6 { "ip6" } else { "ip" };
            let mut parts = vec![family.to_owned()];
            let ported = m.source_ports.is_some() || m.destination_ports.is_some();
            match m.protocol {
                Some(p) => parts.push(format!("{family} proto {p}")),
                None if ported => parts.push(format!("({family} proto 6 or {family} proto 17)")),
                None => {}
            }
            for (dir, net) in [("src", m.source_cidr), ("dst", m.destination_cidr)] {
                if net.prefix_len() > 0 {
                    parts.push(format!("{dir} net {net}"));
                }
            }
            for (dir, range) in [("src", m.source_ports), ("dst", m.destination_ports)] {
                if let Some(r) = range {
                    parts.push(format!("{dir} portrange {}-{}", r.from, r.to));
                }
            }
            format!("({})", parts.join(" and "))
        })
        .collect();
    let any = terms.join(" or ");
    format!("({any}) or (vlan and ({any}))")
}

#[inline]
fn ours(classifier: &Classifier, counters: &mut Counters, frame: &[u8]) -> bool {
    matches!(classifier.decide_frame_counted(Direction::Ingress, frame, frame.len(), counters), Ok(Some(_)))
}

/// The two-stage path `decide_frame` fuses.
#[inline]
fn split(classifier: &Classifier, frame: &[u8]) -> bool {
    match FlowKey::extract(frame) {
        Ok(key) => classifier.decide(Direction::Ingress, &key).is_some(),
        Err(_) => false,
    }
}

/// Nanoseconds per packet of each stage, each measured alone (best round), of both in
/// sequence, and of the fused path the headline figure measures.
struct Stages {
    extract: f64,
    decide: f64,
    both: f64,
    fused: f64,
}

/// Decisions per second of `f` over `packets`: the median of several short rounds, a
/// central figure like criterion's (the best round flatters whichever side varies more),
/// yet robust to a round disturbed by other work on a shared machine; with the slowest
/// and fastest round, the spread the summary prints.
struct Rate {
    median: f64,
    low: f64,
    high: f64,
}

impl Rate {
    fn of(mut rates: Vec<f64>) -> Self {
        rates.sort_by(f64::total_cmp);
        Rate { median: rates[rates.len() / 2], low: rates[0], high: rates[rates.len() - 1] }
    }
}

const ROUNDS: usize = 7;

/// Decisions per second of one round of `f` over `packets`, lasting `budget`.
fn round(packets: &[&[u8]], budget: Duration, f: &mut impl FnMut(&[u8]) -> bool) -> f64 {
    let start = Instant::now();
    let mut decisions = 0u64;
    while start.elapsed() < budget {
        for p in packets {
            black_box(f(black_box(p)));
        }
        decisions += packets.len() as u64;
    }
    decisions as f64 / start.elapsed().as_secs_f64()
}

fn rate(packets: &[&[u8]], budget: Duration, mut f: impl FnMut(&[u8]) -> bool) -> Rate {
    Rate::of((0..ROUNDS).map(|_| round(packets, budget / ROUNDS as u32, &mut f)).collect())
}

/// `ours` and `theirs` in alternating rounds, each pair back to back: their rates, and
/// the ratio of each pair (ours / theirs), so a machine that speeds up or slows down
/// between rounds moves both sides of a ratio alike.
fn paired(
    packets: &[&[u8]],
    budget: Duration,
    mut ours: impl FnMut(&[u8]) -> bool,
    mut theirs: impl FnMut(&[u8]) -> bool,
) -> (Rate, Rate, Rate) {
    let each = budget / ROUNDS as u32;
    let pairs: Vec<(f64, f64)> =
        (0..ROUNDS).map(|_| (round(packets, each, &mut ours), round(packets, each, &mut theirs))).collect();
    (
        Rate::of(pairs.iter().map(|p| p.0).collect()),
        Rate::of(pairs.iter().map(|p| p.1).collect()),
        Rate::of(pairs.iter().map(|p| p.0 / p.1).collect()),
    )
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let packets = packets();
    let mut summary = Vec::new();
    // TAPWIRE_BENCH_RULES=1,10 limits the rule counts (libpcap takes minutes to compile 1,000).
    let counts: Vec<usize> = std::env::var("TAPWIRE_BENCH_RULES")
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|_| RULE_COUNTS.to_vec());
    for n in counts {
        let cfg = config(n);
        let classifier = Classifier::compile(&cfg).expect("bench config compiles");
        let expr = expression(&cfg);
        let compile_start = Instant::now();
        let program = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture").compile(&expr, true);
        let compile_time = compile_start.elapsed();
        let program = match program {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("libpcap could not compile the {n}-rule expression: {e}");
                None
            }
        };
        let mut counters = classifier.new_counters();
        let mirrored = packets.iter().filter(|p| ours(&classifier, &mut counters, p)).count();
        assert!(
            packets.iter().all(|p| ours(&classifier, &mut counters, p) == split(&classifier, p)),
            "fused and split paths differ"
        );
        if let Some(program) = &program {
            let disagree = packets.iter().filter(|p| ours(&classifier, &mut counters, p) != program.filter(p)).count();
            assert_eq!(disagree, 0, "tapwire and libpcap disagree on {disagree} packets at {n} rules");
        }

        let mut group = criterion.benchmark_group("classify");
        group.throughput(Throughput::Elements(packets.len() as u64));
        group.bench_function(format!("tapwire/{n}"), |b| {
            b.iter(|| packets.iter().filter(|p| ours(&classifier, &mut counters, black_box(p))).count())
        });
        if let Some(program) = &program {
            group.bench_function(format!("libpcap/{n}"), |b| {
                b.iter(|| packets.iter().filter(|p| program.filter(black_box(p))).count())
            });
        }
        group.finish();

        let budget = Duration::from_millis(700);
        let (ours_rate, theirs) = match &program {
            Some(prog) => {
                let (o, t, ratio) =
                    paired(&packets, 2 * budget, |p| ours(&classifier, &mut counters, p), |p| prog.filter(p));
                (o, Some((t, ratio)))
            }
            None => (rate(&packets, budget, |p| ours(&classifier, &mut counters, p)), None),
        };
        let split_rate = rate(&packets, budget, |p| split(&classifier, p));
        let keys: Vec<FlowKey> = packets.iter().filter_map(|p| FlowKey::extract(p).ok()).collect();
        // black_box the key: with `extract` inlined, `is_ok()` alone would let the
        // optimiser drop most of the parsing.
        let parse_rate = rate(&packets, budget, |p| black_box(FlowKey::extract(p)).is_ok()).median;
        let decide_rate = rate(&packets[..1], budget, |_| {
            keys.iter().filter(|k| classifier.decide(Direction::Ingress, black_box(k)).is_some()).count() > 0
        })
        .median
            * keys.len() as f64;
        eprintln!(
            "rules={n}: flow-key extraction alone {:.2}M/s, decide alone {:.2}M/s",
            parse_rate / 1e6,
            decide_rate / 1e6
        );
        let stages = Stages {
            extract: 1e9 / parse_rate,
            decide: 1e9 / decide_rate,
            both: 1e9 / split_rate.median,
            fused: 1e9 / ours_rate.median,
        };
        summary.push((n, mirrored, ours_rate, theirs, compile_time, stages));
    }
    criterion.final_summary();

    println!(
        "\nsummary ({PACKETS} packets, 3 sessions, rules per direction as listed, one core, median of {ROUNDS} \
         rounds [slowest, fastest], tapwire and libpcap in alternate rounds, the ratio of each pair; tapwire \
         counted):"
    );
    println!(
        "{:>6} {:>9} {:>24} {:>24} {:>14} {:>14} {:>30}",
        "rules", "mirrored", "tapwire dec/s", "libpcap dec/s", "ratio", "pcap compile", "ns: extract/decide/both/fused"
    );
    let range = |r: &Rate| format!("{:.1}M [{:.1}, {:.1}]", r.median / 1e6, r.low / 1e6, r.high / 1e6);
    for (n, mirrored, ours_rate, theirs, compile_time, stages) in summary {
        let (theirs_text, ratio) = match &theirs {
            // The median of the rounds' ratios, with the lowest and highest.
            Some((t, r)) => (range(t), format!("{:.2}x [{:.2}, {:.2}]", r.median, r.low, r.high)),
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        println!(
            "{n:>6} {mirrored:>9} {:>24} {theirs_text:>24} {ratio:>14} {:>13.1?} {:>30}",
            range(&ours_rate),
            compile_time,
            format!("{:.1} / {:.1} / {:.1} / {:.1}", stages.extract, stages.decide, stages.both, stages.fused),
        );
    }
}
