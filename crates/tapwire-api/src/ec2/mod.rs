//! The EC2 Query dialect (API version 2016-11-15).
//!
//! One function per action: read the parameters into an [`Operation`] (or a read), run it,
//! render the `<ActionResponse>` document. Errors render as the `<Response><Errors>`
//! envelope with EC2's codes ([`error_code`]).

pub mod describe;
pub mod params;
pub mod xml;

use std::collections::BTreeSet;

use ipnet::IpNet;
use tapwire_control::ops::{
    FilterView, IdempotencyKey, NewRule, NewSession, Operation, Output, RequestContext, ResourceRef, RuleChanges,
    SessionChanges, TagSelector, Update,
};
use tapwire_control::{ApiError, Control, Dialect, ErrorKind, Quota, ResourceKind, State};
use tapwire_model::ids::{FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::limits;
use tapwire_model::resource::{
    FilterRule, NetworkInterface, NetworkService, Session, SessionTarget, Tag, Target, TargetDestination,
};
use tapwire_model::rule::{Direction, PortRange, RuleAction, RuleMatch};

use self::describe::{NameFilter, name_filters, page, select};
use self::params::Params;
use self::xml::Xml;

/// The API version this dialect speaks.
pub const VERSION: &str = "2016-11-15";

/// A rendered answer: HTTP status and XML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// XML document.
    pub body: String,
}

/// EC2's code for an error kind.
pub fn error_code(kind: &ErrorKind) -> &'static str {
    use ResourceKind as R;
    match kind {
        ErrorKind::NotFound(R::Filter) | ErrorKind::MalformedId(R::Filter) => "InvalidTrafficMirrorFilterId.NotFound",
        ErrorKind::NotFound(R::FilterRule) | ErrorKind::MalformedId(R::FilterRule) => {
            "InvalidTrafficMirrorFilterRuleId.NotFound"
        }
        ErrorKind::NotFound(R::Session) | ErrorKind::MalformedId(R::Session) => {
            "InvalidTrafficMirrorSessionId.NotFound"
        }
        ErrorKind::NotFound(R::Target) | ErrorKind::MalformedId(R::Target) => "InvalidTrafficMirrorTargetId.NotFound",
        ErrorKind::NotFound(R::NetworkInterface) => "InvalidNetworkInterfaceID.NotFound",
        ErrorKind::MalformedId(R::NetworkInterface) => "InvalidNetworkInterfaceId.Malformed",
        ErrorKind::FilterInUse => "TrafficMirrorFilterInUse",
        ErrorKind::TargetInUse => "TrafficMirrorTargetInUseException",
        ErrorKind::InterfaceInUseBySession => "InterfaceInUseByTrafficMirrorSession",
        ErrorKind::InterfaceInUseByTarget => "InterfaceInUseByTrafficMirrorTarget",
        ErrorKind::LoadBalancerInUseByTarget => "NlbInUseByTrafficMirrorTargetException",
        ErrorKind::MalformedLoadBalancer => "InvalidNetworkLoadBalancerArn.Malformed",
        ErrorKind::InterfaceNotSupported => "NetworkInterfaceNotSupported",
        ErrorKind::RuleAlreadyExists => "TrafficMirrorFilterRuleAlreadyExists",
        ErrorKind::Quota(Quota::SessionsPerInterface) => "TrafficMirrorSessionsPerInterfaceLimitExceeded",
        ErrorKind::Quota(Quota::SessionsPerTarget) => "TrafficMirrorSessionsPerTargetLimitExceeded",
        ErrorKind::Quota(Quota::SourcesPerTarget) => "TrafficMirrorSourcesPerTargetLimitExceeded",
        ErrorKind::Quota(Quota::Filters) => "TrafficMirrorFilterLimitExceeded",
        ErrorKind::Quota(Quota::Rules) => "TrafficMirrorFilterRuleLimitExceeded",
        ErrorKind::Quota(Quota::Sessions) => "TrafficMirrorSessionLimitExceeded",
        ErrorKind::Quota(Quota::Targets) => "TrafficMirrorTargetLimitExceeded",
        ErrorKind::Quota(Quota::SourcesPerSession)
        | ErrorKind::DuplicateSource
        | ErrorKind::SourceAlreadyInSession
        | ErrorKind::SourceNotInSession
        | ErrorKind::InvalidParameterValue => "InvalidParameterValue",
        ErrorKind::NotRepresentable => "UnsupportedOperation",
        ErrorKind::TargetDestinationCount => "InvalidInput",
        ErrorKind::IncorrectStatus(_) => "IncorrectState",
        ErrorKind::MissingParameter => "MissingParameter",
        ErrorKind::InvalidParameterCombination => "InvalidParameterCombination",
        ErrorKind::UnknownParameter => "UnknownParameter",
        ErrorKind::InvalidAction => "InvalidAction",
        ErrorKind::InvalidFilter => "InvalidFilter",
        ErrorKind::InvalidNextToken => "InvalidNextToken",
        ErrorKind::TagLimitExceeded => "TagLimitExceeded",
        ErrorKind::InvalidTagKey => "InvalidTagKey.Malformed",
        ErrorKind::InvalidId => "InvalidID",
        ErrorKind::DryRunOperation => "DryRunOperation",
        ErrorKind::IdempotentParameterMismatch => "IdempotentParameterMismatch",
        ErrorKind::OptInRequired => "OptInRequired",
        ErrorKind::AlreadyOpened => "InvalidParameterValue",
        ErrorKind::AuthFailure => "AuthFailure",
        ErrorKind::Internal => "InternalError",
    }
}

