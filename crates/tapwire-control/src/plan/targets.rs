//! Targets (EC2): an interface or a load balancer that receives copies.

use tapwire_model::ids::TargetId;
use tapwire_model::resource::{SessionTarget, Tag, Target, TargetDestination};

use super::tags::Tagged;
use super::{Planner, quota};
use crate::error::{ApiError, ErrorKind, Quota};
use crate::ops::Output;
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn create_target(
        &mut self,
        destination: TargetDestination,
        description: Option<String>,
        tags: Vec<Tag>,
    ) -> Result<Output, ApiError> {
        if self.state.index.targets_in(&self.scope()) >= self.config.quotas.targets_per_account {
            return Err(quota(Quota::Targets, "The maximum number of traffic mirror targets has been reached."));
        }
        match &destination {
            TargetDestination::NetworkInterface(eni) => {
                self.interface(*eni)?;
                if self.state.sessions_from(*eni).next().is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseBySession,
                        format!("The network interface '{eni}' is the source of a traffic mirror session."),
                    ));
                }
                if self.state.target_on_interface(*eni).is_some() {
                    return Err(ApiError::new(
                        ErrorKind::InterfaceInUseByTarget,
                        format!("The network interface '{eni}' is already used by a traffic mirror target."),
                    ));
                }
            }
            other => {
                if self.state.targets_to(other).any(|t| self.in_scope(&t.scope)) {
                    return Err(ApiError::new(
                        ErrorKind::LoadBalancerInUseByTarget,
                        "The load balancer is already used by a traffic mirror target.",
                    ));
                }
            }
        }
        let tags = self.merged_tags(Vec::new(), tags, Tagged::Other)?;
        let id = self.fresh_id(&self.state.targets, TargetId::from_suffix);
        let target = Target { id, scope: self.scope(), destination, description, tags, created_at: self.now };
        self.changes.push(Change::PutTarget(target.clone()));
        Ok(Output::Target(target))
    }

    pub(super) fn delete_target(&mut self, id: TargetId) -> Result<Output, ApiError> {
        self.target(id)?;
        if self.state.sessions_to(&SessionTarget::Target(id)).next().is_some() {
            return Err(ApiError::new(
                ErrorKind::TargetInUse,
                format!("The traffic mirror target '{id}' is in use by a traffic mirror session."),
            ));
        }
        self.changes.push(Change::DeleteTarget(id));
        Ok(Output::Deleted(id.to_string()))
    }
}
