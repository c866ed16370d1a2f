//! Alibaba's lifecycle: the service opened per account and region, and the background
//! task that moves `Creating`/`Modifying`/`Deleting` resources on; and the housekeeping
//! that forgets expired ClientToken answers.
//!
//! EC2 and tapwire's own endpoints have no lifecycle: their changes are `Created` at once
//! and their deletes immediate.

use tapwire_model::resource::{Filter, FilterRule, ResourceStatus, Session};

use super::Planner;
use crate::dialect::Dialect;
use crate::error::{ApiError, ErrorKind, ResourceKind};
use crate::ops::{Output, ResourceRef, Task};
use crate::state::{Change, ServiceRecord};

impl Planner<'_> {
    pub(super) fn open_service(&mut self) -> Result<Output, ApiError> {
        let scope = self.scope();
        if self.state.service_open(&scope) {
            return Err(ApiError::new(
                ErrorKind::AlreadyOpened,
                format!("The traffic mirror service is already opened in region {}.", scope.region),
            ));
        }
        self.changes.push(Change::PutService(ServiceRecord { scope, opened_at: self.now }));
        Ok(Output::Done)
    }

    /// Forgets ClientToken answers that are still there (a second sweep finds none).
    pub(super) fn forget_client_tokens(&mut self, keys: Vec<String>) -> Result<Output, ApiError> {
        for key in keys {
            if self.state.idempotency.contains_key(&key) {
                self.changes.push(Change::DeleteIdempotency(key));
            }
        }
        Ok(Output::Done)
    }

    /// Alibaba: nothing but opening the service works before the service is opened.
    pub(super) fn check_service_open(&self) -> Result<(), ApiError> {
        if self.state.service_open(&self.scope()) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::OptInRequired,
            format!(
                "The traffic mirror service is not opened in region {}; call OpenTrafficMirrorService first.",
                self.ctx.region
            ),
        ))
    }

    /// A resource may change only when its last task is done.
    pub(super) fn check_idle(&self, status: ResourceStatus, kind: ResourceKind) -> Result<(), ApiError> {
        if status == ResourceStatus::Created {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::IncorrectStatus(kind),
            format!("The resource is {} and cannot be changed until that finishes.", status.as_str()),
        ))
    }

    /// The status a changed resource enters: Alibaba shows the background task.
    pub(super) fn busy_status(&self, while_busy: ResourceStatus) -> ResourceStatus {
        match self.dialect {
            Dialect::Alibaba => while_busy,
            Dialect::Ec2 | Dialect::Tapwire => ResourceStatus::Created,
        }
    }

    /// Ends a task: busy resources become `Created`, `Deleting` ones go (a filter with its
    /// rules). A task whose resource has moved on since it was listed is left alone.
    pub(super) fn complete_task(&mut self, task: Task) -> Result<Output, ApiError> {
        let done = |status: ResourceStatus| status == task.status;
        let deleting = task.status == ResourceStatus::Deleting;
        match task.resource {
            ResourceRef::Filter(id) => match self.state.filters.get(&id) {
                Some(f) if done(f.status) && deleting => {
                    for rule in self.state.rules_of(id) {
                        self.changes.push(Change::DeleteRule(rule.id));
                    }
                    self.changes.push(Change::DeleteFilter(id));
                }
                Some(f) if done(f.status) => {
                    self.changes.push(Change::PutFilter(Filter { status: ResourceStatus::Created, ..f.clone() }));
                }
                _ => {}
            },
            ResourceRef::Rule(id) => match self.state.rules.get(&id) {
                Some(r) if done(r.status) && deleting => self.changes.push(Change::DeleteRule(id)),
                Some(r) if done(r.status) => {
                    self.changes.push(Change::PutRule(FilterRule { status: ResourceStatus::Created, ..r.clone() }));
                }
                _ => {}
            },
            ResourceRef::Session(id) => match self.state.sessions.get(&id) {
                Some(s) if done(s.status) && deleting => self.changes.push(Change::DeleteSession(id)),
                Some(s) if done(s.status) => {
                    self.changes.push(Change::PutSession(Session { status: ResourceStatus::Created, ..s.clone() }));
                }
                _ => {}
            },
            ResourceRef::Target(_) | ResourceRef::Interface(_) => {}
        }
        Ok(Output::Done)
    }
}
