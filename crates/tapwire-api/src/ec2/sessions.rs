//! Sessions: Create/Modify/Delete/DescribeTrafficMirrorSessions.
//!
//! EC2 shows a session only if it can do so faithfully (one source, enabled, an EC2
//! target; [`tapwire_control::State::ec2_can_show`]). Sessions made through Alibaba that are
//! none of these are left out of lists, and naming one is `UnsupportedOperation`
//! (docs/dialects.md).

use tapwire_control::ops::{NewSession, Operation, SessionChanges, Update};
use tapwire_control::{ApiError, ResourceKind, State};
use tapwire_model::ids::SessionId;
use tapwire_model::resource::{Session, SessionTarget};

use super::describe::{Describe, TAG_FILTERS, tag_values};
use super::exchange::{Exchange, Token};
use super::params::{Params, update};
use super::tags::tag_set;
use super::xml::Xml;

/// Filter names DescribeTrafficMirrorSessions takes.
const FILTER_NAMES: &[&str] = &[
    "description",
    "network-interface-id",
    "owner-id",
    "packet-length",
    "session-number",
    "traffic-mirror-filter-id",
    "traffic-mirror-session-id",
    "traffic-mirror-target-id",
    "virtual-network-id",
    TAG_FILTERS[0],
    TAG_FILTERS[1],
];

// === parsers ===

/// `CreateTrafficMirrorSession`.
pub fn parse_create_session(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::CreateSession(NewSession {
        sources: vec![p.id("NetworkInterfaceId", ResourceKind::NetworkInterface)?],
        target: SessionTarget::Target(p.id("TrafficMirrorTargetId", ResourceKind::Target)?),
        filter_id: p.id("TrafficMirrorFilterId", ResourceKind::Filter)?,
        number: p.number_required("SessionNumber")?,
        vni: p.number("VirtualNetworkId")?,
        packet_length: p.number("PacketLength")?,
        enabled: true,
        name: None,
        description: p.description()?,
        tags: p.tag_specifications("traffic-mirror-session")?,
        resource_group: None,
    }))
}

/// `ModifyTrafficMirrorSession`.
pub fn parse_modify_session(p: &Params) -> Result<Operation, ApiError> {
    let session_id = p.id("TrafficMirrorSessionId", ResourceKind::Session)?;
    let removed = p.remove_fields(&["packet-length", "description", "virtual-network-id"])?;
    let changes = SessionChanges {
        target: p.opt_id("TrafficMirrorTargetId", ResourceKind::Target)?.map(SessionTarget::Target),
        filter_id: p.opt_id("TrafficMirrorFilterId", ResourceKind::Filter)?,
        number: p.number("SessionNumber")?,
        vni: update(p.number("VirtualNetworkId")?, removed.contains("virtual-network-id"), "virtual-network-id")?,
        packet_length: update(p.number("PacketLength")?, removed.contains("packet-length"), "packet-length")?,
        enabled: None,
        name: Update::Keep,
        description: update(p.description()?, removed.contains("description"), "description")?,
    };
    Ok(Operation::ModifySession { session_id, changes })
}

/// `DeleteTrafficMirrorSession`.
pub fn parse_delete_session(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteSession(p.id("TrafficMirrorSessionId", ResourceKind::Session)?))
}

/// `DescribeTrafficMirrorSessions`.
pub fn parse_describe_sessions(p: &Params) -> Result<Describe, ApiError> {
    Describe::parse(p, "TrafficMirrorSessionId", FILTER_NAMES)
}

// === handlers ===

pub(super) fn create_session(x: &Exchange<'_>) -> Result<String, ApiError> {
    let s = x.write(parse_create_session, Token::Idempotent)?.into_session()?;
    let state = x.state();
    Ok(x.respond_created(|o| {
        o.element("trafficMirrorSession", |o| session_xml(o, &state, &s));
    }))
}

pub(super) fn modify_session(x: &Exchange<'_>) -> Result<String, ApiError> {
    let s = x.write(parse_modify_session, Token::None)?.into_session()?;
    let state = x.state();
    Ok(x.respond(|o| {
        o.element("trafficMirrorSession", |o| session_xml(o, &state, &s));
    }))
}

