//! A classic-BPF pre-filter generated from a compiled configuration.
//!
//! The agent attaches the program to its capture socket (`SO_ATTACH_FILTER`) so the
//! kernel drops what no session can mirror and truncates the rest. Contract:
//! - **superset**: every packet the [`Classifier`] mirrors is accepted, with a return
//!   value (snap length) at least as large as the bytes the copy needs. Reject rules
//!   and session order are ignored (the classifier applies them exactly in user space);
//! - packets whose `skb->mark` equals the agent's mark (its own VXLAN output) are
//!   dropped first;
//! - the return value is [`WHOLE_FRAME_SNAPLEN`] when some session mirrors whole frames,
//!   else the largest packet length of the sessions that can mirror anything; 0 drops.
//!
//! Program shape: mark test; EtherType dispatch (VLAN-tagged frames are accepted:
//! AF_PACKET usually strips the outer tag into metadata, and in-line tags shift every
//! offset, so the program does not try to be clever); an IPv4 and an IPv6 section. In
//! each section the rules that need no port come first and the port tests last,
//! because a load past the end of a packet aborts the whole program with 0: the
//! classifier only looks at ports when the L4 header is complete, so only port tests
//! can hit such an abort, and no earlier rule is skipped by it. IPv6 packets with an
//! extension header are accepted (walking the chain needs loops cBPF lacks).
//!
//! Every rule is one block ending in `ret #snaplen` whose failed tests jump to the next
//! block, so conditional jumps stay short whatever the rule count; long jumps use `ja`.
//! Identical blocks (the same rule in two sessions or directions) are emitted once. If
//! the program would exceed [`MAX_INSTRUCTIONS`], the fallback accepts every IPv4 and
//! IPv6 frame ([`Prefilter::exact`] is then `false`).

use ipnet::IpNet;
use std::collections::HashSet;
use tapwire_model::RuleAction;
use tapwire_model::rule::protocol;
use tapwire_wire::ethernet::ethertype;

use crate::Classifier;
use crate::classifier::DNS_PORT;

/// One classic-BPF instruction, laid out like the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// Opcode parts (`linux/filter.h`).
pub mod op {
    /// Load into A.
    pub const LD: u16 = 0x00;
    /// Load into X.
    pub const LDX: u16 = 0x01;
    /// Arithmetic on A.
    pub const ALU: u16 = 0x04;
    /// Jumps.
    pub const JMP: u16 = 0x05;
    /// Return.
    pub const RET: u16 = 0x06;
    /// Register moves.
    pub const MISC: u16 = 0x07;
    /// 32-bit word.
    pub const W: u16 = 0x00;
    /// 16-bit half word.
    pub const H: u16 = 0x08;
    /// Byte.
    pub const B: u16 = 0x10;
    /// Immediate.
    pub const IMM: u16 = 0x00;
    /// Absolute offset.
    pub const ABS: u16 = 0x20;
    /// Offset relative to X.
    pub const IND: u16 = 0x40;
    /// Scratch memory.
    pub const MEM: u16 = 0x60;
    /// Packet length.
    pub const LEN: u16 = 0x80;
    /// `4 * (P[k] & 0xf)` (IPv4 header length).
    pub const MSH: u16 = 0xa0;
    /// AND.
    pub const AND: u16 = 0x50;
    /// Unconditional jump.
    pub const JA: u16 = 0x00;
    /// Jump if A == k.
    pub const JEQ: u16 = 0x10;
    /// Jump if A > k.
    pub const JGT: u16 = 0x20;
    /// Jump if A >= k.
    pub const JGE: u16 = 0x30;
    /// Jump if A & k.
    pub const JSET: u16 = 0x40;
    /// Operand is k.
    pub const K: u16 = 0x00;
    /// Operand is X.
    pub const X: u16 = 0x08;
    /// Return A.
    pub const A: u16 = 0x10;
}

