//! What the host says about itself: its name and, per interface, index, MTU, MAC and
//! addresses (IPv6 link-local addresses left out: they identify nothing beyond the link).

use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::applied::RouteLookup;
use crate::sys::netdev;

/// One local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// MTU in bytes.
    pub mtu: usize,
    /// MAC address, `aa:bb:…`.
    pub mac: Option<String>,
    /// Addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
}

fn read_sys(name: &str, attribute: &str) -> io::Result<String> {
    let path = Path::new("/sys/class/net").join(name).join(attribute);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Describes interface `name` of the current network namespace.
pub fn describe(name: &str) -> io::Result<HostInterface> {
    let ifindex =
        netdev::interface_index(name).map_err(|e| io::Error::new(e.kind(), format!("interface {name}: {e}")))?;
    let mtu = read_sys(name, "mtu")?.parse().map_err(|_| io::Error::other("unreadable mtu"))?;
    let mac = read_sys(name, "address").ok().filter(|m| !m.is_empty() && m != "00:00:00:00:00:00");
    let mut addresses: Vec<IpAddr> = netdev::interface_addresses()?
        .into_iter()
        .filter(|a| a.name == name)
        .filter_map(|a| a.address)
        .filter(|a| !matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .collect();
    addresses.sort_by_key(|a| a.is_ipv6());
    addresses.dedup();
    Ok(HostInterface { name: name.to_owned(), ifindex, mtu, mac, addresses })
}

/// What the host knows of the route to `destination`: its MTU, that there is none (the
/// kernel's words), or nothing it could tell.
pub fn route_lookup(destination: IpAddr) -> crate::applied::RouteLookup {
    match netdev::route_mtu(destination) {
        Ok(mtu) => RouteLookup::Mtu(mtu),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL)) => {
            RouteLookup::Unreachable(e.to_string())
        }
        Err(_) => RouteLookup::Unknown,
    }
}

/// The host name (UTS namespace), or `localhost` if unreadable.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_described() {
        let lo = describe("lo").unwrap();
        assert!(lo.ifindex > 0);
        assert!(lo.mtu >= 1280);
        assert!(lo.addresses.contains(&IpAddr::from([127, 0, 0, 1])), "{lo:?}");
        assert!(describe("no-such-interface-tw").is_err());
    }
}
