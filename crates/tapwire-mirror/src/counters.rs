//! Per-session and per-rule counters in plain `u64`s.
//!
//! One [`Counters`] belongs to one thread (the agent keeps one per worker and adds them
//! up when it reports); nothing here is atomic. Indexes are those of
//! [`crate::Classifier::sessions`] and [`crate::Classifier::rules`]; counters built for
//! one classifier must not be fed decisions of another (out-of-range indexes are
//! ignored rather than panicking).

use crate::Decision;

/// What one session did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Packets mirrored.
    pub mirrored_packets: u64,
    /// Bytes of the original frames mirrored.
    pub mirrored_bytes: u64,
    /// Bytes of inner frames actually copied (after truncation).
    pub copied_bytes: u64,
    /// Copies cut to the session's packet length.
    pub truncated_packets: u64,
    /// Packets mirrored by the `amazon-dns` network service rather than a rule.
    pub network_service_packets: u64,
    /// Bytes of the original frames mirrored by the network service.
    pub network_service_bytes: u64,
}

/// What one rule did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounters {
    /// Packets this rule decided (mirrored for accept rules, passed on for reject rules).
    pub matched_packets: u64,
    /// Bytes of those packets' frames.
    pub matched_bytes: u64,
    /// Copies cut to the session's packet length (accept rules only).
    pub truncated_packets: u64,
}

/// Counters for every session and rule of one classifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed like [`crate::Classifier::sessions`].
    pub sessions: Vec<SessionCounters>,
    /// Indexed like [`crate::Classifier::rules`].
    pub rules: Vec<RuleCounters>,
}

impl Counters {
    /// Zeroed counters for `sessions` sessions and `rules` rules.
    pub fn new(sessions: usize, rules: usize) -> Self {
        Self { sessions: vec![SessionCounters::default(); sessions], rules: vec![RuleCounters::default(); rules] }
    }

    /// Records that reject rule `rule` decided a `frame_len`-byte frame.
    #[inline]
    pub fn record_reject(&mut self, rule: u32, frame_len: usize) {
        if let Some(r) = self.rules.get_mut(rule as usize) {
            r.matched_packets += 1;
            r.matched_bytes += frame_len as u64;
        }
    }

    /// Records a mirrored `frame_len`-byte frame.
    #[inline]
    pub fn record_mirror(&mut self, decision: &Decision, frame_len: usize) {
        let truncated = decision.truncates(frame_len);
        if let Some(s) = self.sessions.get_mut(usize::from(decision.session)) {
            s.mirrored_packets += 1;
            s.mirrored_bytes += frame_len as u64;
            s.copied_bytes += decision.inner_len(frame_len) as u64;
            s.truncated_packets += u64::from(truncated);
            if decision.rule.is_none() {
                s.network_service_packets += 1;
                s.network_service_bytes += frame_len as u64;
            }
        }
        if let Some(r) = decision.rule.and_then(|i| self.rules.get_mut(i as usize)) {
            r.matched_packets += 1;
            r.matched_bytes += frame_len as u64;
            r.truncated_packets += u64::from(truncated);
        }
    }

    /// Adds `other` (e.g. another worker's counters for the same classifier) into `self`.
    pub fn merge(&mut self, other: &Counters) {
        for (a, b) in self.sessions.iter_mut().zip(&other.sessions) {
            a.mirrored_packets += b.mirrored_packets;
            a.mirrored_bytes += b.mirrored_bytes;
            a.copied_bytes += b.copied_bytes;
            a.truncated_packets += b.truncated_packets;
            a.network_service_packets += b.network_service_packets;
            a.network_service_bytes += b.network_service_bytes;
        }
        for (a, b) in self.rules.iter_mut().zip(&other.rules) {
            a.matched_packets += b.matched_packets;
            a.matched_bytes += b.matched_bytes;
            a.truncated_packets += b.truncated_packets;
        }
    }
}
