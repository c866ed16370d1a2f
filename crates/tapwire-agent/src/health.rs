//! Health checks of sensor-group members: the agent probes each member that its group
//! asks to be checked (`--health-check tcp:PORT`) with a TCP connect, from this host, as
//! the copies go. A member that fails [`FAILS_TO_DOWN`] probes in a row is left out of
//! its groups (their Maglev tables are rebuilt, so only its flows move); one that passes
//! [`PASSES_TO_UP`] in a row is taken back. When every member of a group is down the group
//! keeps them all (fail open, as load balancers do): copies to a sensor that may be
//! listening beat none.
//!
//! Why the agents and not the server: the path that matters is this host's to the sensor
//! (a partition may cut one host off and not another), and a verdict here changes the
//! data plane without a round trip through the control plane.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Time between probes of a member.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Longest a probe waits for the connection.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(400);
/// Failed probes in a row that take a member out.
pub const FAILS_TO_DOWN: u32 = 2;
/// Passed probes in a row that take it back.
pub const PASSES_TO_UP: u32 = 2;

/// What the agent knows of one probed member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHealth {
    /// Serving copies (members start healthy: no verdict until probes say otherwise).
    pub healthy: bool,
    /// Probes made.
    pub checks: u64,
    /// Probes failed.
    pub failed_checks: u64,
    /// Times it went down or came back.
    pub transitions: u64,
    #[serde(skip)]
    in_row: u32,
}

/// Every probed member's health, by the address probed.
#[derive(Debug, Default)]
pub struct Health {
    members: Mutex<HashMap<SocketAddr, MemberHealth>>,
}

impl Health {
    /// Whether copies may go to the member probed at `probe` (an unprobed one may).
    pub fn is_healthy(&self, probe: SocketAddr) -> bool {
        self.members.lock().unwrap_or_else(PoisonError::into_inner).get(&probe).is_none_or(|m| m.healthy)
    }

    /// The health of the member probed at `probe`, if it is.
    pub fn of(&self, probe: SocketAddr) -> Option<MemberHealth> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner).get(&probe).copied()
    }

    /// Takes one probe's outcome; whether the member's verdict changed.
    pub fn record(&self, probe: SocketAddr, passed: bool) -> bool {
        let mut all = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let m = all.entry(probe).or_insert(MemberHealth { healthy: true, ..MemberHealth::default() });
        m.checks += 1;
        m.failed_checks += u64::from(!passed);
        if passed == m.healthy {
            m.in_row = 0;
            return false;
        }
        m.in_row += 1;
        let needed = if m.healthy { FAILS_TO_DOWN } else { PASSES_TO_UP };
        if m.in_row < needed {
            return false;
        }
        m.healthy = passed;
        m.in_row = 0;
        m.transitions += 1;
        if passed {
            tracing::info!(member = %probe, "a sensor-group member passes its health checks again; it takes flows");
        } else {
            tracing::warn!(member = %probe, "a sensor-group member failed its health checks; its flows move to the others");
        }
        true
    }

    /// Forgets members no longer probed.
    pub fn retain(&self, probed: &[SocketAddr]) {
        self.members.lock().unwrap_or_else(PoisonError::into_inner).retain(|a, _| probed.contains(a));
    }

    /// Probes every address in `probes` at once; whether any verdict changed.
    pub fn probe_all(&self, probes: &[SocketAddr]) -> bool {
        let outcomes: Vec<(SocketAddr, bool)> = std::thread::scope(|scope| {
            let running: Vec<_> = probes
                .iter()
                .map(|&a| scope.spawn(move || (a, TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok())))
                .collect();
            running.into_iter().filter_map(|t| t.join().ok()).collect()
        });
        self.retain(probes);
        outcomes.into_iter().fold(false, |changed, (a, passed)| self.record(a, passed) | changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_goes_down_after_two_failures_and_comes_back_after_two_passes() {
        let h = Health::default();
        let a: SocketAddr = "198.18.9.1:8080".parse().unwrap();
        assert!(h.is_healthy(a), "unprobed members serve");
        assert!(!h.record(a, false) && h.is_healthy(a), "one failure is not enough");
        assert!(h.record(a, false) && !h.is_healthy(a));
        assert!(!h.record(a, true) && !h.is_healthy(a));
        assert!(!h.record(a, false), "a failure between passes starts the count again");
        assert!(!h.record(a, true) && h.record(a, true) && h.is_healthy(a));
        let m = h.of(a).unwrap();
        assert_eq!((m.checks, m.failed_checks, m.transitions), (6, 3, 2));
    }

    #[test]
    fn a_listening_port_passes_and_a_closed_one_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let h = Health::default();
        for _ in 0..FAILS_TO_DOWN {
            h.probe_all(&[open, closed]);
        }
        assert!(h.is_healthy(open) && !h.is_healthy(closed));
    }
}
