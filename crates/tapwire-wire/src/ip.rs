//! Facts that IPv4 and IPv6 share: the IANA protocol numbers, in one home for every crate
//! (the rule vocabulary in `tapwire-model` re-exports them).

/// IANA protocol numbers ("Protocol" in IPv4, "Next Header" in IPv6).
pub mod protocol {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6: no next header.
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 destination options.
    pub const DESTINATION_OPTIONS: u8 = 60;

    /// Whether packets of this protocol carry the ports that rules and flow keys use.
    #[inline]
    pub fn has_ports(p: u8) -> bool {
        p == TCP || p == UDP
    }
}