/// EC2's HTTP status for an error kind.
pub fn error_status(kind: &ErrorKind) -> u16 {
    match kind {
        ErrorKind::DryRunOperation => 412,
        ErrorKind::AuthFailure => 401,
        ErrorKind::Internal => 500,
        _ => 400,
    }
}

/// Renders an error.
pub fn error_reply(err: &ApiError, request_id: &str) -> Reply {
    Reply {
        status: error_status(&err.kind),
        body: xml::error_document(error_code(&err.kind), &err.message, request_id),
    }
}

/// Who is calling and where, before the action is known.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account.
    pub account: tapwire_model::AccountId,
    /// Region.
    pub region: String,
}

/// Handles one EC2 request whose parameters are decoded.
pub fn handle(control: &Control, caller: &Caller, params: Params, request_id: &str) -> Reply {
    let action = params.get("Action").unwrap_or_default().to_owned();
    match dispatch(control, caller, &action, &params, request_id) {
        Ok(body) => Reply { status: 200, body },
        Err(err) => error_reply(&err, request_id),
    }
}

type Handler = fn(&Exchange<'_>) -> Result<Xml, ApiError>;

/// Every action this dialect answers, with its handler.
const ACTIONS: &[(&str, Handler)] = &[
    ("CreateTrafficMirrorFilter", create_filter),
    ("CreateTrafficMirrorFilterRule", create_rule),
    ("CreateTrafficMirrorSession", create_session),
    ("CreateTrafficMirrorTarget", create_target),
    ("DeleteTrafficMirrorFilter", delete_filter),
    ("DeleteTrafficMirrorFilterRule", delete_rule),
    ("DeleteTrafficMirrorSession", delete_session),
    ("DeleteTrafficMirrorTarget", delete_target),
    ("DescribeTrafficMirrorFilters", describe_filters),
    ("DescribeTrafficMirrorFilterRules", describe_rules),
    ("DescribeTrafficMirrorSessions", describe_sessions),
    ("DescribeTrafficMirrorTargets", describe_targets),
    ("ModifyTrafficMirrorFilterNetworkServices", modify_network_services),
    ("ModifyTrafficMirrorFilterRule", modify_rule),
    ("ModifyTrafficMirrorSession", modify_session),
    ("CreateTags", create_tags),
    ("DeleteTags", delete_tags),
    ("DescribeNetworkInterfaces", describe_network_interfaces),
];

/// The names of every action this dialect answers.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|(name, _)| *name)
}

/// One request in flight.
struct Exchange<'a> {
    control: &'a Control,
    caller: &'a Caller,
    action: &'static str,
    params: &'a Params,
    request_id: &'a str,
}

fn dispatch(
    control: &Control,
    caller: &Caller,
    action: &str,
    params: &Params,
    request_id: &str,
) -> Result<String, ApiError> {
    let Some((name, handler)) = ACTIONS.iter().find(|(name, _)| *name == action) else {
        return Err(if action.is_empty() {
            ApiError::missing("Action")
        } else {
            ApiError::new(ErrorKind::InvalidAction, format!("The action {action} is not valid for this web service."))
        });
    };
    let x = Exchange { control, caller, action: name, params, request_id };
    Ok(handler(&x)?.finish(name))
}

impl Exchange<'_> {
    fn dry_run(&self) -> Result<bool, ApiError> {
        Ok(self.params.flag("DryRun")?.unwrap_or(false))
    }

    fn context(&self, idempotent: bool) -> Result<RequestContext, ApiError> {
        let idempotency = if idempotent {
            self.params.get("ClientToken").filter(|t| !t.is_empty()).map(|token| IdempotencyKey {
                action: self.action,
                token: token.to_owned(),
                fingerprint: self.params.fingerprint(),
            })
        } else {
            None
        };
        Ok(RequestContext {
            account: self.caller.account,
            region: self.caller.region.clone(),
            dry_run: self.dry_run()?,
            idempotency,
        })
    }

    /// Runs a write: finish parameter checks, execute, hand back the output.
    fn write(&self, op: Operation, idempotent: bool) -> Result<Output, ApiError> {
        let ctx = self.context(idempotent)?;
        self.params.finish()?;
        self.control.execute(&ctx, Dialect::Ec2, op)
    }

    /// Prepares a read: finish parameter checks and honour DryRun.
    fn read(&self) -> Result<std::sync::Arc<State>, ApiError> {
        let dry_run = self.dry_run()?;
        self.params.finish()?;
        if dry_run {
            return Err(ApiError::new(
                ErrorKind::DryRunOperation,
                "Request would have succeeded, but DryRun flag is set.",
            ));
        }
        Ok(self.control.read())
    }

    fn response(&self) -> Xml {
        Xml::response(self.action, self.request_id)
    }

    fn client_token(&self, x: &mut Xml) {
        x.opt("clientToken", self.params.get("ClientToken"));
    }

    fn in_scope(&self, scope: &tapwire_model::resource::Scope) -> bool {
        scope.account == self.caller.account && scope.region == self.caller.region
    }
}

