//! The world a planner case runs in: an in-memory control plane and the helpers that
//! fill it.

use Dialect::Tapwire;
use tapwire_control::ops::{InterfaceRegistration, NewRule, NewSession, Operation, Output};
use tapwire_control::testing::{self, context};
use tapwire_control::{ApiError, Control, ControlConfig, Dialect};
use tapwire_model::identity::JoinToken;
use tapwire_model::ids::{FilterId, NetworkInterfaceId, RuleId, SessionId, TargetId};
use tapwire_model::limits::Quotas;
use tapwire_model::resource::{SessionTarget, Tag, TargetDestination};
use tapwire_model::rule::{Direction, RuleAction, RuleMatch};
use tapwire_model::{AccountId, RuleNumber, SessionNumber};

pub const REGION: &str = "us-east-1";
pub const NLB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/50dc6c495c0c9188";

/// A control plane and the helpers that fill it.
pub struct World {
    pub control: Control,
    pub hosts: u32,
}

pub fn any_match() -> RuleMatch {
    RuleMatch {
        protocol: None,
        source_cidr: "0.0.0.0/0".parse().unwrap(),
        destination_cidr: "0.0.0.0/0".parse().unwrap(),
        source_ports: None,
        destination_ports: None,
    }
}

pub fn new_rule(direction: Direction, number: u32) -> NewRule {
    NewRule {
        direction,
        number: RuleNumber::new(number).unwrap(),
        action: RuleAction::Accept,
        matches: any_match(),
        description: None,
        tags: vec![],
    }
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

pub fn create_filter_op() -> Operation {
    Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] }
}

pub fn new_session(source: NetworkInterfaceId, target: SessionTarget, filter: FilterId, number: u32) -> NewSession {
    NewSession::new(vec![source], target, filter, SessionNumber::new(number).unwrap())
}

impl World {
    pub fn new() -> Self {
        Self::with_quotas(Quotas::default())
    }

    pub fn with_quotas(quotas: Quotas) -> Self {
        Self { control: testing::control(11, ControlConfig { quotas, ..ControlConfig::default() }), hosts: 0 }
    }

    pub fn run(&self, dialect: Dialect, op: Operation) -> Result<Output, ApiError> {
        self.control.execute(&context(REGION), dialect, op)
    }

    pub fn ec2(&self, op: Operation) -> Output {
        self.run(Dialect::Ec2, op).unwrap()
    }

    /// An interface on a new host (`attached`) or a free one (a sensor with no host).
    pub fn iface(&mut self, attached: bool) -> NetworkInterfaceId {
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

    pub fn filter(&self) -> FilterId {
        self.ec2(create_filter_op()).into_filter().unwrap().filter.id
    }

    pub fn rule(&self, filter: FilterId, direction: Direction, number: u32) -> RuleId {
        self.ec2(Operation::CreateRule { filter_id: filter, rule: new_rule(direction, number) }).into_rule().unwrap().id
    }

    pub fn target(&self, eni: NetworkInterfaceId) -> TargetId {
        let op = Operation::CreateTarget {
            destination: TargetDestination::NetworkInterface(eni),
            description: None,
            tags: vec![],
        };
        self.ec2(op).into_target().unwrap().id
    }

    pub fn session(&self, source: NetworkInterfaceId, target: TargetId, filter: FilterId, number: u32) -> SessionId {
        let op = Operation::CreateSession(new_session(source, SessionTarget::Target(target), filter, number));
        self.ec2(op).into_session().unwrap().id
    }

    /// A source, a sensor with a target, a filter and one session between them.
    pub fn mirrored(&mut self) -> Mirrored {
        let source = self.iface(true);
        let sensor = self.iface(true);
        let target = self.target(sensor);
        let filter = self.filter();
        let session = self.session(source, target, filter, 1);
        Mirrored { source, sensor, target, filter, session }
    }

    pub fn account(&self, name: &str) -> AccountId {
        self.run(Tapwire, Operation::CreateAccount { name: name.into(), root: false })
            .unwrap()
            .into_account()
            .unwrap()
            .id
    }

    pub fn account_root(&self) -> AccountId {
        self.run(Tapwire, Operation::CreateAccount { name: "root".into(), root: true })
            .unwrap()
            .into_account()
            .unwrap()
            .id
    }

    pub fn open_alibaba(&self) {
        self.run(Dialect::Alibaba, Operation::OpenService).unwrap();
    }
}

pub struct Mirrored {
    pub source: NetworkInterfaceId,
    pub sensor: NetworkInterfaceId,
    pub target: TargetId,
    pub filter: FilterId,
    pub session: SessionId,
}

/// The index the state keeps is the one its maps give.
pub fn assert_index_consistent(w: &World) {
    let s = w.control.read();
    let rebuilt = tapwire_control::index::Index::rebuild(&s.filters, &s.rules, &s.sessions, &s.targets, &s.interfaces);
    assert!(s.index == rebuilt, "the kept index drifted from the maps");
}

/// Finishes every Alibaba task (what the API's lifecycle worker does after its delay).
pub fn finish_tasks(w: &World) {
    for (task, scope) in w.control.read().pending_tasks() {
        w.control.complete_task(task, &scope).unwrap();
    }
}

/// What the API stores of a token's secret: its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

impl World {
    /// A join token of the caller's account named `id` (secret `secret-ID`), living
    /// `ttl` seconds from now with `uses` enrollments.
    pub fn join_token(&self, id: &str, ttl: i64, uses: u32) -> JoinToken {
        let now = self.control.now();
        JoinToken {
            id: id.into(),
            account: AccountId::DEFAULT,
            secret_hash: secret_hash(&format!("secret-{id}")),
            host: None,
            expires_at: now + ttl,
            uses_left: uses,
            created_at: now,
        }
    }
}
