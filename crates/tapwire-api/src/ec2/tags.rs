//! CreateTags and DeleteTags on every traffic-mirror resource, and the `tagSet` every
//! resource renders.
//!
//! DeleteTags: a key alone deletes the tag whatever its value; a key with a value (even
//! empty) only if the value matches; no tags at all deletes every tag.

use tapwire_control::ApiError;
use tapwire_control::ops::{Operation, ResourceRef, TagSelector};
use tapwire_model::limits;
use tapwire_model::resource::Tag;

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