// === parameter readers ===

fn id_param<T: std::str::FromStr>(p: &Params, key: &str, kind: ResourceKind) -> Result<T, ApiError> {
    let raw = p.required(key)?;
    parse_id(raw, kind)
}

fn parse_id<T: std::str::FromStr>(raw: &str, kind: ResourceKind) -> Result<T, ApiError> {
    raw.parse().map_err(|_| {
        let mut e = ApiError::not_found(kind, raw);
        e.kind = ErrorKind::MalformedId(kind);
        e.message = format!("The ID '{raw}' is malformed.");
        e
    })
}

fn opt_id<T: std::str::FromStr>(p: &Params, key: &str, kind: ResourceKind) -> Result<Option<T>, ApiError> {
    p.get(key).map(|raw| parse_id(raw, kind)).transpose()
}

fn cidr(p: &Params, key: &str) -> Result<Option<IpNet>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("Value ({raw}) for parameter {key} is not a valid CIDR block."))),
    }
}

fn direction(raw: &str) -> Result<Direction, ApiError> {
    raw.parse().map_err(|()| {
        ApiError::invalid(format!(
            "Value ({raw}) for parameter TrafficDirection is invalid. Expected ingress or egress."
        ))
    })
}

fn action(raw: &str) -> Result<RuleAction, ApiError> {
    match raw {
        "accept" => Ok(RuleAction::Accept),
        "reject" => Ok(RuleAction::Reject),
        _ => Err(ApiError::invalid(format!(
            "Value ({raw}) for parameter RuleAction is invalid. Expected accept or reject."
        ))),
    }
}

/// Protocol 0 and an absent protocol both mean "every protocol".
fn protocol(p: &Params) -> Result<Option<Option<u8>>, ApiError> {
    match p.parsed::<u32>("Protocol")? {
        None => Ok(None),
        Some(0) => Ok(Some(None)),
        Some(n) => u8::try_from(n)
            .map(|n| Some(Some(n)))
            .map_err(|_| ApiError::invalid(format!("Value ({n}) for parameter Protocol is invalid. Expected 0-255."))),
    }
}

fn port_range(p: &Params, prefix: &str) -> Result<Option<PortRange>, ApiError> {
    let from = p.parsed::<u32>(&format!("{prefix}.FromPort"))?;
    let to = p.parsed::<u32>(&format!("{prefix}.ToPort"))?;
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let (from, to) = (from.unwrap_or(0), to.unwrap_or(65535));
    let bad = || ApiError::invalid(format!("The port range {from}-{to} in {prefix} is invalid."));
    if !limits::PORT.contains(&from) || !limits::PORT.contains(&to) {
        return Err(bad());
    }
    PortRange::new(from as u16, to as u16).map(Some).ok_or_else(bad)
}

fn tag_specifications(p: &Params, resource_type: &str) -> Result<Vec<Tag>, ApiError> {
    let mut tags = Vec::new();
    for n in p.indices("TagSpecification")? {
        let rt = p.required(&format!("TagSpecification.{n}.ResourceType"))?;
        if rt != resource_type {
            return Err(ApiError::invalid(format!("'{rt}' is not a valid taggable resource type for this operation.")));
        }
        tags.extend(tag_list(p, &format!("TagSpecification.{n}.Tag"))?);
    }
    Ok(tags)
}

fn tag_list(p: &Params, prefix: &str) -> Result<Vec<Tag>, ApiError> {
    let mut tags = Vec::new();
    for m in p.indices(prefix)? {
        let key = p.required(&format!("{prefix}.{m}.Key"))?.to_owned();
        let value = p.get(&format!("{prefix}.{m}.Value")).unwrap_or_default().to_owned();
        tags.push(Tag { key, value });
    }
    Ok(tags)
}

fn remove_fields(p: &Params, allowed: &[&str]) -> Result<BTreeSet<String>, ApiError> {
    let fields: BTreeSet<String> = p.list("RemoveField")?.into_iter().collect();
    if let Some(bad) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
        return Err(ApiError::invalid(format!(
            "Value ({bad}) for parameter RemoveField is invalid. Expected one of: {}.",
            allowed.join(", ")
        )));
    }
    Ok(fields)
}

