//! The planner's rules, one row per check and quota: each row builds a small world on an
//! in-memory store, runs one operation that must be refused, and checks the error kind
//! and that the refusal wrote nothing. A second table runs the same operations' happy
//! paths. No disk, no root, no network: `cargo test -p tapwire-control` catches a broken
//! rule in a second.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::collections::BTreeSet;

use tapwire_control::ops::{
    IdempotencyKey, InterfaceRegistration, NewRule, NewSession, Operation, Output, ResourceRef, RuleChanges,
    SessionChanges, TagSelector, Task, Update,
};
use tapwire_control::testing::{self, context};
use tapwire_control::{ApiError, Control, ControlConfig, Dialect, ErrorKind, Quota, ResourceKind};
use tapwire_model::ids::{FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::limits::Quotas;
use tapwire_model::resource::{NetworkService, ResourceStatus, SessionTarget, Tag, TargetDestination};
use tapwire_model::rule::{Direction, PortRange, RuleAction, RuleMatch};
use tapwire_model::{AccountId, RuleNumber, SessionNumber, Vni};

const REGION: &str = "us-east-1";
const NLB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc6c495c0c9188";

/// A control plane and the helpers that fill it.
struct World {
    control: Control,
    hosts: u32,
}

fn any_match() -> RuleMatch {
    RuleMatch {
        protocol: None,
        source_cidr: "0.0.0.0/0".parse().unwrap(),
        destination_cidr: "0.0.0.0/0".parse().unwrap(),
        source_ports: None,
        destination_ports: None,
    }
}

fn new_rule(direction: Direction, number: u32) -> NewRule {
    NewRule {
        direction,
        number: RuleNumber::new(number).unwrap(),
        action: RuleAction::Accept,
        matches: any_match(),
        description: None,
        tags: vec![],
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn create_filter_op() -> Operation {
    Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] }
}

fn new_session(source: NetworkInterfaceId, target: SessionTarget, filter: FilterId, number: u32) -> NewSession {
    NewSession {
        sources: vec![source],
        target,
        filter_id: filter,
        number: SessionNumber::new(number).unwrap(),
        vni: None,
        packet_length: None,
        enabled: true,
        name: None,
        description: None,
        tags: vec![],
        resource_group: None,
    }
}

impl World {
    fn new() -> Self {
        Self::with_quotas(Quotas::default())
    }

    fn with_quotas(quotas: Quotas) -> Self {
        Self { control: testing::control(11, ControlConfig { quotas, ..ControlConfig::default() }), hosts: 0 }
    }

    fn run(&self, dialect: Dialect, op: Operation) -> Result<Output, ApiError> {
        self.control.execute(&context(REGION), dialect, op)
    }

    fn ec2(&self, op: Operation) -> Output {
        self.run(Dialect::Ec2, op).unwrap()
    }

    /// An interface on a new host (`attached`) or a free one (a sensor with no host).
    fn iface(&mut self, attached: bool) -> NetworkInterfaceId {
        self.hosts += 1;
        let n = self.hosts;
        let reg = InterfaceRegistration {
            host: attached.then(|| format!("host{n}")),
            ifname: Some("eth0".into()),
            instance_id: None,
            mac: None,
            addresses: vec![format!("198.18.{}.{}", n / 200, n % 200 + 1).parse().unwrap()],
        };
        self.run(Dialect::Tapwire, Operation::RegisterInterface(reg)).unwrap().into_interface().unwrap().id
    }

    fn filter(&self) -> FilterId {
        self.ec2(create_filter_op()).into_filter().unwrap().filter.id
    }

    fn rule(&self, filter: FilterId, direction: Direction, number: u32) -> RuleId {
        self.ec2(Operation::CreateRule { filter_id: filter, rule: new_rule(direction, number) }).into_rule().unwrap().id
    }

    fn target(&self, eni: NetworkInterfaceId) -> TargetId {
        let op = Operation::CreateTarget {
            destination: TargetDestination::NetworkInterface(eni),
            description: None,
            tags: vec![],
        };
        self.ec2(op).into_target().unwrap().id
    }

    fn session(&self, source: NetworkInterfaceId, target: TargetId, filter: FilterId, number: u32) -> SessionId {
        let op = Operation::CreateSession(new_session(source, SessionTarget::Target(target), filter, number));
        self.ec2(op).into_session().unwrap().id
    }

    /// A source, a sensor with a target, a filter and one session between them.
    fn mirrored(&mut self) -> Mirrored {
        let source = self.iface(true);
        let sensor = self.iface(true);
        let target = self.target(sensor);
        let filter = self.filter();
        let session = self.session(source, target, filter, 1);
        Mirrored { source, sensor, target, filter, session }
    }

    fn account(&self, name: &str) -> AccountId {
        self.run(Tapwire, Operation::CreateAccount { name: name.into(), root: false })
            .unwrap()
            .into_account()
            .unwrap()
            .id
    }

    fn account_root(&self) -> AccountId {
        self.run(Tapwire, Operation::CreateAccount { name: "root".into(), root: true })
            .unwrap()
            .into_account()
            .unwrap()
            .id
    }

    fn open_alibaba(&self) {
        self.run(Dialect::Alibaba, Operation::OpenService).unwrap();
    }
}

struct Mirrored {
    source: NetworkInterfaceId,
    sensor: NetworkInterfaceId,
    target: TargetId,
    filter: FilterId,
    session: SessionId,
}

/// One refused operation: the world it runs in, and what it must earn.
struct Refusal {
    name: &'static str,
    dialect: Dialect,
    expect: ErrorKind,
    /// Builds the world and returns the operation to refuse.
    setup: fn(&mut World) -> Operation,
    quotas: fn() -> Quotas,
}

fn default_quotas() -> Quotas {
    Quotas::default()
}

fn small_quotas() -> Quotas {
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

fn key_op(account: AccountId, key_id: &str) -> Operation {
    Operation::CreateAccessKey { account, key_id: key_id.into(), sealed_secret: "sealed".into(), policy: None }
}

fn missing_filter() -> FilterId {
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

const REFUSALS: &[Refusal] = &[
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
            Operation::RegisterInterface(InterfaceRegistration {
                host: Some("another".into()),
                ifname: Some("eth0".into()),
                instance_id: None,
                mac: None,
                addresses: vec!["198.18.9.9".parse().unwrap()],
            })
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
];

/// The index the state keeps is the one its maps give.
fn assert_index_consistent(w: &World) {
    let s = w.control.read();
    let rebuilt = tapwire_control::index::Index::rebuild(&s.filters, &s.rules, &s.sessions, &s.targets, &s.interfaces);
    assert!(s.index == rebuilt, "the kept index drifted from the maps");
}

/// Finishes every Alibaba task (what the API's lifecycle worker does after its delay).
fn finish_tasks(w: &World) {
    for (task, scope) in w.control.read().pending_tasks() {
        w.control.complete_task(task, &scope).unwrap();
    }
}

#[test]
fn every_check_and_quota_refuses_and_writes_nothing() {
    let mut kinds = BTreeSet::new();
    for case in REFUSALS {
        let mut w = World::with_quotas((case.quotas)());
        let op = (case.setup)(&mut w);
        let before = w.control.read();
        let err = w.run(case.dialect, op).expect_err(case.name);
        assert_eq!(err.kind, case.expect, "{}: {}", case.name, err.message);
        assert!(!err.message.is_empty(), "{}", case.name);
        let after = w.control.read();
        assert_eq!(after.revision, before.revision, "{}: a refusal wrote", case.name);
        assert_index_consistent(&w);
        kinds.insert(format!("{:?}", case.expect));
    }
    assert!(kinds.len() >= 30, "only {} distinct kinds covered", kinds.len());
}

#[test]
fn dry_run_checks_everything_and_writes_nothing() {
    let mut w = World::new();
    let m = w.mirrored();
    let dry = |token: Option<&str>| {
        let mut ctx = context(REGION);
        ctx.dry_run = true;
        ctx.idempotency = token.map(|t| IdempotencyKey { action: "A", token: t.into(), fingerprint: "f".into() });
        ctx
    };
    let before = w.control.read().revision;
    let err = w.control.execute(&dry(None), Ec2, create_filter_op()).unwrap_err();
    assert_eq!(err.kind, K::DryRunOperation);
    // A dry run of something that would fail fails with that error, not DryRunOperation.
    let err = w.control.execute(&dry(None), Ec2, Operation::DeleteFilter(m.filter)).unwrap_err();
    assert_eq!(err.kind, K::FilterInUse);
    assert_eq!(w.control.read().revision, before);
}

#[test]
fn client_tokens_replay_and_refuse_other_parameters() {
    let w = World::new();
    let with =
        |fingerprint: &str| testing::with_token(context(REGION), "CreateTrafficMirrorFilter", "t-1", fingerprint);
    let first = w.control.execute(&with("a"), Ec2, create_filter_op()).unwrap().into_filter().unwrap();
    let again = w.control.execute(&with("a"), Ec2, create_filter_op()).unwrap().into_filter().unwrap();
    assert_eq!(first.filter.id, again.filter.id);
    assert_eq!(w.control.read().filters.len(), 1);
    let err = w.control.execute(&with("b"), Ec2, create_filter_op()).unwrap_err();
    assert_eq!(err.kind, K::IdempotentParameterMismatch);
}

#[test]
fn happy_paths_change_what_they_say() {
    let mut w = World::new();
    let m = w.mirrored();
    // Rules: create, modify (ports need TCP), delete.
    let rule = w.rule(m.filter, Direction::Ingress, 10);
    let changes = RuleChanges {
        protocol: Update::Set(6),
        destination_ports: Update::Set(PortRange::new(443, 443).unwrap()),
        ..RuleChanges::default()
    };
    let modified = w.ec2(Operation::ModifyRule { rule_id: rule, changes }).into_rule().unwrap();
    assert_eq!(modified.matches.destination_ports, PortRange::new(443, 443));
    // Network services.
    let add: BTreeSet<_> = [NetworkService::AmazonDns].into();
    let view = w
        .ec2(Operation::ModifyNetworkServices { filter_id: m.filter, add, remove: BTreeSet::new() })
        .into_filter()
        .unwrap();
    assert!(view.filter.network_services.contains(&NetworkService::AmazonDns));
    assert_eq!(view.rules.len(), 1);
    // Session: VNI removed draws a fresh one; packet length set.
    let changes = SessionChanges {
        vni: Update::Set(Vni::new(7).unwrap()),
        packet_length: Update::Set(tapwire_model::PacketLength::new(128).unwrap()),
        ..SessionChanges::default()
    };
    let s = w.ec2(Operation::ModifySession { session_id: m.session, changes }).into_session().unwrap();
    assert_eq!((s.vni.get(), s.packet_length.map(|l| l.get())), (7, Some(128)));
    let s = w
        .ec2(Operation::ModifySession {
            session_id: m.session,
            changes: SessionChanges { vni: Update::Remove, ..SessionChanges::default() },
        })
        .into_session()
        .unwrap();
    assert_ne!(s.vni.get(), 7);
    // Tags: upsert keeps position, value-conditional delete.
    let r = ResourceRef::Session(m.session);
    w.ec2(Operation::CreateTags { resources: vec![r], tags: vec![tag("a", "1"), tag("b", "2")] });
    w.ec2(Operation::CreateTags { resources: vec![r], tags: vec![tag("a", "3")] });
    w.ec2(Operation::DeleteTags {
        resources: vec![r],
        tags: vec![TagSelector { key: "b".into(), value: Some("x".into()) }],
    });
    assert_eq!(w.control.read().sessions[&m.session].tags, vec![tag("a", "3"), tag("b", "2")]);
    // NLB targets default to 8500 bytes.
    let nlb = w
        .ec2(Operation::CreateTarget {
            destination: TargetDestination::NetworkLoadBalancer(NLB.into()),
            description: None,
            tags: vec![],
        })
        .into_target()
        .unwrap();
    let other = w.iface(true);
    let s = w
        .ec2(Operation::CreateSession(new_session(other, SessionTarget::Target(nlb.id), m.filter, 1)))
        .into_session()
        .unwrap();
    assert_eq!(s.packet_length.map(|l| l.get()), Some(8500));
    // Deregistering a source removes its sessions.
    w.run(Tapwire, Operation::DeregisterInterface(m.source)).unwrap();
    assert!(!w.control.read().sessions.contains_key(&m.session));
    // Deletes, in dependency order.
    w.ec2(Operation::DeleteSession(s.id));
    w.ec2(Operation::DeleteTarget(m.target));
    w.ec2(Operation::DeleteFilter(m.filter));
    assert!(w.control.read().rules.is_empty());
    assert_index_consistent(&w);
}

#[test]
fn accounts_and_keys_are_made_kept_and_deleted() {
    let w = World::new();
    let root = w.account_root();
    assert_eq!(root, AccountId::DEFAULT, "the root owns what was made before accounts");
    let team = w.account("team");
    assert_ne!(team, root);
    let key = w.run(Tapwire, key_op(team, "TWAKHAPPY00000000000")).unwrap().into_access_key().unwrap();
    assert_eq!((key.account, key.policy), (team, None));
    let state = w.control.read();
    assert!(state.accounts[&team].name == "team" && !state.accounts[&team].root && state.accounts[&root].root);
    assert_eq!(state.access_keys_of(team).count(), 1);
    w.run(Tapwire, Operation::DeleteAccessKey("TWAKHAPPY00000000000".into())).unwrap();
    assert!(w.control.read().access_keys.is_empty());
}

#[test]
fn alibaba_changes_wait_for_their_task() {
    let w = World::new();
    w.open_alibaba();
    let f = w.run(Alibaba, create_filter_op()).unwrap().into_filter().unwrap().filter;
    assert_eq!(f.status, ResourceStatus::Creating);
    let task = Task { resource: ResourceRef::Filter(f.id), status: ResourceStatus::Creating };
    w.control.complete_task(task, &f.scope).unwrap();
    assert_eq!(w.control.read().filters[&f.id].status, ResourceStatus::Created);
    // A finished task run again changes nothing.
    let rev = w.control.read().revision;
    w.control.complete_task(task, &f.scope).unwrap();
    assert_eq!(w.control.read().filters[&f.id].status, ResourceStatus::Created);
    assert!(w.control.read().revision >= rev);
    // ICMP follows the family when an Alibaba change moves the rule to IPv6.
    let rule = w.rule(f.id, Direction::Ingress, 1);
    let changes = RuleChanges {
        protocol: Update::Set(1),
        source_cidr: Some("::/0".parse().unwrap()),
        destination_cidr: Some("2001:db8::/32".parse().unwrap()),
        ..RuleChanges::default()
    };
    let r = w.run(Alibaba, Operation::ModifyRule { rule_id: rule, changes }).unwrap().into_rule().unwrap();
    assert_eq!(r.matches.protocol, Some(58));
    assert_eq!(w.control.read().pending_tasks().len(), 1);
    finish_tasks(&w);
    assert!(w.control.read().pending_tasks().is_empty());
    assert_index_consistent(&w);
}
