//! Validated numbers: each range of the APIs checked once, in one place, with one message.
//!
//! A value of one of these types is in range by construction: [`TryFrom`] checks it, and
//! serde goes through the same check (`serde(try_from)`), so a stored document or an agent
//! config with an out-of-range number is refused when it is read, not when it is used.
//! The wire form is the plain number, so stored documents keep their shape.
//!
//! Ranges that only one dialect imposes on top of these (Alibaba's rule priorities 1–10 and
//! packet lengths from 64) stay with that dialect's codec.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A number outside the range its field allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The {what} {value} is not valid; it must be between {min} and {max}.")]
pub struct RangeError {
    /// Human name of the field, e.g. "session number".
    pub what: &'static str,
    /// The rejected value.
    pub value: u64,
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($repr:ty), $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name($repr);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: $repr = $min;
            /// Largest allowed value.
            pub const MAX: $repr = $max;
            /// Human name of the field, used in messages.
            pub const WHAT: &'static str = $what;

            /// The number.
            #[inline]
            pub const fn get(self) -> $repr {
                self.0
            }

            /// `value` if it is in range; a const-friendly form of [`TryFrom`].
            pub const fn new(value: $repr) -> Option<Self> {
                if value >= Self::MIN && value <= Self::MAX { Some(Self(value)) } else { None }
            }
        }

        impl TryFrom<u64> for $name {
            type Error = RangeError;
            fn try_from(value: u64) -> Result<Self, RangeError> {
                let err = RangeError { what: $what, value, min: Self::MIN.into(), max: Self::MAX.into() };
                let narrow = <$repr>::try_from(value).map_err(|_| err)?;
                Self::new(narrow).ok_or(err)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded!(
    /// A VXLAN network identifier: 24 bits.
    Vni(u32), 0, 0x00ff_ffff, "virtual network ID"
);

bounded!(
    /// A filter rule's number (EC2) or priority (Alibaba): evaluated ascending, unique per
    /// filter and direction.
    RuleNumber(u32), 1, 32766, "rule number"
);

bounded!(
    /// A session's number (EC2) or priority (Alibaba): lower is tried first.
    SessionNumber(u32), 1, 32766, "session number"
);

bounded!(
    /// Bytes of the inner frame a session copies (the VXLAN headers not counted).
    PacketLength(u16), 1, 8500, "packet length"
);

impl Vni {
    /// VNIs drawn at random when the caller gives none: 0 is avoided, some tools treat it
    /// as unset.
    pub const RANDOM_MIN: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_once_with_one_message() {
        assert_eq!(Vni::try_from(0x00ff_ffff).map(Vni::get), Ok(0x00ff_ffff));
        let err = Vni::try_from(1 << 24).unwrap_err();
        assert_eq!(err.to_string(), "The virtual network ID 16777216 is not valid; it must be between 0 and 16777215.");
        assert!(SessionNumber::try_from(0).is_err() && SessionNumber::try_from(32767).is_err());
        assert!(PacketLength::try_from(u64::MAX).is_err());
        assert_eq!(PacketLength::new(8500).map(PacketLength::get), Some(8500));
    }

    #[test]
    fn serde_goes_through_the_check() {
        assert_eq!(serde_json::from_str::<RuleNumber>("100").unwrap().get(), 100);
        assert!(serde_json::from_str::<RuleNumber>("0").is_err());
        assert!(serde_json::from_str::<Vni>("-1").is_err());
        assert_eq!(serde_json::to_string(&Vni::new(42).unwrap()).unwrap(), "42");
    }
}
