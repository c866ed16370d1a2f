//! Sessions: Alibaba names the destination directly (`TrafficMirrorTargetId` plus
//! `TrafficMirrorTargetType` NetworkInterface|SLB) and lets a session have several sources.
//!
//! Sessions made through EC2 point at a `tmt-` target resource; here they show the
//! target's destination: its interface (type NetworkInterface) or its load balancer (type
//! SLB). Packet length defaults to 1500 here; an EC2 session without one (the whole frame)
//! shows no `PacketLength`.

use serde_json::{Value, json};
use tapwire_control::ops::{NewSession, Operation, SessionChanges, Update};
use tapwire_control::{ApiError, ResourceKind, State};
use tapwire_model::ids::{NetworkInterfaceId, SessionId};
use tapwire_model::limits;
use tapwire_model::numbers::PacketLength;
use tapwire_model::resource::{Session, SessionTarget, TargetDestination};

use super::exchange::Exchange;
use super::filters::{tag_list, tags_json};
use super::list::{Page, TagFilter, creation_time, has_tags, page, paginate, tag_filters};
use super::params::{Params, invalid_value};
use super::{DESCRIPTION_MAX_CHARS, Fields, NAME_MAX_CHARS, check_text, fields, parse_id};

/// Most sources one RemoveSources call may name.
const REMOVE_SOURCES_MAX: usize = 10;

/// Alibaba's `TrafficMirrorTargetType` values.
const TYPE_INTERFACE: &str = "NetworkInterface";
const TYPE_LOAD_BALANCER: &str = "SLB";

/// A session's destination as Alibaba names it: `(TrafficMirrorTargetId, TrafficMirrorTargetType)`.
pub fn target_of(state: &State, s: &Session) -> (String, &'static str) {
    match &s.target {
        SessionTarget::NetworkInterface(eni) => (eni.to_string(), TYPE_INTERFACE),
        SessionTarget::LoadBalancer(lb) => (lb.clone(), TYPE_LOAD_BALANCER),
        SessionTarget::Target(id) => match state.targets.get(id).map(|t| &t.destination) {
            Some(TargetDestination::NetworkInterface(eni)) => (eni.to_string(), TYPE_INTERFACE),
            Some(TargetDestination::NetworkLoadBalancer(lb) | TargetDestination::GatewayLoadBalancerEndpoint(lb)) => {
                (lb.clone(), TYPE_LOAD_BALANCER)
            }
            // A target cannot be deleted while a session uses it; show the ID rather than nothing.
            None => (id.to_string(), TYPE_INTERFACE),
        },
    }
}

/// A session as `ListTrafficMirrorSessions` shows it.
pub fn session_json(state: &State, s: &Session) -> Value {
    let (target_id, target_type) = target_of(state, s);
    let mut out = json!({
        "TrafficMirrorSessionId": s.id.to_string(),
        "TrafficMirrorSessionStatus": s.status.as_str(),
        "TrafficMirrorSessionBusinessStatus": "Normal",
        "Enabled": s.enabled,
        "Priority": s.number.get(),
        "VirtualNetworkId": s.vni.get(),
        "TrafficMirrorFilterId": s.filter_id.to_string(),
        "TrafficMirrorTargetId": target_id,
        "TrafficMirrorTargetType": target_type,
        "TrafficMirrorSourceIds": s.sources.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "CreationTime": creation_time(s.created_at),
        "Tags": tags_json(&s.tags),
    });
    if let Value::Object(map) = &mut out {
        if let Some(len) = s.packet_length {
            map.insert("PacketLength".to_owned(), Value::from(len.get()));
        }
        let optional = [
            ("TrafficMirrorSessionName", &s.name),
            ("TrafficMirrorSessionDescription", &s.description),
            ("ResourceGroupId", &s.resource_group),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                map.insert(key.to_owned(), Value::from(v.as_str()));
            }
        }
    }
    out
}

fn session_id(params: &Params) -> Result<SessionId, ApiError> {
    parse_id(params.required("TrafficMirrorSessionId")?, ResourceKind::Session)
}

/// `TrafficMirrorSourceIds.N`, required.
fn sources(params: &Params) -> Result<Vec<NetworkInterfaceId>, ApiError> {
    let raw = params.list("TrafficMirrorSourceIds")?;
    if raw.is_empty() {
        return Err(ApiError::missing("TrafficMirrorSourceIds"));
    }
    raw.iter().map(|r| parse_id(r, ResourceKind::NetworkInterface)).collect()
}

