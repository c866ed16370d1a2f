//! pcapng and classic pcap encoding, written by hand.
//!
//! Why not `pcap-file`: its 2.x pcapng writer always stores Enhanced Packet Block
//! timestamps in nanoseconds but leaves `if_tsresol` to the caller (files read back
//! 1000× off when it is forgotten), and every record goes through an owned `Block` enum
//! with option `Vec`s. The subset needed here (one Section Header Block, Interface
//! Description Blocks with `if_name`/`if_description`/`if_tsresol`, Enhanced Packet
//! Blocks; the 24-byte pcap header and 16-byte records) is small, so it is written
//! directly, allocation-free per packet.
//!
//! Invariants: output is little-endian; every pcapng block length is a multiple of 4;
//! an interface block is written before the first packet that names it, once per file;
//! a file describes at most [`MAX_INTERFACES`] (source, VNI) pairs plus one overflow
//! interface that every later pair shares; pcapng timestamps are nanoseconds
//! (`if_tsresol` = 9), pcap timestamps microseconds.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use crate::Map;

/// Largest frame kept whole. Wireshark's own limit for Ethernet; larger than any
/// inner frame a UDP datagram can carry, so jumbo frames are never cut.
pub const SNAPLEN: u32 = 262_144;
/// Link type of every interface: Ethernet (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u16 = 1;
/// (outer source, VNI) pairs one pcapng file gives interfaces of their own. Sources come
/// from the network and can be spoofed: past this many, frames go to one shared
/// overflow interface ([`OVERFLOW_INTERFACE_NAME`]), counted, so neither the table here
/// nor a reader's grows without bound.
pub const MAX_INTERFACES: usize = 4096;
/// `if_name` of the overflow interface.
pub const OVERFLOW_INTERFACE_NAME: &str = "overflow";

const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 0x0000_0001;
const EPB_TYPE: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_ENDOFOPT: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const PCAP_MAGIC_MICROS: u32 = 0xA1B2_C3D4;

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// pcapng: one interface per (outer source, VNI), nanosecond timestamps.
    Pcapng,
    /// Classic pcap: no per-interface information, microsecond timestamps.
    Pcap,
}

impl Format {
    /// File name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pcapng => "pcapng",
            Format::Pcap => "pcap",
        }
    }

    /// Bytes one packet record of `frame_len` bytes takes on disk.
    pub fn record_len(self, frame_len: usize) -> u64 {
        match self {
            Format::Pcapng => 32 + pad4(frame_len) as u64,
            Format::Pcap => 16 + frame_len as u64,
        }
    }
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn option_len(value_len: usize) -> usize {
    4 + pad4(value_len)
}

fn write_option(out: &mut impl Write, code: u16, value: &[u8]) -> io::Result<()> {
    out.write_all(&code.to_le_bytes())?;
    out.write_all(&(value.len() as u16).to_le_bytes())?;
    out.write_all(value)?;
    out.write_all(&[0u8; 3][..pad4(value.len()) - value.len()])
}

/// Writes the file header: a pcapng Section Header Block or the pcap global header.
/// Returns the bytes written.
pub fn write_file_header(out: &mut impl Write, format: Format) -> io::Result<u64> {
    match format {
        Format::Pcapng => {
            let appl = concat!("tapwire ", env!("CARGO_PKG_VERSION")).as_bytes();
            let len = (28 + option_len(appl.len()) + 4) as u32;
            out.write_all(&SHB_TYPE.to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&BYTE_ORDER_MAGIC.to_le_bytes())?;
            out.write_all(&1u16.to_le_bytes())?;
            out.write_all(&0u16.to_le_bytes())?;
            // Section length unknown (-1): the file is written as a stream.
            out.write_all(&(-1i64).to_le_bytes())?;
            write_option(out, SHB_USERAPPL, appl)?;
            out.write_all(&[0u8; 4])?;
            out.write_all(&len.to_le_bytes())?;
            Ok(u64::from(len))
        }
        Format::Pcap => {
            out.write_all(&PCAP_MAGIC_MICROS.to_le_bytes())?;
            out.write_all(&2u16.to_le_bytes())?;
            out.write_all(&4u16.to_le_bytes())?;
            out.write_all(&0i32.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&SNAPLEN.to_le_bytes())?;
            out.write_all(&u32::from(LINKTYPE_ETHERNET).to_le_bytes())?;
            Ok(24)
        }
    }
}

