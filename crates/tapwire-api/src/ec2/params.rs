//! Reading EC2 Query parameters: flat `Key=Value` pairs, lists as `Prefix.N`, structures as
//! `Prefix.N.Member`, and the typed readers every action's parser is built from.
//!
//! Every getter marks the key as used; [`Params::finish`] turns any key nobody read into
//! `UnknownParameter`, so a typo is an error and never silently ignored. The exchange
//! calls it right after an action's parser, before anything runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use ipnet::IpNet;
use tapwire_control::ops::{ResourceRef, Update};
use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::ids::{FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::resource::{NetworkService, Tag};
use tapwire_model::rule::{Direction, PortRange, RuleAction};

/// Longest description EC2 accepts.
pub const DESCRIPTION_MAX_CHARS: usize = 255;

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

    /// A number in plain decimal digits; a bad value is `InvalidParameterValue`.
    pub fn parsed<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => crate::flat::parse_decimal(raw)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("Value ({raw}) for parameter {key} is invalid."))),
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

    // === typed readers ===

    /// A required ID of one kind; a malformed one is the kind's `MalformedId`.
    pub fn id<T: FromStr>(&self, key: &str, kind: ResourceKind) -> Result<T, ApiError> {
        parse_id(self.required(key)?, kind)
    }

    /// An optional ID of one kind.
    pub fn opt_id<T: FromStr>(&self, key: &str, kind: ResourceKind) -> Result<Option<T>, ApiError> {
        self.get(key).map(|raw| parse_id(raw, kind)).transpose()
    }

    /// An optional text value of at most `max` characters, owned.
    pub fn text(&self, key: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            Some(v) if v.chars().count() > max => {
                Err(ApiError::invalid(format!("The value of {key} must be at most {max} characters long.")))
            }
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// `Description`: at most [`DESCRIPTION_MAX_CHARS`].
    pub fn description(&self) -> Result<Option<String>, ApiError> {
        self.text("Description", DESCRIPTION_MAX_CHARS)
    }

    /// A CIDR block.
    pub fn cidr(&self, key: &str) -> Result<Option<IpNet>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => crate::flat::parse_cidr(raw).map(Some).ok_or_else(|| {
                ApiError::invalid(format!("Value ({raw}) for parameter {key} is not a valid CIDR block."))
            }),
        }
    }

    /// A required CIDR block.
    pub fn cidr_required(&self, key: &str) -> Result<IpNet, ApiError> {
        self.cidr(key)?.ok_or_else(|| ApiError::missing(key))
    }

    /// `TrafficDirection`.
    pub fn direction(&self) -> Result<Option<Direction>, ApiError> {
        self.get("TrafficDirection")
            .map(|raw| {
                raw.parse().map_err(|()| {
                    ApiError::invalid(format!(
                        "Value ({raw}) for parameter TrafficDirection is invalid. Expected ingress or egress."
                    ))
                })
            })
            .transpose()
    }

    /// `RuleAction`.
    pub fn rule_action(&self) -> Result<Option<RuleAction>, ApiError> {
        self.get("RuleAction")
            .map(|raw| match raw {
                "accept" => Ok(RuleAction::Accept),
                "reject" => Ok(RuleAction::Reject),
                _ => Err(ApiError::invalid(format!(
                    "Value ({raw}) for parameter RuleAction is invalid. Expected accept or reject."
                ))),
            })
            .transpose()
    }

    /// `Protocol`: `None` when absent; `Some(None)` for 0, which means every protocol.
    pub fn protocol(&self) -> Result<Option<Option<u8>>, ApiError> {
        match self.parsed::<u32>("Protocol")? {
            None => Ok(None),
            Some(0) => Ok(Some(None)),
            Some(n) => u8::try_from(n).map(|n| Some(Some(n))).map_err(|_| {
                ApiError::invalid(format!("Value ({n}) for parameter Protocol is invalid. Expected 0-255."))
            }),
        }
    }

    /// `{prefix}.FromPort` / `{prefix}.ToPort`; a missing end is 0 or 65535.
    pub fn port_range(&self, prefix: &str) -> Result<Option<PortRange>, ApiError> {
        let from = self.parsed::<u32>(&format!("{prefix}.FromPort"))?;
        let to = self.parsed::<u32>(&format!("{prefix}.ToPort"))?;
        if from.is_none() && to.is_none() {
            return Ok(None);
        }
        let (from, to) = (from.unwrap_or(0), to.unwrap_or(65535));
        let bad = || ApiError::invalid(format!("The port range {from}-{to} in {prefix} is invalid."));
        let (Ok(low), Ok(high)) = (u16::try_from(from), u16::try_from(to)) else {
            return Err(bad());
        };
        PortRange::new(low, high).map(Some).ok_or_else(bad)
    }

    /// `TagSpecification.N`: tags for a resource of `resource_type` being created.
    pub fn tag_specifications(&self, resource_type: &str) -> Result<Vec<Tag>, ApiError> {
        let mut tags = Vec::new();
        for n in self.indices("TagSpecification")? {
            let rt = self.required(&format!("TagSpecification.{n}.ResourceType"))?;
            if rt != resource_type {
                return Err(ApiError::invalid(format!(
                    "'{rt}' is not a valid taggable resource type for this operation."
                )));
            }
            tags.extend(self.tag_list(&format!("TagSpecification.{n}.Tag"))?);
        }
        Ok(tags)
    }

    /// `{prefix}.N.Key` / `{prefix}.N.Value`.
    pub fn tag_list(&self, prefix: &str) -> Result<Vec<Tag>, ApiError> {
        let mut tags = Vec::new();
        for m in self.indices(prefix)? {
            let key = self.required(&format!("{prefix}.{m}.Key"))?.to_owned();
            let value = self.get(&format!("{prefix}.{m}.Value")).unwrap_or_default().to_owned();
            tags.push(Tag { key, value });
        }
        Ok(tags)
    }

    /// `RemoveField.N`, each one of `allowed`.
    pub fn remove_fields(&self, allowed: &[&str]) -> Result<BTreeSet<String>, ApiError> {
        let fields: BTreeSet<String> = self.list("RemoveField")?.into_iter().collect();
        if let Some(bad) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
            return Err(ApiError::invalid(format!(
                "Value ({bad}) for parameter RemoveField is invalid. Expected one of: {}.",
                allowed.join(", ")
            )));
        }
        Ok(fields)
    }

    /// `AddNetworkService.N` or `RemoveNetworkService.N`.
    pub fn network_services(&self, prefix: &str) -> Result<BTreeSet<NetworkService>, ApiError> {
        self.list(prefix)?
            .iter()
            .map(|raw| match raw.as_str() {
                "amazon-dns" => Ok(NetworkService::AmazonDns),
                _ => Err(ApiError::invalid(format!(
                    "Value ({raw}) for parameter NetworkService is invalid. Expected amazon-dns."
                ))),
            })
            .collect()
    }
}

