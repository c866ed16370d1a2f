//! Every packet view and the flow-key extraction accept any bytes without panicking,
//! and an extracted key respects its documented invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_wire::{FlowKey, icmp, ipv4, ipv6, tcp, udp, vlan, vxlan};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = FlowKey::extract(data) {
        assert!(usize::from(key.l3_offset) < data.len());
        assert!(key.l4_offset >= key.l3_offset);
        assert!(key.ports.is_none() || matches!(key.protocol, 6 | 17));
        assert_eq!(key.source.is_ipv6(), key.destination.is_ipv6());
    }
    // Each view on its own, at every accessor.
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (p.payload(), p.header(), p.verify_checksum(), p.is_fragment(), p.source(), p.destination());
        let _ = ipv4::Repr::parse(&p);
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = (p.payload(), p.upper_layer(), p.flow_label(), p.traffic_class());
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        let _ = (p.payload(), p.flags(), tcp::Repr::parse(&p));
    }
    if let Ok(p) = udp::Packet::new_checked(data) {
        let _ = p.payload();
    }
    if let Ok(p) = icmp::Packet::new_checked(data) {
        let _ = (p.payload(), p.rest_of_header());
    }
    if let Ok(t) = vlan::Tag::new_checked(data) {
        let _ = (t.payload(), t.vlan_id());
    }
    if let Ok(v) = vxlan::Packet::new_checked(data) {
        let _ = (v.vni(), v.payload());
    }
});
