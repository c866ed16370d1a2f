//! Reading Alibaba RPC parameters: flat `Key=Value` pairs from the query string and the
//! form body, lists as `Prefix.N` (1-based), lists of structures as `Prefix.N.Member`.
//!
//! Unlike EC2, Alibaba's gateway ignores parameters an action does not take (the SDKs send
//! owner parameters and newer fields freely), so nothing here rejects unknown keys.
//! Booleans are accepted in any case: the legacy SDK sends Python's `True`/`False`.

use std::collections::BTreeMap;
use std::str::FromStr;

use tapwire_control::ApiError;

/// Keys that describe the request envelope, not the business call; they never enter a
/// ClientToken fingerprint.
fn is_envelope_key(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "Format"
            | "AccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "SignatureNonce"
            | "SignatureType"
            | "Timestamp"
            | "SecurityToken"
            | "ClientToken"
            | "DryRun"
            | "OwnerId"
            | "OwnerAccount"
            | "ResourceOwnerId"
            | "ResourceOwnerAccount"
    )
}

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Wraps decoded pairs; a key given twice keeps its last value.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { map: pairs.into_iter().collect() }
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A value that must be present and non-empty.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing(key))
    }

    /// A number in plain decimal digits; a bad value is `InvalidParameter`.
    pub fn parsed<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => crate::flat::parse_decimal(raw).map(Some).ok_or_else(|| invalid_value(key, raw)),
        }
    }

    /// A required parsed value.
    pub fn parsed_required<T: FromStr>(&self, key: &str) -> Result<T, ApiError> {
        self.parsed(key)?.ok_or_else(|| ApiError::missing(key))
    }

    /// A number checked into one of the model's validated types.
    pub fn number<T: TryFrom<u64, Error = tapwire_model::RangeError>>(&self, key: &str) -> Result<Option<T>, ApiError> {
        crate::flat::checked(self.parsed::<u64>(key)?)
    }

    /// A required validated number.
    pub fn number_required<T: TryFrom<u64, Error = tapwire_model::RangeError>>(
        &self,
        key: &str,
    ) -> Result<T, ApiError> {
        self.number(key)?.ok_or_else(|| ApiError::missing(key))
    }

    /// An optional value, owned.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// A value given and not empty (Alibaba SDKs send empty strings for unset fields).
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// A boolean, `true`/`false` in any case.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(raw) => Err(invalid_value(key, raw)),
        }
    }

    /// The indices N present under `prefix.N…`, ascending.
    pub fn indices(&self, prefix: &str) -> Result<Vec<u32>, ApiError> {
        crate::flat::indices(self.map.keys(), prefix)
            .map_err(|key| ApiError::invalid(format!("The parameter {key} is not a valid list member.")))
    }

    /// A scalar list `prefix.1`, `prefix.2`, … in index order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for n in self.indices(prefix)? {
            let key = format!("{prefix}.{n}");
            match self.get(&key) {
                Some(v) => out.push(v.to_owned()),
                None => return Err(ApiError::invalid(format!("The parameter {prefix}.{n} must be a plain value."))),
            }
        }
        Ok(out)
    }

    /// Canonical text of every business parameter: equal requests have equal fingerprints
    /// whatever their key order or signature.
    pub fn fingerprint(&self) -> String {
        crate::flat::fingerprint(&self.map, is_envelope_key)
    }
}

/// `InvalidParameter` naming the key and the rejected value.
pub fn invalid_value(key: &str, raw: &str) -> ApiError {
    ApiError::invalid(format!("The value '{raw}' of the parameter {key} is invalid."))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use tapwire_control::ErrorKind;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn lists_come_in_index_order() {
        let params = p(&[("Id.10", "c"), ("Id.2", "b"), ("Id.1", "a")]);
        assert_eq!(params.list("Id").unwrap(), vec!["a", "b", "c"]);
        assert!(p(&[("Id.0", "a")]).indices("Id").is_err());
        assert_eq!(p(&[("R.1.Action", "accept"), ("R.3.Action", "drop")]).indices("R").unwrap(), vec![1, 3]);
    }

    #[test]
    fn booleans_ignore_case_and_bad_values_are_invalid() {
        let params = p(&[("A", "True"), ("B", "false"), ("C", "yes"), ("N", "x")]);
        assert_eq!(params.flag("A").unwrap(), Some(true));
        assert_eq!(params.flag("B").unwrap(), Some(false));
        assert_eq!(params.flag("C").unwrap_err().kind, ErrorKind::InvalidParameterValue);
        assert_eq!(params.parsed::<u32>("N").unwrap_err().kind, ErrorKind::InvalidParameterValue);
        assert_eq!(params.required("M").unwrap_err().kind, ErrorKind::MissingParameter);
    }

    #[test]
    fn fingerprint_ignores_envelope_and_order() {
        let a = p(&[("A", "1"), ("ClientToken", "t1"), ("Signature", "x"), ("SignatureNonce", "1")]);
        let b = p(&[("A", "1"), ("ClientToken", "t2"), ("Signature", "y"), ("SignatureNonce", "2")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), p(&[("A", "2")]).fingerprint());
    }
}