/// An ID of one kind; a malformed one is the kind's `MalformedId`.
pub fn parse_id<T: FromStr>(raw: &str, kind: ResourceKind) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::new(ErrorKind::MalformedId(kind), format!("The ID '{raw}' is malformed.")))
}

/// `Set` when the call gives a value, `Remove` when it names the field in RemoveField.
pub fn update<T>(value: Option<T>, removed: bool, field: &str) -> Result<Update<T>, ApiError> {
    match (value, removed) {
        (Some(_), true) => Err(ApiError::new(
            ErrorKind::InvalidParameterCombination,
            format!("The field {field} cannot be both set and removed."),
        )),
        (Some(v), false) => Ok(Update::Set(v)),
        (None, true) => Ok(Update::Remove),
        (None, false) => Ok(Update::Keep),
    }
}

/// Any taggable resource, by its ID's prefix.
pub fn resource_ref(raw: &str) -> Result<ResourceRef, ApiError> {
    if raw.starts_with(RuleId::PREFIX) {
        return parse_id(raw, ResourceKind::FilterRule).map(ResourceRef::Rule);
    }
    if raw.starts_with(FilterId::PREFIX) {
        return parse_id(raw, ResourceKind::Filter).map(ResourceRef::Filter);
    }
    if raw.starts_with(SessionId::PREFIX) {
        return parse_id(raw, ResourceKind::Session).map(ResourceRef::Session);
    }
    if raw.starts_with(TargetId::PREFIX) {
        return parse_id(raw, ResourceKind::Target).map(ResourceRef::Target);
    }
    if raw.starts_with(NetworkInterfaceId::PREFIX) {
        return parse_id(raw, ResourceKind::NetworkInterface).map(ResourceRef::Interface);
    }
    Err(ApiError::new(ErrorKind::InvalidId, format!("The ID '{raw}' is not valid")))
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

    #[test]
    fn typed_readers_check_their_ranges() {
        let params = p(&[("V", "16777216"), ("S", "7"), ("R.FromPort", "70000")]);
        let err = params.number::<tapwire_model::Vni>("V").unwrap_err();
        assert_eq!(err.message, "The virtual network ID 16777216 is not valid; it must be between 0 and 16777215.");
        assert_eq!(params.number::<tapwire_model::SessionNumber>("S").unwrap().map(|n| n.get()), Some(7));
        assert!(params.port_range("R").is_err());
        assert_eq!(resource_ref("vpc-0123456789abcdef0").unwrap_err().kind, ErrorKind::InvalidId);
        assert!(matches!(resource_ref("eni-0123456789abcdef0"), Ok(ResourceRef::Interface(_))));
    }
}