/// Base of the kernel's ancillary loads.
pub const SKF_AD_OFF: u32 = 0xffff_f000;
/// Offset of `skb->mark` among the ancillary loads.
pub const SKF_AD_MARK: u32 = 20;
/// Ancillary load of the packet type (`PACKET_HOST`, `PACKET_OUTGOING`, …).
pub const SKF_AD_PKTTYPE: u32 = 4;
/// Most instructions the kernel accepts.
pub const MAX_INSTRUCTIONS: usize = 4096;
/// Return value meaning "the whole frame": larger than any frame, GSO super-frames
/// included (0xFFFF would cut a 64 KiB IP packet plus its link header).
pub const WHOLE_FRAME_SNAPLEN: u32 = 0x0004_0000;

/// A generated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefilter {
    /// The instructions, ready for `SO_ATTACH_FILTER`.
    pub program: Vec<SockFilter>,
    /// The value returned for accepted packets.
    pub snaplen: u32,
    /// `false` when the rules did not fit and the program accepts all IP traffic.
    pub exact: bool,
}

impl Prefilter {
    /// The same program returning `snaplen` instead of [`Prefilter::snaplen`] for accepted
    /// packets (e.g. [`WHOLE_FRAME_SNAPLEN`] when the agent segments offloaded super-frames
    /// and needs them whole even for sessions that keep only a few bytes). A program that
    /// accepts nothing is returned unchanged.
    pub fn with_snaplen(mut self, snaplen: u32) -> Prefilter {
        if self.snaplen == 0 || snaplen == 0 {
            return self;
        }
        for ins in &mut self.program {
            if ins.code == op::RET | op::K && ins.k == self.snaplen {
                ins.k = snaplen;
            }
        }
        self.snaplen = snaplen;
        self
    }
}

const fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}

/// A jump whose targets are resolved when a block is finished.
#[derive(Clone, Copy)]
enum Target {
    Next,
    Fail,
}

/// Instructions of one block; conditional jumps name a [`Target`] instead of an offset.
struct Block {
    code: Vec<(SockFilter, Option<(Target, Target)>)>,
}

impl Block {
    fn new() -> Self {
        Self { code: Vec::new() }
    }

    fn push(&mut self, ins: SockFilter) {
        self.code.push((ins, None));
    }

    fn jump(&mut self, cond: u16, k: u32, if_true: Target, if_false: Target) {
        self.code.push((stmt(op::JMP | cond | op::K, k), Some((if_true, if_false))));
    }

    /// Resolves targets: `Next` is the following instruction, `Fail` the first one after
    /// the block (the next block). The block ends in `ret #snaplen`.
    fn finish(mut self, snaplen: u32) -> Vec<SockFilter> {
        self.push(stmt(op::RET | op::K, snaplen));
        let len = self.code.len();
        self.code
            .iter()
            .enumerate()
            .map(|(i, (ins, targets))| {
                let mut ins = *ins;
                if let Some((t, f)) = targets {
                    let offset = |target: &Target| match target {
                        Target::Next => 0,
                        Target::Fail => (len - i - 1) as u8,
                    };
                    ins.jt = offset(t);
                    ins.jf = offset(f);
                }
                ins
            })
            .collect()
    }
}

/// Address-family specifics of a section.
struct Family {
    protocol_offset: u32,
    source_offset: u32,
    destination_offset: u32,
    v6: bool,
}

const L3: u32 = 14;
const V4: Family = Family { protocol_offset: L3 + 9, source_offset: L3 + 12, destination_offset: L3 + 16, v6: false };
const V6: Family = Family { protocol_offset: L3 + 6, source_offset: L3 + 8, destination_offset: L3 + 24, v6: true };

impl Family {
    fn test_protocol(&self, b: &mut Block, p: Option<u8>, ports_needed: bool) {
        match p {
            Some(p) => {
                b.push(stmt(op::LD | op::B | op::ABS, self.protocol_offset));
                b.jump(op::JEQ, u32::from(p), Target::Next, Target::Fail);
            }
            None if ports_needed => {
                b.push(stmt(op::LD | op::B | op::ABS, self.protocol_offset));
                // TCP: skip the UDP test; neither: fail.
                b.code.push((stmt(op::JMP | op::JEQ | op::K, u32::from(protocol::TCP)), None));
                let at = b.code.len() - 1;
                b.code[at].0.jt = 1;
                b.jump(op::JEQ, u32::from(protocol::UDP), Target::Next, Target::Fail);
            }
            None => {}
        }
    }

