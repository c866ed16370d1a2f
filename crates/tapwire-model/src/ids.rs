//! Typed resource IDs.
//!
//! Every ID is a prefix plus 17 lower-case hex digits, as EC2 prints them
//! (`tmf-0123456789abcdef0`). A filter rule has one identity and two spellings: EC2 shows
//! `tmfr-…`, Alibaba shows `tmr-…` with the same suffix; both parse to the same [`RuleId`].

use std::fmt;
use std::str::FromStr;

/// Number of hex digits after the prefix.
pub const ID_SUFFIX_LEN: usize = 17;

/// Why a string is not an ID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}")]
pub struct IdParseError {
    /// Human name of the expected kind, e.g. "traffic mirror filter".
    pub kind: &'static str,
    /// The rejected text.
    pub value: String,
}

/// The 17-hex-digit body shared by every ID kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdSuffix([u8; ID_SUFFIX_LEN]);

impl IdSuffix {
    /// Builds a suffix from caller-supplied random bytes (the model draws no randomness).
    pub fn from_random(bytes: [u8; 9]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; ID_SUFFIX_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let byte = bytes[i / 2];
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            *slot = HEX[usize::from(nibble)];
        }
        Self(out)
    }

    fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != ID_SUFFIX_LEN || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; ID_SUFFIX_LEN];
        out.copy_from_slice(b);
        Some(Self(out))
    }

    /// The suffix as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(IdSuffix);

        impl $name {
            /// The prefix, including its dash.
            pub const PREFIX: &'static str = $prefix;
            /// Human name of this kind, used in messages.
            pub const KIND: &'static str = $kind;

            /// An ID with the given suffix.
            pub fn from_suffix(suffix: IdSuffix) -> Self {
                Self(suffix)
            }

            /// The suffix shared across dialect spellings.
            pub fn suffix(&self) -> IdSuffix {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                f.write_str(self.0.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix($prefix)
                    .and_then(IdSuffix::parse)
                    .map(Self)
                    .ok_or_else(|| IdParseError { kind: $kind, value: s.to_owned() })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A traffic mirror filter, `tmf-…`.
    FilterId, "tmf-", "traffic mirror filter"
);
typed_id!(
    /// A traffic mirror session, `tms-…`.
    SessionId, "tms-", "traffic mirror session"
);
typed_id!(
    /// A traffic mirror target, `tmt-…` (EC2 only; Alibaba names destinations directly).
    TargetId, "tmt-", "traffic mirror target"
);
typed_id!(
    /// A network interface in the inventory, `eni-…`.
    NetworkInterfaceId, "eni-", "network interface"
);
typed_id!(
    /// A sensor group (tapwire's own: the load balancer in front of several sensors), `tsg-…`.
    SensorGroupId, "tsg-", "sensor group"
);
typed_id!(
    /// A filter rule, `tmfr-…` in EC2; Alibaba spells the same rule `tmr-…`.
    RuleId, "tmfr-", "traffic mirror filter rule"
);

impl RuleId {
    /// Alibaba's spelling of rule IDs.
    pub const ALIBABA_PREFIX: &'static str = "tmr-";

    /// Parses either spelling, `tmfr-…` or `tmr-…`.
    pub fn parse_any(s: &str) -> Result<Self, IdParseError> {
        match s.strip_prefix(Self::ALIBABA_PREFIX).and_then(IdSuffix::parse) {
            Some(suffix) => Ok(Self(suffix)),
            None => s.parse(),
        }
    }

    /// The ID as Alibaba prints it.
    pub fn alibaba(&self) -> String {
        format!("{}{}", Self::ALIBABA_PREFIX, self.0.as_str())
    }
}

/// A 12-digit account number (EC2 `OwnerId`; Alibaba's account UID is shown the same way).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(u64);

impl AccountId {
    /// The root account: the first of every installation, and the owner of whatever was
    /// made before accounts existed.
    pub const DEFAULT: AccountId = AccountId(123_456_789_012);

    /// An account from its number; `None` above 12 digits.
    pub fn new(number: u64) -> Option<Self> {
        (number <= 999_999_999_999).then_some(Self(number))
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for AccountId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdParseError { kind: "account", value: s.to_owned() };
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        s.parse::<u64>().ok().and_then(Self::new).ok_or_else(err)
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_from_random_is_17_hex() {
        let id = FilterId::from_suffix(IdSuffix::from_random([0xab; 9]));
        assert_eq!(id.to_string(), "tmf-ababababababababa");
        assert_eq!(id.to_string().parse::<FilterId>(), Ok(id));
    }

    #[test]
    fn kinds_do_not_cross() {
        let s = SessionId::from_suffix(IdSuffix::from_random([1; 9])).to_string();
        assert!(s.parse::<FilterId>().is_err());
        assert!(s.parse::<SessionId>().is_ok());
        assert!("tms-0123".parse::<SessionId>().is_err());
        assert!("tms-0123456789ABCDEF0".parse::<SessionId>().is_err());
    }

    #[test]
    fn rule_ids_have_two_spellings() {
        let id = RuleId::from_suffix(IdSuffix::from_random([7; 9]));
        assert_eq!(RuleId::parse_any(&id.alibaba()), Ok(id));
        assert_eq!(RuleId::parse_any(&id.to_string()), Ok(id));
        assert!(id.alibaba().starts_with("tmr-"));
    }

    #[test]
    fn accounts_are_twelve_digits() {
        assert_eq!(AccountId::DEFAULT.to_string(), "123456789012");
        assert!("12345678901".parse::<AccountId>().is_err());
        assert_eq!("000000000042".parse::<AccountId>().map(|a| a.to_string()).as_deref(), Ok("000000000042"));
    }
}
