//! The resources an operation touches, as a policy sees them: ARNs in the caller's
//! dialect, with the tags the resources have now.
//!
//! - EC2: `arn:aws:ec2:REGION:ACCOUNT:traffic-mirror-filter/tmf-…` (and
//!   `traffic-mirror-filter-rule`, `traffic-mirror-session`, `traffic-mirror-target`,
//!   `network-interface`); Alibaba: `acs:vpc:REGION:ACCOUNT:trafficmirrorfilter/tmf-…` and
//!   `trafficmirrorsession`, a rule being part of its filter, and
//!   `acs:ecs:REGION:ACCOUNT:networkinterface/eni-…`.
//! - A create names the kind it makes with `*` for the ID, and what it refers to (a
//!   session: its filter, its destination, its sources), as IAM does.
//! - Only the caller's own resources are looked up; another account's ID reads as one
//!   with no tags, exactly like an ID that does not exist.
//! - Describe and List name no resource (`*`).

use tapwire_auth::policy::Resource;
use tapwire_control::ops::{Operation, ResourceRef};
use tapwire_control::{Dialect, State};
use tapwire_model::ids::{FilterId, NetworkInterfaceId};
use tapwire_model::resource::{Scope, SessionTarget, Tag, TargetDestination};

/// The service prefix of a dialect's actions in a policy.
pub fn service(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Ec2 => "ec2",
        Dialect::Alibaba => "vpc",
        Dialect::Tapwire => "tapwire",
    }
}

struct Arns<'a> {
    dialect: Dialect,
    scope: &'a Scope,
    state: &'a State,
}

impl Arns<'_> {
    fn arn(&self, kind: &str, id: &str) -> String {
        let (partition, service, kind) = match (self.dialect, kind) {
            (Dialect::Alibaba, "network-interface") => ("acs", "ecs", "networkinterface"),
            (Dialect::Alibaba, k) => (
                "acs",
                "vpc",
                if k == "traffic-mirror-session" { "trafficmirrorsession" } else { "trafficmirrorfilter" },
            ),
            (_, k) => ("arn:aws", "ec2", k),
        };
        format!("{partition}:{service}:{}:{}:{kind}/{id}", self.scope.region, self.scope.account)
    }

    fn kind(&self, kind: &str) -> Resource {
        Resource { arn: self.arn(kind, "*"), tags: Vec::new() }
    }

    fn with_tags(&self, kind: &str, id: &str, tags: Option<&[Tag]>) -> Resource {
        let tags = tags.unwrap_or_default().iter().map(|t| (t.key.clone(), t.value.clone())).collect();
        Resource { arn: self.arn(kind, id), tags }
    }

    fn filter(&self, id: FilterId) -> Resource {
        let tags = self.state.filters.get(&id).filter(|f| f.scope == *self.scope).map(|f| f.tags.as_slice());
        self.with_tags("traffic-mirror-filter", &id.to_string(), tags)
    }

    fn interface(&self, id: NetworkInterfaceId) -> Resource {
        let tags =
            self.state.interfaces.get(&id).filter(|i| i.scope.account == self.scope.account).map(|i| i.tags.as_slice());
        self.with_tags("network-interface", &id.to_string(), tags)
    }

    fn resource(&self, r: ResourceRef) -> Resource {
        let s = self.state;
        match r {
            ResourceRef::Filter(id) => self.filter(id),
            ResourceRef::Rule(id) => {
                let rule =
                    s.rules.get(&id).filter(|r| s.filters.get(&r.filter_id).is_some_and(|f| f.scope == *self.scope));
                match (self.dialect, rule) {
                    (Dialect::Alibaba, Some(r)) => self.filter(r.filter_id),
                    (_, rule) => {
                        self.with_tags("traffic-mirror-filter-rule", &id.to_string(), rule.map(|r| r.tags.as_slice()))
                    }
                }
            }
            ResourceRef::Session(id) => {
                let tags = s.sessions.get(&id).filter(|x| x.scope == *self.scope).map(|x| x.tags.as_slice());
                self.with_tags("traffic-mirror-session", &id.to_string(), tags)
            }
            ResourceRef::Target(id) => {
                let tags = s.targets.get(&id).filter(|x| x.scope == *self.scope).map(|x| x.tags.as_slice());
                self.with_tags("traffic-mirror-target", &id.to_string(), tags)
            }
            ResourceRef::Interface(id) => self.interface(id),
        }
    }

    fn destination(&self, target: &SessionTarget) -> Option<Resource> {
        match target {
            SessionTarget::Target(id) => Some(self.resource(ResourceRef::Target(*id))),
            SessionTarget::NetworkInterface(eni) => Some(self.interface(*eni)),
            SessionTarget::LoadBalancer(_) => None,
        }
    }
}

