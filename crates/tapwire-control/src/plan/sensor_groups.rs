//! Sensor groups (tapwire's own): several sensors behind the load-balancer names that
//! targets and Alibaba sessions take.
//!
//! Groups are account-wide, like the interface inventory they draw on (a sensor serves
//! every region's sessions; the group's ARN names the region it was made in).
//!
//! Rules: a name is unique per account; members are the account's registered
//! interfaces, at least one and at most [`MAX_MEMBERS`], none twice; a group that a target
//! or a session names cannot be deleted.

use tapwire_model::ids::{NetworkInterfaceId, SensorGroupId};
use tapwire_model::sensor_groups::{GroupMode, MAX_MEMBERS, SensorGroup, check_name};

use super::Planner;
use crate::error::{ApiError, ErrorKind, ResourceKind};
use crate::ops::Output;
use crate::state::Change;

impl<'a> Planner<'a> {
    fn sensor_group(&self, id: SensorGroupId) -> Result<&'a SensorGroup, ApiError> {
        self.state
            .sensor_groups
            .get(&id)
            .filter(|g| g.scope.account == self.ctx.account)
            .ok_or_else(|| ApiError::not_found(ResourceKind::SensorGroup, &id.to_string()))
    }

    /// `members` checked: the account's interfaces, none twice, within the bounds.
    fn checked_members(&self, members: Vec<NetworkInterfaceId>) -> Result<Vec<NetworkInterfaceId>, ApiError> {
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(ApiError::invalid(format!("A sensor group has 1 to {MAX_MEMBERS} members.")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for eni in &members {
            self.interface(*eni)?;
            if !seen.insert(*eni) {
                return Err(ApiError::invalid(format!("The network interface '{eni}' is named twice.")));
            }
        }
        Ok(members)
    }

    pub(super) fn create_sensor_group(
        &mut self,
        name: String,
        members: Vec<NetworkInterfaceId>,
        mode: GroupMode,
        health_check: Option<u16>,
    ) -> Result<Output, ApiError> {
        check_name(&name).map_err(ApiError::invalid)?;
        if self.state.sensor_groups.values().any(|g| g.scope.account == self.ctx.account && g.name == name) {
            return Err(ApiError::invalid(format!("A sensor group named '{name}' already exists.")));
        }
        let members = self.checked_members(members)?;
        let id = self.fresh_id(&self.state.sensor_groups, SensorGroupId::from_suffix);
        let group = SensorGroup { id, scope: self.scope(), name, members, mode, health_check, created_at: self.now };
        self.changes.push(Change::PutSensorGroup(group.clone()));
        Ok(Output::SensorGroup(group))
    }

    pub(super) fn modify_sensor_group(
        &mut self,
        id: SensorGroupId,
        add: Vec<NetworkInterfaceId>,
        remove: Vec<NetworkInterfaceId>,
    ) -> Result<Output, ApiError> {
        let mut group = self.sensor_group(id)?.clone();
        for eni in &remove {
            if !group.members.contains(eni) {
                return Err(ApiError::invalid(format!("The network interface '{eni}' is not a member of '{id}'.")));
            }
        }
        group.members.retain(|m| !remove.contains(m));
        for eni in add {
            if group.members.contains(&eni) {
                return Err(ApiError::invalid(format!("The network interface '{eni}' is already a member of '{id}'.")));
            }
            group.members.push(eni);
        }
        group.members = self.checked_members(group.members)?;
        self.changes.push(Change::PutSensorGroup(group.clone()));
        Ok(Output::SensorGroup(group))
    }

    pub(super) fn delete_sensor_group(&mut self, id: SensorGroupId) -> Result<Output, ApiError> {
        let group = self.sensor_group(id)?;
        if self.state.target_names_group(group) || self.state.sessions_to_group(group).next().is_some() {
            return Err(ApiError::new(
                ErrorKind::SensorGroupInUse,
                format!("The sensor group '{id}' is in use by a traffic mirror target or session."),
            ));
        }
        self.changes.push(Change::DeleteSensorGroup(id));
        Ok(Output::Deleted(id.to_string()))
    }
}