    /// Tests that the address at `offset` lies in `net` (words compared under a mask).
    fn test_net(&self, b: &mut Block, offset: u32, net: &IpNet) {
        let (bytes, prefix): (Vec<u8>, u8) = match net {
            IpNet::V4(n) => (n.network().octets().to_vec(), n.prefix_len()),
            IpNet::V6(n) => (n.network().octets().to_vec(), n.prefix_len()),
        };
        for (i, word) in bytes.chunks_exact(4).enumerate() {
            let bits_before = i as u32 * 32;
            let prefix = u32::from(prefix);
            if prefix <= bits_before {
                break;
            }
            let covered = (prefix - bits_before).min(32);
            let mask = if covered == 32 { u32::MAX } else { !(u32::MAX >> covered) };
            let value = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) & mask;
            b.push(stmt(op::LD | op::W | op::ABS, offset + 4 * i as u32));
            if mask != u32::MAX {
                b.push(stmt(op::ALU | op::AND | op::K, mask));
            }
            b.jump(op::JEQ, value, Target::Next, Target::Fail);
        }
    }

    /// Loads the L4 offset (relative to the IP header) into X.
    fn load_l4_offset(&self, b: &mut Block) {
        if self.v6 {
            b.push(stmt(op::LDX | op::W | op::IMM, 40));
        } else {
            b.push(stmt(op::LDX | op::B | op::MSH, L3));
        }
    }

    fn test_port(&self, b: &mut Block, at: u32, from: u16, to: u16) {
        b.push(stmt(op::LD | op::H | op::IND, L3 + at));
        if from == to {
            b.jump(op::JEQ, u32::from(from), Target::Next, Target::Fail);
            return;
        }
        if from > 0 {
            b.jump(op::JGE, u32::from(from), Target::Next, Target::Fail);
        }
        if to < u16::MAX {
            b.jump(op::JGT, u32::from(to), Target::Fail, Target::Next);
        }
    }
}

