//! Where a copy goes on the wire: the route to a target (`RTM_GETROUTE`), the output
//! device's type, MAC and MTU (`RTM_GETLINK`) and the next hop's MAC from the kernel's
//! neighbour table (`RTM_GETNEIGH`), asked over `NETLINK_ROUTE`.
//!
//! With all three known a copy can leave as a whole Ethernet frame straight to the
//! device (`PACKET_QDISC_BYPASS`), skipping the kernel's per-packet route lookup, IP
//! output and neighbour output. Anything else — no route, a local target, a device
//! without Ethernet framing, a neighbour not resolved (yet) or failed — is a
//! [`NextHop::Kernel`] with the reason, and copies take the kernel's own path, which
//! also makes the kernel resolve the neighbour. Only a neighbour not resolved yet (or a
//! failed request) is "waiting", asked about again every second; the others change with
//! a route or link event.
//!
//! [`CHANGES`] moves whenever the follower thread sees a neighbour, route or link event;
//! senders ask again when it moved. Three short requests on a fresh socket, only when
//! something changed: never on the packet path.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto, setsockopt, socket,
    sockopt,
};

/// Moves on every neighbour, route or link event (the follower bumps it).
pub static CHANGES: AtomicU64 = AtomicU64::new(0);

/// Notes that the kernel's neighbours, routes or links changed.
pub fn note_change() {
    CHANGES.fetch_add(1, Ordering::AcqRel);
}

/// The current generation of [`CHANGES`].
#[inline]
pub fn generation() -> u64 {
    CHANGES.load(Ordering::Acquire)
}

/// How a copy from one source to one target leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// Straight to the device as an Ethernet frame.
    Direct(LinkPath),
    /// Through the kernel's IP output.
    Kernel {
        /// Why.
        why: String,
        /// Whether it may go direct without a route or link event reaching the agent
        /// (a neighbour not resolved yet, a failed netlink request): then it is asked
        /// again every second. A local target or a device without Ethernet framing,
        /// up or with a MAC stays as it is until such an event.
        waiting: bool,
    },
}

impl NextHop {
    fn settled(why: String) -> Self {
        NextHop::Kernel { why, waiting: false }
    }

    fn waiting(why: String) -> Self {
        NextHop::Kernel { why, waiting: true }
    }

    /// A path through the kernel that is worth asking about again soon.
    pub fn is_waiting(&self) -> bool {
        matches!(self, NextHop::Kernel { waiting: true, .. })
    }
}

/// A resolved way to the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPath {
    /// Output device.
    pub ifindex: u32,
    /// Destination MAC, source MAC, EtherType: the frame's first 14 bytes.
    pub header: [u8; 14],
    /// The device's MTU: larger datagrams need the kernel (fragments).
    pub mtu: u32,
}

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTN_UNICAST: u8 = 1;
const IFLA_ADDRESS: u16 = 1;
const IFLA_MTU: u16 = 4;
const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 1;
const NDA_LLADDR: u16 = 2;
/// `NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_NOARP | NUD_PERMANENT`: an
/// entry whose address the kernel itself would send to.
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;
/// `struct rtmsg`, `struct ifinfomsg` and `struct ndmsg` sizes.
const RTMSG_LEN: usize = 12;
const IFINFOMSG_LEN: usize = 16;
const NDMSG_LEN: usize = 12;
/// Longest wait for the kernel's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(200);

/// How copies from `source` to `target` can leave.
pub fn resolve(source: IpAddr, target: IpAddr) -> NextHop {
    match try_resolve(source, target) {
        Ok(hop) => hop,
        Err(e) => NextHop::waiting(format!("netlink: {e}")),
    }
}

