//! Any frame, in either direction, through a fixed classifier: decide, count,
//! encapsulate, never panic; copies have the documented size.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tapwire_mirror::{Classifier, OuterMacs};
use tapwire_model::Direction;
use tapwire_model::config::InterfaceConfig;
use tapwire_wire::FlowKey;

const CONFIG: &str = r#"{ "schema": 1, "revision": 1, "network_interface_id": "eni-0123456789abcdef0",
  "addresses": ["198.18.0.2", "2001:db8::2"], "dns_resolvers": ["198.18.0.53"],
  "sessions": [ { "session_id": "tms-0123456789abcdef0", "number": 1, "vni": 42, "packet_length": 96,
    "enabled": true, "target": { "address": "198.18.1.2" },
    "filter": { "filter_id": "tmf-0123456789abcdef0", "network_services": ["amazon-dns"],
      "ingress": [ { "rule_id": "tmfr-0123456789abcdef0", "number": 1, "action": "reject", "protocol": 6,
                     "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                     "destination_ports": { "from": 22, "to": 22 } },
                   { "rule_id": "tmfr-0123456789abcdef1", "number": 2, "action": "accept",
                     "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ],
      "egress": [ { "rule_id": "tmfr-0123456789abcdef2", "number": 1, "action": "accept",
                    "source_cidr": "::/0", "destination_cidr": "2001:db8::/32" } ] } } ] }"#;

static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(|| {
    let cfg: InterfaceConfig = serde_json::from_str(CONFIG).expect("fixture parses");
    Classifier::compile(&cfg).expect("fixture compiles")
});

fuzz_target!(|data: &[u8]| {
    let Some((&first, frame)) = data.split_first() else { return };
    let direction = if first & 1 == 0 { Direction::Ingress } else { Direction::Egress };
    let Ok(key) = FlowKey::extract(frame) else { return };
    let mut counters = CLASSIFIER.new_counters();
    if let Some(d) = CLASSIFIER.decide_counted(direction, &key, frame.len(), &mut counters) {
        let mut out = vec![0u8; frame.len() + 70];
        let len = CLASSIFIER.encapsulate(&d, frame, OuterMacs::default(), &mut out).expect("buffer is large enough");
        assert_eq!(len, 50 + d.inner_len(frame.len()));
    }
    let _ = CLASSIFIER.prefilter(Some(1));
});
