//! Batched sends with `sendmmsg(2)`, the raw UDP sockets mirror copies leave through the
//! kernel's IP output by, and the AF_PACKET socket they leave straight to the device by.
//!
//! [`MmsgBatch`] owns its `mmsghdr`, `iovec` and address arrays (boxed, never resized) and
//! points them at the caller's datagrams only for the duration of one [`MmsgBatch::send`]
//! call, so no pointer outlives the borrow it came from. Sends never block
//! (`MSG_DONTWAIT`): a full socket buffer or device queue makes the rest of the batch
//! [`SendOutcome::Busy`], which the caller counts as dropped copies.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use super::{check, set_option};

/// What happened to one datagram of a batch.
#[derive(Debug)]
pub enum SendOutcome {
    /// Handed to the kernel through the batch's socket (for an AF_PACKET socket: straight
    /// to the device's driver).
    Sent,
    /// Handed to the kernel's IP output through a raw socket, which routed it and resolved
    /// the next hop itself. [`MmsgBatch`] never says this; the caller that sent through a
    /// raw socket turns its `Sent` into it, so the two paths are counted apart.
    SentRouted,
    /// Not sent: the socket buffer or the device queue was full.
    Busy,
    /// Not sent: the kernel refused it (no route, message too long, …).
    Failed(io::Error),
}

/// Reusable arrays for sending up to `capacity()` datagrams in one system call.
pub struct MmsgBatch {
    hdrs: Box<[libc::mmsghdr]>,
    /// Two per datagram: a head (an Ethernet header) and the rest.
    iovs: Box<[[libc::iovec; 2]]>,
    addrs: Box<[libc::sockaddr_storage]>,
}

/// Where the datagrams of one [`MmsgBatch::send`] go.
#[derive(Debug, Clone, Copy)]
pub enum Destination {
    /// Where the (connected) socket is connected.
    Connected,
    /// Out of device `ifindex`, as frames of EtherType `protocol` (an AF_PACKET socket).
    Link {
        /// Output device.
        ifindex: u32,
        /// EtherType.
        protocol: u16,
    },
}

// SAFETY: the raw pointers inside the arrays are only set and used within `send`, which
// borrows `self` mutably; between calls they are dangling but never read.
unsafe impl Send for MmsgBatch {}

