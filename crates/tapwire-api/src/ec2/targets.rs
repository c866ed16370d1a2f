//! Targets: Create/Delete/DescribeTrafficMirrorTargets.
//!
//! A target names exactly one destination: an interface, a network load balancer (by ARN)
//! or a gateway load balancer endpoint (`vpce-…`); its `type` follows.

use tapwire_control::ops::Operation;
use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::{Target, TargetDestination};

use super::describe::{Describe, TAG_FILTERS, tag_values};
use super::exchange::{Exchange, Token};
use super::params::Params;
use super::tags::tag_set;
use super::xml::Xml;

/// Filter names DescribeTrafficMirrorTargets takes.
const FILTER_NAMES: &[&str] = &[
    "description",
    "network-interface-id",
    "network-load-balancer-arn",
    "owner-id",
    "traffic-mirror-target-id",
    TAG_FILTERS[0],
    TAG_FILTERS[1],
];

// === parsers ===

/// `CreateTrafficMirrorTarget`.
pub fn parse_create_target(p: &Params) -> Result<Operation, ApiError> {
    let eni: Option<NetworkInterfaceId> = p.opt_id("NetworkInterfaceId", ResourceKind::NetworkInterface)?;
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
    Ok(Operation::CreateTarget {
        destination,
        description: p.description()?,
        tags: p.tag_specifications("traffic-mirror-target")?,
    })
}

/// `DeleteTrafficMirrorTarget`.
pub fn parse_delete_target(p: &Params) -> Result<Operation, ApiError> {
    Ok(Operation::DeleteTarget(p.id("TrafficMirrorTargetId", ResourceKind::Target)?))
}

/// `DescribeTrafficMirrorTargets`.
pub fn parse_describe_targets(p: &Params) -> Result<Describe, ApiError> {
    Describe::parse(p, "TrafficMirrorTargetId", FILTER_NAMES)
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

// === handlers ===

pub(super) fn create_target(x: &Exchange<'_>) -> Result<String, ApiError> {
    let t = x.write(parse_create_target, Token::Idempotent)?.into_target()?;
    Ok(x.respond_created(|o| {
        o.element("trafficMirrorTarget", |o| target_xml(o, &t));
    }))
}

pub(super) fn delete_target(x: &Exchange<'_>) -> Result<String, ApiError> {
    let id = x.write(parse_delete_target, Token::None)?.into_deleted()?;
    Ok(x.respond(|o| {
        o.leaf("trafficMirrorTargetId", id);
    }))
}

pub(super) fn describe_targets(x: &Exchange<'_>) -> Result<String, ApiError> {
    let (q, state) = x.read(parse_describe_targets)?;
    let (items, next) =
        q.select(&state.targets, |t| x.in_scope(&t.scope), ResourceKind::Target, target_values, x.cancel())?;
    Ok(x.respond(|o| {
        o.list("trafficMirrorTargetSet", items, target_xml);
        o.opt("nextToken", next);
    }))
}

// === rendering ===

fn target_values(t: &Target, name: &str) -> Vec<String> {
    if let Some(values) = tag_values(&t.tags, name) {
        return values;
    }
    match (name, &t.destination) {
        ("description", _) => t.description.iter().cloned().collect(),
        ("network-interface-id", TargetDestination::NetworkInterface(eni)) => vec![eni.to_string()],
        ("network-load-balancer-arn", TargetDestination::NetworkLoadBalancer(arn)) => vec![arn.clone()],
        ("owner-id", _) => vec![t.scope.account.to_string()],
        ("traffic-mirror-target-id", _) => vec![t.id.to_string()],
        _ => Vec::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn exactly_one_destination() {
        let kind = |pairs: &[(&str, &str)]| parse_create_target(&p(pairs)).unwrap_err().kind;
        assert_eq!(kind(&[]), ErrorKind::TargetDestinationCount);
        assert_eq!(
            kind(&[("NetworkInterfaceId", "eni-0123456789abcdef0"), ("GatewayLoadBalancerEndpointId", "vpce-1")]),
            ErrorKind::TargetDestinationCount
        );
        assert_eq!(kind(&[("NetworkLoadBalancerArn", "arn:aws:ec2:x")]), ErrorKind::MalformedLoadBalancer);
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc6c495c0c9188";
        let Operation::CreateTarget { destination, .. } =
            parse_create_target(&p(&[("NetworkLoadBalancerArn", arn)])).unwrap()
        else {
            panic!()
        };
        assert_eq!(destination.ec2_type(), "network-load-balancer");
    }
}
