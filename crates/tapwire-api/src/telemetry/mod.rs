//! What agents report, kept at the control plane: per interface the latest report, and
//! per session, rule and interface the counters as monotonic totals with a rate.
//!
//! - Agents count from zero when they start; a report whose counter is lower than the
//!   last one is a restart, so the last value is folded into a base and the total keeps
//!   rising ([`Monotonic`]), as a Prometheus counter must.
//! - A rate is the rise of a total between two reports over their time apart.
//! - Bounded: a report carries at most [`MAX_SESSIONS`] sessions and [`MAX_RULES`] rules
//!   (more is refused), one entry per registered interface; entries of interfaces that
//!   are gone are dropped when the views are read.
//! - In memory, and on a shared store also shared between replicas ([`sharing`]): an
//!   agent may report to any replica, and every replica shows the same. Alone on its
//!   store, a server restarted hears again within an agent's report interval, and the
//!   totals start again from what it says.

pub mod sharing;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tapwire_model::{AccountId, NetworkInterfaceId};

/// Most sessions one report may carry.
pub const MAX_SESSIONS: usize = 1_000;
/// Most rules one report may carry.
pub const MAX_RULES: usize = 20_000;

/// The session counters agents report, by their field names.
pub const SESSION_COUNTERS: &[&str] = &[
    "matched_packets",
    "matched_bytes",
    "mirrored_packets",
    "mirrored_bytes",
    "truncated_packet_length",
    "truncated_path_mtu",
    "fragmented",
    "truncated_offload",
    "segmented_frames",
    "segments",
    "checksums_completed",
    "sent_routed",
    "dropped_send_busy",
    "dropped_send_error",
    "dropped_no_route",
    "sampled_out",
    "rate_limited",
];
/// The rule counters.
pub const RULE_COUNTERS: &[&str] = &["matched_packets", "matched_bytes"];
/// The interface counters (capture and ring).
pub const INTERFACE_COUNTERS: &[&str] = &[
    "frames_ingress",
    "frames_egress",
    "ring_packets",
    "ring_drops",
    "ring_freezes",
    "ignored_not_ip",
    "ignored_malformed",
    "filter_errors",
    "poll_errors",
    "reattached",
];

/// A total fed by values that restart from zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monotonic {
    base: u64,
    last: u64,
}

impl Monotonic {
    /// Takes a reported value.
    pub fn observe(&mut self, value: u64) {
        if value < self.last {
            self.base += self.last;
        }
        self.last = value;
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.base + self.last
    }
}

/// Totals of one set of counters, and the rate of the first two (packets, bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    totals: Vec<Monotonic>,
    previous: Option<(f64, u64, u64)>,
    /// Packets a second over the last two reports (of the series' rate counter).
    pub packets_per_second: f64,
    /// Bytes a second likewise.
    pub bytes_per_second: f64,
}

impl Series {
    fn observe(&mut self, names: &[&str], values: &Value, at: f64, rate_fields: (usize, usize)) {
        if self.totals.len() != names.len() {
            self.totals = vec![Monotonic::default(); names.len()];
        }
        for (total, name) in self.totals.iter_mut().zip(names) {
            total.observe(values[*name].as_u64().unwrap_or(0));
        }
        let (p, b) = (self.totals[rate_fields.0].total(), self.totals[rate_fields.1].total());
        if let Some((then, p0, b0)) = self.previous
            && at > then
        {
            self.packets_per_second = p.saturating_sub(p0) as f64 / (at - then);
            self.bytes_per_second = b.saturating_sub(b0) as f64 / (at - then);
        }
        self.previous = Some((at, p, b));
    }

    /// The total of counter `i` of the series' list.
    pub fn total(&self, i: usize) -> u64 {
        self.totals.get(i).map_or(0, Monotonic::total)
    }

    /// Totals by name.
    pub fn named(&self, names: &[&'static str]) -> BTreeMap<&'static str, u64> {
        names.iter().enumerate().map(|(i, n)| (*n, self.total(i))).collect()
    }
}

/// One session as one interface's agent reported it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionSeen {
    /// Counters.
    pub series: Series,
    /// Why the agent does not mirror it, when so.
    pub failed: Option<String>,
    /// In the agent's applied configuration.
    pub active: bool,
}

/// What the control plane knows of one interface's agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterfaceTelemetry {
    /// Owner.
    pub account: AccountId,
    /// Revision the agent runs.
    pub applied_revision: Option<u64>,
    /// When the latest report came (seconds since the epoch, with a fraction).
    pub reported_at: f64,
    /// The latest report as sent.
    pub report: Value,
    /// Interface counters.
    pub interface: Series,
    /// By session ID.
    pub sessions: BTreeMap<String, SessionSeen>,
    /// By rule ID.
    pub rules: BTreeMap<String, Series>,
}

/// The latest report of an interface, as the inventory shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentReport {
    /// The configuration revision the agent's data plane runs with.
    pub applied_revision: Option<u64>,
    /// When the report arrived (seconds since the epoch).
    pub reported_at: u64,
    /// The report as sent (counters per session and rule).
    pub report: Value,
}

