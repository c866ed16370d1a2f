//! A pipeline's counters as people see them: folded per session and rule ID when the
//! configuration changes, so totals are cumulative, and the interface report built from
//! them.

use std::net::SocketAddr;

use super::{Pipeline, Transmit};
use crate::report::{InterfaceReport, RuleReport, SessionReport};

impl<T: Transmit> Pipeline<T> {
    pub(super) fn retire_counters(&mut self) {
        let (sessions, rules) = self.current_reports();
        for s in sessions {
            let entry = self.retired_sessions.entry(s.session_id.clone()).or_default();
            let mut merged = s.clone();
            merged.add_counts(entry);
            merged.active = false;
            *entry = merged;
        }
        for r in rules {
            let entry = self.retired_rules.entry(r.rule_id.clone()).or_default();
            let mut merged = r.clone();
            merged.add_counts(entry);
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
                s.add_counts(old);
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
                r.add_counts(old);
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