/// `Set` when the call gives a value, `Remove` when it names the field in RemoveField.
fn update<T>(value: Option<T>, removed: bool, field: &str) -> Result<Update<T>, ApiError> {
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

fn packet_length(p: &Params) -> Result<Option<u16>, ApiError> {
    match p.parsed::<u32>("PacketLength")? {
        None => Ok(None),
        Some(n) if limits::EC2_PACKET_LENGTH.contains(&n) => Ok(Some(n as u16)),
        Some(n) => {
            Err(ApiError::invalid(format!("The packet length {n} is not valid; it must be between 1 and 8500.")))
        }
    }
}

fn vni(p: &Params) -> Result<Option<u32>, ApiError> {
    match p.parsed::<u32>("VirtualNetworkId")? {
        None => Ok(None),
        Some(n) if limits::VNI.contains(&n) => Ok(Some(n)),
        Some(n) => Err(ApiError::invalid(format!(
            "The virtual network ID {n} is not valid; it must be between 0 and 16777215."
        ))),
    }
}

fn resource_ref(raw: &str) -> Result<ResourceRef, ApiError> {
    let bad = || ApiError::new(ErrorKind::InvalidId, format!("The ID '{raw}' is not valid"));
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
    Err(bad())
}

// === renderers ===

fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.list("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

fn port_range_xml(x: &mut Xml, name: &str, r: Option<PortRange>) {
    if let Some(r) = r {
        x.open(name).leaf("fromPort", r.from).leaf("toPort", r.to).close(name);
    }
}

fn rule_xml(x: &mut Xml, r: &FilterRule, with_tags: bool) {
    x.leaf("trafficMirrorFilterRuleId", r.id)
        .leaf("trafficMirrorFilterId", r.filter_id)
        .leaf("trafficDirection", r.direction)
        .leaf("ruleNumber", r.number)
        .leaf("ruleAction", r.action.ec2())
        .opt("protocol", r.matches.protocol);
    port_range_xml(x, "destinationPortRange", r.matches.destination_ports);
    port_range_xml(x, "sourcePortRange", r.matches.source_ports);
    x.leaf("destinationCidrBlock", r.matches.destination_cidr)
        .leaf("sourceCidrBlock", r.matches.source_cidr)
        .opt("description", r.description.as_ref());
    if with_tags {
        tag_set(x, &r.tags);
    }
}

fn filter_xml(x: &mut Xml, v: &FilterView) {
    let f = &v.filter;
    x.leaf("trafficMirrorFilterId", f.id);
    for (name, d) in [("ingressFilterRuleSet", Direction::Ingress), ("egressFilterRuleSet", Direction::Egress)] {
        x.list(name, v.rules.iter().filter(|r| r.direction == d), |x, r| rule_xml(x, r, true));
    }
    x.list("networkServiceSet", &f.network_services, |x, s| {
        x.leaf_raw(s.as_str());
    });
    x.opt("description", f.description.as_ref());
    tag_set(x, &f.tags);
}

/// The `tmt-` target EC2 shows for a session. Sessions made through Alibaba name their
/// destination directly; they show the EC2 target on that destination, if there is one.
fn session_target_id(state: &State, s: &Session) -> Option<TargetId> {
    let same_scope = |t: &&Target| t.scope == s.scope;
    match &s.target {
        SessionTarget::Target(id) => Some(*id),
        SessionTarget::NetworkInterface(eni) => state.target_on_interface(*eni).filter(same_scope).map(|t| t.id),
        SessionTarget::LoadBalancer(lb) => state
            .targets
            .values()
            .filter(same_scope)
            .find(|t| match &t.destination {
                TargetDestination::NetworkLoadBalancer(x) | TargetDestination::GatewayLoadBalancerEndpoint(x) => {
                    x == lb
                }
                TargetDestination::NetworkInterface(_) => false,
            })
            .map(|t| t.id),
    }
}

/// Whether EC2 can show a session faithfully: exactly one source, enabled (EC2 has no
/// disabled sessions), and a destination that is an EC2 target. Sessions made through
/// Alibaba may be none of these; Describe leaves them out and names them only to refuse
/// (docs/dialects.md).
fn ec2_can_show(state: &State, s: &Session) -> bool {
    s.sources.len() == 1 && s.enabled && session_target_id(state, s).is_some()
}

fn not_representable(id: SessionId) -> ApiError {
    ApiError::new(
        ErrorKind::NotRepresentable,
        format!(
            "The traffic mirror session '{id}' has several or no sources, is disabled, or names its destination without a traffic mirror target; the EC2 API cannot show it. Use the Alibaba Cloud VPC API."
        ),
    )
}

fn session_xml(x: &mut Xml, state: &State, s: &Session) {
    x.leaf("trafficMirrorSessionId", s.id)
        .opt("trafficMirrorTargetId", session_target_id(state, s))
        .leaf("trafficMirrorFilterId", s.filter_id)
        .opt("networkInterfaceId", s.sources.first())
        .leaf("ownerId", s.scope.account)
        .opt("packetLength", s.packet_length)
        .leaf("sessionNumber", s.number)
        .leaf("virtualNetworkId", s.vni)
        .opt("description", s.description.as_ref());
    tag_set(x, &s.tags);
}

fn target_xml(x: &mut Xml, t: &Target) {
    x.leaf("trafficMirrorTargetId", t.id);
    match &t.destination {
        TargetDestination::NetworkInterface(eni) => {
            x.leaf("networkInterfaceId", eni);
        }
        TargetDestination::NetworkLoadBalancer(arn) => {
            x.leaf("networkLoadBalancerArn", arn);
        }
        TargetDestination::GatewayLoadBalancerEndpoint(_) => {}
    }
    x.leaf("type", t.destination.ec2_type())
        .opt("description", t.description.as_ref())
        .leaf("ownerId", t.scope.account);
    tag_set(x, &t.tags);
    if let TargetDestination::GatewayLoadBalancerEndpoint(id) = &t.destination {
        x.leaf("gatewayLoadBalancerEndpointId", id);
    }
}

fn expect_filter(o: Output) -> Result<FilterView, ApiError> {
    match o {
        Output::Filter(v) => Ok(v),
        other => Err(ApiError::internal(format!("expected a filter, got {other:?}"))),
    }
}

// === actions ===

fn create_filter(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let op = Operation::CreateFilter {
        name: None,
        description: p.get("Description").map(str::to_owned),
        tags: tag_specifications(p, "traffic-mirror-filter")?,
        resource_group: None,
        rules: Vec::new(),
    };
    let view = expect_filter(x.write(op, true)?)?;
    let mut out = x.response();
    out.open("trafficMirrorFilter");
    filter_xml(&mut out, &view);
    out.close("trafficMirrorFilter");
    x.client_token(&mut out);
    Ok(out)
}

fn create_rule(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let filter_id = id_param(p, "TrafficMirrorFilterId", ResourceKind::Filter)?;
    let rule = NewRule {
        direction: direction(p.required("TrafficDirection")?)?,
        number: p.parsed_required("RuleNumber")?,
        action: action(p.required("RuleAction")?)?,
        matches: RuleMatch {
            protocol: protocol(p)?.flatten(),
            source_cidr: cidr(p, "SourceCidrBlock")?.ok_or_else(|| ApiError::missing("SourceCidrBlock"))?,
            destination_cidr: cidr(p, "DestinationCidrBlock")?
                .ok_or_else(|| ApiError::missing("DestinationCidrBlock"))?,
            source_ports: port_range(p, "SourcePortRange")?,
            destination_ports: port_range(p, "DestinationPortRange")?,
        },
        description: p.get("Description").map(str::to_owned),
        tags: tag_specifications(p, "traffic-mirror-filter-rule")?,
    };
    let Output::Rule(rule) = x.write(Operation::CreateRule { filter_id, rule }, true)? else {
        return Err(ApiError::internal("expected a rule"));
    };
    let mut out = x.response();
    out.open("trafficMirrorFilterRule");
    rule_xml(&mut out, &rule, true);
    out.close("trafficMirrorFilterRule");
    x.client_token(&mut out);
    Ok(out)
}

fn create_session(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let source: NetworkInterfaceId = id_param(p, "NetworkInterfaceId", ResourceKind::NetworkInterface)?;
    let new = NewSession {
        sources: vec![source],
        target: SessionTarget::Target(id_param(p, "TrafficMirrorTargetId", ResourceKind::Target)?),
        filter_id: id_param(p, "TrafficMirrorFilterId", ResourceKind::Filter)?,
        number: p.parsed_required("SessionNumber")?,
        vni: vni(p)?,
        packet_length: packet_length(p)?,
        enabled: true,
        name: None,
        description: p.get("Description").map(str::to_owned),
        tags: tag_specifications(p, "traffic-mirror-session")?,
        resource_group: None,
    };
    let Output::Session(s) = x.write(Operation::CreateSession(new), true)? else {
        return Err(ApiError::internal("expected a session"));
    };
    let mut out = x.response();
    out.open("trafficMirrorSession");
    session_xml(&mut out, &x.control.read(), &s);
    out.close("trafficMirrorSession");
    x.client_token(&mut out);
    Ok(out)
}

fn create_target(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let eni: Option<NetworkInterfaceId> = opt_id(p, "NetworkInterfaceId", ResourceKind::NetworkInterface)?;
    let nlb = p.get("NetworkLoadBalancerArn");
    let gwlb = p.get("GatewayLoadBalancerEndpointId");
    let destination = match (eni, nlb, gwlb) {
        (Some(eni), None, None) => TargetDestination::NetworkInterface(eni),
        (None, Some(arn), None) => {
            if !is_nlb_arn(arn) {
                return Err(ApiError::new(ErrorKind::MalformedLoadBalancer, format!("The ARN '{arn}' is malformed.")));
            }
            TargetDestination::NetworkLoadBalancer(arn.to_owned())
        }
        (None, None, Some(id)) => {
            if !id.starts_with("vpce-") {
                return Err(ApiError::invalid(format!("The gateway load balancer endpoint ID '{id}' is malformed.")));
            }
            TargetDestination::GatewayLoadBalancerEndpoint(id.to_owned())
        }
        _ => {
            return Err(ApiError::new(
                ErrorKind::TargetDestinationCount,
                "Invalid number of inputs: specify exactly one of NetworkInterfaceId, NetworkLoadBalancerArn or GatewayLoadBalancerEndpointId.",
            ));
        }
    };
    let op = Operation::CreateTarget {
        destination,
        description: p.get("Description").map(str::to_owned),
        tags: tag_specifications(p, "traffic-mirror-target")?,
    };
    let Output::Target(t) = x.write(op, true)? else {
        return Err(ApiError::internal("expected a target"));
    };
    let mut out = x.response();
    out.open("trafficMirrorTarget");
    target_xml(&mut out, &t);
    out.close("trafficMirrorTarget");
    x.client_token(&mut out);
    Ok(out)
}

/// `arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id>`.
fn is_nlb_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "elasticloadbalancing"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("loadbalancer/net/")
}

fn deleted(x: &Exchange<'_>, element: &str, op: Operation) -> Result<Xml, ApiError> {
    let Output::Deleted(id) = x.write(op, false)? else {
        return Err(ApiError::internal("expected a deleted id"));
    };
    let mut out = x.response();
    out.leaf(element, id);
    Ok(out)
}

fn delete_filter(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let id = id_param(x.params, "TrafficMirrorFilterId", ResourceKind::Filter)?;
    deleted(x, "trafficMirrorFilterId", Operation::DeleteFilter(id))
}

fn delete_rule(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let id = id_param(x.params, "TrafficMirrorFilterRuleId", ResourceKind::FilterRule)?;
    deleted(x, "trafficMirrorFilterRuleId", Operation::DeleteRule(id))
}

fn delete_session(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let id = id_param(x.params, "TrafficMirrorSessionId", ResourceKind::Session)?;
    deleted(x, "trafficMirrorSessionId", Operation::DeleteSession(id))
}

fn delete_target(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let id = id_param(x.params, "TrafficMirrorTargetId", ResourceKind::Target)?;
    deleted(x, "trafficMirrorTargetId", Operation::DeleteTarget(id))
}

fn network_service(raw: &str) -> Result<NetworkService, ApiError> {
    match raw {
        "amazon-dns" => Ok(NetworkService::AmazonDns),
        _ => Err(ApiError::invalid(format!(
            "Value ({raw}) for parameter NetworkService is invalid. Expected amazon-dns."
        ))),
    }
}

fn modify_network_services(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let filter_id = id_param(p, "TrafficMirrorFilterId", ResourceKind::Filter)?;
    let add = p.list("AddNetworkService")?.iter().map(|s| network_service(s)).collect::<Result<_, _>>()?;
    let remove = p.list("RemoveNetworkService")?.iter().map(|s| network_service(s)).collect::<Result<_, _>>()?;
    let view = expect_filter(x.write(Operation::ModifyNetworkServices { filter_id, add, remove }, false)?)?;
    let mut out = x.response();
    out.open("trafficMirrorFilter");
    filter_xml(&mut out, &view);
    out.close("trafficMirrorFilter");
    Ok(out)
}

fn modify_rule(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let rule_id = id_param(p, "TrafficMirrorFilterRuleId", ResourceKind::FilterRule)?;
    let removed = remove_fields(p, &["destination-port-range", "source-port-range", "protocol", "description"])?;
    let protocol = protocol(p)?;
    let source_ports = port_range(p, "SourcePortRange")?;
    let destination_ports = port_range(p, "DestinationPortRange")?;
    // EC2 wants the protocol in the same call that sets a port range.
    if (source_ports.is_some() || destination_ports.is_some()) && protocol.is_none() {
        return Err(ApiError::new(
            ErrorKind::InvalidParameterCombination,
            "A port range can only be set together with the TCP (6) or UDP (17) Protocol.",
        ));
    }
    let protocol_update = match protocol {
        Some(None) if !removed.contains("protocol") => Update::Remove,
        other => update(other.flatten(), removed.contains("protocol"), "protocol")?,
    };
    let changes = RuleChanges {
        direction: p.get("TrafficDirection").map(direction).transpose()?,
        number: p.parsed("RuleNumber")?,
        action: p.get("RuleAction").map(action).transpose()?,
        protocol: protocol_update,
        source_ports: update(source_ports, removed.contains("source-port-range"), "source-port-range")?,
        destination_ports: update(
            destination_ports,
            removed.contains("destination-port-range"),
            "destination-port-range",
        )?,
        source_cidr: cidr(p, "SourceCidrBlock")?,
        destination_cidr: cidr(p, "DestinationCidrBlock")?,
        description: update(p.get("Description").map(str::to_owned), removed.contains("description"), "description")?,
    };
    let Output::Rule(rule) = x.write(Operation::ModifyRule { rule_id, changes }, false)? else {
        return Err(ApiError::internal("expected a rule"));
    };
    let mut out = x.response();
    out.open("trafficMirrorFilterRule");
    rule_xml(&mut out, &rule, false);
    out.close("trafficMirrorFilterRule");
    Ok(out)
}

fn modify_session(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let session_id = id_param(p, "TrafficMirrorSessionId", ResourceKind::Session)?;
    {
        let state = x.control.read();
        if let Some(s) = state.sessions.get(&session_id).filter(|s| x.in_scope(&s.scope))
            && !ec2_can_show(&state, s)
        {
            return Err(not_representable(session_id));
        }
    }
    let removed = remove_fields(p, &["packet-length", "description", "virtual-network-id"])?;
    let changes = SessionChanges {
        target: opt_id(p, "TrafficMirrorTargetId", ResourceKind::Target)?.map(SessionTarget::Target),
        filter_id: opt_id(p, "TrafficMirrorFilterId", ResourceKind::Filter)?,
        number: p.parsed("SessionNumber")?,
        vni: update(vni(p)?, removed.contains("virtual-network-id"), "virtual-network-id")?,
        packet_length: update(packet_length(p)?, removed.contains("packet-length"), "packet-length")?,
        enabled: None,
        name: Update::Keep,
        description: update(p.get("Description").map(str::to_owned), removed.contains("description"), "description")?,
    };
    let Output::Session(s) = x.write(Operation::ModifySession { session_id, changes }, false)? else {
        return Err(ApiError::internal("expected a session"));
    };
    let mut out = x.response();
    out.open("trafficMirrorSession");
    session_xml(&mut out, &x.control.read(), &s);
    out.close("trafficMirrorSession");
    Ok(out)
}

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

fn create_tags(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let resources = tag_targets(x.params)?;
    let tags = tag_list(x.params, "Tag")?;
    if tags.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    x.write(Operation::CreateTags { resources, tags }, false)?;
    let mut out = x.response();
    out.leaf("return", "true");
    Ok(out)
}

fn delete_tags(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let resources = tag_targets(p)?;
    let mut tags = Vec::new();
    for n in p.indices("Tag")? {
        tags.push(TagSelector {
            key: p.required(&format!("Tag.{n}.Key"))?.to_owned(),
            value: p.get(&format!("Tag.{n}.Value")).map(str::to_owned),
        });
    }
    x.write(Operation::DeleteTags { resources, tags }, false)?;
    let mut out = x.response();
    out.leaf("return", "true");
    Ok(out)
}

// === reads ===

fn opt_string<T: ToString>(v: Option<T>) -> Vec<String> {
    v.map(|v| v.to_string()).into_iter().collect()
}

fn describe_filters(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorFilterId")?;
    let filters = name_filters(p, &["description", "traffic-mirror-filter-id"])?;
    let page = page(p)?;
    let state = x.read()?;
    let (items, next) = select(
        &state.filters,
        |f| x.in_scope(&f.scope),
        &ids,
        ResourceKind::Filter,
        &filters,
        |f, name| match name {
            "description" => opt_string(f.description.as_ref()),
            _ => vec![f.id.to_string()],
        },
        &page,
    )?;
    let mut out = x.response();
    out.list("trafficMirrorFilterSet", items, |o, f| filter_xml(o, &state.filter_view(f)));
    out.opt("nextToken", next);
    Ok(out)
}

fn rule_values(r: &FilterRule, name: &str) -> Vec<String> {
    match name {
        "traffic-mirror-filter-rule-id" => vec![r.id.to_string()],
        "traffic-mirror-filter-id" => vec![r.filter_id.to_string()],
        "rule-number" => vec![r.number.to_string()],
        "rule-action" => vec![r.action.ec2().to_owned()],
        "traffic-direction" => vec![r.direction.to_string()],
        "protocol" => opt_string(r.matches.protocol),
        "source-cidr-block" => vec![r.matches.source_cidr.to_string()],
        "destination-cidr-block" => vec![r.matches.destination_cidr.to_string()],
        _ => opt_string(r.description.as_ref()),
    }
}

fn describe_rules(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorFilterRuleId")?;
    let only_filter: Option<FilterId> = opt_id(p, "TrafficMirrorFilterId", ResourceKind::Filter)?;
    let filters: Vec<NameFilter> = name_filters(
        p,
        &[
            "traffic-mirror-filter-rule-id",
            "traffic-mirror-filter-id",
            "rule-number",
            "rule-action",
            "traffic-direction",
            "protocol",
            "source-cidr-block",
            "destination-cidr-block",
            "description",
        ],
    )?;
    let page = page(p)?;
    let state = x.read()?;
    if let Some(f) = only_filter
        && !state.filters.get(&f).is_some_and(|f| x.in_scope(&f.scope))
    {
        return Err(ApiError::not_found(ResourceKind::Filter, &f.to_string()));
    }
    let visible = |r: &FilterRule| {
        only_filter.is_none_or(|f| r.filter_id == f)
            && state.filters.get(&r.filter_id).is_some_and(|f| x.in_scope(&f.scope))
    };
    let (items, next) = select(&state.rules, visible, &ids, ResourceKind::FilterRule, &filters, rule_values, &page)?;
    let mut out = x.response();
    out.list("trafficMirrorFilterRuleSet", items, |o, r| rule_xml(o, r, true));
    out.opt("nextToken", next);
    Ok(out)
}

fn describe_sessions(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorSessionId")?;
    let filters = name_filters(
        p,
        &[
            "description",
            "network-interface-id",
            "owner-id",
            "packet-length",
            "session-number",
            "traffic-mirror-filter-id",
            "traffic-mirror-session-id",
            "traffic-mirror-target-id",
            "virtual-network-id",
        ],
    )?;
    let page = page(p)?;
    let state = x.read()?;
    for raw in &ids {
        if let Some(s) = raw.parse().ok().and_then(|id: SessionId| state.sessions.get(&id))
            && x.in_scope(&s.scope)
            && !ec2_can_show(&state, s)
        {
            return Err(not_representable(s.id));
        }
    }
    let (items, next) = select(
        &state.sessions,
        |s| x.in_scope(&s.scope) && ec2_can_show(&state, s),
        &ids,
        ResourceKind::Session,
        &filters,
        |s, name| match name {
            "description" => opt_string(s.description.as_ref()),
            "network-interface-id" => s.sources.iter().map(ToString::to_string).collect(),
            "owner-id" => vec![s.scope.account.to_string()],
            "packet-length" => opt_string(s.packet_length),
            "session-number" => vec![s.number.to_string()],
            "traffic-mirror-filter-id" => vec![s.filter_id.to_string()],
            "traffic-mirror-target-id" => opt_string(session_target_id(&state, s)),
            "virtual-network-id" => vec![s.vni.to_string()],
            _ => vec![s.id.to_string()],
        },
        &page,
    )?;
    let mut out = x.response();
    out.list("trafficMirrorSessionSet", items, |o, s| session_xml(o, &state, s));
    out.opt("nextToken", next);
    Ok(out)
}

fn describe_targets(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let ids = p.list("TrafficMirrorTargetId")?;
    let filters = name_filters(
        p,
        &["description", "network-interface-id", "network-load-balancer-arn", "owner-id", "traffic-mirror-target-id"],
    )?;
    let page = page(p)?;
    let state = x.read()?;
    let (items, next) = select(
        &state.targets,
        |t| x.in_scope(&t.scope),
        &ids,
        ResourceKind::Target,
        &filters,
        |t, name| match (name, &t.destination) {
            ("description", _) => opt_string(t.description.as_ref()),
            ("network-interface-id", TargetDestination::NetworkInterface(eni)) => vec![eni.to_string()],
            ("network-load-balancer-arn", TargetDestination::NetworkLoadBalancer(arn)) => vec![arn.clone()],
            ("owner-id", _) => vec![t.scope.account.to_string()],
            ("traffic-mirror-target-id", _) => vec![t.id.to_string()],
            _ => Vec::new(),
        },
        &page,
    )?;
    let mut out = x.response();
    out.list("trafficMirrorTargetSet", items, target_xml);
    out.opt("nextToken", next);
    Ok(out)
}

fn interface_values(i: &NetworkInterface, name: &str) -> Vec<String> {
    match name {
        "network-interface-id" => vec![i.id.to_string()],
        "private-ip-address" | "addresses.private-ip-address" => {
            i.addresses.iter().filter(|a| a.is_ipv4()).map(ToString::to_string).collect()
        }
        "ipv6-addresses.ipv6-address" => i.addresses.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect(),
        "attachment.instance-id" => opt_string(i.instance_id.as_ref()),
        "mac-address" => opt_string(i.mac.as_ref()),
        "owner-id" => vec![i.scope.account.to_string()],
        _ => Vec::new(),
    }
}

fn interface_xml(x: &mut Xml, i: &NetworkInterface) {
    x.leaf("networkInterfaceId", i.id);
    let description = match (&i.host, &i.ifname) {
        (Some(h), Some(n)) => Some(format!("{h}/{n}")),
        (None, Some(n)) => Some(n.clone()),
        (Some(h), None) => Some(h.clone()),
        (None, None) => None,
    };
    x.opt("description", description)
        .leaf("ownerId", i.scope.account)
        .leaf("requesterManaged", "false")
        .leaf("status", if i.is_free() { "available" } else { "in-use" })
        .opt("macAddress", i.mac.as_ref())
        .opt("privateIpAddress", i.primary_ipv4())
        .leaf("sourceDestCheck", "true")
        .leaf("interfaceType", "interface");
    if let Some(instance) = &i.instance_id {
        x.open("attachment")
            .leaf("deviceIndex", 0)
            .leaf("instanceId", instance)
            .leaf("instanceOwnerId", i.scope.account)
            .leaf("status", "attached")
            .close("attachment");
    }
    x.list("groupSet", std::iter::empty::<()>(), |_, ()| {});
    x.list("tagSet", std::iter::empty::<()>(), |_, ()| {});
    let primary = i.primary_ipv4();
    x.list("privateIpAddressesSet", i.addresses.iter().filter(|a| a.is_ipv4()), |x, a| {
        x.leaf("privateIpAddress", a).leaf("primary", Some(*a) == primary);
    });
    x.list("ipv6AddressesSet", i.addresses.iter().filter(|a| a.is_ipv6()), |x, a| {
        x.leaf("ipv6Address", a);
    });
}

fn describe_network_interfaces(x: &Exchange<'_>) -> Result<Xml, ApiError> {
    let p = x.params;
    let ids = p.list("NetworkInterfaceId")?;
    for id in &ids {
        parse_id::<NetworkInterfaceId>(id, ResourceKind::NetworkInterface)?;
    }
    let filters = name_filters(
        p,
        &[
            "network-interface-id",
            "private-ip-address",
            "addresses.private-ip-address",
            "ipv6-addresses.ipv6-address",
            "attachment.instance-id",
            "mac-address",
            "owner-id",
        ],
    )?;
    let page = page(p)?;
    let state = x.read()?;
    let (items, next) = select(
        &state.interfaces,
        |i| i.scope.account == x.caller.account,
        &ids,
        ResourceKind::NetworkInterface,
        &filters,
        interface_values,
        &page,
    )?;
    let mut out = x.response();
    out.list("networkInterfaceSet", items, interface_xml);
    out.opt("nextToken", next);
    Ok(out)
}