impl MmsgBatch {
    /// Arrays for `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs of integers and
        // raw pointers, for which all-zero bytes are valid.
        let (hdr, iov, addr) = unsafe {
            (
                std::mem::zeroed::<libc::mmsghdr>(),
                std::mem::zeroed::<libc::iovec>(),
                std::mem::zeroed::<libc::sockaddr_storage>(),
            )
        };
        Self {
            hdrs: vec![hdr; capacity].into_boxed_slice(),
            iovs: vec![[iov; 2]; capacity].into_boxed_slice(),
            addrs: vec![addr; capacity].into_boxed_slice(),
        }
    }

    /// Most datagrams per call.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Sends `count` datagrams (at most `capacity()`) to `destination`; `datagram(i)`
    /// gives the i-th as a head (may be empty) and a body, sent as one. `outcome(i, …)`
    /// is called once per datagram, in order. Returns how many were sent.
    pub fn send<'b>(
        &mut self,
        socket: &impl AsRawFd,
        destination: Destination,
        count: usize,
        datagram: impl Fn(usize) -> (&'b [u8], &'b [u8]),
        mut outcome: impl FnMut(usize, SendOutcome),
    ) -> usize {
        let fd: RawFd = socket.as_raw_fd();
        let n = count.min(self.capacity());
        for i in 0..n {
            let (head, body) = datagram(i);
            let iov = |b: &[u8]| libc::iovec { iov_base: b.as_ptr().cast_mut().cast(), iov_len: b.len() };
            self.iovs[i] = [iov(head), iov(body)];
            let name_len = match destination {
                Destination::Connected => 0,
                Destination::Link { ifindex, protocol } => write_link_address(&mut self.addrs[i], ifindex, protocol),
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = if name_len == 0 { ptr::null_mut() } else { ptr::from_mut(&mut self.addrs[i]).cast() };
            h.msg_hdr.msg_namelen = name_len;
            // An empty head is left out.
            let skip = usize::from(head.is_empty());
            h.msg_hdr.msg_iov = self.iovs[i][skip..].as_mut_ptr();
            h.msg_hdr.msg_iovlen = 2 - skip;
            h.msg_hdr.msg_control = ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let mut sent = 0;
        let mut start = 0;
        let mut retried = false;
        while start < n {
            // SAFETY: hdrs[start..n] are initialised above; each points at one or two
            // iovecs of `self.iovs` describing slices the caller keeps borrowed for 'b
            // (beyond this call) and, when named, at a sockaddr in `self.addrs` with its
            // true length. All arrays are borrowed mutably by this call.
            let ret = unsafe {
                libc::sendmmsg(fd, self.hdrs.as_mut_ptr().add(start), (n - start) as libc::c_uint, libc::MSG_DONTWAIT)
            };
            if ret > 0 {
                let done = ret as usize;
                for i in start..start + done {
                    outcome(i, SendOutcome::Sent);
                }
                sent += done;
                start += done;
                retried = false;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN | libc::ENOBUFS) | None => {
                    for i in start..n {
                        outcome(i, SendOutcome::Busy);
                    }
                    break;
                }
                Some(libc::ECONNREFUSED) if !retried => {
                    // A connected socket reports an earlier ICMP port unreachable from the
                    // target on the next send, which clears it; the datagram itself was
                    // never tried, so try it once more.
                    retried = true;
                }
                Some(_) if ret < 0 => {
                    // The first datagram of the rest is the one the kernel refused.
                    outcome(start, SendOutcome::Failed(err));
                    start += 1;
                    retried = false;
                }
                Some(_) => {
                    for i in start..n {
                        outcome(i, SendOutcome::Busy);
                    }
                    break;
                }
            }
        }
        sent
    }
}

