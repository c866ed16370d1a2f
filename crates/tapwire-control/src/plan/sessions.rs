//! Sessions: sources, a destination, a filter, a number, a VNI and a packet length.
//!
//! Checks every session change needs, new or modified: the filter is not being deleted,
//! sources are distinct, attached to a host or instance and not destinations themselves;
//! an interface carries at most the quota of sessions, and one session number once; a
//! target's session and source quotas hold. Alibaba priorities are unique per region.

use std::collections::HashSet;

use tapwire_model::ids::{NetworkInterfaceId, SessionId};
use tapwire_model::limits;
use tapwire_model::numbers::{PacketLength, Vni};
use tapwire_model::resource::{ResourceStatus, Session, SessionTarget, TargetDestination};

use super::tags::Tagged;
use super::{Planner, quota};
use crate::dialect::Dialect;
use crate::error::{ApiError, ErrorKind, Quota, ResourceKind};
use crate::ops::{NewSession, Output, SessionChanges, Update};
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn create_session(&mut self, new: NewSession) -> Result<Output, ApiError> {
        if self.state.index.sessions_in(&self.scope()) >= self.config.quotas.sessions_per_account {
            return Err(quota(Quota::Sessions, "The maximum number of traffic mirror sessions has been reached."));
        }
        if new.sources.is_empty() {
            return Err(ApiError::missing("NetworkInterfaceId"));
        }
        let tags = self.merged_tags(Vec::new(), new.tags, Tagged::Session)?;
        let id = self.fresh_id(&self.state.sessions, SessionId::from_suffix);
        let vni = match new.vni {
            Some(v) => v,
            None => self.random_vni(),
        };
        let mut session = Session {
            id,
            scope: self.scope(),
            sources: new.sources,
            target: new.target,
            filter_id: new.filter_id,
            number: new.number,
            vni,
            packet_length: new.packet_length,
            enabled: new.enabled,
            name: new.name,
            description: new.description,
            tags,
            resource_group: new.resource_group,
            status: self.busy_status(ResourceStatus::Creating),
            created_at: self.now,
        };
        self.default_load_balancer_length(&mut session);
        self.check_session(&session, None)?;
        self.check_alibaba_priority(&session)?;
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    pub(super) fn modify_session(&mut self, id: SessionId, ch: SessionChanges) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        if self.dialect == Dialect::Ec2 && !self.state.ec2_can_show(previous) {
            return Err(ApiError::not_representable(&id.to_string()));
        }
        self.check_idle(previous.status, ResourceKind::Session)?;
        let mut session = previous.clone();
        if let Some(t) = ch.target {
            session.target = t;
        }
        if let Some(f) = ch.filter_id {
            session.filter_id = f;
        }
        if let Some(n) = ch.number {
            session.number = n;
        }
        match ch.vni {
            Update::Keep => {}
            Update::Set(v) => session.vni = v,
            Update::Remove => session.vni = self.random_vni(),
        }
        session.packet_length = ch.packet_length.apply(session.packet_length);
        if let Some(e) = ch.enabled {
            session.enabled = e;
        }
        session.name = ch.name.apply(session.name);
        session.description = ch.description.apply(session.description);
        self.default_load_balancer_length(&mut session);
        self.put_changed_session(session, previous)
    }

    pub(super) fn delete_session(&mut self, id: SessionId) -> Result<Output, ApiError> {
        let session = self.session(id)?;
        self.check_idle(session.status, ResourceKind::Session)?;
        let change = match self.dialect {
            Dialect::Alibaba => Change::PutSession(Session { status: ResourceStatus::Deleting, ..session.clone() }),
            Dialect::Ec2 | Dialect::Tapwire => Change::DeleteSession(id),
        };
        self.changes.push(change);
        Ok(Output::Deleted(id.to_string()))
    }

    pub(super) fn add_sources(&mut self, id: SessionId, sources: Vec<NetworkInterfaceId>) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        self.check_idle(previous.status, ResourceKind::Session)?;
        check_distinct(&sources)?;
        if let Some(eni) = sources.iter().find(|eni| previous.sources.contains(eni)) {
            return Err(ApiError::new(
                ErrorKind::SourceAlreadyInSession,
                format!("The network interface '{eni}' is already a source of traffic mirror session '{id}'."),
            ));
        }
        let mut session = previous.clone();
        session.sources.extend(sources);
        self.put_changed_session(session, previous)
    }

    pub(super) fn remove_sources(
        &mut self,
        id: SessionId,
        sources: Vec<NetworkInterfaceId>,
    ) -> Result<Output, ApiError> {
        let previous = self.session(id)?;
        self.check_idle(previous.status, ResourceKind::Session)?;
        check_distinct(&sources)?;
        if let Some(eni) = sources.iter().find(|eni| !previous.sources.contains(eni)) {
            return Err(ApiError::new(
                ErrorKind::SourceNotInSession,
                format!("The network interface '{eni}' is not a source of traffic mirror session '{id}'."),
            ));
        }
        let mut session = previous.clone();
        session.sources.retain(|eni| !sources.contains(eni));
        session.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    /// Records a changed session once the checks every session change needs have passed.
    fn put_changed_session(&mut self, mut session: Session, previous: &Session) -> Result<Output, ApiError> {
        self.check_session(&session, Some(previous))?;
        self.check_alibaba_priority(&session)?;
        session.status = self.busy_status(ResourceStatus::Modifying);
        self.changes.push(Change::PutSession(session.clone()));
        Ok(Output::Session(session))
    }

    /// The interface a session's copies go to, checked to exist; `None` for load balancers.
    fn resolve_session_target(&self, target: &SessionTarget) -> Result<Option<NetworkInterfaceId>, ApiError> {
        match target {
            SessionTarget::Target(id) => Ok(match &self.target(*id)?.destination {
                TargetDestination::NetworkInterface(eni) => Some(*eni),
                _ => None,
            }),
            SessionTarget::NetworkInterface(eni) => {
                let iface = self.interface(*eni)?;
                if self.state.sessions_from(iface.id).next().is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseBySession,
                        format!("The network interface '{eni}' is the source of a traffic mirror session."),
                    ));
                }
                Ok(Some(*eni))
            }
            SessionTarget::LoadBalancer(_) => Ok(None),
        }
    }

    /// Checks that a session (new or changed) may exist as `session` alongside the others.
    fn check_session(&self, session: &Session, previous: Option<&Session>) -> Result<(), ApiError> {
        if self.filter(session.filter_id)?.status == ResourceStatus::Deleting {
            return Err(ApiError::new(
                ErrorKind::IncorrectStatus(ResourceKind::Filter),
                format!("The traffic mirror filter '{}' is being deleted.", session.filter_id),
            ));
        }
        let target_eni = self.resolve_session_target(&session.target)?;
        check_distinct(&session.sources)?;
        for &eni in &session.sources {
            let was_source = previous.is_some_and(|p| p.sources.contains(&eni));
            self.check_source(session, eni, was_source, target_eni)?;
        }
        if session.sources.len() > self.config.quotas.sources_per_session {
            return Err(quota(
                Quota::SourcesPerSession,
                format!(
                    "A traffic mirror session can have at most {} sources.",
                    self.config.quotas.sources_per_session
                ),
            ));
        }
        if previous.is_none_or(|p| p.target != session.target) {
            self.check_target_quotas(session, target_eni)?;
        }
        Ok(())
    }

    /// One source of `session`; `was_source` when it already was before this change.
    fn check_source(
        &self,
        session: &Session,
        eni: NetworkInterfaceId,
        was_source: bool,
        target_eni: Option<NetworkInterfaceId>,
    ) -> Result<(), ApiError> {
        let iface = self.interface(eni)?;
        let others = || self.state.sessions_from(eni).filter(|s| s.id != session.id);
        if !was_source {
            if iface.is_free() {
                return Err(ApiError::new(
                    ErrorKind::InterfaceNotSupported,
                    format!(
                        "The network interface '{eni}' is not attached to a host or instance and cannot be mirrored."
                    ),
                ));
            }
            if self.state.interface_is_destination(eni) || target_eni == Some(eni) {
                return Err(ApiError::new(
                    ErrorKind::InterfaceInUseByTarget,
                    format!("The network interface '{eni}' is used by a traffic mirror target."),
                ));
            }
            let on_interface = others().count();
            if on_interface >= self.config.quotas.sessions_per_interface {
                return Err(quota(
                    Quota::SessionsPerInterface,
                    format!(
                        "The network interface '{eni}' already has the maximum number of traffic mirror sessions ({}).",
                        self.config.quotas.sessions_per_interface
                    ),
                ));
            }
        }
        if target_eni == Some(eni) {
            return Err(ApiError::new(
                ErrorKind::InterfaceInUseByTarget,
                format!("The network interface '{eni}' cannot mirror to itself."),
            ));
        }
        // Copies leave with an outer header of one family: the source needs an address of
        // a family the target has, or nothing could ever be sent.
        if let Some(target) = target_eni.and_then(|t| self.state.interfaces.get(&t))
            && !target.addresses.iter().any(|a| iface.addresses.iter().any(|b| a.is_ipv4() == b.is_ipv4()))
        {
            let family = |addresses: &[std::net::IpAddr]| match (
                addresses.iter().any(std::net::IpAddr::is_ipv4),
                addresses.iter().any(std::net::IpAddr::is_ipv6),
            ) {
                (true, false) => "only IPv4",
                (false, true) => "only IPv6",
                _ => "no",
            };
            return Err(ApiError::new(
                ErrorKind::InvalidParameterCombination,
                format!(
                    "The source network interface '{eni}' has {} addresses and the target's network interface '{}' has {}: \
                     no copy could be sent from one to the other.",
                    family(&iface.addresses),
                    target.id,
                    family(&target.addresses)
                ),
            ));
        }
        if let Some(clash) = others().find(|s| s.number == session.number) {
            return Err(ApiError::invalid(format!(
                "The session number {} is already used by traffic mirror session '{}' on network interface '{eni}'.",
                session.number, clash.id
            )));
        }
        Ok(())
    }

    /// Sessions per target, and distinct sources per interface target.
    fn check_target_quotas(&self, session: &Session, target_eni: Option<NetworkInterfaceId>) -> Result<(), ApiError> {
        let to_target: Vec<&Session> = self.state.sessions_to(&session.target).filter(|s| s.id != session.id).collect();
        let per_target = self.config.quotas.sessions_per_target;
        if per_target > 0 && to_target.len() >= per_target {
            return Err(quota(
                Quota::SessionsPerTarget,
                "The traffic mirror target has the maximum number of sessions.",
            ));
        }
        if target_eni.is_some() {
            let mut sources: HashSet<NetworkInterfaceId> =
                to_target.iter().flat_map(|s| s.sources.iter().copied()).collect();
            sources.extend(session.sources.iter().copied());
            if sources.len() > self.config.quotas.sources_per_interface_target {
                return Err(quota(
                    Quota::SourcesPerTarget,
                    format!(
                        "The traffic mirror target can have at most {} source network interfaces.",
                        self.config.quotas.sources_per_interface_target
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A random VNI that no session of the account uses.
    fn random_vni(&mut self) -> Vni {
        let account = self.ctx.account;
        loop {
            let mut b = [0u8; 4];
            self.entropy.fill(&mut b);
            let drawn = u32::from_be_bytes(b) & Vni::MAX;
            let free = |v: &Vni| v.get() >= Vni::RANDOM_MIN && !self.state.index.vni_in_use(account, *v);
            if let Some(vni) = Vni::new(drawn).filter(free) {
                return vni;
            }
        }
    }

    /// EC2 reports 8500 bytes for sessions to load balancers that set no packet length.
    fn default_load_balancer_length(&self, session: &mut Session) {
        if self.dialect != Dialect::Ec2 || session.packet_length.is_some() {
            return;
        }
        let to_load_balancer = match &session.target {
            SessionTarget::Target(id) => self
                .state
                .targets
                .get(id)
                .is_some_and(|t| !matches!(t.destination, TargetDestination::NetworkInterface(_))),
            SessionTarget::LoadBalancer(_) => true,
            SessionTarget::NetworkInterface(_) => false,
        };
        if to_load_balancer {
            session.packet_length = PacketLength::new(limits::NLB_DEFAULT_PACKET_LENGTH);
        }
    }

    /// Alibaba session priorities are unique per account and region.
    fn check_alibaba_priority(&self, session: &Session) -> Result<(), ApiError> {
        if self.dialect != Dialect::Alibaba {
            return Ok(());
        }
        let numbered = self.state.index.sessions_numbered(&self.scope(), session.number);
        let itself = self
            .state
            .sessions
            .get(&session.id)
            .is_some_and(|s| s.scope == session.scope && s.number == session.number);
        if numbered > usize::from(itself) {
            return Err(ApiError::invalid(format!(
                "The priority {} is already used by another traffic mirror session in this region.",
                session.number
            )));
        }
        Ok(())
    }
}

/// The same interface named twice in one request.
fn check_distinct(sources: &[NetworkInterfaceId]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    match sources.iter().find(|eni| !seen.insert(**eni)) {
        Some(eni) => Err(ApiError::new(
            ErrorKind::DuplicateSource,
            format!("The network interface '{eni}' is given more than once."),
        )),
        None => Ok(()),
    }
}