/// `if_name` of the interface that stands for (`src`, `vni`), e.g. `vni42-198.18.0.2`.
pub fn interface_name(src: IpAddr, vni: u32) -> String {
    format!("vni{vni}-{src}")
}

/// `if_description` of the interface that stands for (`src`, `vni`).
pub fn interface_description(src: IpAddr, vni: u32) -> String {
    format!("vxlan vni={vni} src={src}")
}

/// `if_description` of the overflow interface.
fn overflow_interface_description() -> String {
    format!("vxlan: every source and VNI past the first {MAX_INTERFACES} of this file")
}

/// Writes a pcapng Interface Description Block named `name`. Returns bytes written.
pub fn write_interface_block(out: &mut impl Write, name: &str, desc: &str) -> io::Result<u64> {
    let len = (16 + option_len(name.len()) + option_len(desc.len()) + option_len(1) + 4 + 4) as u32;
    out.write_all(&IDB_TYPE.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.write_all(&SNAPLEN.to_le_bytes())?;
    write_option(out, IF_NAME, name.as_bytes())?;
    write_option(out, IF_DESCRIPTION, desc.as_bytes())?;
    // 10^-9 s: nanosecond timestamps.
    write_option(out, IF_TSRESOL, &[9])?;
    out.write_all(&OPT_ENDOFOPT.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    Ok(u64::from(len))
}

/// Writes one packet record. `interface` is ignored by classic pcap; `ts` is the time
/// since the Unix epoch. Returns bytes written.
pub fn write_packet(
    out: &mut impl Write,
    format: Format,
    interface: u32,
    ts: Duration,
    frame: &[u8],
) -> io::Result<u64> {
    let caplen = frame.len().min(SNAPLEN as usize);
    let orig = frame.len() as u32;
    let data = &frame[..caplen];
    match format {
        Format::Pcapng => {
            let len = 32 + pad4(caplen) as u32;
            let nanos = ts.as_nanos() as u64;
            let mut head = [0u8; 28];
            head[0..4].copy_from_slice(&EPB_TYPE.to_le_bytes());
            head[4..8].copy_from_slice(&len.to_le_bytes());
            head[8..12].copy_from_slice(&interface.to_le_bytes());
            head[12..16].copy_from_slice(&((nanos >> 32) as u32).to_le_bytes());
            head[16..20].copy_from_slice(&(nanos as u32).to_le_bytes());
            head[20..24].copy_from_slice(&(caplen as u32).to_le_bytes());
            head[24..28].copy_from_slice(&orig.to_le_bytes());
            out.write_all(&head)?;
            out.write_all(data)?;
            let pad = pad4(caplen) - caplen;
            let mut tail = [0u8; 7];
            tail[pad..pad + 4].copy_from_slice(&len.to_le_bytes());
            out.write_all(&tail[..pad + 4])?;
            Ok(u64::from(len))
        }
        Format::Pcap => {
            let mut head = [0u8; 16];
            head[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
            head[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
            head[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
            head[12..16].copy_from_slice(&orig.to_le_bytes());
            out.write_all(&head)?;
            out.write_all(data)?;
            Ok(16 + caplen as u64)
        }
    }
}

/// A pcapng interface's (outer source, VNI) as integers, which hash in a few
/// multiplications (an `IpAddr` hashes as a tag and a byte string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InterfaceKey {
    address: u128,
    /// The VNI, and bit 32 set for an IPv6 source.
    vni_family: u64,
}

impl InterfaceKey {
    fn of(src: IpAddr, vni: u32) -> Self {
        let (address, v6) = match src {
            IpAddr::V4(a) => (u128::from(a.to_bits()), 0),
            IpAddr::V6(a) => (a.to_bits(), 1u64 << 32),
        };
        Self { address, vni_family: u64::from(vni) | v6 }
    }
}

/// Which interface a frame was recorded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Its own (source, VNI) interface (always, in classic pcap).
    Own,
    /// The shared overflow interface: the file already describes [`MAX_INTERFACES`].
    Overflow,
}

/// One capture stream: a file header, then interfaces on first use, then packets.
///
/// Keeps its own interface table, so each file (and each rotated file) is complete on
/// its own. Looking up a known (source, VNI) allocates nothing.
pub struct CaptureWriter<W: Write> {
    out: W,
    format: Format,
    interfaces: Map<InterfaceKey, u32>,
    /// The overflow interface's id, once written.
    overflow: Option<u32>,
    bytes: u64,
    frames: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the file header to `out` and returns the writer.
    pub fn new(mut out: W, format: Format) -> io::Result<Self> {
        let bytes = write_file_header(&mut out, format)?;
        Ok(Self { out, format, interfaces: Map::default(), overflow: None, bytes, frames: 0 })
    }

    /// Writes `frame`, received from `src` on `vni` at `ts` (since the Unix epoch).
    pub fn write_frame(&mut self, src: IpAddr, vni: u32, ts: Duration, frame: &[u8]) -> io::Result<Recorded> {
        let (interface, recorded) = match self.format {
            Format::Pcap => (0, Recorded::Own),
            Format::Pcapng => match self.interfaces.get(&InterfaceKey::of(src, vni)) {
                Some(&id) => (id, Recorded::Own),
                None => self.add_interface(src, vni)?,
            },
        };
        self.bytes += write_packet(&mut self.out, self.format, interface, ts, frame)?;
        self.frames += 1;
        Ok(recorded)
    }

    /// The interface of a pair not seen in this file: a new one while there is room,
    /// else the overflow interface (written on its first use).
    #[cold]
    fn add_interface(&mut self, src: IpAddr, vni: u32) -> io::Result<(u32, Recorded)> {
        let next = (self.interfaces.len() + usize::from(self.overflow.is_some())) as u32;
        if self.interfaces.len() < MAX_INTERFACES {
            self.bytes +=
                write_interface_block(&mut self.out, &interface_name(src, vni), &interface_description(src, vni))?;
            self.interfaces.insert(InterfaceKey::of(src, vni), next);
            return Ok((next, Recorded::Own));
        }
        let id = match self.overflow {
            Some(id) => id,
            None => {
                let desc = overflow_interface_description();
                self.bytes += write_interface_block(&mut self.out, OVERFLOW_INTERFACE_NAME, &desc)?;
                *self.overflow.insert(next)
            }
        };
        Ok((id, Recorded::Overflow))
    }

    /// Bytes written so far, headers included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Returns the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Walks pcapng blocks, checking that each block's leading and trailing lengths
    /// agree and are multiples of 4; returns (type, body) pairs.
    fn blocks(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut v = Vec::new();
        while !b.is_empty() {
            let len = u32_at(b, 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(b, len - 4) as usize, len);
            v.push((u32_at(b, 0), b[8..len - 4].to_vec()));
            b = &b[len..];
        }
        v
    }

    #[test]
    fn pcapng_stream_has_interfaces_once_and_exact_frames() {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3));
        let mut w = CaptureWriter::new(Vec::new(), Format::Pcapng).unwrap();
        let f1: Vec<u8> = (0..61u8).collect();
        let f2: Vec<u8> = (0..64u8).rev().collect();
        let ts = Duration::new(1_700_000_000, 123_456_789);
        w.write_frame(a, 42, ts, &f1).unwrap();
        w.write_frame(b, 42, ts, &f2).unwrap();
        w.write_frame(a, 42, ts, &f2).unwrap();
        assert_eq!(w.frames(), 3);
        let bytes = w.bytes();
        let out = w.into_inner();
        assert_eq!(bytes, out.len() as u64);

        let bl = blocks(&out);
        let types: Vec<u32> = bl.iter().map(|(t, _)| *t).collect();
        assert_eq!(types, [SHB_TYPE, IDB_TYPE, EPB_TYPE, IDB_TYPE, EPB_TYPE, EPB_TYPE]);
        assert_eq!(u32_at(&bl[0].1, 0), BYTE_ORDER_MAGIC);
        let idb = &bl[1].1;
        assert_eq!(&idb[0..2], &1u16.to_le_bytes());
        assert!(idb.windows(27).any(|w| w == b"vxlan vni=42 src=198.18.0.2"));
        assert!(idb.windows(16).any(|w| w == b"vni42-198.18.0.2"));
        let epbs: Vec<&Vec<u8>> = bl.iter().filter(|(t, _)| *t == EPB_TYPE).map(|(_, b)| b).collect();
        let ifaces: Vec<u32> = epbs.iter().map(|b| u32_at(b, 0)).collect();
        assert_eq!(ifaces, [0, 1, 0]);
        let e = epbs[0];
        let nanos = (u64::from(u32_at(e, 4)) << 32) | u64::from(u32_at(e, 8));
        assert_eq!(nanos, 1_700_000_000_123_456_789);
        assert_eq!(u32_at(e, 12), 61);
        assert_eq!(u32_at(e, 16), 61);
        assert_eq!(&e[20..81], &f1[..]);
        assert_eq!(&epbs[1][20..84], &f2[..]);
    }

    #[test]
    fn pairs_past_the_interface_limit_share_one_overflow_interface() {
        let mut w = CaptureWriter::new(Vec::new(), Format::Pcapng).unwrap();
        let frame = [0u8; 60];
        let source = |n: usize| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + n as u32));
        for n in 0..MAX_INTERFACES {
            assert_eq!(w.write_frame(source(n), 7, Duration::ZERO, &frame).unwrap(), Recorded::Own);
        }
        // Two new pairs, then a known one: the new ones overflow, the known one does not.
        assert_eq!(w.write_frame(source(MAX_INTERFACES), 7, Duration::ZERO, &frame).unwrap(), Recorded::Overflow);
        assert_eq!(w.write_frame(source(0), 8, Duration::ZERO, &frame).unwrap(), Recorded::Overflow);
        assert_eq!(w.write_frame(source(3), 7, Duration::ZERO, &frame).unwrap(), Recorded::Own);
        let bytes = w.bytes();
        let out = w.into_inner();
        assert_eq!(bytes, out.len() as u64);

        let bl = blocks(&out);
        let idbs: Vec<&Vec<u8>> = bl.iter().filter(|(t, _)| *t == IDB_TYPE).map(|(_, b)| b).collect();
        assert_eq!(idbs.len(), MAX_INTERFACES + 1);
        let last = idbs[MAX_INTERFACES];
        assert!(last.windows(OVERFLOW_INTERFACE_NAME.len()).any(|w| w == OVERFLOW_INTERFACE_NAME.as_bytes()));
        let ifaces: Vec<u32> = bl.iter().filter(|(t, _)| *t == EPB_TYPE).map(|(_, b)| u32_at(b, 0)).collect();
        let overflow = MAX_INTERFACES as u32;
        assert_eq!(ifaces[MAX_INTERFACES..], [overflow, overflow, 3]);
    }

    #[test]
    fn record_len_matches_bytes_written() {
        for format in [Format::Pcapng, Format::Pcap] {
            for len in [0usize, 1, 14, 63, 64, 65, 1514, 9000] {
                let mut v = Vec::new();
                let n = write_packet(&mut v, format, 0, Duration::ZERO, &vec![7; len]).unwrap();
                assert_eq!(n, v.len() as u64);
                assert_eq!(format.record_len(len), n, "{format:?} {len}");
            }
        }
    }

    #[test]
    fn pcap_has_global_header_and_micro_records() {
        let mut w = CaptureWriter::new(Vec::new(), Format::Pcap).unwrap();
        let frame = [0xaau8; 60];
        w.write_frame(IpAddr::V4(Ipv4Addr::LOCALHOST), 7, Duration::new(10, 999_999_999), &frame).unwrap();
        let out = w.into_inner();
        assert_eq!(out.len(), 24 + 16 + 60);
        assert_eq!(u32_at(&out, 0), PCAP_MAGIC_MICROS);
        assert_eq!(u32_at(&out, 16), SNAPLEN);
        assert_eq!(u32_at(&out, 20), 1);
        assert_eq!(u32_at(&out, 24), 10);
        assert_eq!(u32_at(&out, 28), 999_999);
        assert_eq!(u32_at(&out, 32), 60);
        assert_eq!(&out[40..], &frame[..]);
    }
}
