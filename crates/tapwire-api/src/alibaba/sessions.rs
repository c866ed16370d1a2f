//! Sessions: Alibaba names the destination directly (`TrafficMirrorTargetId` plus
//! `TrafficMirrorTargetType` NetworkInterface|SLB) and lets a session have several sources.
//!
//! Sessions made through EC2 point at a `tmt-` target resource; here they show the
//! target's destination: its interface (type NetworkInterface) or its load balancer (type
//! SLB). Packet length defaults to 1500 here; an EC2 session without one (the whole frame)
//! shows no `PacketLength`.

use serde_json::{Value, json};
use tapwire_control::ops::{NewSession, Operation, Output, SessionChanges, Update};
use tapwire_control::{ApiError, ResourceKind, State};
use tapwire_model::ids::{NetworkInterfaceId, SessionId};
use tapwire_model::limits;
use tapwire_model::resource::{Session, SessionTarget, TargetDestination};

use super::filters::{tag_list, tags_json};
use super::list::{creation_time, has_tags, page, paginate, tag_filters};
use super::params::{Params, invalid_value};
use super::{DESCRIPTION_MAX_CHARS, Exchange, Fields, NAME_MAX_CHARS, check_text, fields, parse_id};

/// Most sources one RemoveSources call may name.
const REMOVE_SOURCES_MAX: usize = 10;

/// Alibaba's `TrafficMirrorTargetType` values.
const TYPE_INTERFACE: &str = "NetworkInterface";
const TYPE_LOAD_BALANCER: &str = "SLB";