/// Every interface's telemetry.
#[derive(Debug, Default)]
pub struct Telemetry {
    all: Mutex<HashMap<NetworkInterfaceId, InterfaceTelemetry>>,
    /// Interfaces reported to this replica since the last [`sharing`] pass.
    dirty: Mutex<HashSet<NetworkInterfaceId>>,
    /// How far this replica has read the other replicas' telemetry.
    cursor: std::sync::atomic::AtomicU64,
}

/// Why a report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReportTooLarge(String);

impl Telemetry {
    /// Takes a report of `eni` (of `account`) that came at `at`.
    pub fn record(
        &self,
        eni: NetworkInterfaceId,
        account: AccountId,
        applied_revision: Option<u64>,
        report: Value,
        at: f64,
    ) -> Result<(), ReportTooLarge> {
        let interface = &report["interface"];
        let sessions = interface["sessions"].as_array().map_or(&[][..], Vec::as_slice);
        let rules = interface["rules"].as_array().map_or(&[][..], Vec::as_slice);
        if sessions.len() > MAX_SESSIONS || rules.len() > MAX_RULES {
            return Err(ReportTooLarge(format!(
                "A report carries at most {MAX_SESSIONS} sessions and {MAX_RULES} rules."
            )));
        }
        let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = all.entry(eni).or_insert_with(|| InterfaceTelemetry {
            account,
            applied_revision,
            reported_at: at,
            report: Value::Null,
            interface: Series::default(),
            sessions: BTreeMap::new(),
            rules: BTreeMap::new(),
        });
        entry.account = account;
        entry.applied_revision = applied_revision;
        entry.reported_at = at;
        entry.interface.observe(INTERFACE_COUNTERS, &interface["counters"], at, (0, 1));
        for s in sessions {
            let Some(id) = s["session_id"].as_str() else { continue };
            let seen = entry.sessions.entry(id.to_owned()).or_default();
            seen.series.observe(SESSION_COUNTERS, s, at, (2, 3));
            seen.failed = s["failed"].as_str().map(str::to_owned);
            seen.active = s["active"].as_bool().unwrap_or(false);
        }
        for r in rules {
            let Some(id) = r["rule_id"].as_str() else { continue };
            entry.rules.entry(id.to_owned()).or_default().observe(RULE_COUNTERS, r, at, (0, 1));
        }
        entry.report = report;
        drop(all);
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner).insert(eni);
        Ok(())
    }

    /// The latest report of `eni`.
    pub fn latest(&self, eni: NetworkInterfaceId) -> Option<AgentReport> {
        let all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(&eni).map(|t| AgentReport {
            applied_revision: t.applied_revision,
            reported_at: t.reported_at as u64,
            report: t.report.clone(),
        })
    }

    /// A copy of the telemetry of every interface `keep` says still exists; the others
    /// are forgotten.
    pub fn snapshot(&self, keep: impl Fn(NetworkInterfaceId) -> bool) -> Vec<(NetworkInterfaceId, InterfaceTelemetry)> {
        let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|eni, _| keep(*eni));
        let mut out: Vec<_> = all.iter().map(|(k, v)| (*k, v.clone())).collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(mirrored: u64, ring_drops: u64) -> Value {
        json!({ "interface": {
            "counters": { "frames_ingress": mirrored, "ring_drops": ring_drops },
            "sessions": [{ "session_id": "tms-1", "active": true, "mirrored_packets": mirrored,
                           "mirrored_bytes": mirrored * 100 }],
            "rules": [{ "rule_id": "tmfr-1", "matched_packets": mirrored }] } })
    }

    #[test]
    fn totals_survive_an_agent_restart_and_rates_follow_reports() {
        let t = Telemetry::default();
        let eni: NetworkInterfaceId = "eni-0123456789abcdef0".parse().unwrap();
        let account = AccountId::DEFAULT;
        t.record(eni, account, Some(1), report(10, 1), 100.0).unwrap();
        t.record(eni, account, Some(1), report(30, 2), 102.0).unwrap();
        // The agent restarted: it counts from zero again.
        t.record(eni, account, Some(1), report(5, 0), 103.0).unwrap();
        let [(_, seen)] = t.snapshot(|_| true).try_into().unwrap();
        let s = &seen.sessions["tms-1"].series;
        assert_eq!(s.total(2), 35, "30 before the restart and 5 after");
        assert_eq!(s.packets_per_second, 5.0);
        assert_eq!(seen.rules["tmfr-1"].total(0), 35);
        assert_eq!(seen.interface.named(INTERFACE_COUNTERS)["ring_drops"], 2);
        assert!(t.snapshot(|_| false).is_empty() && t.latest(eni).is_none(), "a gone interface is forgotten");
    }

    #[test]
    fn a_report_too_large_is_refused() {
        let t = Telemetry::default();
        let many: Vec<Value> = (0..=MAX_SESSIONS).map(|i| json!({ "session_id": format!("tms-{i}") })).collect();
        let r = json!({ "interface": { "sessions": many } });
        assert!(t.record("eni-0123456789abcdef0".parse().unwrap(), AccountId::DEFAULT, None, r, 1.0).is_err());
    }
}
