//! Dialect-neutral operations: what a caller asked for, already parsed into model types.
//!
//! Each dialect codec turns its request into one [`Operation`] plus a [`RequestContext`];
//! [`crate::control::Control::execute`] runs it and returns an [`Output`] the codec
//! renders. Reads (Describe/List) do not go through here: they read a
//! [`crate::state::State`] snapshot directly.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tapwire_model::identity::JoinToken;
use tapwire_model::ids::{AccountId, FilterId, NetworkInterfaceId, RuleId, SensorGroupId, SessionId, TargetId};
use tapwire_model::numbers::{PacketLength, RuleNumber, SessionNumber, Vni};
use tapwire_model::resource::{NetworkService, ResourceStatus, SessionTarget, Tag, TargetDestination};
use tapwire_model::rule::{Direction, PortRange, RuleAction, RuleMatch};
use tapwire_model::sensor_groups::GroupMode;

use crate::error::ApiError;
use crate::state::State;

mod output;

pub use output::{FilterView, Output};

/// Who is asking, where, and how.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's account.
    pub account: AccountId,
    /// The region the request addresses.
    pub region: String,
    /// Run every check, write nothing, answer `DryRunOperation`.
    pub dry_run: bool,
    /// Idempotency key, when the caller sent a ClientToken.
    pub idempotency: Option<IdempotencyKey>,
    /// What a successful write's audit record says of the caller; `None` writes none
    /// (the control plane's own housekeeping).
    pub audit: Option<crate::audit::AuditContext>,
    /// What the caller must still be allowed on the state the write is planned against;
    /// `None` for the control plane's own writes.
    pub standing: Option<Arc<dyn Standing>>,
}

impl RequestContext {
    /// A write the control plane makes on its own behalf (bootstrap, housekeeping): no
    /// dry run, no ClientToken, no audit record of a caller.
    pub fn system(account: AccountId, region: &str) -> Self {
        Self { account, region: region.to_owned(), dry_run: false, idempotency: None, audit: None, standing: None }
    }
}

/// A caller's right to make one write, checked by the writer on the very state it plans
/// the write against (after any catch-up with other replicas): a key deleted, or a
/// resource's tags changed, on another replica a moment earlier counts, even though the
/// request's signature was checked on an older state.
pub trait Standing: Send + Sync + std::fmt::Debug {
    /// `Err` (the refusal to answer) when the caller may not make `op` on `state`.
    fn check(&self, state: &State, op: &Operation) -> Result<(), ApiError>;
}

/// A ClientToken and the fingerprint of the parameters it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The action, so one token may be used for different actions.
    pub action: &'static str,
    /// The caller's token.
    pub token: String,
    /// Canonical form of every parameter except the token and DryRun.
    pub fingerprint: String,
}

/// A change to a field that can also be removed: `Keep`, `Set(v)` or `Remove`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Update<T> {
    /// Leave the field as it is.
    #[default]
    Keep,
    /// Set the field.
    Set(T),
    /// Reset the field to its default.
    Remove,
}

impl<T: Clone> Update<T> {
    /// The field's value after the update.
    pub fn apply(&self, current: Option<T>) -> Option<T> {
        match self {
            Update::Keep => current,
            Update::Set(v) => Some(v.clone()),
            Update::Remove => None,
        }
    }

    /// Whether the update sets a value.
    pub fn is_set(&self) -> bool {
        matches!(self, Update::Set(_))
    }
}

/// A rule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// Direction.
    pub direction: Direction,
    /// Rule number / priority.
    pub number: RuleNumber,
    /// Accept or reject.
    pub action: RuleAction,
    /// What it matches.
    pub matches: RuleMatch,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Changes to a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleChanges {
    /// New direction.
    pub direction: Option<Direction>,
    /// New number.
    pub number: Option<RuleNumber>,
    /// New action.
    pub action: Option<RuleAction>,
    /// Protocol.
    pub protocol: Update<u8>,
    /// Source ports.
    pub source_ports: Update<PortRange>,
    /// Destination ports.
    pub destination_ports: Update<PortRange>,
    /// New source CIDR.
    pub source_cidr: Option<IpNet>,
    /// New destination CIDR.
    pub destination_cidr: Option<IpNet>,
    /// Description.
    pub description: Update<String>,
}

