//! An AF_PACKET socket bound to one interface with a TPACKET_V3 receive ring.
//!
//! The ring is `block_count` blocks of `block_size` bytes mapped shared with the kernel.
//! The kernel fills a block, then hands it over by setting `TP_STATUS_USER` in the block
//! descriptor (when full, or when the retire timer fires); user space walks it and hands
//! it back by writing `TP_STATUS_KERNEL`. Blocks are used in order, so [`PacketRing`]
//! only ever looks at the next one.
//!
//! Several rings may share one interface as a `PACKET_FANOUT_HASH` group: the kernel then
//! hands each packet to one member by its symmetric flow hash, so both directions of a
//! flow reach the same ring in order. A member joins with a drop-all filter and gets its
//! real one after joining, so no packet reaches it outside the group.
//!
//! Invariant: a [`RingBlock`] borrows the ring mutably, exposes the block's packet area
//! (after the descriptor, so the status word is never covered by a Rust reference) and
//! gives the block back to the kernel when dropped.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{Ordering, fence};

use tapwire_mirror::SockFilter;

use super::{check, set_option};
use crate::DROP_ALL;

const ETH_P_ALL: u16 = 0x0003;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// Offsets inside `struct tpacket_block_desc` (version, offset_to_priv, then `tpacket_hdr_v1`).
const BLOCK_STATUS_OFFSET: usize = 8;
const BLOCK_NUM_PKTS_OFFSET: usize = 12;
const BLOCK_FIRST_PKT_OFFSET: usize = 16;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_HASH: u32 = 0;
/// The kernel picks a free group ID for the first member (Linux 4.3).
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

/// Which fanout group a ring joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// A new group, its ID picked by the kernel.
    New,
    /// The group of this ID.
    Join(u16),
}

/// Ring geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGeometry {
    /// Bytes per block: a power of two, a multiple of the page size, larger than the
    /// largest frame (GSO frames reach 64 KiB).
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub retire_timeout_ms: u32,
}

impl RingGeometry {
    /// Bytes mapped.
    pub fn bytes(&self) -> usize {
        self.block_size as usize * self.block_count as usize
    }
}

/// Kernel counters of the socket since the previous read (`PACKET_STATISTICS` resets them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStatistics {
    /// Packets that passed the filter (delivered or dropped).
    pub packets: u64,
    /// Packets dropped because the ring was full.
    pub drops: u64,
    /// Times the ring was frozen (all blocks in user space).
    pub freezes: u64,
}

/// The socket and its mapped ring.
pub struct PacketRing {
    fd: OwnedFd,
    map: NonNull<u8>,
    geometry: RingGeometry,
    next: usize,
    fanout_group: Option<u16>,
}

// SAFETY: the mapping is owned by this value alone (no aliases are handed out beyond
// borrows of `self`), so moving it to another thread is sound.
unsafe impl Send for PacketRing {}

/// One block handed over by the kernel; given back on drop.
pub struct RingBlock<'a> {
    ring: &'a mut PacketRing,
    /// The block from its first packet to its end.
    pub packets: &'a [u8],
    /// Packets in the block.
    pub count: u32,
}

impl PacketRing {
    /// Opens a ring on interface `ifindex` with `filter` attached before any packet can
    /// arrive. With `vnet_hdr`, each frame comes after the kernel's `virtio_net_hdr`
    /// (`PACKET_VNET_HDR`), which says an offload super-frame's segment size.
    /// With `fanout`, the ring joins that hash group right after `bind` (see the module
    /// docs); [`PacketRing::fanout_group`] then says the group's ID.
    pub fn open(
        ifindex: u32,
        geometry: RingGeometry,
        filter: &[SockFilter],
        vnet_hdr: bool,
        fanout: Option<Fanout>,
    ) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the descriptor is owned right below.
        let raw = check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Protocol 0 receives nothing, so the filter is in place before bind() starts
        // the flow of packets.
        attach_filter(fd.as_raw_fd(), if fanout.is_some() { &DROP_ALL } else { filter })?;
        set_option(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VERSION, TPACKET_V3)?;
        if vnet_hdr {
            // Before the ring: the kernel refuses it on a socket that has one.
            set_option(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1 as libc::c_int)?;
        }
        let frame_size = 2048u32;
        let request = libc::tpacket_req3 {
            tp_block_size: geometry.block_size,
            tp_block_nr: geometry.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: geometry.block_size / frame_size * geometry.block_count,
            tp_retire_blk_tov: geometry.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, request)?;
        // SAFETY: maps the ring the kernel just allocated for this socket, with the exact
        // size it was given; the result is checked against MAP_FAILED.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                geometry.bytes(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(map.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mut ring = Self { fd, map, geometry, next: 0, fanout_group: None };
        // SAFETY: sockaddr_ll is a plain C struct; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll on our stack and its size is passed.
        check(unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        if let Some(fanout) = fanout {
            let (id, flags) = match fanout {
                Fanout::New => (0, PACKET_FANOUT_FLAG_UNIQUEID),
                Fanout::Join(id) => (u32::from(id), 0),
            };
            let value = (id | ((PACKET_FANOUT_HASH | flags) << 16)) as libc::c_int;
            set_option(ring.fd.as_raw_fd(), libc::SOL_PACKET, PACKET_FANOUT, value)?;
            ring.fanout_group = Some(ring.read_fanout_id()?);
            attach_filter(ring.fd.as_raw_fd(), filter)?;
        }
        Ok(ring)
    }

