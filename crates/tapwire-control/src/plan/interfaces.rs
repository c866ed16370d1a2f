//! The interface inventory: registrations by agents and operators.

use tapwire_model::ids::NetworkInterfaceId;
use tapwire_model::resource::{NetworkInterface, Tags};

use super::{Planner, quota};
use crate::error::{ApiError, ErrorKind, Quota};
use crate::ops::{InterfaceRegistration, Output};
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn register_interface(&mut self, reg: InterfaceRegistration) -> Result<Output, ApiError> {
        if reg.addresses.is_empty() {
            return Err(ApiError::missing("ip"));
        }
        // Stable identity: the same (host, interface name) is the same eni-; else the same
        // (instance, interface name); else the same MAC (an agent whose host name is not
        // the one an operator registered). Claimed under another host name only when that
        // host has no enrolled agent of its own and the interface is no target's: a
        // sensor is never taken over by whoever knows its MAC.
        let index = &self.state.index;
        let account = self.ctx.account;
        let on_host = match (&reg.ifname, &reg.host) {
            (Some(ifname), Some(host)) => index.interface_on_host(account, ifname, host),
            _ => None,
        };
        let claimable = |id: NetworkInterfaceId| {
            let other = self.state.interfaces.get(&id).and_then(|i| i.host.clone());
            match (other, &reg.host) {
                (Some(other), Some(mine)) if other != *mine => {
                    self.state.agent_keys_of(account, &other).next().is_none()
                        && !self.state.interface_is_destination(id)
                }
                _ => true,
            }
        };
        let existing_id = on_host
            .or_else(|| match (&reg.ifname, &reg.instance_id) {
                (Some(ifname), Some(instance)) => {
                    index.interface_of_instance(account, ifname, instance).filter(|id| claimable(*id))
                }
                _ => None,
            })
            .or_else(|| {
                reg.mac.as_deref().and_then(|mac| index.interface_with_mac(account, mac)).filter(|id| claimable(*id))
            });
        let existing = existing_id.and_then(|id| self.state.interfaces.get(&id)).cloned();
        // As EC2 private addresses: one interface of the account holds an address.
        for address in &reg.addresses {
            if let Some(holder) = index.interface_with_address(account, *address)
                && Some(holder) != existing_id
            {
                return Err(ApiError::new(
                    ErrorKind::AddressInUse,
                    format!("The address {address} is already in use by the network interface '{holder}'."),
                ));
            }
        }
        if existing.is_none() && index.interfaces_of(account) >= self.config.quotas.interfaces_per_account {
            return Err(quota(
                Quota::Interfaces,
                format!(
                    "The account already has the maximum number of network interfaces ({}).",
                    self.config.quotas.interfaces_per_account
                ),
            ));
        }
        let iface = match existing {
            Some(mut i) => {
                i.addresses = reg.addresses;
                i.mac = reg.mac.or(i.mac);
                i.instance_id = reg.instance_id.or(i.instance_id);
                i.host = reg.host.or(i.host);
                i.ifname = reg.ifname.or(i.ifname);
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
                    tags: Tags::new(),
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