fn try_resolve(source: IpAddr, target: IpAddr) -> io::Result<NextHop> {
    let socket = Netlink::open()?;
    let Some(route) = socket.route(source, target)? else {
        return Ok(NextHop::settled("the route is not a unicast route (a local target?)".to_owned()));
    };
    let link = socket.link(route.ifindex)?;
    if link.kind != ARPHRD_ETHER {
        return Ok(NextHop::settled(format!("device {} has no Ethernet framing", route.ifindex)));
    }
    if link.flags & IFF_UP == 0 {
        return Ok(NextHop::settled(format!("device {} is down", route.ifindex)));
    }
    let Some(source_mac) = link.mac else {
        return Ok(NextHop::settled(format!("device {} has no MAC", route.ifindex)));
    };
    let next = route.gateway.unwrap_or(target);
    let Some(destination_mac) = socket.neighbour(route.ifindex, next)? else {
        return Ok(NextHop::waiting(format!("neighbour {next} not resolved")));
    };
    let mut header = [0u8; 14];
    header[..6].copy_from_slice(&destination_mac);
    header[6..12].copy_from_slice(&source_mac);
    let ethertype: u16 = if target.is_ipv4() { 0x0800 } else { 0x86dd };
    header[12..].copy_from_slice(&ethertype.to_be_bytes());
    Ok(NextHop::Direct(LinkPath { ifindex: route.ifindex, header, mtu: link.mtu }))
}

struct Route {
    ifindex: u32,
    gateway: Option<IpAddr>,
}

struct Link {
    kind: u16,
    flags: u32,
    mac: Option<[u8; 6]>,
    mtu: u32,
}

/// A request socket on `NETLINK_ROUTE`.
struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    fn open() -> io::Result<Self> {
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
            .map_err(io::Error::from)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(io::Error::from)?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::from(libc::timeval {
                tv_sec: 0,
                tv_usec: ANSWER_TIMEOUT.as_micros() as libc::suseconds_t,
            }),
        )
        .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// Sends one request and returns the payload of its answer of type `answer`, or
    /// `None` when the kernel answered with `ENOENT`/`ENETUNREACH`-like "nothing".
    fn ask(&self, kind: u16, body: &[u8], answer: u16) -> io::Result<Option<Vec<u8>>> {
        let mut request = Vec::with_capacity(NLMSG_HDR_LEN + body.len());
        let len = (NLMSG_HDR_LEN + body.len()) as u32;
        request.extend_from_slice(&len.to_ne_bytes());
        request.extend_from_slice(&kind.to_ne_bytes());
        request.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        request.extend_from_slice(&1u32.to_ne_bytes());
        request.extend_from_slice(&0u32.to_ne_bytes());
        request.extend_from_slice(body);
        sendto(self.fd.as_raw_fd(), &request, &NetlinkAddr::new(0, 0), MsgFlags::empty()).map_err(io::Error::from)?;
        let mut buffer = vec![0u8; 16 << 10];
        let n = recv(self.fd.as_raw_fd(), &mut buffer, MsgFlags::empty()).map_err(io::Error::from)?;
        for (kind, payload) in messages(&buffer[..n]) {
            if kind == NLMSG_ERROR {
                let errno = payload.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                return match -errno {
                    0 => Ok(None),
                    libc::ENOENT | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENODEV => Ok(None),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
            if kind == answer {
                return Ok(Some(payload.to_vec()));
            }
        }
        Err(io::Error::other("no answer from the kernel"))
    }

    fn route(&self, source: IpAddr, target: IpAddr) -> io::Result<Option<Route>> {
        let (family, bits) = family_of(target);
        let mut body = vec![0u8; RTMSG_LEN];
        body[0] = family;
        body[1] = bits;
        push_attribute(&mut body, RTA_DST, &address_bytes(target));
        if source.is_ipv4() == target.is_ipv4() && !source.is_unspecified() {
            body[2] = bits;
            push_attribute(&mut body, RTA_SRC, &address_bytes(source));
        }
        let Some(answer) = self.ask(RTM_GETROUTE, &body, RTM_NEWROUTE)? else { return Ok(None) };
        if answer.get(7) != Some(&RTN_UNICAST) {
            return Ok(None);
        }
        let mut route = Route { ifindex: 0, gateway: None };
        for (kind, value) in attributes(answer.get(RTMSG_LEN..).unwrap_or_default()) {
            match kind {
                RTA_OIF => route.ifindex = read_u32(value).unwrap_or(0),
                RTA_GATEWAY => route.gateway = parse_address(value),
                _ => {}
            }
        }
        Ok((route.ifindex != 0).then_some(route))
    }

    fn link(&self, ifindex: u32) -> io::Result<Link> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        let answer = self.ask(RTM_GETLINK, &body, RTM_NEWLINK)?.ok_or_else(|| io::Error::other("device gone"))?;
        let kind = answer.get(2..4).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        let flags = answer.get(8..12).and_then(read_u32).unwrap_or(0);
        let mut link = Link { kind, flags, mac: None, mtu: 1500 };
        for (attribute, value) in attributes(answer.get(IFINFOMSG_LEN..).unwrap_or_default()) {
            match attribute {
                IFLA_ADDRESS => link.mac = value.try_into().ok(),
                IFLA_MTU => link.mtu = read_u32(value).unwrap_or(link.mtu),
                _ => {}
            }
        }
        Ok(link)
    }

    fn neighbour(&self, ifindex: u32, address: IpAddr) -> io::Result<Option<[u8; 6]>> {
        let (family, _) = family_of(address);
        let mut body = vec![0u8; NDMSG_LEN];
        body[0] = family;
        body[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        push_attribute(&mut body, 1, &address_bytes(address));
        let Some(answer) = self.ask(RTM_GETNEIGH, &body, RTM_NEWNEIGH)? else { return Ok(None) };
        let state = answer.get(8..10).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        if state & NUD_VALID == 0 {
            return Ok(None);
        }
        let mac = attributes(answer.get(NDMSG_LEN..).unwrap_or_default())
            .find(|(kind, _)| *kind == NDA_LLADDR)
            .and_then(|(_, value)| <[u8; 6]>::try_from(value).ok());
        Ok(mac)
    }
}

/// The netlink messages of one datagram: (type, payload).
pub fn messages(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = bytes.get(..4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
        if len < NLMSG_HDR_LEN || len > bytes.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        let payload = &bytes[NLMSG_HDR_LEN..len];
        bytes = bytes.get(align(len)..).unwrap_or_default();
        Some((kind, payload))
    })
}

