//! What both Query-style dialects share below their `Params`: the flattening (lists travel
//! as `Prefix.N`, 1-based, lists of structures as `Prefix.N.Member`), a request's identity
//! for ClientToken purposes (its business parameters in key order), and the strict forms
//! of numbers and CIDR blocks. Each dialect's `Params` wraps these with its own policy
//! (unknown keys, booleans, messages).
//!
//! Numbers are plain decimal digits: no sign, no spaces, nothing `FromStr` would also
//! take. CIDR blocks are kept as given, host bits included (matching uses the network, as
//! EC2's own rules do), but an IPv4 octet with a leading zero is refused: some parsers
//! read it as octal, so it has no single meaning.

use std::collections::{BTreeMap, BTreeSet};

use tapwire_control::ApiError;
use tapwire_model::RangeError;

/// The indices N present under `prefix.N…`, ascending; `Err(key)` names the first key
/// whose N is not a positive integer.
pub fn indices<'a>(keys: impl Iterator<Item = &'a String>, prefix: &str) -> Result<Vec<u32>, &'a str> {
    let dotted = format!("{prefix}.");
    let mut out = BTreeSet::new();
    for key in keys.filter(|k| k.starts_with(&dotted)) {
        match key[dotted.len()..].split('.').next().unwrap_or("").parse::<u32>() {
            Ok(n) if n >= 1 => {
                out.insert(n);
            }
            _ => return Err(key),
        }
    }
    Ok(out.into_iter().collect())
}

/// A fingerprint of every parameter `is_envelope` does not exclude: equal requests have
/// equal fingerprints whatever their key order, signature or token. A SHA-256 of the
/// parameters in key order (keys and values length-prefixed, so no two requests share a
/// text), so a stored ClientToken record stays small whatever the request held.
pub fn fingerprint(map: &BTreeMap<String, String>, is_envelope: impl Fn(&str) -> bool) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (k, v) in map.iter().filter(|(k, _)| !is_envelope(k)) {
        for part in [k, v] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    hex::encode(hash.finalize())
}

/// `raw` as a number, if it is plain decimal digits.
pub fn parse_decimal<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// `raw` as a CIDR block, strictly (see the module docs).
pub fn parse_cidr(raw: &str) -> Option<ipnet::IpNet> {
    let net: ipnet::IpNet = raw.parse().ok()?;
    if net.addr().is_ipv4() {
        let address = raw.split('/').next().unwrap_or_default();
        if address.split('.').any(|octet| octet.len() > 1 && octet.starts_with('0')) {
            return None;
        }
    }
    Some(net)
}

/// A parsed number checked into one of the model's validated types; the range message is
/// the model's, the same in both dialects.
pub fn checked<T: TryFrom<u64, Error = RangeError>>(n: Option<u64>) -> Result<Option<T>, ApiError> {
    n.map(|n| T::try_from(n).map_err(|e| ApiError::invalid(e.to_string()))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_cidrs_are_strict() {
        assert_eq!(parse_decimal::<u32>("104"), Some(104));
        for bad in ["+104", " 103 ", "", "1e3", "-1", "0x10"] {
            assert_eq!(parse_decimal::<u32>(bad), None, "{bad}");
        }
        assert_eq!(parse_cidr("10.0.0.1/24").map(|n| n.to_string()), Some("10.0.0.1/24".into()));
        assert_eq!(parse_cidr("2001:db8::/32").map(|n| n.to_string()), Some("2001:db8::/32".into()));
        assert!(parse_cidr("010.0.0.0/8").is_none());
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }

    #[test]
    fn indices_are_positive_and_sorted() {
        let keys: Vec<String> = ["A.10.X", "A.2", "A.1.Y", "B.1", "A"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(indices(keys.iter(), "A"), Ok(vec![1, 2, 10]));
        let bad: Vec<String> = vec!["A.0".into()];
        assert_eq!(indices(bad.iter(), "A"), Err("A.0"));
        let bad: Vec<String> = vec!["A.x".into()];
        assert_eq!(indices(bad.iter(), "A"), Err("A.x"));
    }
}
