//! The compiled classifier agrees with a naive matcher written straight from the
//! semantics (see the crate docs), on random EC2- and Alibaba-style rule sets and random
//! IPv4/IPv6, tagged/untagged, fragmented and truncated packets.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Rng, TestPacket, Truth};
use proptest::prelude::*;
use tapwire_mirror::{Classifier, Counters};
use tapwire_model::config::{InterfaceConfig, RuleConfig};
use tapwire_model::resource::NetworkService;
use tapwire_model::{Direction, RuleAction, RuleId, SessionId};
use tapwire_wire::FlowKey;

/// (session, rule) that mirrors the packet; rule `None` = the amazon-dns service.
fn reference(cfg: &InterfaceConfig, direction: Direction, t: &Truth) -> Option<(SessionId, Option<RuleId>)> {
    let dhcp = if t.source.is_ipv6() { [546, 547] } else { [67, 68] };
    if t.protocol == 17 && t.ports.is_some_and(|(s, d)| dhcp.contains(&s) && dhcp.contains(&d)) {
        return None;
    }
    let is_dns = matches!(t.protocol, 6 | 17)
        && t.ports.is_some_and(|(s, d)| {
            (d == 53 && cfg.dns_resolvers.contains(&t.destination))
                || (s == 53 && cfg.dns_resolvers.contains(&t.source))
        });
    let mut sessions: Vec<_> = cfg.sessions.iter().filter(|s| s.enabled).collect();
    sessions.sort_by_key(|s| s.number);
    for s in sessions {
        if is_dns && s.filter.network_services.contains(&NetworkService::AmazonDns) {
            return Some((s.session_id, None));
        }
        let list = match direction {
            Direction::Ingress => &s.filter.ingress,
            Direction::Egress => &s.filter.egress,
        };
        let mut rules: Vec<&RuleConfig> = list.iter().collect();
        rules.sort_by_key(|r| r.number);
        if let Some(r) = rules.into_iter().find(|r| rule_matches(r, t))
            && r.action == RuleAction::Accept
        {
            return Some((s.session_id, Some(r.rule_id)));
        }
    }
    None
}

fn rule_matches(r: &RuleConfig, t: &Truth) -> bool {
    let m = &r.matches;
    if m.protocol.is_some_and(|p| p != t.protocol) {
        return false;
    }
    if !m.source_cidr.contains(&t.source) || !m.destination_cidr.contains(&t.destination) {
        return false;
    }
    if m.source_ports.is_none() && m.destination_ports.is_none() {
        return true;
    }
    let Some((sp, dp)) = t.ports.filter(|_| matches!(t.protocol, 6 | 17)) else {
        return false;
    };
    m.source_ports.is_none_or(|r| r.from <= sp && sp <= r.to)
        && m.destination_ports.is_none_or(|r| r.from <= dp && dp <= r.to)
}

fn check_seed(seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    let cfg = common::config(&mut rng);
    let classifier = Classifier::compile(&cfg).unwrap();
    let mut counters: Counters = classifier.new_counters();
    let mut expected_mirrors = 0u64;
    for _ in 0..64 {
        let p: TestPacket = common::packet(&mut rng);
        let frame = p.frame();
        let key = FlowKey::extract(&frame).unwrap();
        let want = reference(&cfg, p.direction, &p.truth());
        let got = classifier.decide(p.direction, &key);
        let got_ids = got.map(|d| {
            let s = &classifier.sessions()[usize::from(d.session)];
            (s.session_id, d.rule.map(|r| classifier.rules()[r as usize].rule_id))
        });
        prop_assert_eq!(got_ids, want, "packet {:?}", p);
        if let Some(d) = got {
            let s = &classifier.sessions()[usize::from(d.session)];
            prop_assert_eq!((d.vni, d.packet_length, d.target), (s.vni, s.packet_length, s.target));
            expected_mirrors += 1;
        }
        let counted = classifier.decide_counted(p.direction, &key, frame.len(), &mut counters);
        prop_assert_eq!(counted, got);
    }
    let mirrored: u64 = counters.sessions.iter().map(|s| s.mirrored_packets).sum();
    prop_assert_eq!(mirrored, expected_mirrors);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn classifier_agrees_with_reference(seed in any::<u64>()) {
        check_seed(seed)?;
    }
}

