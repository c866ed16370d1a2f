//! CreateTags, DeleteTags and DescribeTags on every resource tapwire tags (the four
//! traffic-mirror kinds and network interfaces), and the `tagSet` every resource renders.
//!
//! DeleteTags: a key alone deletes the tag whatever its value; a key with a value (even
//! empty) only if the value matches; no tags at all deletes every tag.
//!
//! DescribeTags lists one item per (resource, tag) of the caller's account and region
//! (interfaces: the account), ordered by resource ID then key, filtered by `resource-id`,
//! `resource-type`, `key`, `value` and `tag:KEY` (wildcards as everywhere), and paged.

use std::fmt;
use std::str::FromStr;

use imbl::OrdMap;
use tapwire_control::ops::{Operation, ResourceRef, TagSelector};
use tapwire_control::{ApiError, ErrorKind, ResourceKind, State};
use tapwire_model::limits;
use tapwire_model::resource::Tag;

use super::describe::{Describe, tag_values};
use super::exchange::{Exchange, Token};
use super::params::{Params, resource_ref};
use super::xml::Xml;

// === parsers ===

/// `ResourceId.N`: 1 to 1000 IDs of taggable resources.
fn tag_targets(p: &Params) -> Result<Vec<ResourceRef>, ApiError> {
    let ids = p.list("ResourceId")?;
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    if ids.len() > limits::ec2_tags::IDS_PER_CALL {
        return Err(ApiError::invalid(format!(
            "At most {} resource IDs can be tagged at once.",
            limits::ec2_tags::IDS_PER_CALL
        )));
    }
    ids.iter().map(|s| resource_ref(s)).collect()
}

/// `CreateTags`.
pub fn parse_create_tags(p: &Params) -> Result<Operation, ApiError> {
    let resources = tag_targets(p)?;
    let tags = p.tag_list("Tag")?;
    if tags.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    Ok(Operation::CreateTags { resources, tags })
}

/// `DeleteTags`.
pub fn parse_delete_tags(p: &Params) -> Result<Operation, ApiError> {
    let resources = tag_targets(p)?;
    let mut tags = Vec::new();
    for n in p.indices("Tag")? {
        tags.push(TagSelector {
            key: p.required(&format!("Tag.{n}.Key"))?.to_owned(),
            value: p.text(&format!("Tag.{n}.Value"), limits::ec2_tags::VALUE_MAX_CHARS)?,
        });
    }
    Ok(Operation::DeleteTags { resources, tags })
}

/// Filter names DescribeTags takes.
const DESCRIBE_NAMES: &[&str] = &["key", "resource-id", "resource-type", "value", "tag:*"];

/// `DescribeTags`.
pub fn parse_describe_tags(p: &Params) -> Result<Describe, ApiError> {
    Describe::parse(p, "ResourceId", DESCRIBE_NAMES).and_then(|q| {
        if q.ids.is_empty() {
            Ok(q)
        } else {
            Err(ApiError::new(
                ErrorKind::UnknownParameter,
                "The parameter ResourceId is not recognized; filter on resource-id.",
            ))
        }
    })
}

// === handlers ===

pub(super) fn create_tags(x: &Exchange<'_>) -> Result<String, ApiError> {
    x.write(parse_create_tags, Token::None)?;
    Ok(x.respond(|o| {
        o.leaf("return", "true");
    }))
}

pub(super) fn delete_tags(x: &Exchange<'_>) -> Result<String, ApiError> {
    x.write(parse_delete_tags, Token::None)?;
    Ok(x.respond(|o| {
        o.leaf("return", "true");
    }))
}

pub(super) fn describe_tags(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_tags)?;
    let rows = tag_rows(&state, x);
    let (items, next) = q.select(&rows, |_| true, ResourceKind::Filter, row_values, x.cancel())?;
    Ok(x.respond(|o| {
        o.list("tagSet", items, |o, r| {
            o.leaf("resourceId", &r.resource_id)
                .leaf("resourceType", r.resource_type)
                .leaf("key", &r.tag.key)
                .leaf("value", &r.tag.value);
        });
        o.opt("nextToken", next);
    }))
}