/// The route attributes (`struct rtattr`) of a payload: (type, value).
fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?));
        if len < 4 || len > bytes.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        let value = &bytes[4..len];
        bytes = bytes.get(align(len)..).unwrap_or_default();
        Some((kind, value))
    })
}

fn push_attribute(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    body.extend_from_slice(&(len as u16).to_ne_bytes());
    body.extend_from_slice(&kind.to_ne_bytes());
    body.extend_from_slice(value);
    body.resize(align(body.len()), 0);
}

fn align(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn read_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

fn family_of(address: IpAddr) -> (u8, u8) {
    if address.is_ipv4() { (libc::AF_INET as u8, 32) } else { (libc::AF_INET6 as u8, 128) }
}

fn address_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn parse_address(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(value).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(value).ok()?)),
        _ => None,
    }
}

/// Whether a netlink message type is a neighbour event.
pub fn is_neighbour_event(kind: u16) -> bool {
    matches!(kind, RTM_NEWNEIGH | RTM_DELNEIGH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut body = vec![0u8; RTMSG_LEN];
        push_attribute(&mut body, RTA_DST, &[198, 18, 0, 1]);
        push_attribute(&mut body, RTA_OIF, &7u32.to_ne_bytes());
        push_attribute(&mut body, 99, &[1, 2, 3]);
        let got: Vec<(u16, Vec<u8>)> = attributes(&body[RTMSG_LEN..]).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            got,
            vec![(RTA_DST, vec![198, 18, 0, 1]), (RTA_OIF, 7u32.to_ne_bytes().to_vec()), (99, vec![1, 2, 3])]
        );
        // A length past the end stops the walk instead of reading beyond it.
        let mut broken = body[RTMSG_LEN..].to_vec();
        broken[0] = 200;
        assert_eq!(attributes(&broken).count(), 0);
    }

    #[test]
    fn loopback_target_goes_through_the_kernel() {
        // 127.0.0.1 is a local route: no device to send a frame to.
        assert!(matches!(
            resolve(IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 1])),
            NextHop::Kernel { waiting: false, .. }
        ));
    }
}