/// A session's destination as Alibaba names it: `(TrafficMirrorTargetId, TrafficMirrorTargetType)`.
pub(super) fn target_of(state: &State, s: &Session) -> (String, &'static str) {
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
pub(super) fn session_json(state: &State, s: &Session) -> Value {
    let (target_id, target_type) = target_of(state, s);
    let mut out = json!({
        "TrafficMirrorSessionId": s.id.to_string(),
        "TrafficMirrorSessionStatus": s.status.as_str(),
        "TrafficMirrorSessionBusinessStatus": "Normal",
        "Enabled": s.enabled,
        "Priority": s.number,
        "VirtualNetworkId": s.vni,
        "TrafficMirrorFilterId": s.filter_id.to_string(),
        "TrafficMirrorTargetId": target_id,
        "TrafficMirrorTargetType": target_type,
        "TrafficMirrorSourceIds": s.sources.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "CreationTime": creation_time(s.created_at),
        "Tags": tags_json(&s.tags),
    });
    if let Value::Object(map) = &mut out {
        if let Some(len) = s.packet_length {
            map.insert("PacketLength".to_owned(), Value::from(len));
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

/// Alibaba's packet length range (64–8500).
fn packet_length(params: &Params) -> Result<Option<u16>, ApiError> {
    match params.parsed::<u32>("PacketLength")? {
        None => Ok(None),
        Some(n) if limits::ALIBABA_PACKET_LENGTH.contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(ApiError::invalid(format!(
            "The PacketLength {n} is invalid; it must be between {} and {}.",
            limits::ALIBABA_PACKET_LENGTH.start(),
            limits::ALIBABA_PACKET_LENGTH.end()
        ))),
    }
}

pub(super) fn create_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let new = NewSession {
        sources: sources(p)?,
        target: target(p)?.ok_or_else(|| ApiError::missing("TrafficMirrorTargetId"))?,
        filter_id: parse_id(p.required("TrafficMirrorFilterId")?, ResourceKind::Filter)?,
        number: p.parsed_required("Priority")?,
        vni: p.parsed("VirtualNetworkId")?,
        packet_length: Some(packet_length(p)?.unwrap_or(limits::ALIBABA_DEFAULT_PACKET_LENGTH)),
        enabled: p.flag("Enabled")?.unwrap_or(false),
        name: check_text(p, "TrafficMirrorSessionName", NAME_MAX_CHARS)?,
        description: check_text(p, "TrafficMirrorSessionDescription", DESCRIPTION_MAX_CHARS)?,
        tags: tag_list(p, "Tag")?,
        resource_group: p.get("ResourceGroupId").filter(|g| !g.is_empty()).map(str::to_owned),
    };
    let Output::Session(s) = x.write(Operation::CreateSession(new))? else {
        return Err(ApiError::internal("expected a session"));
    };
    let mut out = fields(json!({ "TrafficMirrorSessionId": s.id.to_string() }));
    if let Some(group) = s.resource_group {
        out.insert("ResourceGroupId".to_owned(), Value::from(group));
    }
    Ok(out)
}

pub(super) fn delete_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write(Operation::DeleteSession(session_id(x.params)?))?;
    Ok(fields(json!({})))
}

pub(super) fn update_session(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let session_id = session_id(p)?;
    let set_or_keep = |v: Option<String>| v.map_or(Update::Keep, Update::Set);
    let changes = SessionChanges {
        target: target(p)?,
        filter_id: p
            .get("TrafficMirrorFilterId")
            .filter(|v| !v.is_empty())
            .map(|raw| parse_id(raw, ResourceKind::Filter))
            .transpose()?,
        number: p.parsed("Priority")?,
        vni: p.parsed("VirtualNetworkId")?.map_or(Update::Keep, Update::Set),
        packet_length: packet_length(p)?.map_or(Update::Keep, Update::Set),
        enabled: p.flag("Enabled")?,
        name: set_or_keep(check_text(p, "TrafficMirrorSessionName", NAME_MAX_CHARS)?),
        description: set_or_keep(check_text(p, "TrafficMirrorSessionDescription", DESCRIPTION_MAX_CHARS)?),
    };
    x.write(Operation::ModifySession { session_id, changes })?;
    Ok(fields(json!({})))
}

pub(super) fn add_sources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let op = Operation::AddSources { session_id: session_id(x.params)?, sources: sources(x.params)? };
    x.write(op)?;
    Ok(fields(json!({})))
}

pub(super) fn remove_sources(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let sources = sources(x.params)?;
    if sources.len() > REMOVE_SOURCES_MAX {
        return Err(ApiError::invalid(format!("At most {REMOVE_SOURCES_MAX} sources can be removed at once.")));
    }
    x.write(Operation::RemoveSources { session_id: session_id(x.params)?, sources })?;
    Ok(fields(json!({})))
}

pub(super) fn list_sessions(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorSessionIds")?;
    if ids.len() > 100 {
        return Err(ApiError::invalid("At most 100 TrafficMirrorSessionIds can be given."));
    }
    let wanted_ids: Vec<SessionId> = ids.iter().filter_map(|raw| raw.trim().parse().ok()).collect();
    let name = p.get("TrafficMirrorSessionName");
    let filter_id = p.get("TrafficMirrorFilterId").filter(|v| !v.is_empty());
    let source_id = p.get("TrafficMirrorSourceId").filter(|v| !v.is_empty());
    let target_id = p.get("TrafficMirrorTargetId").filter(|v| !v.is_empty());
    let enabled = p.flag("Enabled")?;
    let priority = p.parsed::<u32>("Priority")?;
    let vni = p.parsed::<u32>("VirtualNetworkId")?;
    let group = p.get("ResourceGroupId").filter(|g| !g.is_empty());
    let tags = tag_filters(p, "Tags")?;
    let page = page(p, limits::ALIBABA_MAX_RESULTS, limits::ALIBABA_DEFAULT_MAX_RESULTS)?;
    let (state, scope) = x.read()?;
    let matches: Vec<&Session> = state
        .sessions
        .values()
        .filter(|s| s.scope == scope)
        .filter(|s| ids.is_empty() || wanted_ids.contains(&s.id))
        .filter(|s| name.is_none_or(|n| s.name.as_deref() == Some(n)))
        .filter(|s| filter_id.is_none_or(|f| s.filter_id.to_string() == f))
        .filter(|s| source_id.is_none_or(|eni| s.sources.iter().any(|src| src.to_string() == eni)))
        .filter(|s| target_id.is_none_or(|t| target_of(&state, s).0 == t))
        .filter(|s| enabled.is_none_or(|e| s.enabled == e))
        .filter(|s| priority.is_none_or(|n| s.number == n))
        .filter(|s| vni.is_none_or(|v| s.vni == v))
        .filter(|s| group.is_none_or(|g| s.resource_group.as_deref() == Some(g)))
        .filter(|s| has_tags(&s.tags, &tags))
        .collect();
    let (items, next, total) = paginate(matches, |s| s.id.to_string(), &page);
    let sessions: Vec<Value> = items.into_iter().map(|s| session_json(&state, s)).collect();
    Ok(fields(json!({
        "TrafficMirrorSessions": sessions,
        "NextToken": next,
        "TotalCount": total.to_string(),
    })))
}
