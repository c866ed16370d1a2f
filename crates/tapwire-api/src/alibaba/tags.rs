//! The generic VPC tag and resource-group actions, for traffic mirror filters and sessions.
//!
//! `ResourceType` is `TRAFFICMIRRORFILTER` or `TRAFFICMIRRORSESSION` for the tag actions
//! and `TrafficMirrorFilter` or `TrafficMirrorSession` for MoveResourceGroup; both are
//! accepted in any case. An ID of the wrong kind is reported as that kind's not-found.

use serde_json::{Value, json};
use tapwire_control::ops::{Operation, ResourceRef, TagSelector};
use tapwire_control::{ApiError, ResourceKind};
use tapwire_model::resource::Tag;

use super::exchange::Exchange;
use super::filters::tag_list;
use super::list::{Page, TagFilter, has_tags, page, paginate, tag_filters};
use super::params::{Params, invalid_value};
use super::{Fields, fields, parse_id};

/// Most resource IDs one tag call may name.
const IDS_PER_CALL: usize = 50;
/// ListTagResources page sizes.
const LIST_TAGS_MAX_RESULTS: std::ops::RangeInclusive<u32> = 1..=50;
/// ListTagResources default page size.
const LIST_TAGS_DEFAULT_MAX_RESULTS: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Filter,
    Session,
}

impl Kind {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw.to_ascii_uppercase().as_str() {
            "TRAFFICMIRRORFILTER" => Ok(Kind::Filter),
            "TRAFFICMIRRORSESSION" => Ok(Kind::Session),
            _ => Err(invalid_value("ResourceType", raw)),
        }
    }

    /// The tag actions' spelling.
    fn tag_type(self) -> &'static str {
        match self {
            Kind::Filter => "TRAFFICMIRRORFILTER",
            Kind::Session => "TRAFFICMIRRORSESSION",
        }
    }

    fn resource(self, raw: &str) -> Result<ResourceRef, ApiError> {
        match self {
            Kind::Filter => parse_id(raw, ResourceKind::Filter).map(ResourceRef::Filter),
            Kind::Session => parse_id(raw, ResourceKind::Session).map(ResourceRef::Session),
        }
    }
}

fn kind(params: &Params) -> Result<Kind, ApiError> {
    Kind::parse(params.required("ResourceType")?)
}

/// `ResourceId.N`, required, at most 50.
fn resources(params: &Params, kind: Kind) -> Result<Vec<ResourceRef>, ApiError> {
    let ids = params.list("ResourceId")?;
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    if ids.len() > IDS_PER_CALL {
        return Err(ApiError::invalid(format!("At most {IDS_PER_CALL} ResourceId values can be given.")));
    }
    ids.iter().map(|raw| kind.resource(raw)).collect()
}

// === parsers ===

/// `TagResources`.
pub fn parse_tag_resources(p: &Params) -> Result<Operation, ApiError> {
    let kind = kind(p)?;
    let resources = resources(p, kind)?;
    let tags = tag_list(p, "Tag")?;
    if tags.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    Ok(Operation::CreateTags { resources, tags })
}

/// `UnTagResources`: named keys, or every tag with `All=true`.
pub fn parse_untag_resources(p: &Params) -> Result<Operation, ApiError> {
    let kind = kind(p)?;
    let resources = resources(p, kind)?;
    let keys = p.list("TagKey")?;
    let all = p.flag("All")?.unwrap_or(false);
    if keys.is_empty() && !all {
        return Err(ApiError::missing("TagKey"));
    }
    // No selectors means every tag; `All` only counts when no key is named.
    let tags = keys.into_iter().map(|key| TagSelector { key, value: None }).collect();
    Ok(Operation::DeleteTags { resources, tags })
}

/// `MoveResourceGroup`.
pub fn parse_move_resource_group(p: &Params) -> Result<Operation, ApiError> {
    let resource = kind(p)?.resource(p.required("ResourceId")?)?;
    let resource_group = p.required("NewResourceGroupId")?.to_owned();
    Ok(Operation::MoveResourceGroup { resource, resource_group })
}

/// What `ListTagResources` selects.
#[derive(Debug, Clone)]
pub struct ListTagResources {
    kind: Kind,
    ids: Vec<String>,
    conditions: Vec<TagFilter>,
    page: Page,
}

/// `ListTagResources`.
pub fn parse_list_tag_resources(p: &Params) -> Result<ListTagResources, ApiError> {
    let kind = kind(p)?;
    let ids = p.list("ResourceId")?;
    if ids.len() > IDS_PER_CALL {
        return Err(ApiError::invalid(format!("At most {IDS_PER_CALL} ResourceId values can be given.")));
    }
    Ok(ListTagResources {
        kind,
        ids,
        conditions: tag_filters(p, "Tag")?,
        page: page(p, LIST_TAGS_MAX_RESULTS, LIST_TAGS_DEFAULT_MAX_RESULTS)?,
    })
}

// === handlers ===

pub(super) fn tag_resources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_tag_resources)
}

pub(super) fn untag_resources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_untag_resources)
}

pub(super) fn move_resource_group(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_move_resource_group)
}

pub(super) fn list_tag_resources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let (q, state, scope) = x.read(parse_list_tag_resources)?;
    let wanted = |id: &String| q.ids.is_empty() || q.ids.contains(id);
    let tagged: Vec<(String, &[Tag])> = match q.kind {
        Kind::Filter => {
            state.filters.values().filter(|f| f.scope == scope).map(|f| (f.id.to_string(), f.tags.as_slice())).collect()
        }
        Kind::Session => state
            .sessions
            .values()
            .filter(|s| s.scope == scope)
            .map(|s| (s.id.to_string(), s.tags.as_slice()))
            .collect(),
    };
    // Resources that carry every condition, with all their tags.
    let pairs: Vec<(String, &Tag)> = tagged
        .into_iter()
        .filter(|(id, tags)| wanted(id) && has_tags(tags, &q.conditions))
        .flat_map(|(id, tags)| tags.iter().map(move |t| (id.clone(), t)))
        .collect();
    let (items, next, _) = paginate(pairs, |(id, t)| format!("{id}\n{}", t.key), &q.page);
    let rows: Vec<Value> = items
        .into_iter()
        .map(|(id, t)| {
            json!({ "ResourceId": id, "ResourceType": q.kind.tag_type(), "TagKey": t.key, "TagValue": t.value })
        })
        .collect();
    Ok(fields(json!({ "NextToken": next, "TagResources": { "TagResource": rows } })))
}
