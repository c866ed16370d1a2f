//! One row per check and quota: the world, the operation, the error it must earn.

use tapwire_control::ops::{
    InterfaceRegistration, Operation, ResourceRef, RuleChanges, SessionChanges, TagSelector, Update,
};
use tapwire_control::testing::context;
use tapwire_control::{Dialect, ErrorKind, Quota, ResourceKind};
use tapwire_model::ids::FilterId;
use tapwire_model::limits::Quotas;
use tapwire_model::resource::{SessionTarget, TargetDestination};
use tapwire_model::rule::{Direction, PortRange};
use tapwire_model::sensor_groups::GroupMode;
use tapwire_model::{AccountId, RuleNumber};

use super::world::*;

/// One refused operation: the world it runs in, and what it must earn.
pub struct Refusal {
    pub name: &'static str,
    pub dialect: Dialect,
    pub expect: ErrorKind,
    /// Builds the world and returns the operation to refuse.
    pub setup: fn(&mut World) -> Operation,
    pub quotas: fn() -> Quotas,
}

pub fn default_quotas() -> Quotas {
    Quotas::default()
}

pub fn small_quotas() -> Quotas {
    Quotas {
        sessions_per_interface: 1,
        rules_per_filter_direction: 1,
        sessions_per_account: 1,
        filters_per_account: 1,
        targets_per_account: 1,
        sources_per_interface_target: 1,
        sessions_per_target: 1,
        sources_per_session: 1,
        interfaces_per_account: 100,
    }
}

pub fn key_op(account: AccountId, key_id: &str) -> Operation {
    Operation::CreateAccessKey { account, key_id: key_id.into(), sealed_secret: "sealed".into(), policy: None }
}

pub fn enroll_op(token: &str, secret: &str, host: &str) -> Operation {
    Operation::EnrollAgent {
        token_id: token.into(),
        presented_hash: secret_hash(secret),
        host: host.into(),
        key_id: format!("TWAKAGENT{token:0>11}"),
        sealed_secret: "sealed".into(),
    }
}

pub fn missing_filter() -> FilterId {
    "tmf-0000000000000000f".parse().unwrap()
}

macro_rules! refusal {
    ($name:literal, $dialect:expr, $expect:expr, $setup:expr) => {
        Refusal { name: $name, dialect: $dialect, expect: $expect, setup: $setup, quotas: default_quotas }
    };
    ($name:literal, $dialect:expr, $expect:expr, $setup:expr, $quotas:expr) => {
        Refusal { name: $name, dialect: $dialect, expect: $expect, setup: $setup, quotas: $quotas }
    };
}

use Dialect::{Alibaba, Ec2, Tapwire};
use ErrorKind as K;
use ResourceKind as R;