fn write_sockaddr(storage: &mut libc::sockaddr_storage, address: SocketAddr) -> libc::socklen_t {
    match address {
        SocketAddr::V4(a) => {
            let sin = sockaddr_in(a);
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { ptr::write(ptr::from_mut(storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { ptr::write(ptr::from_mut(storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Writes a `sockaddr_ll` naming device `ifindex` and EtherType `protocol`.
fn write_link_address(storage: &mut libc::sockaddr_storage, ifindex: u32, protocol: u16) -> libc::socklen_t {
    // SAFETY: sockaddr_ll is a plain C struct for which all-zero bytes are valid.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as libc::c_ushort;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_ll.
    unsafe { ptr::write(ptr::from_mut(storage).cast::<libc::sockaddr_ll>(), ll) };
    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t
}

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        sin_zero: [0; 8],
    }
}

/// A raw socket of protocol UDP from one source address to one target address (IPv4 or
/// IPv6): the caller writes the UDP header (so every copy keeps its flow's outer source
/// port), the VXLAN header and the inner frame; the kernel adds the IP header (IPv4: TTL
/// 64, DF through `IP_PMTUDISC_DO`; IPv6: hop limit 64, `IPV6_DONTFRAG`) and, for IPv6,
/// computes the UDP checksum RFC 7348 requires there (`IPV6_CHECKSUM` at offset 6).
/// `fragment` lets the kernel fragment what the path cannot carry instead (DF clear,
/// IPv6 fragment headers). Non-blocking, with `SO_MARK` set so the agent's capture
/// filter drops its own output.
///
/// Why not `IP_HDRINCL`: the kernel routes header-included packets with
/// `FLOWI_FLAG_KNOWN_NH`, which on a directly connected route disables the per-CPU route
/// cache, so every datagram allocated and RCU-freed its own `rtable` (measured: most of
/// the route cost of the send path). Without it the output route is the nexthop's cached
/// one.
///
/// The socket is connected to the target, so of the UDP packets the host receives the
/// kernel only hands it those from the target (raw sockets see every packet of their
/// protocol that matches their addresses), and a drop-all filter discards even those.
pub struct RawUdpSocket {
    fd: OwnedFd,
}

/// The program `ret #0`: accept nothing.
const DROP_ALL: [libc::sock_filter; 1] = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0 }];

/// Where the UDP checksum sits in the UDP header.
const UDP_CHECKSUM_OFFSET: libc::c_int = 6;

/// A socket address of `ip` and port 0, with its length.
fn socket_address(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is a plain C struct for which all-zero bytes are valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = write_sockaddr(&mut storage, SocketAddr::new(ip, 0));
    (storage, len)
}

impl RawUdpSocket {
    /// Opens the socket from `source` to `target` (one family) with `mark` and a send
    /// buffer of `send_buffer` bytes (forced when the process may, else as large as the
    /// system allows).
    pub fn open(source: IpAddr, target: IpAddr, mark: u32, send_buffer: usize, fragment: bool) -> io::Result<Self> {
        if source.is_ipv4() != target.is_ipv4() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "source and target of different families"));
        }
        let domain = if target.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        // SAFETY: plain socket(2) call; the descriptor is owned right below.
        let raw = check(unsafe {
            libc::socket(domain, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, libc::IPPROTO_UDP)
        })?;
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let mut filter = DROP_ALL;
        let program = libc::sock_fprog { len: 1, filter: filter.as_mut_ptr() };
        // `program` points into `filter`, which outlives the call; the kernel copies it.
        set_option(s, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, program)?;
        set_option(s, libc::SOL_SOCKET, libc::SO_RCVBUF, 0 as libc::c_int)?;
        set_option(s, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        if target.is_ipv4() {
            let discovery = if fragment { libc::IP_PMTUDISC_DONT } else { libc::IP_PMTUDISC_DO };
            set_option(s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, discovery)?;
            set_option(s, libc::IPPROTO_IP, libc::IP_TTL, 64 as libc::c_int)?;
        } else {
            set_option(s, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, UDP_CHECKSUM_OFFSET)?;
            let discovery = if fragment { libc::IPV6_PMTUDISC_DONT } else { libc::IPV6_PMTUDISC_DO };
            set_option(s, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, discovery)?;
            set_option(s, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, libc::c_int::from(!fragment))?;
            set_option(s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 64 as libc::c_int)?;
        }
        let size = libc::c_int::try_from(send_buffer).unwrap_or(libc::c_int::MAX);
        if set_option(s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
            set_option(s, libc::SOL_SOCKET, libc::SO_SNDBUF, size)?;
        }
        let (local, len) = socket_address(source);
        // SAFETY: `local` is a valid socket address on our stack and its true length is passed.
        check(unsafe { libc::bind(s, ptr::from_ref(&local).cast(), len) })?;
        let (remote, len) = socket_address(target);
        // SAFETY: as above.
        check(unsafe { libc::connect(s, ptr::from_ref(&remote).cast(), len) })?;
        Ok(Self { fd })
    }
}

impl AsRawFd for RawUdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An AF_PACKET socket that sends whole Ethernet frames straight to a device's driver
/// (`PACKET_QDISC_BYPASS`: no queueing discipline, and no packet taps see the frames, so
/// neither the agent's own capture nor tcpdump on the sending host gets its copies). It
/// is bound to no protocol, so it receives nothing. Non-blocking; a full device queue is
/// [`SendOutcome::Busy`].
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens the socket with `mark` and a `send_buffer`-byte buffer.
    pub fn open(mark: u32, send_buffer: usize) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the descriptor is owned right below.
        let raw = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        set_option(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1 as libc::c_int)?;
        set_option(s, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        let size = libc::c_int::try_from(send_buffer).unwrap_or(libc::c_int::MAX);
        if set_option(s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
            set_option(s, libc::SOL_SOCKET, libc::SO_SNDBUF, size)?;
        }
        Ok(Self { fd })
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