impl Classifier {
    /// Generates the pre-filter; `agent_mark` is the `SO_MARK` of the agent's own output.
    pub fn prefilter(&self, agent_mark: Option<u32>) -> Prefilter {
        let sessions = self.sessions();
        let accepting: Vec<_> = self
            .rules()
            .iter()
            .filter(|r| {
                r.action == RuleAction::Accept && sessions.get(usize::from(r.session)).is_some_and(|s| s.enabled)
            })
            .collect();
        let dns_on = sessions.iter().any(|s| s.enabled && s.amazon_dns) && !self.dns_resolvers().is_empty();
        let can_mirror =
            |i: usize| accepting.iter().any(|r| usize::from(r.session) == i) || (dns_on && sessions[i].amazon_dns);
        let mirroring: Vec<_> = (0..sessions.len()).filter(|&i| sessions[i].enabled && can_mirror(i)).collect();
        let snaplen = if mirroring.iter().any(|&i| sessions[i].packet_length.is_none()) {
            WHOLE_FRAME_SNAPLEN
        } else {
            mirroring.iter().filter_map(|&i| sessions[i].packet_length).map(u32::from).max().unwrap_or(0)
        };

        let mut head = Vec::new();
        if let Some(mark) = agent_mark {
            head.push(stmt(op::LD | op::W | op::ABS, SKF_AD_OFF + SKF_AD_MARK));
            head.push(SockFilter { code: op::JMP | op::JEQ | op::K, jt: 0, jf: 1, k: mark });
            head.push(stmt(op::RET | op::K, 0));
        }
        if mirroring.is_empty() {
            head.push(stmt(op::RET | op::K, 0));
            return Prefilter { program: head, snaplen: 0, exact: true };
        }

        let mut sections = [Vec::new(), Vec::new()];
        for (section, family) in sections.iter_mut().zip([&V4, &V6]) {
            let mut seen = HashSet::new();
            let mut portless = Vec::new();
            let mut ported = Vec::new();
            for r in accepting.iter().filter(|r| r.matches.source_cidr.addr().is_ipv6() == family.v6) {
                let m = &r.matches;
                let needs_ports = m.source_ports.is_some() || m.destination_ports.is_some();
                if needs_ports && m.protocol.is_some_and(|p| !protocol::has_ports(p)) {
                    continue; // can never match
                }
                let mut b = Block::new();
                family.test_protocol(&mut b, m.protocol, needs_ports);
                family.test_net(&mut b, family.source_offset, &m.source_cidr);
                family.test_net(&mut b, family.destination_offset, &m.destination_cidr);
                if needs_ports {
                    family.load_l4_offset(&mut b);
                    if let Some(p) = m.source_ports {
                        family.test_port(&mut b, 0, p.from, p.to);
                    }
                    if let Some(p) = m.destination_ports {
                        family.test_port(&mut b, 2, p.from, p.to);
                    }
                }
                let code = b.finish(snaplen);
                if seen.insert(code.clone()) {
                    if needs_ports { ported.push(code) } else { portless.push(code) }
                }
            }
            if dns_on {
                for resolver in self.dns_resolvers().iter().filter(|a| a.is_ipv6() == family.v6) {
                    let net = IpNet::from(*resolver);
                    for (addr_offset, port_at) in [(family.destination_offset, 2), (family.source_offset, 0)] {
                        let mut b = Block::new();
                        family.test_protocol(&mut b, None, true);
                        family.test_net(&mut b, addr_offset, &net);
                        family.load_l4_offset(&mut b);
                        family.test_port(&mut b, port_at, DNS_PORT, DNS_PORT);
                        ported.push(b.finish(snaplen));
                    }
                }
            }
            if family.v6 && !(portless.is_empty() && ported.is_empty()) {
                // Extension headers: accept rather than walk them.
                section.push(stmt(op::LD | op::B | op::ABS, family.protocol_offset));
                for (i, h) in [0u32, 43, 44, 60].iter().enumerate() {
                    section.push(SockFilter { code: op::JMP | op::JEQ | op::K, jt: (4 - i) as u8, jf: 0, k: *h });
                }
                section.push(SockFilter { code: op::JMP | op::JA, jt: 0, jf: 0, k: 1 });
                section.push(stmt(op::RET | op::K, snaplen));
            }
            section.extend(portless.into_iter().flatten());
            section.extend(ported.into_iter().flatten());
            section.push(stmt(op::RET | op::K, 0));
        }
        let [v4, v6] = sections;

        // Dispatch: ldh [12]; IPv4 -> ja v4; IPv6 -> ja v6; VLAN -> accept; else drop.
        let mut program = head;
        program.push(stmt(op::LD | op::H | op::ABS, 12));
        let dispatch_len = 9;
        let v4_start = dispatch_len;
        let v6_start = v4_start + v4.len();
        let at = |i: usize| i as u32;
        program.extend([
            SockFilter { code: op::JMP | op::JEQ | op::K, jt: 0, jf: 1, k: u32::from(ethertype::IPV4) },
            stmt(op::JMP | op::JA, at(v4_start - 2)),
            SockFilter { code: op::JMP | op::JEQ | op::K, jt: 0, jf: 1, k: u32::from(ethertype::IPV6) },
            stmt(op::JMP | op::JA, at(v6_start - 4)),
            SockFilter { code: op::JMP | op::JEQ | op::K, jt: 3, jf: 0, k: u32::from(ethertype::VLAN) },
            SockFilter { code: op::JMP | op::JEQ | op::K, jt: 2, jf: 0, k: u32::from(ethertype::QINQ) },
            SockFilter { code: op::JMP | op::JEQ | op::K, jt: 1, jf: 0, k: u32::from(ethertype::QINQ_LEGACY) },
            stmt(op::RET | op::K, 0),
            stmt(op::RET | op::K, snaplen),
        ]);
        let exact = program.len() + v4.len() + v6.len() <= MAX_INSTRUCTIONS;
        if exact {
            program.extend(v4);
            program.extend(v6);
        } else {
            program.truncate(program.len() - 9);
            program.extend([
                SockFilter { code: op::JMP | op::JEQ | op::K, jt: 5, jf: 0, k: u32::from(ethertype::IPV4) },
                SockFilter { code: op::JMP | op::JEQ | op::K, jt: 4, jf: 0, k: u32::from(ethertype::IPV6) },
                SockFilter { code: op::JMP | op::JEQ | op::K, jt: 3, jf: 0, k: u32::from(ethertype::VLAN) },
                SockFilter { code: op::JMP | op::JEQ | op::K, jt: 2, jf: 0, k: u32::from(ethertype::QINQ) },
                SockFilter { code: op::JMP | op::JEQ | op::K, jt: 1, jf: 0, k: u32::from(ethertype::QINQ_LEGACY) },
                stmt(op::RET | op::K, 0),
                stmt(op::RET | op::K, snaplen),
            ]);
        }
        Prefilter { program, snaplen, exact }
    }
}

