//! Reading EC2 Query parameters: flat `Key=Value` pairs, lists as `Prefix.N`, structures as
//! `Prefix.N.Member`.
//!
//! Every getter marks the key as used; [`Params::finish`] turns any key nobody read into
//! `UnknownParameter`, so a typo is an error and never silently ignored.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use tapwire_control::{ApiError, ErrorKind};

/// Keys a client may send on any request that carry no business meaning here.
fn is_envelope_key(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "DryRun"
            | "AWSAccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "Timestamp"
            | "Expires"
    ) || key.starts_with("X-Amz-")
}

/// The parameters of one request.
#[derive(Debug)]
pub struct Params {
    map: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

impl Params {
    /// Wraps decoded pairs; a key given twice keeps its last value.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { map: pairs.into_iter().collect(), used: RefCell::new(BTreeSet::new()) }
    }

    /// A raw value, marking it used.
    pub fn get(&self, key: &str) -> Option<&str> {
        let v = self.map.get(key)?;
        self.used.borrow_mut().insert(key.to_owned());
        Some(v.as_str())
    }

    /// A value that must be present.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| ApiError::missing(key))
    }

    /// A value parsed with `FromStr`; a bad value is `InvalidParameterValue`.
    pub fn parsed<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("Value ({raw}) for parameter {key} is invalid."))),
        }
    }

    /// A required parsed value.
    pub fn parsed_required<T: FromStr>(&self, key: &str) -> Result<T, ApiError> {
        self.parsed(key)?.ok_or_else(|| ApiError::missing(key))
    }

    /// A boolean (`true`/`false`).
    pub fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(raw) => {
                Err(ApiError::invalid(format!("Value ({raw}) for parameter {key} is invalid. Expected true or false.")))
            }
        }
    }

    /// The indices N present under `prefix.N…`, ascending.
    pub fn indices(&self, prefix: &str) -> Result<Vec<u32>, ApiError> {
        crate::flat::indices(self.map.keys(), prefix).map_err(|key| {
            ApiError::new(ErrorKind::UnknownParameter, format!("The parameter {key} is not recognized."))
        })
    }

    /// A scalar list `prefix.1`, `prefix.2`, … in index order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for n in self.indices(prefix)? {
            let key = format!("{prefix}.{n}");
            match self.get(&key) {
                Some(v) => out.push(v.to_owned()),
                None => {
                    return Err(ApiError::new(
                        ErrorKind::UnknownParameter,
                        format!("The parameter {prefix}.{n} has unexpected members."),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Fails with `UnknownParameter` if any key was never read.
    pub fn finish(&self) -> Result<(), ApiError> {
        let used = self.used.borrow();
        match self.map.keys().find(|k| !used.contains(*k) && !is_envelope_key(k)) {
            Some(k) => Err(ApiError::new(ErrorKind::UnknownParameter, format!("The parameter {k} is not recognized."))),
            None => Ok(()),
        }
    }

    /// Canonical text of every parameter but the token and envelope keys: equal requests
    /// have equal fingerprints whatever their key order.
    pub fn fingerprint(&self) -> String {
        crate::flat::fingerprint(&self.map, |k| k == "ClientToken" || is_envelope_key(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn lists_come_in_index_order_and_unread_keys_are_unknown() {
        let params = p(&[("Id.10", "c"), ("Id.2", "b"), ("Id.1", "a"), ("Bogus", "x"), ("Action", "A")]);
        assert_eq!(params.list("Id").unwrap(), vec!["a", "b", "c"]);
        let err = params.finish().unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownParameter);
        assert!(err.message.contains("Bogus"));
    }

    #[test]
    fn bad_values_and_missing_keys_have_their_codes() {
        let params = p(&[("N", "x"), ("B", "yes")]);
        assert_eq!(params.parsed::<u32>("N").unwrap_err().kind, ErrorKind::InvalidParameterValue);
        assert_eq!(params.flag("B").unwrap_err().kind, ErrorKind::InvalidParameterValue);
        assert_eq!(params.required("M").unwrap_err().kind, ErrorKind::MissingParameter);
        assert!(p(&[("Id.0", "a")]).indices("Id").is_err());
    }

    #[test]
    fn fingerprint_ignores_token_order_and_envelope() {
        let a = p(&[("A", "1"), ("B", "2"), ("ClientToken", "t1"), ("Action", "X")]);
        let b = p(&[("B", "2"), ("A", "1"), ("ClientToken", "t2")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), p(&[("A", "1"), ("B", "3")]).fingerprint());
    }
}
