//! The only `unsafe` of this crate: a thin wrapper over `recvmmsg(2)` from owned buffers,
//! with each datagram's kernel receive time (`SO_TIMESTAMPNS` control messages);
//! `SO_RCVBUFFORCE` and the thread CPU clock come through `nix`.
//!
//! Invariants: [`RecvBatch`] owns its buffers, iovecs and address slots in boxed slices
//! that are never resized, and re-points every `mmsghdr` at them (from `&mut self`)
//! right before each call, so the kernel only ever writes into memory the batch owns,
//! within the lengths it declared. Nothing here allocates after construction.

#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;
use std::time::Duration;

/// Bytes of control-message room per datagram (one `SCM_TIMESTAMPNS`, 32 bytes, with
/// margin), in `u64`s so the buffer is aligned as `cmsghdr` needs.
const CONTROL_WORDS: usize = 8;

/// Reusable storage for receiving up to `len()` datagrams with one `recvmmsg` call.
pub struct RecvBatch {
    slot_len: usize,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u64; CONTROL_WORDS]]>,
    hdrs: Box<[libc::mmsghdr]>,
}

/// One received datagram.
pub struct Datagram<'a> {
    /// Outer source address (IPv4-mapped IPv6 addresses are shown as IPv4).
    pub src: Option<IpAddr>,
    /// The UDP payload (cut to the slot length when `truncated`).
    pub payload: &'a [u8],
    /// The datagram was larger than a slot and the kernel cut it.
    pub truncated: bool,
    /// When the kernel received it (since the Unix epoch), if the socket asked
    /// ([`enable_receive_timestamps`]).
    pub received_at: Option<Duration>,
}

impl RecvBatch {
    /// Room for `count` datagrams of up to `slot_len` bytes each.
    pub fn new(count: usize, slot_len: usize) -> Self {
        let count = count.max(1);
        // SAFETY: iovec, sockaddr_storage and mmsghdr are plain C structs of integers
        // and raw pointers, for which all-zero bytes are a valid value.
        let (iov, name, hdr) = unsafe {
            (mem::zeroed::<libc::iovec>(), mem::zeroed::<libc::sockaddr_storage>(), mem::zeroed::<libc::mmsghdr>())
        };
        Self {
            slot_len,
            bufs: vec![0u8; count * slot_len].into_boxed_slice(),
            iovs: vec![iov; count].into_boxed_slice(),
            names: vec![name; count].into_boxed_slice(),
            controls: vec![[0u64; CONTROL_WORDS]; count].into_boxed_slice(),
            hdrs: vec![hdr; count].into_boxed_slice(),
        }
    }

    /// Receives into the slots. Blocks for the first datagram (bounded by the socket's
    /// `SO_RCVTIMEO`) unless `nonblocking`, then takes whatever else is queued
    /// (`MSG_WAITFORONE`). Returns how many slots were filled.
    pub fn recv(&mut self, socket: &impl AsRawFd, nonblocking: bool) -> io::Result<usize> {
        let fd: RawFd = socket.as_raw_fd();
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.hdrs.len() {
            // wrapping_add keeps this safe code; the offset stays inside `bufs`.
            self.iovs[i].iov_base = base.wrapping_add(i * self.slot_len).cast();
            self.iovs[i].iov_len = self.slot_len;
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = ptr::from_mut(&mut self.names[i]).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = ptr::from_mut(&mut self.iovs[i]);
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = mem::size_of::<[u64; CONTROL_WORDS]>();
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { libc::MSG_WAITFORONE };
        // SAFETY: `hdrs` holds `len()` initialised mmsghdr, each pointing at one iovec
        // of `slot_len` bytes inside `bufs`, at one sockaddr_storage with its true size in
        // msg_namelen and at one control buffer with its true size in msg_controllen; all
        // are owned by `self`, borrowed mutably for the call, and live until it returns.
        // A null timeout is allowed.
        let n = unsafe {
            libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), self.hdrs.len() as libc::c_uint, flags, ptr::null_mut())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The `i`-th datagram of the last [`Self::recv`] (`i` < its return value).
    pub fn get(&self, i: usize) -> Datagram<'_> {
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(self.slot_len);
        let start = i * self.slot_len;
        Datagram {
            src: ip_of(&self.names[i], h.msg_hdr.msg_namelen),
            payload: &self.bufs[start..start + len],
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            received_at: timestamp_of(&h.msg_hdr),
        }
    }
}

/// The `SCM_TIMESTAMPNS` time in a received message's control data.
fn timestamp_of(msg: &libc::msghdr) -> Option<Duration> {
    if msg.msg_controllen == 0 || msg.msg_control.is_null() {
        return None;
    }
    // SAFETY: msg_control points at this batch's control buffer and msg_controllen is
    // what the kernel filled of it (never more than the buffer's size); CMSG_FIRSTHDR
    // and CMSG_NXTHDR stay within msg_controllen and return null past the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points inside the control buffer (see above),
        // at a header the kernel wrote.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec after its header;
            // the buffer is u64-aligned, as timespec needs, and read_unaligned copes anyway.
            let ts = unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>()) };
            return Some(Duration::new(u64::try_from(ts.tv_sec).ok()?, u32::try_from(ts.tv_nsec).ok()?));
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

/// Asks the kernel to stamp every datagram `socket` receives (`SO_TIMESTAMPNS`).
pub fn enable_receive_timestamps(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

fn ip_of(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    match i32::from(name.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller
            // than sockaddr_storage and needs no stricter alignment.
            let sin = unsafe { &*ptr::from_ref(name).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(name).cast::<libc::sockaddr_in6>() };
            Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_canonical())
        }
        _ => None,
    }
}

/// Sets `SO_RCVBUFFORCE` (ignores `net.core.rmem_max`; needs CAP_NET_ADMIN).
pub fn set_rcvbuf_force(socket: &impl std::os::fd::AsFd, bytes: usize) -> io::Result<()> {
    let value = bytes.min(i32::MAX as usize / 2);
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBufForce, &value).map_err(io::Error::from)
}

/// CPU time (user + system) used by the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn receives_a_batch_with_sources() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_receive_timestamps(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for i in 0..5u8 {
            tx.send_to(&vec![i; 10 + usize::from(i)], to).unwrap();
        }
        tx.send_to(&[9; 100], to).unwrap();
        let mut batch = RecvBatch::new(4, 64);
        let mut got = Vec::new();
        let mut stamps = Vec::new();
        while got.len() < 6 {
            let n = batch.recv(&rx, false).unwrap();
            for i in 0..n {
                let d = batch.get(i);
                assert_eq!(d.src, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                got.push((d.payload.to_vec(), d.truncated));
                stamps.push(d.received_at.expect("every datagram is stamped"));
            }
        }
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(stamps.iter().all(|t| *t <= now && now - *t < Duration::from_secs(60)));
        for (i, (p, t)) in got.iter().take(5).enumerate() {
            assert_eq!(p, &vec![i as u8; 10 + i]);
            assert!(!t);
        }
        assert_eq!(got[5], (vec![9; 64], true));
        assert_eq!(batch.recv(&rx, true).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(thread_cpu_time() > Duration::ZERO);
    }
}
