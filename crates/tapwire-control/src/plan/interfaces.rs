//! The interface inventory: registrations by agents and operators.

use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::NetworkInterface;

use super::Planner;
use crate::error::{ApiError, ErrorKind};
use crate::ops::{InterfaceRegistration, Output};
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn register_interface(&mut self, reg: InterfaceRegistration) -> Result<Output, ApiError> {
        if reg.addresses.is_empty() {
            return Err(ApiError::missing("ip"));
        }
        // Stable identity: the same (host or instance, interface name) is the same eni-.
        let same = |i: &&NetworkInterface| {
            i.scope.account == self.ctx.account
                && reg.ifname.is_some()
                && i.ifname == reg.ifname
                && ((reg.host.is_some() && i.host == reg.host)
                    || (reg.host.is_none() && reg.instance_id.is_some() && i.instance_id == reg.instance_id))
        };
        let existing = self.state.interfaces.values().find(same).cloned();
        let iface = match existing {
            Some(mut i) => {
                i.addresses = reg.addresses;
                i.mac = reg.mac.or(i.mac);
                i.instance_id = reg.instance_id.or(i.instance_id);
                i.host = reg.host.or(i.host);
                i
            }
            None => {
                let id = self.fresh_id(&self.state.interfaces, NetworkInterfaceId::from_suffix);
                NetworkInterface {
                    id,
                    scope: self.scope(),
                    host: reg.host,
                    ifname: reg.ifname,
                    instance_id: reg.instance_id,
                    mac: reg.mac,
                    addresses: reg.addresses,
                    created_at: self.now,
                }
            }
        };
        self.changes.push(Change::PutInterface(iface.clone()));
        Ok(Output::Interface(iface))
    }

    pub(super) fn deregister_interface(&mut self, id: NetworkInterfaceId) -> Result<Output, ApiError> {
        self.interface(id)?;
        if self.state.interface_is_destination(id) {
            return Err(ApiError::new(
                ErrorKind::InterfaceInUseByTarget,
                format!("The network interface '{id}' is used by a traffic mirror target; delete the target first."),
            ));
        }
        // As in EC2, removing a source interface removes its sessions.
        for s in self.state.sessions_from(id) {
            if s.sources.len() == 1 {
                self.changes.push(Change::DeleteSession(s.id));
            } else {
                let mut s = s.clone();
                s.sources.retain(|e| *e != id);
                self.changes.push(Change::PutSession(s));
            }
        }
        self.changes.push(Change::DeleteInterface(id));
        Ok(Output::Deleted(id.to_string()))
    }
}
