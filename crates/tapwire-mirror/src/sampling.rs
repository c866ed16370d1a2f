//! A session's gate: after a packet matched, whether its copy goes out under the session's
//! sampling and caps ([`SessionLimits`]).
//!
//! Invariants:
//! - Flow sampling looks only at the symmetric flow hash ([`crate::encap::flow_hash`]):
//!   both directions of a flow, on every agent, are kept or left together.
//! - 1-in-N packet sampling counts the packets that passed flow sampling.
//! - The caps are token buckets one second deep, refilled by the time the caller gives
//!   (nanoseconds of a monotonic clock): over any span of T seconds at most
//!   `rate × T + rate` copies (or bits) pass. Integer arithmetic only; no allocation.

use tapwire_model::sampling::{ALL_FLOWS_PPM, SessionLimits};

const NANOS: u128 = 1_000_000_000;

/// What the gate says of one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Pass,
    /// Left out by sampling (policy, not loss).
    SampledOut,
    /// Dropped by a cap.
    RateLimited,
}

/// A token bucket in token-nanoseconds, one second deep.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: u128,
    level: u128,
    last_ns: Option<u64>,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        let rate = u128::from(rate);
        Self { rate, level: rate * NANOS, last_ns: None }
    }

    fn refill(&mut self, now_ns: u64) {
        if let Some(last) = self.last_ns {
            let elapsed = u128::from(now_ns.saturating_sub(last));
            self.level = (self.level + elapsed * self.rate).min(self.rate * NANOS);
        }
        self.last_ns = Some(self.last_ns.map_or(now_ns, |last| last.max(now_ns)));
    }

    fn has(&self, tokens: u128) -> bool {
        self.level >= tokens * NANOS
    }

    fn take(&mut self, tokens: u128) {
        self.level -= tokens * NANOS;
    }
}

/// One session's sampling and caps, with their state.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Flows whose hash scaled to millionths is below this are kept.
    flows_ppm: u32,
    every: u32,
    seen: u32,
    packets: Option<Bucket>,
    bits: Option<Bucket>,
}

impl Gate {
    /// A gate for `limits`, its buckets full.
    pub fn new(limits: &SessionLimits) -> Self {
        Self {
            flows_ppm: limits.sample_flows_ppm.unwrap_or(ALL_FLOWS_PPM),
            every: limits.sample_packets.unwrap_or(1).max(1),
            seen: 0,
            packets: limits.max_pps.map(Bucket::new),
            bits: limits.max_bps.map(Bucket::new),
        }
    }

    /// Whether a cap applies (then [`Gate::admit`] needs the time).
    #[inline]
    pub fn capped(&self) -> bool {
        self.packets.is_some() || self.bits.is_some()
    }

    /// Whether flows of this hash are kept at all.
    #[inline]
    pub fn keeps_flow(&self, flow_hash: u64) -> bool {
        self.flows_ppm >= ALL_FLOWS_PPM
            || ((u128::from(flow_hash) * u128::from(ALL_FLOWS_PPM)) >> 64) < u128::from(self.flows_ppm)
    }

    /// The verdict on a copy of `bytes` inner bytes of a flow of hash `flow_hash`, at
    /// `now_ns`.
    #[inline]
    pub fn admit(&mut self, flow_hash: u64, bytes: usize, now_ns: u64) -> Verdict {
        if !self.keeps_flow(flow_hash) {
            return Verdict::SampledOut;
        }
        if self.every > 1 {
            self.seen += 1;
            if self.seen < self.every {
                return Verdict::SampledOut;
            }
            self.seen = 0;
        }
        let bits = bytes as u128 * 8;
        if let Some(b) = &mut self.packets {
            b.refill(now_ns);
        }
        if let Some(b) = &mut self.bits {
            b.refill(now_ns);
        }
        if self.packets.is_some_and(|b| !b.has(1)) || self.bits.is_some_and(|b| !b.has(bits)) {
            return Verdict::RateLimited;
        }
        if let Some(b) = &mut self.packets {
            b.take(1);
        }
        if let Some(b) = &mut self.bits {
            b.take(bits);
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::encap::flow_hash;

    fn gate(limits: SessionLimits) -> Gate {
        Gate::new(&limits)
    }

    #[test]
    fn a_tenth_of_flows_is_kept_whole_in_both_directions() {
        let g = gate(SessionLimits { sample_flows_ppm: Some(100_000), ..SessionLimits::default() });
        let (mut kept, flows) = (0, 20_000u32);
        for i in 0..flows {
            let (a, b) = (0xc612_0000_u128 + u128::from(i), 0xc613_0001_u128);
            let port = 1024 + (i % 50_000) as u16;
            let forth = g.keeps_flow(flow_hash(a, b, 6, (port, 443)));
            assert_eq!(forth, g.keeps_flow(flow_hash(b, a, 6, (443, port))), "both directions alike");
            kept += u32::from(forth);
        }
        let share = f64::from(kept) / f64::from(flows);
        assert!((0.09..=0.11).contains(&share), "{share}");
    }

    #[test]
    fn one_packet_in_n_is_kept() {
        let mut g = gate(SessionLimits { sample_packets: Some(4), ..SessionLimits::default() });
        let passed = (0..100).filter(|_| g.admit(7, 64, 0) == Verdict::Pass).count();
        assert_eq!(passed, 25);
    }

    #[test]
    fn a_bit_cap_counts_bytes() {
        // 8,000 bits a second: one 1,000-byte copy, then none until a second passed.
        let mut g = gate(SessionLimits { max_bps: Some(8_000), ..SessionLimits::default() });
        assert_eq!(g.admit(1, 1_000, 0), Verdict::Pass);
        assert_eq!(g.admit(1, 1, 1), Verdict::RateLimited);
        assert_eq!(g.admit(1, 1_000, 1_000_000_001), Verdict::Pass);
    }

    proptest! {
        /// Over any run of arrivals, a packet cap passes at most rate × seconds + rate.
        #[test]
        fn a_packet_cap_holds_over_any_arrivals(
            rate in 1u64..5_000,
            gaps in proptest::collection::vec(0u64..2_000_000, 1..3_000),
        ) {
            let mut g = gate(SessionLimits { max_pps: Some(rate), ..SessionLimits::default() });
            let (mut now, mut passed) = (5_000_000_000u64, 0u64);
            let start = now;
            for gap in gaps {
                now += gap;
                passed += u64::from(g.admit(9, 100, now) == Verdict::Pass);
            }
            let bound = (u128::from(rate) * u128::from(now - start)).div_ceil(NANOS) as u64 + rate;
            prop_assert!(passed <= bound, "{passed} > {bound}");
        }
    }
}