pub(super) fn delete_session(x: &Exchange<'_>) -> Result<String, ApiError> {
    let id = x.write(parse_delete_session, Token::None)?.into_deleted()?;
    Ok(x.respond(|o| {
        o.leaf("trafficMirrorSessionId", id);
    }))
}

pub(super) fn describe_sessions(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_sessions)?;
    for raw in &q.ids {
        if let Some(s) = raw.parse().ok().and_then(|id: SessionId| state.sessions.get(&id))
            && x.in_scope(&s.scope)
            && !state.ec2_can_show(s)
        {
            return Err(ApiError::not_representable(&s.id.to_string()));
        }
    }
    let (items, next) = q.select(
        &state.sessions,
        |s| x.in_scope(&s.scope) && state.ec2_can_show(s),
        ResourceKind::Session,
        |s, name| session_values(&state, s, name),
        x.cancel(),
    )?;
    Ok(x.respond(|o| {
        o.list("trafficMirrorSessionSet", items, |o, s| session_xml(o, &state, s));
        o.opt("nextToken", next);
    }))
}

// === rendering ===

fn session_values(state: &State, s: &Session, name: &str) -> Vec<String> {
    if let Some(values) = tag_values(&s.tags, name) {
        return values;
    }
    let one = |v: &dyn ToString| vec![v.to_string()];
    match name {
        "description" => s.description.iter().cloned().collect(),
        "network-interface-id" => s.sources.iter().map(ToString::to_string).collect(),
        "owner-id" => one(&s.scope.account),
        "packet-length" => s.packet_length.iter().map(ToString::to_string).collect(),
        "session-number" => one(&s.number),
        "traffic-mirror-filter-id" => one(&s.filter_id),
        "traffic-mirror-target-id" => state.session_target_id(s).iter().map(ToString::to_string).collect(),
        "virtual-network-id" => one(&s.vni),
        _ => one(&s.id),
    }
}

fn session_xml(x: &mut Xml, state: &State, s: &Session) {
    x.leaf("trafficMirrorSessionId", s.id)
        .opt("trafficMirrorTargetId", state.session_target_id(s))
        .leaf("trafficMirrorFilterId", s.filter_id)
        .opt("networkInterfaceId", s.sources.first())
        .leaf("ownerId", s.scope.account)
        .opt("packetLength", s.packet_length)
        .leaf("sessionNumber", s.number)
        .leaf("virtualNetworkId", s.vni)
        .opt("description", s.description.as_ref());
    tag_set(x, &s.tags);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_control::ErrorKind;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn create_session_checks_ranges_once() {
        let ok = [
            ("NetworkInterfaceId", "eni-0123456789abcdef0"),
            ("TrafficMirrorTargetId", "tmt-0123456789abcdef0"),
            ("TrafficMirrorFilterId", "tmf-0123456789abcdef0"),
            ("SessionNumber", "1"),
        ];
        let Operation::CreateSession(new) = parse_create_session(&p(&ok)).unwrap() else { panic!() };
        assert_eq!((new.number.get(), new.vni, new.packet_length), (1, None, None));
        for (key, bad) in [("PacketLength", "8501"), ("VirtualNetworkId", "16777216"), ("SessionNumber", "0")] {
            let mut v: Vec<(&str, &str)> = ok.iter().copied().filter(|(k, _)| *k != key).collect();
            v.push((key, bad));
            assert_eq!(parse_create_session(&p(&v)).unwrap_err().kind, ErrorKind::InvalidParameterValue, "{key}");
        }
    }

    #[test]
    fn modify_session_remove_fields() {
        let params = p(&[
            ("TrafficMirrorSessionId", "tms-0123456789abcdef0"),
            ("RemoveField.1", "packet-length"),
            ("RemoveField.2", "virtual-network-id"),
        ]);
        let Operation::ModifySession { changes, .. } = parse_modify_session(&params).unwrap() else { panic!() };
        assert_eq!((changes.packet_length, changes.vni), (Update::Remove, Update::Remove));
        let bad = p(&[("TrafficMirrorSessionId", "tms-0123456789abcdef0"), ("RemoveField.1", "session-number")]);
        assert_eq!(parse_modify_session(&bad).unwrap_err().kind, ErrorKind::InvalidParameterValue);
    }
}