/// A session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Source interfaces (EC2: exactly one).
    pub sources: Vec<NetworkInterfaceId>,
    /// Destination.
    pub target: SessionTarget,
    /// Filter.
    pub filter_id: FilterId,
    /// Session number / priority.
    pub number: SessionNumber,
    /// VNI; drawn at random (unique in the account) when absent.
    pub vni: Option<Vni>,
    /// Packet length; absent = whole frame.
    pub packet_length: Option<PacketLength>,
    /// Enabled.
    pub enabled: bool,
    /// Alibaba name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Alibaba resource group.
    pub resource_group: Option<String>,
}

impl NewSession {
    /// An enabled session from `sources` to `target` through `filter`, numbered `number`,
    /// with nothing else set (a VNI is drawn, the whole frame copied).
    pub fn new(
        sources: Vec<NetworkInterfaceId>,
        target: SessionTarget,
        filter_id: FilterId,
        number: SessionNumber,
    ) -> Self {
        Self {
            sources,
            target,
            filter_id,
            number,
            vni: None,
            packet_length: None,
            enabled: true,
            name: None,
            description: None,
            tags: Vec::new(),
            resource_group: None,
        }
    }
}

/// Changes to a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionChanges {
    /// New destination.
    pub target: Option<SessionTarget>,
    /// New filter.
    pub filter_id: Option<FilterId>,
    /// New number.
    pub number: Option<SessionNumber>,
    /// VNI; `Remove` draws a fresh random one.
    pub vni: Update<Vni>,
    /// Packet length.
    pub packet_length: Update<PacketLength>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Alibaba name.
    pub name: Update<String>,
    /// Description.
    pub description: Update<String>,
}

/// An interface registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceRegistration {
    /// Host name.
    pub host: Option<String>,
    /// Interface name.
    pub ifname: Option<String>,
    /// Instance ID.
    pub instance_id: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// Addresses.
    pub addresses: Vec<IpAddr>,
}

impl InterfaceRegistration {
    /// Interface `ifname` of `host` with `addresses`.
    pub fn on_host(host: &str, ifname: &str, addresses: Vec<IpAddr>) -> Self {
        Self { host: Some(host.to_owned()), ifname: Some(ifname.to_owned()), instance_id: None, mac: None, addresses }
    }
}

/// A tag key, optionally with the value it must have to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSelector {
    /// Key.
    pub key: String,
    /// `Some(v)`: delete only if the value is `v`.
    pub value: Option<String>,
}

/// Any taggable resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceRef {
    /// A filter.
    Filter(FilterId),
    /// A rule.
    Rule(RuleId),
    /// A session.
    Session(SessionId),
    /// A target.
    Target(TargetId),
    /// A network interface (EC2 tags only).
    Interface(NetworkInterfaceId),
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceRef::Filter(id) => id.fmt(f),
            ResourceRef::Rule(id) => id.fmt(f),
            ResourceRef::Session(id) => id.fmt(f),
            ResourceRef::Target(id) => id.fmt(f),
            ResourceRef::Interface(id) => id.fmt(f),
        }
    }
}

/// A resource's unfinished background task (Alibaba lifecycle): the resource and the
/// transitional status it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Task {
    /// The resource.
    pub resource: ResourceRef,
    /// `Creating`, `Modifying` or `Deleting`.
    pub status: ResourceStatus,
}

