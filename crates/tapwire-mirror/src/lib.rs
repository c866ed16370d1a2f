//! The mirroring engine: compile one interface's sessions and filters into a
//! [`Classifier`], decide per packet which session mirrors it, truncate, encapsulate in
//! VXLAN, count, and generate a kernel cBPF pre-filter. No I/O, no threads, no `unsafe`.
//!
//! # Semantics (AWS and Alibaba traffic mirroring)
//!
//! - Direction is relative to the source interface: ingress = received by it, egress =
//!   sent by it. Each filter has one ordered rule list per direction.
//! - Rules are tried in ascending rule number; the first rule that matches decides:
//!   accept mirrors, reject does not. No match: not mirrored.
//! - A rule matches on protocol (unset = any), source and destination CIDR (an IPv4 rule
//!   never matches IPv6 and the reverse) and port ranges (only TCP and UDP packets whose
//!   L4 header is present can match a rule with a port range; a later IP fragment has
//!   none, so it matches on protocol and CIDRs only).
//! - Sessions are tried in ascending session number; the first session whose filter
//!   accepts the packet mirrors it and no other does. A session whose filter rejects or
//!   does not match passes the packet on. Disabled sessions are skipped.
//! - Never mirrored: non-IP frames (ARP, LLDP, …) — they have no flow key — and DHCP:
//!   UDP whose source and destination ports are both in {67, 68} (IPv4) or {546, 547}
//!   (DHCPv6). 802.1Q and QinQ frames are classified on their inner IP header and copied
//!   with their tags.
//! - A session's sampling and caps (its `tapwire:` tags) apply after it was chosen
//!   ([`sampling::Gate`]): a copy left out or capped is not offered to a later session.
//!
//! # The `amazon-dns` network service on a self-hosted host
//!
//! In AWS the service stands for traffic to the VPC's Amazon-provided resolver, which
//! is otherwise never mirrored. A self-hosted host has no such resolver, so tapwire
//! decides: the service means **DNS to or from one of the interface's
//! `dns_resolvers`** — TCP or UDP whose destination is a resolver with destination port
//! 53, or whose source is a resolver with source port 53. When a filter has the service
//! on, such packets are mirrored by that session regardless of its rules, in both
//! directions (the session takes its place in session order as usual: an earlier session
//! that accepts the packet still wins). When the service is off, DNS packets are
//! ordinary packets and the rules decide, as for any other traffic. The service never
//! overrides the DHCP and non-IP exclusions.
//!
//! # Compilation
//!
//! [`Classifier::compile`] validates the document, sorts sessions by number and each
//! direction's rules by number, and lays out, per direction and address family, the
//! enabled sessions' rules in evaluation order, one bit per rule. A decision computes the
//! set of rules that match the packet, then scans it for the first set bit; a reject rule
//! makes the scan skip to the next session's bits, and the scan stops at the first
//! session that has `amazon-dns` on when the packet is DNS. Nothing is allocated per
//! packet. The matching set comes from one of two structures (private modules):
//!
//! - up to 64 rules (`scan`): every rule is tested, without a data-dependent branch —
//!   protocol and each port through small lookup tables, the CIDRs four rules at a time
//!   with SIMD-friendly masked compares — into one `u64`;
//! - more (`index`): a bit-vector index — interval tables per address and port field, a
//!   256-entry protocol table, and an AND of bitsets; cost grows with log(rules) plus
//!   rules/64 words, not with the rule count.

//! # Outputs
//!
//! A [`Decision`] names the session and rule and carries what the sender needs (VNI,
//! packet length, target, outer UDP source port). [`encap`] builds the VXLAN payload or
//! the full outer frame; [`counters`] keeps per-session and per-rule counts; [`bpf`]
//! emits the kernel pre-filter.

#![forbid(unsafe_code)]

pub mod bpf;
mod classifier;
pub mod counters;
pub mod encap;
mod index;
pub mod maglev;
mod ruleset;
pub mod sampling;
mod scan;

pub use bpf::{Prefilter, SockFilter};
pub use classifier::{
    Classifier, CompileError, DHCP_PORTS_V4, DHCP_PORTS_V6, DNS_PORT, Decision, RuleInfo, SessionInfo, is_dhcp,
};
pub use counters::{Counters, RuleCounters, SessionCounters};
pub use encap::{
    EncapError, OuterMacs, RAW_IPV4_HEADERS_LEN, RAW_IPV6_HEADERS_LEN, outer_source_port, raw_headers, raw_headers_len,
    vxlan_payload,
};