    /// The ID of the fanout group the ring is in, if it was opened with one.
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }

    /// The group ID the kernel reports (its low 16 bits; 0 is a valid ID).
    fn read_fanout_id(&self) -> io::Result<u16> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live locals; the kernel writes at most `len` bytes.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_FANOUT,
                ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        })?;
        Ok(value as u32 as u16)
    }

    /// Replaces the socket's filter.
    pub fn set_filter(&self, filter: &[SockFilter]) -> io::Result<()> {
        attach_filter(self.fd.as_raw_fd(), filter)
    }

    /// Reads (and so resets) the kernel's counters.
    pub fn statistics(&self) -> io::Result<RingStatistics> {
        let mut stats = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `stats` and `len` are live locals; the kernel writes at most `len` bytes.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                ptr::from_mut(&mut stats).cast(),
                &mut len,
            )
        })?;
        Ok(RingStatistics {
            packets: u64::from(stats.tp_packets),
            drops: u64::from(stats.tp_drops),
            freezes: u64::from(stats.tp_freeze_q_cnt),
        })
    }

    /// Waits up to `timeout_ms` for a block to be ready. A pending socket error (the
    /// kernel sets `ENETDOWN` when the link goes down or away) is read, which clears it,
    /// and returned.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<()> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
        // SAFETY: one valid pollfd on our stack, count 1.
        let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        match check(ret) {
            Ok(_) if pfd.revents & libc::POLLERR != 0 => Err(self.take_error()),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads (and so clears) the socket's pending error.
    fn take_error(&self) -> io::Error {
        let mut error: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `error` and `len` are live locals; the kernel writes at most `len` bytes.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                ptr::from_mut(&mut error).cast(),
                &mut len,
            )
        };
        match (check(ret), error) {
            (Err(e), _) => e,
            (Ok(_), 0) => io::Error::other("the capture socket reported an error and then none"),
            (Ok(_), errno) => io::Error::from_raw_os_error(errno),
        }
    }

    fn status_word(&self, block: usize) -> *mut u32 {
        let offset = block * self.geometry.block_size as usize + BLOCK_STATUS_OFFSET;
        self.map.as_ptr().wrapping_add(offset).cast::<u32>()
    }

    /// The next block if the kernel has handed it over.
    pub fn next_block(&mut self) -> Option<RingBlock<'_>> {
        let block = self.next;
        let base = self.map.as_ptr().wrapping_add(block * self.geometry.block_size as usize);
        // SAFETY: the status word lies inside the mapping (block < block_count, offset 8
        // of a page-aligned block) and is 4-byte aligned; the kernel writes it
        // concurrently, hence the volatile read.
        let status = unsafe { ptr::read_volatile(self.status_word(block)) };
        if status & TP_STATUS_USER == 0 {
            return None;
        }
        // Everything the kernel wrote into the block before setting the status is visible.
        fence(Ordering::Acquire);
        // SAFETY: the block belongs to user space until we write TP_STATUS_KERNEL; the two
        // descriptor words are inside the mapping and 4-byte aligned.
        let (count, first) = unsafe {
            (
                ptr::read_volatile(base.wrapping_add(BLOCK_NUM_PKTS_OFFSET).cast::<u32>()),
                ptr::read_volatile(base.wrapping_add(BLOCK_FIRST_PKT_OFFSET).cast::<u32>()) as usize,
            )
        };
        let size = self.geometry.block_size as usize;
        let first = first.clamp(BLOCK_FIRST_PKT_OFFSET + 4, size);
        // SAFETY: [first, size) lies inside this block of the mapping; the kernel does not
        // write to the block until RingBlock::drop hands it back, and the slice does not
        // cover the status word (offset 8 < first). Its lifetime is bound to the
        // RingBlock, which borrows the ring mutably.
        let packets = unsafe { std::slice::from_raw_parts(base.wrapping_add(first), size - first) };
        Some(RingBlock { ring: self, packets, count })
    }
}

impl Drop for RingBlock<'_> {
    fn drop(&mut self) {
        let block = self.ring.next;
        // Our reads of the block happen before the kernel may overwrite it.
        fence(Ordering::Release);
        // SAFETY: the status word is inside the mapping and aligned (see next_block); no
        // Rust reference covers it.
        unsafe { ptr::write_volatile(self.ring.status_word(block), TP_STATUS_KERNEL) };
        self.ring.next = (block + 1) % self.ring.geometry.block_count as usize;
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `open`; no RingBlock can be alive
        // (they borrow the ring).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.geometry.bytes()) };
    }
}

fn attach_filter(fd: libc::c_int, filter: &[SockFilter]) -> io::Result<()> {
    let mut code: Vec<libc::sock_filter> =
        filter.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
    let len = u16::try_from(code.len()).map_err(|_| io::Error::other("filter too long"))?;
    let program = libc::sock_fprog { len, filter: code.as_mut_ptr() };
    // `program` points into `code`, which outlives the call; the kernel copies it.
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, program)
}
