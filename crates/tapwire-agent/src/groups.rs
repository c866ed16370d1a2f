//! Sessions whose target is a sensor group: each member's path, and the members a copy
//! goes to. Built with the configuration (the Maglev table too), so the packet path only
//! looks up.
//!
//! A member the host has no route to, or that failed its health checks, is left out of
//! the group (and said why); a group with no member left is a failed session. When every
//! reachable member failed its checks, all are kept (fail open: [`crate::health`]).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use tapwire_mirror::RAW_IPV6_HEADERS_LEN;
use tapwire_mirror::maglev::Maglev;
use tapwire_model::config::{GroupConfig, TargetEndpoint};
use tapwire_model::sensor_groups::GroupMode;

use crate::applied::{DEFAULT_PATH_MTU, Path, RouteLookup};

/// A sensor group as the data plane runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedGroup {
    /// How copies are spread.
    pub mode: GroupMode,
    /// The members copies go to, with their paths.
    pub members: Vec<(TargetEndpoint, Path)>,
    /// Members left out, with why.
    pub left_out: Vec<String>,
    table: Option<Maglev>,
}

impl AppliedGroup {
    /// The group of `config`, each member's path found with `source_of` and `route`.
    pub fn build(
        config: &GroupConfig,
        source_of: &dyn Fn(IpAddr) -> Option<IpAddr>,
        route: &dyn Fn(IpAddr) -> RouteLookup,
        healthy: &dyn Fn(SocketAddr) -> bool,
    ) -> Result<Self, String> {
        let (mut members, mut left_out) = (Vec::new(), Vec::new());
        let mut unhealthy = Vec::new();
        for m in &config.members {
            let target = m.target.address;
            let Some(source) = source_of(target) else {
                left_out.push(format!("{}: no outer source address for {target}", m.network_interface_id));
                continue;
            };
            let mtu = match route(target) {
                RouteLookup::Mtu(mtu) => mtu,
                RouteLookup::Unknown => DEFAULT_PATH_MTU,
                RouteLookup::Unreachable(why) => {
                    left_out.push(format!("{}: no route to {target}: {why}", m.network_interface_id));
                    continue;
                }
            };
            let path = Path {
                source,
                destination: SocketAddr::new(target, m.target.port),
                path_mtu: mtu.max(RAW_IPV6_HEADERS_LEN as u32 + 64),
            };
            let down = config.health_check_port.is_some_and(|port| !healthy(SocketAddr::new(target, port)));
            let list = if down { &mut unhealthy } else { &mut members };
            list.push((m.target, path, m.network_interface_id.to_string()));
        }
        if members.is_empty() {
            // Every reachable member failed its checks: keep them all.
            members = std::mem::take(&mut unhealthy);
        }
        for (_, _, eni) in &unhealthy {
            left_out.push(format!("{eni}: failed its health checks"));
        }
        let names: Vec<String> = members.iter().map(|(_, _, eni)| eni.clone()).collect();
        let members: Vec<(TargetEndpoint, Path)> = members.into_iter().map(|(t, p, _)| (t, p)).collect();
        if members.is_empty() {
            return Err(format!("no member of its sensor group can be reached ({})", left_out.join("; ")));
        }
        let table = (config.mode == GroupMode::FlowHash).then(|| Maglev::build(&names)).flatten();
        Ok(Self { mode: config.mode, members, left_out, table })
    }

    /// The members (indices into [`AppliedGroup::members`]) a copy of a flow of hash
    /// `flow_hash` goes to: one for `flow-hash`, all for `replicate`.
    #[inline]
    pub fn chosen(&self, flow_hash: u64) -> Range<usize> {
        match &self.table {
            Some(table) => {
                let m = table.member(flow_hash);
                m..m + 1
            }
            None => 0..self.members.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tapwire_model::config::GroupMember;

    use super::*;

    fn group(mode: GroupMode, n: u8) -> GroupConfig {
        let members = (0..n)
            .map(|i| GroupMember {
                network_interface_id: format!("eni-0000000000000000{i}").parse().unwrap(),
                target: TargetEndpoint { address: IpAddr::from([198, 18, 9, i + 1]), port: 4789 },
            })
            .collect();
        GroupConfig { mode, health_check_port: None, members }
    }

    #[test]
    fn flow_hash_picks_one_member_replicate_all_and_unreachable_members_are_left_out() {
        let source = |_: IpAddr| Some(IpAddr::from([198, 18, 9, 100]));
        let route = |a: IpAddr| {
            if a == IpAddr::from([198, 18, 9, 2]) {
                RouteLookup::Unreachable("down".into())
            } else {
                RouteLookup::Unknown
            }
        };
        let all = |_: SocketAddr| true;
        let g = AppliedGroup::build(&group(GroupMode::FlowHash, 3), &source, &route, &all).unwrap();
        assert_eq!((g.members.len(), g.left_out.len()), (2, 1));
        assert!((0..1000u64).all(|h| g.chosen(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)).len() == 1));
        let spread: std::collections::BTreeSet<usize> =
            (0..1000u64).map(|h| g.chosen(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)).start).collect();
        assert_eq!(spread.len(), 2, "both reachable members take flows");
        let r = AppliedGroup::build(&group(GroupMode::Replicate, 3), &source, &route, &all).unwrap();
        assert_eq!(r.chosen(7), 0..2);
        let none = |_: IpAddr| RouteLookup::Unreachable("down".into());
        assert!(AppliedGroup::build(&group(GroupMode::Replicate, 2), &source, &none, &all).is_err());
        // Health: the member probed down is left out; all down, all kept.
        let checked = GroupConfig { health_check_port: Some(8080), ..group(GroupMode::FlowHash, 3) };
        let first_down = |a: SocketAddr| a.ip() != IpAddr::from([198, 18, 9, 1]);
        let h = AppliedGroup::build(&checked, &source, &|_| RouteLookup::Unknown, &first_down).unwrap();
        assert_eq!(h.members.len(), 2);
        assert!(h.left_out[0].contains("failed its health checks"), "{:?}", h.left_out);
        let none_up = AppliedGroup::build(&checked, &source, &|_| RouteLookup::Unknown, &|_| false).unwrap();
        assert_eq!(none_up.members.len(), 3, "fail open");
    }
}
