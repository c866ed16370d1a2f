//! Configurations, frames and a pipeline over memory for the agent's tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;

use tapwire_agent::applied::{AppliedConfig, ConfigSlot, RouteLookup};
use tapwire_agent::offload::OffloadMode;
use tapwire_agent::output::RecordingTransmit;
use tapwire_agent::pipeline::{Oversize, Pipeline, PipelineSettings};
use tapwire_model::config::InterfaceConfig;
use tapwire_wire::build::{FrameSpec, L4};

pub const MARK: u32 = 0x7477_4d31;
pub const INTERFACE_V4: &str = "198.18.0.1";
pub const TARGET_V4: &str = "198.18.0.3";

/// A session: (id suffix digit, number, vni, packet length, ingress rules, egress rules),
/// rules as JSON objects without ids.
pub struct S {
    pub number: u32,
    pub vni: u32,
    pub packet_length: Option<u16>,
    pub ingress: Vec<serde_json::Value>,
    pub egress: Vec<serde_json::Value>,
}

pub fn accept_all(number: u32) -> serde_json::Value {
    serde_json::json!({"number": number, "action": "accept", "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0"})
}

pub fn accept_all_v6(number: u32) -> serde_json::Value {
    serde_json::json!({"number": number, "action": "accept", "source_cidr": "::/0", "destination_cidr": "::/0"})
}

pub fn udp_port(number: u32, action: &str, port: u16) -> serde_json::Value {
    serde_json::json!({"number": number, "action": action, "protocol": 17, "source_cidr": "0.0.0.0/0",
        "destination_cidr": "0.0.0.0/0", "destination_ports": {"from": port, "to": port}})
}

pub fn config(revision: u64, sessions: &[S]) -> InterfaceConfig {
    let mut rule_counter = 0;
    let sessions: Vec<serde_json::Value> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut rules = |list: &Vec<serde_json::Value>| -> Vec<serde_json::Value> {
                list.iter()
                    .map(|r| {
                        rule_counter += 1;
                        let mut r = r.clone();
                        r["rule_id"] = format!("tmfr-{rule_counter:017x}").into();
                        r
                    })
                    .collect()
            };
            let mut session = serde_json::json!({
                "session_id": format!("tms-{:017x}", i + 1), "number": s.number, "vni": s.vni, "enabled": true,
                "target": {"address": TARGET_V4, "port": 4789},
                "filter": {"filter_id": format!("tmf-{:017x}", i + 1), "network_services": [],
                           "ingress": rules(&s.ingress), "egress": rules(&s.egress)}
            });
            if let Some(len) = s.packet_length {
                session["packet_length"] = len.into();
            }
            session
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "schema": 1, "revision": revision, "network_interface_id": "eni-0123456789abcdef0",
        "addresses": [INTERFACE_V4, "2001:db8::1"], "sessions": sessions
    }))
    .unwrap()
}

pub struct Harness {
    pub slot: Arc<ConfigSlot>,
    pub pipeline: Pipeline<RecordingTransmit>,
}

pub fn harness(offload: OffloadMode, interface_mtu: usize) -> Harness {
    let slot = Arc::new(ConfigSlot::default());
    let settings = PipelineSettings { offload, interface_mtu, batch_size: 8, oversize: Oversize::Truncate };
    Harness { pipeline: Pipeline::new(settings, Arc::clone(&slot), RecordingTransmit::default()), slot }
}

impl Harness {
    pub fn apply(&mut self, cfg: InterfaceConfig, path_mtu: u32) {
        let applied =
            AppliedConfig::build(cfg, MARK, OffloadMode::Segment, &move |_| RouteLookup::Mtu(path_mtu)).unwrap();
        self.slot.publish(Arc::new(applied));
        assert!(self.pipeline.refresh().is_some());
    }
}

pub fn udp_frame(src: &str, dst: &str, dport: u16, payload_len: usize) -> Vec<u8> {
    let source: IpAddr = src.parse().unwrap();
    let destination: IpAddr = dst.parse().unwrap();
    FrameSpec {
        source,
        destination,
        l4: L4::Udp { source_port: 40000, destination_port: dport },
        payload_len,
        ..Default::default()
    }
    .to_bytes()
}

pub fn tcp_frame(src: &str, dst: &str, payload_len: usize) -> Vec<u8> {
    let source: IpAddr = src.parse().unwrap();
    let destination: IpAddr = dst.parse().unwrap();
    FrameSpec {
        source,
        destination,
        l4: L4::Tcp { source_port: 40000, destination_port: 5201 },
        payload_len,
        ..Default::default()
    }
    .to_bytes()
}
