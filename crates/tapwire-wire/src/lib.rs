//! Zero-copy packet views and emitters.
//!
//! Views borrow the caller's bytes and never panic on any input: every accessor that
//! could read past the end is behind a length check done once in `new_checked`.
//! Emitters write into a caller's buffer and allocate nothing.
//!
//! Modules, outermost layer first: [`ethernet`], [`vlan`] (802.1Q / QinQ tags),
//! [`ipv4`], [`ipv6`] (with the extension-header walk), [`tcp`], [`udp`], [`icmp`]
//! (ICMP and ICMPv6), [`vxlan`]; [`checksum`] holds the Internet checksum, [`flow`] the
//! flow-key extraction mirroring rules are matched on, and [`build`] a frame builder for
//! tests and tools (the one module that allocates).

#![forbid(unsafe_code)]

pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod field;
pub mod flow;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use flow::{Addresses, CompactKey, FlowError, FlowKey, Ports, VlanInfo};
pub use ipv6::Fragment;

/// Why bytes cannot be read as the expected header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header needs.
    Truncated,
    /// A field has a value the format forbids.
    Malformed,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated header",
            WireError::Malformed => "malformed header",
        })
    }
}

impl std::error::Error for WireError {}
