//! Telemetry between replicas: each replica writes the interfaces reported to it since
//! its last pass, and takes what the others wrote, through the shared store.
//!
//! - Bounded write rate: one transaction a pass ([`SHARE_EVERY`]) per replica, at most
//!   one row per interface reported to it in that time, whatever the agents' report rate.
//! - The later report wins, by arrival time, so a row read back never rolls an
//!   interface's totals back, and a report that lands on another replica next continues
//!   the totals the previous one kept ([`super::Monotonic`]) once a pass has carried them.
//! - A pass that cannot reach the store keeps its rows for the next one.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tapwire_control::Control;
use tapwire_model::NetworkInterfaceId;
use tapwire_store::{StoreError, TELEMETRY_PAGE, TelemetryRow};

use super::{InterfaceTelemetry, Telemetry};

/// How often a replica shares and takes telemetry.
pub const SHARE_EVERY: Duration = Duration::from_secs(1);

/// What one pass moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchanged {
    /// Rows written.
    pub written: usize,
    /// Rows of other replicas taken in (newer than what this one held).
    pub taken: usize,
}

impl Telemetry {
    /// One pass: writes this replica's new reports, then takes the others'.
    pub fn exchange(&self, control: &Control) -> Result<Exchanged, StoreError> {
        let dirty: Vec<NetworkInterfaceId> =
            self.dirty.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        let rows: Vec<TelemetryRow> = {
            let all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
            dirty
                .iter()
                .filter_map(|eni| {
                    let seen = all.get(eni)?;
                    let body = serde_json::to_string(seen).ok()?;
                    Some(TelemetryRow { key: eni.to_string(), at: seen.reported_at, body })
                })
                .collect()
        };
        if let Err(e) = control.share_telemetry(&rows) {
            self.dirty.lock().unwrap_or_else(PoisonError::into_inner).extend(dirty);
            return Err(e);
        }
        let mut taken = 0;
        loop {
            let (page, next) = control.shared_telemetry_since(self.cursor.load(Ordering::Relaxed))?;
            taken += self.take_in(&page);
            self.cursor.store(next, Ordering::Relaxed);
            if page.len() < TELEMETRY_PAGE {
                break;
            }
        }
        Ok(Exchanged { written: rows.len(), taken })
    }

    /// Rows from the store, each kept if later than this replica's own; how many were.
    fn take_in(&self, rows: &[TelemetryRow]) -> usize {
        let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = 0;
        for row in rows {
            let Ok(eni) = row.key.parse::<NetworkInterfaceId>() else { continue };
            if all.get(&eni).is_some_and(|mine| mine.reported_at >= row.at) {
                continue;
            }
            match serde_json::from_str::<InterfaceTelemetry>(&row.body) {
                Ok(seen) => {
                    all.insert(eni, seen);
                    taken += 1;
                }
                Err(e) => tracing::warn!(interface = %eni, error = %e, "shared telemetry that does not parse, skipped"),
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tapwire_model::AccountId;

    use super::*;

    fn report(mirrored: u64) -> serde_json::Value {
        json!({ "interface": { "sessions": [{ "session_id": "tms-1", "active": true,
                "mirrored_packets": mirrored, "mirrored_bytes": mirrored * 10 }] } })
    }

    fn row_of(t: &Telemetry, eni: NetworkInterfaceId) -> TelemetryRow {
        let all = t.all.lock().unwrap();
        let seen = &all[&eni];
        TelemetryRow { key: eni.to_string(), at: seen.reported_at, body: serde_json::to_string(seen).unwrap() }
    }

    fn mirrored(t: &Telemetry) -> u64 {
        t.snapshot(|_| true)[0].1.sessions["tms-1"].series.total(2)
    }

    #[test]
    fn a_replica_continues_the_totals_another_kept_and_never_rolls_back() {
        let eni: NetworkInterfaceId = "eni-0123456789abcdef0".parse().unwrap();
        let (a, b) = (Telemetry::default(), Telemetry::default());
        a.record(eni, AccountId::DEFAULT, Some(1), report(10), 100.0).unwrap();
        a.record(eni, AccountId::DEFAULT, Some(1), report(3), 110.0).unwrap();
        assert_eq!(mirrored(&a), 13, "the agent restarted once");
        assert_eq!(b.take_in(&[row_of(&a, eni)]), 1);
        // The agent's next report lands on b: b goes on from a's totals.
        b.record(eni, AccountId::DEFAULT, Some(1), report(8), 120.0).unwrap();
        assert_eq!(mirrored(&b), 18);
        let newer = row_of(&b, eni);
        assert_eq!(a.take_in(std::slice::from_ref(&newer)), 1);
        assert_eq!(mirrored(&a), 18, "a shows what b heard");
        let stale = TelemetryRow { at: 105.0, ..newer };
        assert_eq!(a.take_in(&[stale]), 0, "an older row never replaces a later one");
        assert_eq!(mirrored(&a), 18);
    }
}