/// The resources `op` touches, for the caller in `scope` speaking `dialect`.
pub fn of(op: &Operation, state: &State, dialect: Dialect, scope: &Scope) -> Vec<Resource> {
    let a = Arns { dialect, scope, state };
    let session = |id| a.resource(ResourceRef::Session(id));
    match op {
        Operation::CreateFilter { .. } => vec![a.kind("traffic-mirror-filter")],
        Operation::DeleteFilter(id)
        | Operation::ModifyFilter { filter_id: id, .. }
        | Operation::ModifyNetworkServices { filter_id: id, .. }
        | Operation::DeleteRules { filter_id: id, .. } => vec![a.filter(*id)],
        Operation::CreateRule { filter_id, .. } | Operation::CreateRules { filter_id, .. } => {
            vec![a.filter(*filter_id), a.kind("traffic-mirror-filter-rule")]
        }
        Operation::ModifyRule { rule_id, .. } | Operation::DeleteRule(rule_id) => {
            vec![a.resource(ResourceRef::Rule(*rule_id))]
        }
        Operation::CreateSession(new) => {
            let mut out = vec![a.kind("traffic-mirror-session"), a.filter(new.filter_id)];
            out.extend(a.destination(&new.target));
            out.extend(new.sources.iter().map(|eni| a.interface(*eni)));
            out
        }
        Operation::ModifySession { session_id, changes } => {
            let mut out = vec![session(*session_id)];
            out.extend(changes.filter_id.map(|f| a.filter(f)));
            out.extend(changes.target.as_ref().and_then(|t| a.destination(t)));
            out
        }
        Operation::DeleteSession(id) => vec![session(*id)],
        Operation::AddSources { session_id, sources } | Operation::RemoveSources { session_id, sources } => {
            std::iter::once(session(*session_id)).chain(sources.iter().map(|eni| a.interface(*eni))).collect()
        }
        Operation::CreateTarget { destination, .. } => {
            let mut out = vec![a.kind("traffic-mirror-target")];
            if let TargetDestination::NetworkInterface(eni) = destination {
                out.push(a.interface(*eni));
            }
            out
        }
        Operation::DeleteTarget(id) => vec![a.resource(ResourceRef::Target(*id))],
        Operation::CreateTags { resources, .. } | Operation::DeleteTags { resources, .. } => {
            resources.iter().map(|r| a.resource(*r)).collect()
        }
        Operation::MoveResourceGroup { resource, .. } => vec![a.resource(*resource)],
        Operation::RegisterInterface(_) | Operation::DeregisterInterface(_) => vec![a.kind("network-interface")],
        Operation::CreateSensorGroup { members, .. } => {
            std::iter::once(a.kind("sensor-group")).chain(members.iter().map(|eni| a.interface(*eni))).collect()
        }
        Operation::ModifySensorGroup { add, .. } => {
            std::iter::once(a.kind("sensor-group")).chain(add.iter().map(|eni| a.interface(*eni))).collect()
        }
        Operation::DeleteSensorGroup(_) => vec![a.kind("sensor-group")],
        Operation::OpenService
        | Operation::CompleteTask(_)
        | Operation::ForgetClientTokens(_)
        | Operation::CreateAccount { .. }
        | Operation::CreateAccessKey { .. }
        | Operation::DeleteAccessKey(_)
        | Operation::CreateJoinToken(_)
        | Operation::DeleteJoinToken(_)
        | Operation::EnrollAgent { .. }
        | Operation::RevokeAgent { .. } => Vec::new(),
    }
}