/// `TrafficMirrorTargetId` with `TrafficMirrorTargetType`: both or neither.
fn target(params: &Params) -> Result<Option<SessionTarget>, ApiError> {
    let id = params.get("TrafficMirrorTargetId").filter(|v| !v.is_empty());
    let kind = params.get("TrafficMirrorTargetType").filter(|v| !v.is_empty());
    match (id, kind) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::missing("TrafficMirrorTargetType")),
        (None, Some(_)) => Err(ApiError::missing("TrafficMirrorTargetId")),
        (Some(id), Some(TYPE_INTERFACE)) => {
            Ok(Some(SessionTarget::NetworkInterface(parse_id(id, ResourceKind::NetworkInterface)?)))
        }
        (Some(id), Some(TYPE_LOAD_BALANCER)) => Ok(Some(SessionTarget::LoadBalancer(id.trim().to_owned()))),
        (Some(_), Some(other)) => Err(invalid_value("TrafficMirrorTargetType", other)),
    }
}

/// Alibaba's packet length range (64–8500), a subset of the model's.
fn packet_length(params: &Params) -> Result<Option<PacketLength>, ApiError> {
    match params.parsed::<u32>("PacketLength")? {
        None => Ok(None),
        Some(n) => limits::ALIBABA_PACKET_LENGTH
            .contains(&n)
            .then(|| PacketLength::try_from(u64::from(n)).ok())
            .flatten()
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "The PacketLength {n} is invalid; it must be between {} and {}.",
                    limits::ALIBABA_PACKET_LENGTH.start(),
                    limits::ALIBABA_PACKET_LENGTH.end()
                ))
            }),
    }
}

/// The packet length a session gets when the caller names none.
const DEFAULT_PACKET_LENGTH: Option<PacketLength> = PacketLength::new(limits::ALIBABA_DEFAULT_PACKET_LENGTH);

// === parsers ===

/// `CreateTrafficMirrorSession`.
pub fn parse_create_session(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::CreateSession(NewSession {
        sources: sources(p)?,
        target: target(p)?.ok_or_else(|| ApiError::missing("TrafficMirrorTargetId"))?,
        filter_id: parse_id(p.required("TrafficMirrorFilterId")?, ResourceKind::Filter)?,
        number: p.number_required("Priority")?,
        vni: p.number("VirtualNetworkId")?,
        packet_length: packet_length(p)?.or(DEFAULT_PACKET_LENGTH),
        enabled: p.flag("Enabled")?.unwrap_or(false),
        name: check_text(p, "TrafficMirrorSessionName", NAME_MAX_CHARS)?,
        description: check_text(p, "TrafficMirrorSessionDescription", DESCRIPTION_MAX_CHARS)?,
        tags: tag_list(p, "Tag")?,
        resource_group: p.non_empty("ResourceGroupId").map(str::to_owned),
    }))
}

/// `DeleteTrafficMirrorSession`.
pub fn parse_delete_session(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteSession(session_id(p)?))
}

/// `UpdateTrafficMirrorSessionAttribute`.
pub fn parse_update_session(p: &Params) -> Result<Operation, ApiError> {
    let session_id = session_id(p)?;
    let set_or_keep = |v: Option<String>| v.map_or(Update::Keep, Update::Set);
    let changes = SessionChanges {
        target: target(p)?,
        filter_id: p.non_empty("TrafficMirrorFilterId").map(|raw| parse_id(raw, ResourceKind::Filter)).transpose()?,
        number: p.number("Priority")?,
        vni: p.number("VirtualNetworkId")?.map_or(Update::Keep, Update::Set),
        packet_length: packet_length(p)?.map_or(Update::Keep, Update::Set),
        enabled: p.flag("Enabled")?,
        name: set_or_keep(check_text(p, "TrafficMirrorSessionName", NAME_MAX_CHARS)?),
        description: set_or_keep(check_text(p, "TrafficMirrorSessionDescription", DESCRIPTION_MAX_CHARS)?),
    };
    Ok(Operation::ModifySession { session_id, changes })
}

/// `AddSourcesToTrafficMirrorSession`.
pub fn parse_add_sources(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::AddSources { session_id: session_id(p)?, sources: sources(p)? })
}