/// A state-changing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Create a filter, with inline rules (Alibaba) or none (EC2).
    CreateFilter {
        /// Alibaba name.
        name: Option<String>,
        /// Description.
        description: Option<String>,
        /// Tags.
        tags: Vec<Tag>,
        /// Alibaba resource group.
        resource_group: Option<String>,
        /// Rules created with the filter.
        rules: Vec<NewRule>,
    },
    /// Delete a filter and its rules.
    DeleteFilter(FilterId),
    /// Change a filter's name or description (Alibaba).
    ModifyFilter {
        /// Filter.
        filter_id: FilterId,
        /// Alibaba name.
        name: Update<String>,
        /// Description.
        description: Update<String>,
    },
    /// Add or remove network services.
    ModifyNetworkServices {
        /// Filter.
        filter_id: FilterId,
        /// Services to add.
        add: BTreeSet<NetworkService>,
        /// Services to remove.
        remove: BTreeSet<NetworkService>,
    },
    /// Create one rule.
    CreateRule {
        /// Filter.
        filter_id: FilterId,
        /// The rule.
        rule: NewRule,
    },
    /// Change a rule.
    ModifyRule {
        /// Rule.
        rule_id: RuleId,
        /// Changes.
        changes: RuleChanges,
    },
    /// Delete a rule.
    DeleteRule(RuleId),
    /// Create several rules of one filter at once (Alibaba); all or none.
    CreateRules {
        /// Filter.
        filter_id: FilterId,
        /// The rules, in request order.
        rules: Vec<NewRule>,
    },
    /// Delete several rules of one filter at once (Alibaba); all or none.
    DeleteRules {
        /// Filter the rules must belong to.
        filter_id: FilterId,
        /// Rules.
        rule_ids: Vec<RuleId>,
    },
    /// Create a session.
    CreateSession(NewSession),
    /// Change a session.
    ModifySession {
        /// Session.
        session_id: SessionId,
        /// Changes.
        changes: SessionChanges,
    },
    /// Delete a session.
    DeleteSession(SessionId),
    /// Add source interfaces to a session (Alibaba).
    AddSources {
        /// Session.
        session_id: SessionId,
        /// Interfaces, none of them a source of the session yet.
        sources: Vec<NetworkInterfaceId>,
    },
    /// Remove source interfaces from a session (Alibaba).
    RemoveSources {
        /// Session.
        session_id: SessionId,
        /// Interfaces, each a source of the session.
        sources: Vec<NetworkInterfaceId>,
    },
    /// Create a target.
    CreateTarget {
        /// Destination.
        destination: TargetDestination,
        /// Description.
        description: Option<String>,
        /// Tags.
        tags: Vec<Tag>,
    },
    /// Delete a target.
    DeleteTarget(TargetId),
    /// Set tags on resources (overwriting keys).
    CreateTags {
        /// Resources.
        resources: Vec<ResourceRef>,
        /// Tags.
        tags: Vec<Tag>,
    },
    /// Delete tags from resources; no selectors = every tag.
    DeleteTags {
        /// Resources.
        resources: Vec<ResourceRef>,
        /// Which tags.
        tags: Vec<TagSelector>,
    },
    /// Move a filter or session to another resource group (Alibaba).
    MoveResourceGroup {
        /// Resource.
        resource: ResourceRef,
        /// New resource group.
        resource_group: String,
    },
    /// Open the traffic mirror service in the caller's region (Alibaba).
    OpenService,
    /// Finish a background task: `Creating`/`Modifying` → `Created`, `Deleting` → gone.
    /// Does nothing when the resource has left that status (or is gone) already.
    CompleteTask(Task),
    /// Forget these expired ClientToken answers (housekeeping; by key).
    ForgetClientTokens(Vec<String>),
    /// Make an account (the first one made is the root; only it may be made `root`).
    CreateAccount {
        /// Name, 1–64 characters, unique.
        name: String,
        /// Whether this is the installation's root account.
        root: bool,
    },
    /// Make an access key with the ID and sealed secret the API drew.
    CreateAccessKey {
        /// Owner.
        account: AccountId,
        /// `TWAK…`, new.
        key_id: String,
        /// The secret, sealed.
        sealed_secret: String,
        /// A policy document the API has checked.
        policy: Option<String>,
    },
    /// Delete an access key: it stops working at once.
    DeleteAccessKey(String),
    /// Store a join token the API drew (its secret hashed).
    CreateJoinToken(JoinToken),
    /// Forget a join token before it expires.
    DeleteJoinToken(String),
    /// Exchange a join token for an agent credential of `host`: the token's secret must
    /// hash to `presented_hash`, it must be live and, when bound, bound to `host`. An
    /// earlier credential of the host is replaced.
    EnrollAgent {
        /// The token's ID.
        token_id: String,
        /// SHA-256 (hex) of the secret half presented.
        presented_hash: String,
        /// The host the agent runs on.
        host: String,
        /// `TWAK…`, new.
        key_id: String,
        /// The credential's secret, sealed.
        sealed_secret: String,
    },
    /// Revoke every agent credential of a host of the caller's account.
    RevokeAgent {
        /// The host.
        host: String,
    },
    /// Register (or refresh) an interface.
    RegisterInterface(InterfaceRegistration),
    /// Remove an interface; its sessions go with it.
    DeregisterInterface(NetworkInterfaceId),
    /// Make a sensor group.
    CreateSensorGroup {
        /// Name, unique per account and region.
        name: String,
        /// Its sensors.
        members: Vec<NetworkInterfaceId>,
        /// How copies are spread.
        mode: GroupMode,
        /// The TCP port agents probe members on.
        health_check: Option<u16>,
    },
    /// Add and remove members of a sensor group.
    ModifySensorGroup {
        /// The group.
        id: SensorGroupId,
        /// Interfaces to add.
        add: Vec<NetworkInterfaceId>,
        /// Interfaces to remove.
        remove: Vec<NetworkInterfaceId>,
    },
    /// Delete a sensor group no target or session names.
    DeleteSensorGroup(SensorGroupId),
}