/// `udp dst port PORT` as a capture filter (`tapwire receive --capture`): IPv4 or IPv6
/// UDP to `port`, whole, received (not sent) by the interface, and also the first
/// fragment of a fragmented datagram to `port` (so the receiver can count what it cannot
/// reassemble); later fragments carry no port and are left out. Offsets are those of an
/// untagged Ethernet frame: on receive the kernel moves a VLAN tag into metadata before
/// packet taps see the frame.
pub fn udp_destination_port(port: u16) -> Vec<SockFilter> {
    const ACCEPT: u32 = WHOLE_FRAME_SNAPLEN;
    const PACKET_OUTGOING: u32 = 4;
    let port = u32::from(port);
    let jump = |k: u32, jt: u8, jf: u8| SockFilter { code: op::JMP | op::JEQ | op::K, jt, jf, k };
    let jset = |k: u32, jt: u8, jf: u8| SockFilter { code: op::JMP | op::JSET | op::K, jt, jf, k };
    // Jump offsets count from the next instruction; the last two are accept (23) and
    // drop (24).
    vec![
        stmt(op::LD | op::W | op::ABS, SKF_AD_OFF + SKF_AD_PKTTYPE), // 0
        jump(PACKET_OUTGOING, 22, 0),                                // 1: sent, not received
        stmt(op::LD | op::H | op::ABS, 12),                          // 2: EtherType
        jump(0x0800, 0, 7),                                          // 3: IPv4, else 11
        stmt(op::LD | op::B | op::ABS, 23),                          // 4: protocol
        jump(17, 0, 18),                                             // 5: UDP
        stmt(op::LD | op::H | op::ABS, 20),                          // 6: flags, offset
        jset(0x1fff, 16, 0),                                         // 7: a later fragment
        stmt(op::LDX | op::B | op::MSH, 14),                         // 8: X = header length
        stmt(op::LD | op::H | op::IND, 16),                          // 9: UDP destination
        jump(port, 12, 13),                                          // 10
        jump(0x86dd, 0, 12),                                         // 11: IPv6
        stmt(op::LD | op::B | op::ABS, 20),                          // 12: next header
        jump(17, 0, 2),                                              // 13: UDP, else 16
        stmt(op::LD | op::H | op::ABS, 56),                          // 14: UDP destination
        jump(port, 7, 8),                                            // 15
        jump(44, 0, 7),                                              // 16: a fragment header
        stmt(op::LD | op::B | op::ABS, 54),                          // 17: its next header
        jump(17, 0, 5),                                              // 18: UDP
        stmt(op::LD | op::H | op::ABS, 56),                          // 19: offset, flags
        jset(0xfff8, 3, 0),                                          // 20: a later fragment
        stmt(op::LD | op::H | op::ABS, 64),                          // 21: UDP destination
        jump(port, 0, 1),                                            // 22
        stmt(op::RET | op::K, ACCEPT),                               // 23: accept
        stmt(op::RET | op::K, 0),                                    // 24: drop
    ]
}

/// Whether a program is structurally valid for the kernel: non-empty, at most
/// [`MAX_INSTRUCTIONS`], every jump lands inside the program, the last instruction returns.
pub fn is_well_formed(program: &[SockFilter]) -> bool {
    if program.is_empty() || program.len() > MAX_INSTRUCTIONS {
        return false;
    }
    let last_returns = program.last().is_some_and(|i| i.code & 0x07 == op::RET);
    last_returns
        && program.iter().enumerate().all(|(pc, ins)| {
            if ins.code & 0x07 != op::JMP {
                return true;
            }
            let after = pc + 1;
            if ins.code & 0xf0 == op::JA {
                return after + (ins.k as usize) < program.len();
            }
            after + usize::from(ins.jt) < program.len() && after + usize::from(ins.jf) < program.len()
        })
}
