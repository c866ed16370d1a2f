//! Following the host: what the kernel says about links, addresses and routes, applied
//! without a restart and without waiting for the control plane.
//!
//! One thread per agent listens on a `NETLINK_ROUTE` socket (link, IPv4/IPv6 address and
//! route groups) and, after a burst of events settles (and every [`RESCAN`] anyway, in
//! case an event was missed), describes every monitored interface again:
//! - a new interface index (the veth was deleted and made again) goes to the capture
//!   thread through the interface's [`Link`], which re-opens its ring on it;
//! - new addresses or MAC go to the watcher, which registers the interface again;
//! - a new interface MTU, and any route change, rebuild the applied configuration from
//!   the document in use (new path MTUs, routes that appeared or vanished), published
//!   only when it differs.
//!
//! Neighbour events (and every link and route event) move [`nexthop::CHANGES`], after
//! which each sender asks again where its copies go; neighbour events alone do not make
//! the host be read again. A link that goes down and up keeps its index; the ring's
//! socket sees `ENETDOWN` while it is down, and the capture loop waits it out.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket};

use crate::watch::{ApplySettings, InterfaceShared};
use crate::{host, nexthop};

/// How long events must be quiet before the host is read again.
const SETTLE: Duration = Duration::from_millis(50);
/// Longest time between two reads of the host, events or not.
const RESCAN: Duration = Duration::from_secs(5);

/// `RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR
/// | RTMGRP_IPV6_ROUTE`.
const GROUPS: u32 = 0x1 | 0x4 | 0x10 | 0x40 | 0x100 | 0x400;

/// The interface index a capture should be bound to, and a generation that moves with it.
#[derive(Debug, Default)]
pub struct Link {
    generation: AtomicU64,
    ifindex: AtomicU32,
}

impl Link {
    /// A link at `ifindex`.
    pub fn new(ifindex: u32) -> Self {
        Self { generation: AtomicU64::new(0), ifindex: AtomicU32::new(ifindex) }
    }

    /// Moves the link to `ifindex` (a no-op when it is there already).
    pub fn move_to(&self, ifindex: u32) {
        if self.ifindex.swap(ifindex, Ordering::AcqRel) != ifindex {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The generation (one atomic load: the capture loop asks every poll).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The index to bind to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex.load(Ordering::Acquire)
    }
}

/// A socket on the kernel's routing events.
fn events_socket() -> std::io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkRoute,
    )
    .map_err(std::io::Error::from)?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, GROUPS)).map_err(std::io::Error::from)?;
    Ok(fd)
}

/// Waits up to `timeout` for events; drains what is queued. Every event moves
/// [`nexthop::CHANGES`]; returns whether any but neighbour events came.
fn wait_for_events(fd: &OwnedFd, timeout: Duration, buffer: &mut [u8]) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as u32).unwrap_or(PollTimeout::MAX);
    if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
        return false;
    }
    let mut any = false;
    loop {
        match recv(fd.as_raw_fd(), buffer, nix::sys::socket::MsgFlags::empty()) {
            Ok(0) => break,
            Ok(n) => {
                nexthop::note_change();
                any |= nexthop::messages(&buffer[..n]).any(|(kind, _)| !nexthop::is_neighbour_event(kind));
            }
            // Events were lost while the socket was full; a rescan covers them.
            Err(nix::errno::Errno::ENOBUFS) => {
                nexthop::note_change();
                any = true;
            }
            Err(_) => break,
        }
    }
    any
}

/// Reads one interface again and hands what changed to the capture thread, the watcher
/// and the applied configuration.
pub fn refresh(shared: &InterfaceShared, settings: &ApplySettings) {
    let described = match host::describe(&shared.name) {
        Ok(d) => d,
        Err(e) => {
            if shared.note_missing(&e.to_string()) {
                tracing::warn!(interface = %shared.name, error = %e, "interface gone; waiting for it to come back");
            }
            return;
        }
    };
    let changes = shared.update_host(&described);
    shared.link.move_to(described.ifindex);
    if changes.ifindex {
        tracing::info!(interface = %shared.name, ifindex = described.ifindex, "interface is back; capturing on it again");
    }
    if changes.addresses {
        tracing::info!(interface = %shared.name, addresses = ?described.addresses, "addresses changed; registering again");
    }
    crate::watch::rebuild(shared, settings);
}

/// Runs the follower for `interfaces` until `stop`.
pub fn follow(interfaces: &[Arc<InterfaceShared>], settings: &[Arc<ApplySettings>], stop: &AtomicBool) {
    let socket = match events_socket() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no routing events; the host is read every {RESCAN:?} instead");
            None
        }
    };
    let mut buffer = vec![0u8; 64 << 10];
    let mut last_scan = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let woke = match &socket {
            Some(s) => wait_for_events(s, Duration::from_millis(250), &mut buffer),
            None => {
                std::thread::sleep(Duration::from_millis(250));
                false
            }
        };
        if !woke && last_scan.elapsed() < RESCAN {
            continue;
        }
        if woke {
            // A burst (a veth pair made, addresses added) settles before one read.
            while socket.as_ref().is_some_and(|s| wait_for_events(s, SETTLE, &mut buffer)) {}
        }
        last_scan = Instant::now();
        for (shared, settings) in interfaces.iter().zip(settings) {
            refresh(shared, settings);
        }
    }
}
