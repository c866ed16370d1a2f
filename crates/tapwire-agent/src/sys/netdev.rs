//! Interface addresses, route MTUs and network namespaces.

use std::ffi::CStr;
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
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; freed below with freeifaddrs.
    check(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_name.is_null() || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }.to_string_lossy().into_owned();
        // SAFETY: ifa_addr points at a sockaddr whose family says which struct it is.
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        let (address, mac) = match family {
            libc::AF_INET => {
                // SAFETY: AF_INET entries are sockaddr_in.
                let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                (Some(IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()))), None)
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 entries are sockaddr_in6.
                let sin6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
                (Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))), None)
            }
            libc::AF_PACKET => {
                // SAFETY: AF_PACKET entries are sockaddr_ll.
                let sll = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_ll>() };
                let mac = (sll.sll_halen == 6).then(|| {
                    let a = sll.sll_addr;
                    [a[0], a[1], a[2], a[3], a[4], a[5]]
                });
                (None, mac)
            }
            _ => continue,
        };
        out.push(InterfaceAddress { name, address, mac });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once; no reference into
    // the list survives (names were copied).
    unsafe { libc::freeifaddrs(head) };
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
    // SAFETY: setns on a descriptor we own, for the network namespace type only.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c_name = std::ffi::CString::new(name).map_err(|_| io::Error::other("interface name contains NUL"))?;
    // SAFETY: `c_name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}