pub const REFUSALS: &[Refusal] = &[
    // === not found ===
    refusal!("filter not found", Ec2, K::NotFound(R::Filter), |_| Operation::DeleteFilter(missing_filter())),
    refusal!("rule not found", Ec2, K::NotFound(R::FilterRule), |_| Operation::DeleteRule(
        "tmfr-0000000000000000f".parse().unwrap()
    )),
    refusal!("session not found", Ec2, K::NotFound(R::Session), |_| Operation::DeleteSession(
        "tms-0000000000000000f".parse().unwrap()
    )),
    refusal!("target not found", Ec2, K::NotFound(R::Target), |_| Operation::DeleteTarget(
        "tmt-0000000000000000f".parse().unwrap()
    )),
    refusal!("interface not found", Tapwire, K::NotFound(R::NetworkInterface), |_| {
        Operation::DeregisterInterface("eni-0000000000000000f".parse().unwrap())
    }),
    refusal!("another region's filter is not found", Ec2, K::NotFound(R::Filter), |w| {
        let id =
            w.control.execute(&context("eu-west-1"), Ec2, create_filter_op()).unwrap().into_filter().unwrap().filter.id;
        Operation::DeleteFilter(id)
    }),
    refusal!("session with a missing filter", Ec2, K::NotFound(R::Filter), |w| {
        let (source, sensor) = (w.iface(true), w.iface(true));
        let target = w.target(sensor);
        Operation::CreateSession(new_session(source, SessionTarget::Target(target), missing_filter(), 1))
    }),
    refusal!("rule of another filter in DeleteRules", Alibaba, K::NotFound(R::FilterRule), |w| {
        w.open_alibaba();
        let (a, b) = (w.filter(), w.filter());
        let rule = w.rule(b, Direction::Ingress, 1);
        Operation::DeleteRules { filter_id: a, rule_ids: vec![rule] }
    }),
    // === in use ===
    refusal!("filter in use", Ec2, K::FilterInUse, |w| Operation::DeleteFilter(w.mirrored().filter)),
    refusal!("target in use", Ec2, K::TargetInUse, |w| Operation::DeleteTarget(w.mirrored().target)),
    refusal!("source becomes a target", Ec2, K::InterfaceInUseBySession, |w| Operation::CreateTarget {
        destination: TargetDestination::NetworkInterface(w.mirrored().source),
        description: None,
        tags: vec![],
    }),
    refusal!("interface is already a target", Ec2, K::InterfaceInUseByTarget, |w| Operation::CreateTarget {
        destination: TargetDestination::NetworkInterface(w.mirrored().sensor),
        description: None,
        tags: vec![],
    }),
    refusal!("target becomes a source", Ec2, K::InterfaceInUseByTarget, |w| {
        let m = w.mirrored();
        Operation::CreateSession(new_session(m.sensor, SessionTarget::Target(m.target), m.filter, 2))
    }),
    refusal!("deregister a target's interface", Tapwire, K::InterfaceInUseByTarget, |w| {
        Operation::DeregisterInterface(w.mirrored().sensor)
    }),
    refusal!("load balancer is already a target", Ec2, K::LoadBalancerInUseByTarget, |w| {
        let op = || Operation::CreateTarget {
            destination: TargetDestination::NetworkLoadBalancer(NLB.into()),
            description: None,
            tags: vec![],
        };
        w.ec2(op());
        op()
    }),
    refusal!("free interface as a source", Ec2, K::InterfaceNotSupported, |w| {
        let (free, sensor) = (w.iface(false), w.iface(true));
        let (target, filter) = (w.target(sensor), w.filter());
        Operation::CreateSession(new_session(free, SessionTarget::Target(target), filter, 1))
    }),
    // === rules ===
    refusal!("duplicate rule number", Ec2, K::RuleAlreadyExists, |w| {
        let f = w.filter();
        w.rule(f, Direction::Ingress, 5);
        Operation::CreateRule { filter_id: f, rule: new_rule(Direction::Ingress, 5) }
    }),
    refusal!("mixed CIDR families", Ec2, K::InvalidParameterValue, |w| {
        let mut rule = new_rule(Direction::Egress, 1);
        rule.matches.destination_cidr = "::/0".parse().unwrap();
        Operation::CreateRule { filter_id: w.filter(), rule }
    }),
    refusal!("ports without TCP or UDP", Ec2, K::InvalidParameterCombination, |w| {
        let mut rule = new_rule(Direction::Egress, 1);
        rule.matches.protocol = Some(1);
        rule.matches.destination_ports = PortRange::new(1, 2);
        Operation::CreateRule { filter_id: w.filter(), rule }
    }),
    refusal!("modify into a duplicate number", Ec2, K::RuleAlreadyExists, |w| {
        let f = w.filter();
        w.rule(f, Direction::Ingress, 1);
        let second = w.rule(f, Direction::Ingress, 2);
        let changes = RuleChanges { number: RuleNumber::new(1), ..RuleChanges::default() };
        Operation::ModifyRule { rule_id: second, changes }
    }),
    refusal!("alibaba ports on an ICMP rule", Alibaba, K::InvalidParameterValue, |w| {
        w.open_alibaba();
        let f = w.filter();
        let rule = w.rule(f, Direction::Ingress, 1);
        let changes = RuleChanges {
            protocol: Update::Set(1),
            source_ports: Update::Set(PortRange::new(1, 2).unwrap()),
            ..RuleChanges::default()
        };
        Operation::ModifyRule { rule_id: rule, changes }
    }),
    // === sessions ===
    refusal!("no sources", Alibaba, K::MissingParameter, |w| {
        w.open_alibaba();
        let m = w.mirrored();
        let mut new = new_session(m.source, SessionTarget::NetworkInterface(m.sensor), m.filter, 9);
        new.sources.clear();
        Operation::CreateSession(new)
    }),
    refusal!("same source twice", Alibaba, K::DuplicateSource, |w| {
        w.open_alibaba();
        let (a, sensor, filter) = (w.iface(true), w.iface(true), w.filter());
        let mut new = new_session(a, SessionTarget::NetworkInterface(sensor), filter, 9);
        new.sources.push(a);
        Operation::CreateSession(new)
    }),
    refusal!("source already in the session", Alibaba, K::SourceAlreadyInSession, |w| {
        w.open_alibaba();
        let m = w.mirrored();
        Operation::AddSources { session_id: m.session, sources: vec![m.source] }
    }),
    refusal!("source not in the session", Alibaba, K::SourceNotInSession, |w| {
        w.open_alibaba();
        let m = w.mirrored();
        let other = w.iface(true);
        Operation::RemoveSources { session_id: m.session, sources: vec![other] }
    }),
    refusal!("session number twice on one interface", Ec2, K::InvalidParameterValue, |w| {
        let m = w.mirrored();
        let sensor = w.iface(true);
        let target = w.target(sensor);
        Operation::CreateSession(new_session(m.source, SessionTarget::Target(target), m.filter, 1))
    }),
    refusal!("alibaba priority twice in a region", Alibaba, K::InvalidParameterValue, |w| {
        w.open_alibaba();
        let m = w.mirrored();
        let (source, sensor) = (w.iface(true), w.iface(true));
        Operation::CreateSession(new_session(source, SessionTarget::NetworkInterface(sensor), m.filter, 1))
    }),
    refusal!("mirror to itself", Alibaba, K::InterfaceInUseByTarget, |w| {
        w.open_alibaba();
        let (a, filter) = (w.iface(true), w.filter());
        Operation::CreateSession(new_session(a, SessionTarget::NetworkInterface(a), filter, 1))
    }),
    refusal!("EC2 cannot modify a session it cannot show", Ec2, K::NotRepresentable, |w| {
        w.open_alibaba();
        let m = w.mirrored();
        let extra = w.iface(true);
        w.run(Alibaba, Operation::AddSources { session_id: m.session, sources: vec![extra] }).unwrap();
        finish_tasks(w);
        Operation::ModifySession { session_id: m.session, changes: SessionChanges::default() }
    }),
    refusal!("session on a deleting filter", Alibaba, K::IncorrectStatus(R::Filter), |w| {
        w.open_alibaba();
        let (source, sensor, filter) = (w.iface(true), w.iface(true), w.filter());
        w.run(Alibaba, Operation::DeleteFilter(filter)).unwrap();
        Operation::CreateSession(new_session(source, SessionTarget::NetworkInterface(sensor), filter, 1))
    }),
    // === lifecycle ===
    refusal!("busy filter", Alibaba, K::IncorrectStatus(R::Filter), |w| {
        w.open_alibaba();
        let f = w.run(Alibaba, create_filter_op()).unwrap().into_filter().unwrap().filter.id;
        Operation::DeleteFilter(f)
    }),
    refusal!("busy rule", Alibaba, K::IncorrectStatus(R::FilterRule), |w| {
        w.open_alibaba();
        let f = w.filter();
        let op = Operation::CreateRules { filter_id: f, rules: vec![new_rule(Direction::Ingress, 1)] };
        let rule = w.run(Alibaba, op).unwrap().into_rules().unwrap()[0].id;
        Operation::DeleteRule(rule)
    }),
    refusal!("busy session", Alibaba, K::IncorrectStatus(R::Session), |w| {
        w.open_alibaba();
        let m = w.mirrored();
        let changes = SessionChanges { enabled: Some(false), ..SessionChanges::default() };
        w.run(Alibaba, Operation::ModifySession { session_id: m.session, changes }).unwrap();
        Operation::DeleteSession(m.session)
    }),
    refusal!("service not opened", Alibaba, K::OptInRequired, |_| create_filter_op()),
    refusal!("service opened twice", Alibaba, K::AlreadyOpened, |w| {
        w.open_alibaba();
        Operation::OpenService
    }),
    // === tags and groups ===
    refusal!("too many tags", Ec2, K::TagLimitExceeded, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Filter(w.filter())],
        tags: (0..51).map(|i| tag(&format!("k{i}"), "v")).collect(),
    }),
    refusal!("reserved tag key", Ec2, K::InvalidTagKey, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Filter(w.filter())],
        tags: vec![tag("aws:owner", "x")],
    }),
    refusal!("a sampled share of flows above 1", Ec2, K::InvalidParameterValue, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Session(w.mirrored().session)],
        tags: vec![tag("tapwire:sample-flows", "1.5")],
    }),
    refusal!("a tapwire key that does not exist", Ec2, K::InvalidParameterValue, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Session(w.mirrored().session)],
        tags: vec![tag("tapwire:max-ppm", "100")],
    }),
    refusal!("a cap on a filter", Ec2, K::InvalidParameterValue, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Filter(w.filter())],
        tags: vec![tag("tapwire:max-pps", "100")],
    }),
    refusal!("alibaba: a cap of zero", Alibaba, K::InvalidParameterValue, |w| {
        w.open_alibaba();
        let session = w.mirrored().session;
        Operation::CreateTags {
            resources: vec![ResourceRef::Session(session)],
            tags: vec![tag("tapwire:max-pps", "0")],
        }
    }),
    refusal!("empty tag key", Ec2, K::InvalidTagKey, |w| Operation::CreateTags {
        resources: vec![ResourceRef::Filter(w.filter())],
        tags: vec![tag("", "x")],
    }),
    refusal!("alibaba URL in a tag value", Alibaba, K::InvalidParameterValue, |w| {
        w.open_alibaba();
        Operation::CreateTags { resources: vec![ResourceRef::Filter(w.filter())], tags: vec![tag("k", "http://x")] }
    }),
    refusal!("tag a missing resource", Ec2, K::NotFound(R::Session), |_| Operation::DeleteTags {
        resources: vec![ResourceRef::Session("tms-0000000000000000f".parse().unwrap())],
        tags: vec![TagSelector { key: "k".into(), value: None }],
    }),
    refusal!("resource group of a rule", Alibaba, K::InvalidParameterValue, |w| {
        w.open_alibaba();
        let f = w.filter();
        Operation::MoveResourceGroup {
            resource: ResourceRef::Rule(w.rule(f, Direction::Egress, 1)),
            resource_group: "rg-1".into(),
        }
    }),
    refusal!("interface with no address", Tapwire, K::MissingParameter, |_| {
        Operation::RegisterInterface(InterfaceRegistration {
            host: Some("h".into()),
            ifname: Some("eth0".into()),
            instance_id: None,
            mac: None,
            addresses: vec![],
        })
    }),
    // === quotas ===
    refusal!(
        "filters per account",
        Ec2,
        K::Quota(Quota::Filters),
        |w| {
            w.filter();
            create_filter_op()
        },
        small_quotas
    ),
    refusal!(
        "rules per direction",
        Ec2,
        K::Quota(Quota::Rules),
        |w| {
            let f = w.filter();
            w.rule(f, Direction::Ingress, 1);
            Operation::CreateRule { filter_id: f, rule: new_rule(Direction::Ingress, 2) }
        },
        small_quotas
    ),
    refusal!(
        "targets per account",
        Ec2,
        K::Quota(Quota::Targets),
        |w| {
            let (a, b) = (w.iface(true), w.iface(true));
            w.target(a);
            Operation::CreateTarget {
                destination: TargetDestination::NetworkInterface(b),
                description: None,
                tags: vec![],
            }
        },
        small_quotas
    ),
    refusal!(
        "sessions per account",
        Ec2,
        K::Quota(Quota::Sessions),
        |w| {
            let m = w.mirrored();
            let other = w.iface(true);
            Operation::CreateSession(new_session(other, SessionTarget::Target(m.target), m.filter, 2))
        },
        small_quotas
    ),
    refusal!(
        "sessions per interface",
        Ec2,
        K::Quota(Quota::SessionsPerInterface),
        |w| {
            let m = w.mirrored();
            Operation::CreateSession(new_session(m.source, SessionTarget::LoadBalancer("lb-1".into()), m.filter, 2))
        },
        || Quotas { sessions_per_interface: 1, ..Quotas::default() }
    ),
    refusal!(
        "sessions per target",
        Ec2,
        K::Quota(Quota::SessionsPerTarget),
        |w| {
            let m = w.mirrored();
            let other = w.iface(true);
            Operation::CreateSession(new_session(other, SessionTarget::Target(m.target), m.filter, 2))
        },
        || Quotas { sessions_per_target: 1, ..Quotas::default() }
    ),
    refusal!(
        "sources per interface target",
        Ec2,
        K::Quota(Quota::SourcesPerTarget),
        |w| {
            let m = w.mirrored();
            let other = w.iface(true);
            Operation::CreateSession(new_session(other, SessionTarget::Target(m.target), m.filter, 2))
        },
        || Quotas { sources_per_interface_target: 1, ..Quotas::default() }
    ),
    refusal!(
        "interfaces per account",
        Tapwire,
        K::Quota(Quota::Interfaces),
        |w| {
            w.iface(true);
            Operation::RegisterInterface(InterfaceRegistration::on_host(
                "another",
                "eth0",
                vec!["198.18.9.9".parse().unwrap()],
            ))
        },
        || Quotas { interfaces_per_account: 1, ..Quotas::default() }
    ),
    refusal!(
        "sources per session",
        Alibaba,
        K::Quota(Quota::SourcesPerSession),
        |w| {
            w.open_alibaba();
            let (a, b, sensor, filter) = (w.iface(true), w.iface(true), w.iface(true), w.filter());
            let mut new = new_session(a, SessionTarget::NetworkInterface(sensor), filter, 1);
            new.sources.push(b);
            Operation::CreateSession(new)
        },
        || Quotas { sources_per_session: 1, ..Quotas::default() }
    ),
    // === accounts and access keys ===
    refusal!("account name empty", Tapwire, K::InvalidParameterValue, |_| Operation::CreateAccount {
        name: String::new(),
        root: false
    }),
    refusal!("account name too long", Tapwire, K::InvalidParameterValue, |_| Operation::CreateAccount {
        name: "n".repeat(65),
        root: false
    }),
    refusal!("account name taken", Tapwire, K::InvalidParameterValue, |w| {
        w.account("team");
        Operation::CreateAccount { name: "team".into(), root: false }
    }),
    refusal!("a second root account", Tapwire, K::InvalidParameterValue, |w| {
        w.account_root();
        Operation::CreateAccount { name: "other-root".into(), root: true }
    }),
    refusal!("key of an account that does not exist", Tapwire, K::NotFound(R::Account), |_| key_op(
        "999999999999".parse().unwrap(),
        "TWAKNOACCOUNT0000000"
    )),
    refusal!("key ID taken", Tapwire, K::InvalidParameterValue, |w| {
        let a = w.account("team");
        w.run(Tapwire, key_op(a, "TWAKTAKEN00000000000")).unwrap();
        key_op(a, "TWAKTAKEN00000000000")
    }),
    refusal!("keys per account", Tapwire, K::InvalidParameterValue, |w| {
        let a = w.account("team");
        for n in 0..tapwire_model::limits::ACCESS_KEYS_PER_ACCOUNT {
            w.run(Tapwire, key_op(a, &format!("TWAKMANY{n:012}"))).unwrap();
        }
        key_op(a, "TWAKONEMORE000000000")
    }),
    refusal!("delete a key that does not exist", Tapwire, K::NotFound(R::AccessKey), |_| Operation::DeleteAccessKey(
        "TWAKNOSUCHKEY0000000".into()
    )),
    // === agents ===
    refusal!("join token for no time", Tapwire, K::InvalidParameterValue, |w| Operation::CreateJoinToken(
        w.join_token("t0", 0, 1)
    )),
    refusal!("join token for too long", Tapwire, K::InvalidParameterValue, |w| Operation::CreateJoinToken(
        w.join_token("t1", tapwire_model::limits::JOIN_TOKEN_MAX_TTL + 1, 1)
    )),
    refusal!("join token with no use", Tapwire, K::InvalidParameterValue, |w| Operation::CreateJoinToken(
        w.join_token("t2", 60, 0)
    )),
    refusal!("enroll with a wrong secret", Tapwire, K::AuthFailure, |w| {
        w.run(Tapwire, Operation::CreateJoinToken(w.join_token("t3", 60, 1))).unwrap();
        enroll_op("t3", "wrong", "web1")
    }),
    refusal!("enroll with a token that does not exist", Tapwire, K::AuthFailure, |_| enroll_op("nope", "s", "web1")),
    refusal!("enroll with a used-up token", Tapwire, K::AuthFailure, |w| {
        w.run(Tapwire, Operation::CreateJoinToken(w.join_token("t4", 60, 1))).unwrap();
        w.run(Tapwire, enroll_op("t4", "secret-t4", "web1")).unwrap();
        enroll_op("t4", "secret-t4", "web2")
    }),
    refusal!("enroll another host than the token's", Tapwire, K::AuthFailure, |w| {
        let mut t = w.join_token("t5", 60, 1);
        t.host = Some("web1".into());
        w.run(Tapwire, Operation::CreateJoinToken(t)).unwrap();
        enroll_op("t5", "secret-t5", "web9")
    }),
    refusal!("revoke a host with no agent", Tapwire, K::NotFound(R::Agent), |_| Operation::RevokeAgent {
        host: "ghost".into()
    }),
    refusal!("an address another interface holds", Tapwire, K::AddressInUse, |w| {
        let held = w.iface(true);
        let address = w.control.read().interfaces[&held].addresses[0];
        Operation::RegisterInterface(InterfaceRegistration::on_host("elsewhere", "eth0", vec![address]))
    }),
    refusal!("a target of a family the source has no address of", Ec2, K::InvalidParameterCombination, |w| {
        let source = w.iface(true);
        let reg = InterfaceRegistration::on_host("v6-sensor", "eth0", vec!["2001:db8::9".parse().unwrap()]);
        let sensor = w.run(Tapwire, Operation::RegisterInterface(reg)).unwrap().into_interface().unwrap().id;
        let target = w.target(sensor);
        let filter = w.filter();
        Operation::CreateSession(new_session(source, SessionTarget::Target(target), filter, 1))
    }),
    // === sensor groups ===
    refusal!("a sensor group of no members", Tapwire, K::InvalidParameterValue, |_| {
        Operation::CreateSensorGroup {
            name: "ids".into(),
            members: vec![],
            mode: GroupMode::FlowHash,
            health_check: None,
        }
    }),
    refusal!("a sensor group member that is no interface", Tapwire, K::NotFound(R::NetworkInterface), |_| {
        let missing = "eni-0000000000000dead".parse().unwrap();
        Operation::CreateSensorGroup {
            name: "ids".into(),
            members: vec![missing],
            mode: GroupMode::FlowHash,
            health_check: None,
        }
    }),
    refusal!("two sensor groups of one name", Tapwire, K::InvalidParameterValue, |w| {
        let members = vec![w.iface(true)];
        w.run(
            Tapwire,
            Operation::CreateSensorGroup {
                name: "ids".into(),
                members: members.clone(),
                mode: GroupMode::Replicate,
                health_check: None,
            },
        )
        .unwrap();
        Operation::CreateSensorGroup { name: "ids".into(), members, mode: GroupMode::FlowHash, health_check: None }
    }),
    refusal!("a sensor group's last member removed", Tapwire, K::InvalidParameterValue, |w| {
        let member = w.iface(true);
        let op = Operation::CreateSensorGroup {
            name: "ids".into(),
            members: vec![member],
            mode: GroupMode::FlowHash,
            health_check: None,
        };
        let id = w.run(Tapwire, op).unwrap().into_sensor_group().unwrap().id;
        Operation::ModifySensorGroup { id, add: vec![], remove: vec![member] }
    }),
    refusal!("a sensor group a target names", Tapwire, K::SensorGroupInUse, |w| {
        let op = Operation::CreateSensorGroup {
            name: "ids".into(),
            members: vec![w.iface(true)],
            mode: GroupMode::FlowHash,
            health_check: None,
        };
        let group = w.run(Tapwire, op).unwrap().into_sensor_group().unwrap();
        let destination = TargetDestination::NetworkLoadBalancer(group.load_balancer_arn());
        w.run(Ec2, Operation::CreateTarget { destination, description: None, tags: vec![] }).unwrap();
        Operation::DeleteSensorGroup(group.id)
    }),
];