/// The position of a tag in DescribeTags' order: resource ID, then key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey(String);

impl RowKey {
    fn new(resource_id: &str, key: &str) -> Self {
        // Keys cannot hold control characters (the door refuses them), so U+001F separates.
        Self(format!("{resource_id}\u{1f}{key}"))
    }
}

impl FromStr for RowKey {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One (resource, tag) of DescribeTags.
#[derive(Debug, Clone)]
struct Row {
    resource_id: String,
    resource_type: &'static str,
    tag: Tag,
    /// Every tag of the resource, for `tag:KEY` filters.
    all: Vec<Tag>,
}

fn row_values(r: &Row, name: &str) -> Vec<String> {
    if let Some(values) = tag_values(&r.all, name) {
        return values;
    }
    match name {
        "key" => vec![r.tag.key.clone()],
        "value" => vec![r.tag.value.clone()],
        "resource-id" => vec![r.resource_id.clone()],
        _ => vec![r.resource_type.to_owned()],
    }
}

/// Every tag the caller may see, in DescribeTags' order.
fn tag_rows(state: &State, x: &Exchange<'_>) -> OrdMap<RowKey, Row> {
    let mut rows = OrdMap::new();
    let mut add = |id: String, resource_type: &'static str, tags: &[Tag]| {
        for t in tags {
            let row = Row { resource_id: id.clone(), resource_type, tag: t.clone(), all: tags.to_vec() };
            rows.insert(RowKey::new(&id, &t.key), row);
        }
    };
    for f in state.filters.values().filter(|f| x.in_scope(&f.scope) && !f.tags.is_empty()) {
        add(f.id.to_string(), "traffic-mirror-filter", &f.tags);
    }
    for r in state.rules.values().filter(|r| !r.tags.is_empty()) {
        if state.filters.get(&r.filter_id).is_some_and(|f| x.in_scope(&f.scope)) {
            add(r.id.to_string(), "traffic-mirror-filter-rule", &r.tags);
        }
    }
    for s in state.sessions.values().filter(|s| x.in_scope(&s.scope) && !s.tags.is_empty() && state.ec2_can_show(s)) {
        add(s.id.to_string(), "traffic-mirror-session", &s.tags);
    }
    for t in state.targets.values().filter(|t| x.in_scope(&t.scope) && !t.tags.is_empty()) {
        add(t.id.to_string(), "traffic-mirror-target", &t.tags);
    }
    let account = x.caller().account;
    for i in state.interfaces.values().filter(|i| i.scope.account == account && !i.tags.is_empty()) {
        add(i.id.to_string(), "network-interface", &i.tags);
    }
    rows
}

// === rendering ===

/// `<tagSet>` of a resource.
pub(super) fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.list("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_control::ErrorKind;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn delete_tags_keeps_value_conditions() {
        let params = p(&[
            ("ResourceId.1", "tmf-0123456789abcdef0"),
            ("Tag.1.Key", "a"),
            ("Tag.2.Key", "b"),
            ("Tag.2.Value", ""),
        ]);
        let Operation::DeleteTags { tags, .. } = parse_delete_tags(&params).unwrap() else { panic!() };
        assert_eq!(tags[0].value, None);
        assert_eq!(tags[1].value.as_deref(), Some(""));
        assert_eq!(
            parse_create_tags(&p(&[("ResourceId.1", "tmf-0123456789abcdef0")])).unwrap_err().kind,
            ErrorKind::MissingParameter
        );
        assert_eq!(
            parse_create_tags(&p(&[("ResourceId.1", "vpc-1"), ("Tag.1.Key", "k")])).unwrap_err().kind,
            ErrorKind::InvalidId
        );
    }
}
