//! A session's sampling and rate caps, which no cloud API has: set through reserved tag
//! keys on the session, so the unmodified clients reach them (`aws ec2 create-tags`,
//! Alibaba `TagResources`).
//!
//! | key | value | effect |
//! |---|---|---|
//! | `tapwire:sample-flows` | a fraction in (0, 1], at most 6 decimals | keeps that share of flows, chosen by a hash of the flow, so a kept flow is whole (both directions, every agent) |
//! | `tapwire:sample-packets` | N in 1..=1,000,000 | keeps 1 packet in N |
//! | `tapwire:max-pps` | packets a second, 1..=100,000,000 | a token bucket (one second deep); the excess is dropped and counted `rate_limited` |
//! | `tapwire:max-bps` | bits a second of inner frames, 8,000..=100,000,000,000 | likewise, by size |
//!
//! Invariant: a [`SessionLimits`] comes from [`SessionLimits::from_tags`], which refuses
//! any value outside those ranges and any other key under `tapwire:`, so a typo never
//! passes silently.

use serde::{Deserialize, Serialize};

use crate::resource::Tag;

/// Every key under this prefix is one of tapwire's.
pub const RESERVED_PREFIX: &str = "tapwire:";
/// Fraction of flows kept.
pub const SAMPLE_FLOWS: &str = "tapwire:sample-flows";
/// One packet kept in N.
pub const SAMPLE_PACKETS: &str = "tapwire:sample-packets";
/// Packets a second at most.
pub const MAX_PPS: &str = "tapwire:max-pps";
/// Bits a second at most.
pub const MAX_BPS: &str = "tapwire:max-bps";
/// The keys there are.
pub const KEYS: [&str; 4] = [SAMPLE_FLOWS, SAMPLE_PACKETS, MAX_PPS, MAX_BPS];

/// All flows, in millionths.
pub const ALL_FLOWS_PPM: u32 = 1_000_000;

/// A session's sampling and caps; `None` fields do not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// Share of flows kept, in millionths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_flows_ppm: Option<u32>,
    /// One packet kept in this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_packets: Option<u32>,
    /// Packets a second at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pps: Option<u64>,
    /// Bits a second at most (inner frames as copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bps: Option<u64>,
}

fn integer(key: &str, value: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| format!("The value of {key} must be a whole number from {} to {}.", range.start(), range.end()))
}

/// "0.1" → 100,000 millionths; refuses anything but a plain decimal in (0, 1].
fn fraction_ppm(key: &str, value: &str) -> Result<u32, String> {
    let refused = || {
        format!(
            "The value of {key} must be a fraction greater than 0 and at most 1 (e.g. 0.1), with at most 6 decimals."
        )
    };
    let (whole, decimals) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(decimals) || decimals.len() > 6 || whole.len() > 1 {
        return Err(refused());
    }
    let scaled = format!("{whole}{decimals:0<6}");
    let ppm: u32 = scaled.parse().map_err(|_| refused())?;
    if ppm == 0 || ppm > ALL_FLOWS_PPM {
        return Err(refused());
    }
    Ok(ppm)
}

impl SessionLimits {
    /// The limits `tags` set; an error (for `InvalidParameterValue`) names the first bad
    /// key or value.
    pub fn from_tags(tags: &[Tag]) -> Result<Self, String> {
        let mut limits = Self::default();
        for tag in tags.iter().filter(|t| t.key.starts_with(RESERVED_PREFIX)) {
            let (key, value) = (tag.key.as_str(), tag.value.trim());
            match key {
                SAMPLE_FLOWS => limits.sample_flows_ppm = Some(fraction_ppm(key, value)?),
                SAMPLE_PACKETS => {
                    limits.sample_packets = Some(integer(key, value, 1..=1_000_000)? as u32);
                }
                MAX_PPS => limits.max_pps = Some(integer(key, value, 1..=100_000_000)?),
                MAX_BPS => limits.max_bps = Some(integer(key, value, 8_000..=100_000_000_000)?),
                _ => {
                    return Err(format!(
                        "{key} is not a tapwire key; the keys under tapwire: are {}.",
                        KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(limits)
    }

    /// Whether nothing is sampled or capped.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(pairs: &[(&str, &str)]) -> Result<SessionLimits, String> {
        let tags: Vec<Tag> = pairs.iter().map(|(k, v)| Tag { key: (*k).into(), value: (*v).into() }).collect();
        SessionLimits::from_tags(&tags)
    }

    #[test]
    fn reserved_keys_are_read_and_bad_values_refused() {
        let l = limits(&[(SAMPLE_FLOWS, "0.1"), (MAX_PPS, "20000"), ("team", "ids"), (MAX_BPS, "1000000")]).unwrap();
        assert_eq!(l.sample_flows_ppm, Some(100_000));
        assert_eq!((l.max_pps, l.max_bps, l.sample_packets), (Some(20_000), Some(1_000_000), None));
        assert_eq!(limits(&[(SAMPLE_FLOWS, "1")]).unwrap().sample_flows_ppm, Some(ALL_FLOWS_PPM));
        assert_eq!(limits(&[(SAMPLE_FLOWS, "0.000001")]).unwrap().sample_flows_ppm, Some(1));
        for bad in ["0", "1.5", "-0.1", ".5", "0.1234567", "1e-1", "abc", "", "00.5"] {
            let err = limits(&[(SAMPLE_FLOWS, bad)]).unwrap_err();
            assert!(err.contains(SAMPLE_FLOWS), "{bad}: {err}");
        }
        for (key, bad) in [(MAX_PPS, "0"), (MAX_PPS, "1.5"), (SAMPLE_PACKETS, "1000001"), (MAX_BPS, "100")] {
            assert!(limits(&[(key, bad)]).unwrap_err().contains(key), "{key}={bad}");
        }
        let err = limits(&[("tapwire:max-ppm", "5")]).unwrap_err();
        assert!(err.contains("tapwire:max-ppm is not a tapwire key"), "{err}");
        assert!(limits(&[("team", "ids")]).unwrap().is_none());
    }
}
