//! The flattening both Query-style dialects share: lists travel as `Prefix.N` (1-based),
//! lists of structures as `Prefix.N.Member`, and a request's identity for ClientToken
//! purposes is its business parameters in key order. Each dialect's `Params` wraps these
//! with its own policy (unknown keys, booleans, messages).

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

/// Canonical text of every parameter `is_envelope` does not exclude: equal requests have
/// equal fingerprints whatever their key order, signature or token.
pub fn fingerprint(map: &BTreeMap<String, String>, is_envelope: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for (k, v) in map.iter().filter(|(k, _)| !is_envelope(k)) {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    out
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
    fn indices_are_positive_and_sorted() {
        let keys: Vec<String> = ["A.10.X", "A.2", "A.1.Y", "B.1", "A"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(indices(keys.iter(), "A"), Ok(vec![1, 2, 10]));
        let bad: Vec<String> = vec!["A.0".into()];
        assert_eq!(indices(bad.iter(), "A"), Err("A.0"));
        let bad: Vec<String> = vec!["A.x".into()];
        assert_eq!(indices(bad.iter(), "A"), Err("A.x"));
    }
}
