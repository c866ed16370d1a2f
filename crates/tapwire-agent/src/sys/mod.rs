//! The only `unsafe` of the agent: thin, safe wrappers over Linux system calls.
//!
//! - [`ring`]: an AF_PACKET socket with a memory-mapped TPACKET_V3 receive ring, its cBPF
//!   filter and its drop statistics;
//! - [`send`]: batched `sendmmsg(2)` from caller-owned buffers, and the raw UDP sockets
//!   (one per source and target; DF, `SO_MARK`, non-blocking) mirror copies leave through;
//! - [`netdev`]: interface addresses, the path MTU of a route (`IP_MTU`) and entering a
//!   network namespace.
//!
//! Calls that `nix` wraps safely (`getifaddrs`, `setns`, `if_nametoindex`, CPU affinity)
//! go through it; what stays here is what no well-kept crate covers: the TPACKET_V3 ring
//! and `sendmmsg` from caller-owned buffers.
//!
//! Invariants: every unsafe block carries a `// SAFETY:` comment; memory the kernel
//! writes (the ring) is only turned into a Rust slice while the kernel has handed it to
//! user space (block status `TP_STATUS_USER`) and until it is handed back; nothing here
//! allocates on the packet path.

#![allow(unsafe_code)]

pub mod netdev;
pub mod ring;
pub mod send;

use std::io;

/// Turns a `-1` return of a libc call into the thread's `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// `setsockopt` of one plain value.
fn set_option<T: Copy>(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` on our stack and the length passed is
    // exactly its size; the kernel only reads it during the call.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret).map(drop)
}

/// Pins the calling thread to CPU `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(|_| io::Error::other(format!("CPU {cpu} is out of range")))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

/// How many CPUs the calling thread may run on.
pub fn allowed_cpus() -> io::Result<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(io::Error::from)?;
    Ok((0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count())
}