/// `RemoveSourcesFromTrafficMirrorSession`: at most 10 sources.
pub fn parse_remove_sources(p: &Params) -> Result<Operation, ApiError> {
    let sources = sources(p)?;
    if sources.len() > REMOVE_SOURCES_MAX {
        return Err(ApiError::invalid(format!("At most {REMOVE_SOURCES_MAX} sources can be removed at once.")));
    }
    Ok(Operation::RemoveSources { session_id: session_id(p)?, sources })
}

/// What `ListTrafficMirrorSessions` selects.
#[derive(Debug, Clone)]
pub struct ListSessions {
    ids: Vec<String>,
    name: Option<String>,
    filter_id: Option<String>,
    source_id: Option<String>,
    target_id: Option<String>,
    enabled: Option<bool>,
    priority: Option<u32>,
    vni: Option<u32>,
    resource_group: Option<String>,
    tags: Vec<TagFilter>,
    page: Page,
}

/// `ListTrafficMirrorSessions`.
pub fn parse_list_sessions(p: &Params) -> Result<ListSessions, ApiError> {
    let ids = p.list("TrafficMirrorSessionIds")?;
    if ids.len() > 100 {
        return Err(ApiError::invalid("At most 100 TrafficMirrorSessionIds can be given."));
    }
    let owned = |key: &str| p.non_empty(key).map(str::to_owned);
    Ok(ListSessions {
        ids,
        name: p.text("TrafficMirrorSessionName"),
        filter_id: owned("TrafficMirrorFilterId"),
        source_id: owned("TrafficMirrorSourceId"),
        target_id: owned("TrafficMirrorTargetId"),
        enabled: p.flag("Enabled")?,
        priority: p.parsed("Priority")?,
        vni: p.parsed("VirtualNetworkId")?,
        resource_group: owned("ResourceGroupId"),
        tags: tag_filters(p, "Tags")?,
        page: page(p, limits::ALIBABA_MAX_RESULTS, limits::ALIBABA_DEFAULT_MAX_RESULTS)?,
    })
}

// === handlers ===

pub(super) fn create_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let s = x.write(parse_create_session)?.into_session()?;
    let mut out = fields(json!({ "TrafficMirrorSessionId": s.id.to_string() }));
    if let Some(group) = s.resource_group {
        out.insert("ResourceGroupId".to_owned(), Value::from(group));
    }
    Ok(out)
}

pub(super) fn delete_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_delete_session)
}

pub(super) fn update_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_update_session)
}

pub(super) fn add_sources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_add_sources)
}

pub(super) fn remove_sources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_empty(parse_remove_sources)
}

pub(super) fn list_sessions(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let (q, state, scope) = x.read(parse_list_sessions)?;
    let wanted_ids: Vec<SessionId> = q.ids.iter().filter_map(|raw| raw.trim().parse().ok()).collect();
    let matches: Vec<&Session> = state
        .sessions
        .values()
        .filter(|s| s.scope == scope)
        .filter(|s| q.ids.is_empty() || wanted_ids.contains(&s.id))
        .filter(|s| q.name.as_ref().is_none_or(|n| s.name.as_ref() == Some(n)))
        .filter(|s| q.filter_id.as_ref().is_none_or(|f| s.filter_id.to_string() == *f))
        .filter(|s| q.source_id.as_ref().is_none_or(|eni| s.sources.iter().any(|src| src.to_string() == *eni)))
        .filter(|s| q.target_id.as_ref().is_none_or(|t| target_of(&state, s).0 == *t))
        .filter(|s| q.enabled.is_none_or(|e| s.enabled == e))
        .filter(|s| q.priority.is_none_or(|n| s.number.get() == n))
        .filter(|s| q.vni.is_none_or(|v| s.vni.get() == v))
        .filter(|s| q.resource_group.as_ref().is_none_or(|g| s.resource_group.as_ref() == Some(g)))
        .filter(|s| has_tags(&s.tags, &q.tags))
        .collect();
    let (items, next, total) = paginate(matches, |s| s.id.to_string(), &q.page);
    let sessions: Vec<Value> = items.into_iter().map(|s| session_json(&state, s)).collect();
    Ok(fields(json!({
        "TrafficMirrorSessions": sessions,
        "NextToken": next,
        "TotalCount": total.to_string(),
    })))
}