#[test]
fn reject_passes_to_next_session_and_first_accept_wins() {
    let doc = r#"{ "schema": 1, "revision": 1, "network_interface_id": "eni-0123456789abcdef0",
      "addresses": ["198.18.0.2"], "dns_resolvers": ["198.18.0.53"],
      "sessions": [
        { "session_id": "tms-00000000000000002", "number": 2, "vni": 2, "enabled": true,
          "target": { "address": "198.18.1.2" },
          "filter": { "filter_id": "tmf-00000000000000002",
            "ingress": [ { "rule_id": "tmfr-00000000000000021", "number": 1, "action": "accept",
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ] } },
        { "session_id": "tms-00000000000000001", "number": 1, "vni": 1, "enabled": true,
          "target": { "address": "198.18.1.2" },
          "filter": { "filter_id": "tmf-00000000000000001", "network_services": ["amazon-dns"],
            "ingress": [ { "rule_id": "tmfr-00000000000000011", "number": 5, "action": "reject", "protocol": 6,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" },
                         { "rule_id": "tmfr-00000000000000012", "number": 9, "action": "accept",
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ] } } ] }"#;
    let cfg: InterfaceConfig = serde_json::from_str(doc).unwrap();
    let c = Classifier::compile(&cfg).unwrap();
    let key = |l4| FlowKey::extract(&tapwire_wire::build::FrameSpec { l4, ..Default::default() }.to_bytes()).unwrap();
    let tcp = key(tapwire_wire::build::L4::Tcp { source_port: 1000, destination_port: 80 });
    let udp = key(tapwire_wire::build::L4::Udp { source_port: 1000, destination_port: 80 });
    let d = c.decide(Direction::Ingress, &tcp).unwrap();
    assert_eq!(
        (d.vni, c.rules()[d.rule.unwrap() as usize].number),
        (2, 1),
        "session 1 rejects TCP, session 2 takes it"
    );
    let d = c.decide(Direction::Ingress, &udp).unwrap();
    assert_eq!((d.vni, c.rules()[d.rule.unwrap() as usize].number), (1, 9));
    assert_eq!(c.decide(Direction::Egress, &tcp), None, "no egress rules");
    // DNS to the resolver: session 1's service takes it despite its reject rule.
    let dns = tapwire_wire::build::FrameSpec {
        destination: "198.18.0.53".parse().unwrap(),
        l4: tapwire_wire::build::L4::Tcp { source_port: 1000, destination_port: 53 },
        ..Default::default()
    };
    let d = c.decide(Direction::Egress, &FlowKey::extract(&dns.to_bytes()).unwrap()).unwrap();
    assert_eq!((d.vni, d.rule), (1, None));
}

#[test]
fn thousands_of_rules_agree_with_reference() {
    let mut rng = Rng::new(11);
    let mut cfg = common::config(&mut rng);
    while cfg.sessions.len() < 2 {
        cfg = common::config(&mut rng);
    }
    // Grow each direction of each session to 2,000 rules by renumbering copies.
    for s in &mut cfg.sessions {
        s.enabled = true;
        for list in [&mut s.filter.ingress, &mut s.filter.egress] {
            let mut extra = Vec::new();
            let mut gen_rng = Rng::new(list.len() as u64 + 99);
            while list.len() + extra.len() < 2000 {
                let mut p = common::config(&mut gen_rng);
                if let Some(r) = p.sessions.iter_mut().flat_map(|s| s.filter.ingress.drain(..)).next() {
                    extra.push(r);
                }
            }
            list.extend(extra);
            for (i, r) in list.iter_mut().enumerate() {
                r.number = tapwire_model::RuleNumber::new(i as u32 + 1).unwrap();
            }
        }
    }
    let c = Classifier::compile(&cfg).unwrap();
    for _ in 0..500 {
        let p = common::packet(&mut rng);
        let key = FlowKey::extract(&p.frame()).unwrap();
        let want = reference(&cfg, p.direction, &p.truth());
        let got = c
            .decide(p.direction, &key)
            .map(|d| (c.sessions()[usize::from(d.session)].session_id, d.rule.map(|r| c.rules()[r as usize].rule_id)));
        assert_eq!(got, want);
    }
}
