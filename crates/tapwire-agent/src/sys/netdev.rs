//! Interface addresses, route MTUs and network namespaces (through `nix` where it has
//! the call).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr;

use super::check;

/// One entry of `getifaddrs(3)`: an address or (for AF_PACKET entries) a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// Interface name.
    pub name: String,
    /// An IP address of the interface.
    pub address: Option<IpAddr>,
    /// The link-layer address (AF_PACKET entries with a 6-byte address).
    pub mac: Option<[u8; 6]>,
}

/// Every address of every interface of the current network namespace.
pub fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let list = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    let mut out = Vec::new();
    for entry in list {
        let Some(addr) = entry.address else { continue };
        let (address, mac) = if let Some(sin) = addr.as_sockaddr_in() {
            (Some(IpAddr::V4(sin.ip())), None)
        } else if let Some(sin6) = addr.as_sockaddr_in6() {
            (Some(IpAddr::V6(sin6.ip())), None)
        } else if let Some(link) = addr.as_link_addr() {
            (None, link.addr())
        } else {
            continue;
        };
        out.push(InterfaceAddress { name: entry.interface_name, address, mac });
    }
    Ok(out)
}

/// The MTU of the route to `destination` (the kernel's path MTU if it learnt a smaller
/// one), read with `IP_MTU` / `IPV6_MTU` from a connected UDP socket. Sends nothing.
pub fn route_mtu(destination: IpAddr) -> io::Result<u32> {
    let (bind, level, name): (SocketAddr, _, _) = match destination {
        IpAddr::V4(_) => ((Ipv4Addr::UNSPECIFIED, 0).into(), libc::IPPROTO_IP, libc::IP_MTU),
        IpAddr::V6(_) => ((Ipv6Addr::UNSPECIFIED, 0).into(), libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect((destination, 9))?;
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `mtu` and `len` are live locals; the kernel writes at most `len` bytes.
    check(unsafe { libc::getsockopt(socket.as_raw_fd(), level, name, ptr::from_mut(&mut mtu).cast(), &mut len) })?;
    u32::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/var/run/netns/NAME`). Sockets it opens afterwards live there; other threads stay.
pub fn enter_network_namespace(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}
