//! Undoing offload artefacts: TSO/GSO and GRO super-frames cut back into the frames the
//! wire carried, and partial checksums completed.
//!
//! A capture sees egress TCP before the device segments it (up to 64 KiB per frame) and
//! ingress TCP after GRO merged it. [`TcpSuperFrame`] splits such a frame into segments
//! of at most `mss` payload bytes, as TSO would: every segment gets the original link and
//! IP headers (IPv4: total length, identification + i and header checksum rewritten;
//! IPv6: payload length rewritten) and the original TCP header with the sequence number
//! advanced, FIN/PSH kept only on the last segment, CWR only on the first, and a freshly
//! computed checksum. Segments are written straight into the caller's buffer, cut to the
//! caller's limit; the checksum always covers the whole segment.
//!
//! Nothing here allocates; everything is pure.

use std::net::IpAddr;

use tapwire_wire::ip::protocol;
use tapwire_wire::{FlowKey, checksum, ipv4, ipv6, tcp, udp};

const TCP_FLAG_CWR: u8 = 0x80;

/// How super-frames (larger than the interface MTU) are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffloadMode {
    /// Split TCP super-frames into MTU-sized segments (what the wire carried); other
    /// super-frames are truncated.
    #[default]
    Segment,
    /// Copy the first bytes of every super-frame (cheap; payload beyond the cut is lost).
    Truncate,
}

impl std::str::FromStr for OffloadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "segment" => Ok(Self::Segment),
            "truncate" => Ok(Self::Truncate),
            other => Err(format!("unknown offload mode {other:?} (segment or truncate)")),
        }
    }
}

/// A complete TCP frame to be segmented.
#[derive(Debug, Clone, Copy)]
pub struct TcpSuperFrame<'a> {
    frame: &'a [u8],
    l3: usize,
    l4: usize,
    tcp_header_len: usize,
    source: IpAddr,
    destination: IpAddr,
    sequence: u32,
    flags: u8,
    ident: u16,
}

impl<'a> TcpSuperFrame<'a> {
    /// Reads a TCP frame captured whole (`frame` holds every byte its IP header counts);
    /// `None` for anything else.
    pub fn parse(frame: &'a [u8], key: &FlowKey) -> Option<Self> {
        if key.protocol != protocol::TCP || key.ports.is_none() {
            return None;
        }
        let l3 = usize::from(key.l3_offset);
        let l4 = usize::from(key.l4_offset);
        let ip_end = match key.source {
            IpAddr::V4(_) => {
                let p = ipv4::Packet::new_checked(frame.get(l3..)?).ok()?;
                if p.is_fragment() {
                    return None;
                }
                l3 + usize::from(p.total_len())
            }
            IpAddr::V6(_) => {
                let p = ipv6::Packet::new_checked(frame.get(l3..)?).ok()?;
                l3 + ipv6::HEADER_LEN + usize::from(p.payload_len())
            }
        };
        if ip_end != frame.len() {
            return None;
        }
        let t = tcp::Packet::new_checked(frame.get(l4..)?).ok()?;
        let ident = match key.source {
            IpAddr::V4(_) => ipv4::Packet::new_checked(&frame[l3..]).ok()?.ident(),
            IpAddr::V6(_) => 0,
        };
        Some(Self {
            frame,
            l3,
            l4,
            tcp_header_len: t.header_len(),
            source: key.source,
            destination: key.destination,
            sequence: t.sequence(),
            flags: t.flags(),
            ident,
        })
    }

    /// Bytes of every header in front of the TCP payload.
    pub fn headers_len(&self) -> usize {
        self.l4 + self.tcp_header_len
    }

    /// Bytes of IP and TCP headers, the part of the MTU that is not payload.
    pub fn ip_headers_len(&self) -> usize {
        self.headers_len() - self.l3
    }

    fn payload(&self) -> &'a [u8] {
        &self.frame[self.headers_len()..]
    }

    /// Segments of at most `mss` payload bytes (at least one).
    pub fn segment_count(&self, mss: usize) -> usize {
        self.payload().len().div_ceil(mss.max(1)).max(1)
    }

    /// Length of the frame of segment `index`.
    pub fn segment_len(&self, index: usize, mss: usize) -> usize {
        let payload = self.payload().len();
        let start = (index * mss.max(1)).min(payload);
        self.headers_len() + mss.max(1).min(payload - start)
    }

    /// Writes the first `out.len()` bytes (at most) of segment `index` into `out`;
    /// returns (bytes written, full length of the segment frame).
    pub fn write_segment(&self, index: usize, mss: usize, out: &mut [u8]) -> (usize, usize) {
        let mss = mss.max(1);
        let payload = self.payload();
        let start = (index * mss).min(payload.len());
        let chunk = &payload[start..(start + mss).min(payload.len())];
        let count = self.segment_count(mss);
        let headers = self.headers_len();
        let full = headers + chunk.len();

        // Headers are built in a stack buffer (at most 14 + 16 VLAN + 60 + 60 + 60 bytes
        // in practice; longer header chains fall back to copying what fits).
        let mut h = [0u8; 512];
        let Some(hdr) = h.get_mut(..headers) else {
            let n = out.len().min(full);
            out[..n.min(self.frame.len())].copy_from_slice(&self.frame[..n.min(self.frame.len())]);
            return (n, full);
        };
        hdr.copy_from_slice(&self.frame[..headers]);
        let l4_len = self.tcp_header_len + chunk.len();
        match self.source {
            IpAddr::V4(_) => {
                let ip_header_len = self.l4 - self.l3;
                let total = (ip_header_len + l4_len) as u16;
                let ip = &mut hdr[self.l3..self.l4];
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[4..6].copy_from_slice(&self.ident.wrapping_add(index as u16).to_be_bytes());
                ip[10..12].copy_from_slice(&[0, 0]);
                let sum = checksum::internet(ip);
                ip[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            IpAddr::V6(_) => {
                let payload_len = (self.l4 - self.l3 - ipv6::HEADER_LEN + l4_len) as u16;
                hdr[self.l3 + 4..self.l3 + 6].copy_from_slice(&payload_len.to_be_bytes());
            }
        }
        let t = &mut hdr[self.l4..];
        t[4..8].copy_from_slice(&self.sequence.wrapping_add(start as u32).to_be_bytes());
        let mut flags = self.flags;
        if index + 1 < count {
            flags &= !(tcp::flags::FIN | tcp::flags::PSH);
        }
        if index > 0 {
            flags &= !TCP_FLAG_CWR;
        }
        t[13] = flags;
        t[16..18].copy_from_slice(&[0, 0]);
        let acc = checksum::pseudo_header(self.source, self.destination, protocol::TCP, l4_len as u32);
        let acc = checksum::accumulate(acc, t);
        // Header length is even, so the payload's words line up.
        let sum = !checksum::fold(checksum::accumulate(acc, chunk));
        t[16..18].copy_from_slice(&sum.to_be_bytes());

        let n = out.len().min(full);
        let from_headers = n.min(headers);
        out[..from_headers].copy_from_slice(&hdr[..from_headers]);
        if n > headers {
            out[headers..n].copy_from_slice(&chunk[..n - headers]);
        }
        (n, full)
    }
}

/// Completes the TCP or UDP checksum of a whole frame (the copy in `frame`, not cut)
/// whose checksum the kernel left partial. Returns whether it wrote one.
pub fn complete_checksum(frame: &mut [u8], key: &FlowKey) -> bool {
    let l4 = usize::from(key.l4_offset);
    let Some(ip_end) = ip_end(frame, key) else { return false };
    if ip_end != frame.len() || key.ports.is_none() || l4 > ip_end {
        return false;
    }
    let segment = &mut frame[l4..ip_end];
    match key.protocol {
        protocol::TCP => tcp::fill_checksum(segment, key.source, key.destination).is_ok(),
        protocol::UDP => udp::fill_checksum(segment, key.source, key.destination).is_ok(),
        _ => false,
    }
}

fn ip_end(frame: &[u8], key: &FlowKey) -> Option<usize> {
    let l3 = usize::from(key.l3_offset);
    match key.source {
        IpAddr::V4(_) => Some(l3 + usize::from(ipv4::Packet::new_checked(frame.get(l3..)?).ok()?.total_len())),
        IpAddr::V6(_) => {
            Some(l3 + ipv6::HEADER_LEN + usize::from(ipv6::Packet::new_checked(frame.get(l3..)?).ok()?.payload_len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_wire::build::{FrameSpec, L4};

    fn bulk(v6: bool, payload_len: usize) -> Vec<u8> {
        let (source, destination): (IpAddr, IpAddr) = if v6 {
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
        } else {
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap())
        };
        FrameSpec {
            source,
            destination,
            l4: L4::Tcp { source_port: 40000, destination_port: 5201 },
            payload_len,
            ..Default::default()
        }
        .to_bytes()
    }

    fn check_segments(frame: &[u8], mss: usize) -> Vec<Vec<u8>> {
        let key = FlowKey::extract(frame).unwrap();
        let sf = TcpSuperFrame::parse(frame, &key).unwrap();
        let count = sf.segment_count(mss);
        let mut out = Vec::new();
        for i in 0..count {
            let mut buf = vec![0u8; 2000];
            let (n, full) = sf.write_segment(i, mss, &mut buf);
            assert_eq!(n, full);
            buf.truncate(n);
            out.push(buf);
        }
        out
    }

    #[test]
    fn ipv4_super_frame_becomes_valid_mss_segments() {
        let frame = bulk(false, 4000);
        let original = FlowKey::extract(&frame).unwrap();
        let original_tcp = tcp::Packet::new_checked(&frame[usize::from(original.l4_offset)..]).unwrap();
        let segments = check_segments(&frame, 1448);
        assert_eq!(segments.len(), 3);
        let mut payload = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let key = FlowKey::extract(s).unwrap();
            let ip = ipv4::Packet::new_checked(&s[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(usize::from(ip.total_len()), s.len() - 14);
            let t = tcp::Packet::new_checked(&s[usize::from(key.l4_offset)..]).unwrap();
            assert_eq!(t.sequence(), original_tcp.sequence().wrapping_add((i * 1448) as u32));
            let sum =
                checksum::upper_layer(key.source, key.destination, protocol::TCP, &s[usize::from(key.l4_offset)..]);
            assert_eq!(sum, 0, "segment {i} checksum must verify");
            let psh = t.flags() & tcp::flags::PSH != 0;
            assert_eq!(psh, i == 2, "PSH only on the last segment");
            payload.extend_from_slice(t.payload());
        }
        assert_eq!(segments[0].len(), 14 + 20 + 20 + 1448);
        assert_eq!(payload, original_tcp.payload());
    }

    #[test]
    fn ipv6_super_frame_segments_and_cut_copies_keep_a_whole_segment_checksum() {
        let frame = bulk(true, 3000);
        let key = FlowKey::extract(&frame).unwrap();
        let sf = TcpSuperFrame::parse(&frame, &key).unwrap();
        assert_eq!(sf.segment_count(1428), 3);
        let mut whole = vec![0u8; 2000];
        let (n, full) = sf.write_segment(1, 1428, &mut whole);
        assert_eq!(n, full);
        let ip = ipv6::Packet::new_checked(&whole[14..n]).unwrap();
        assert_eq!(usize::from(ip.payload_len()), 20 + 1428);
        assert_eq!(checksum::upper_layer(key.source, key.destination, protocol::TCP, &whole[54..n]), 0);
        let mut cut = vec![0u8; 100];
        let (m, full2) = sf.write_segment(1, 1428, &mut cut);
        assert_eq!((m, full2), (100, full));
        assert_eq!(cut[..], whole[..100]);
    }

    #[test]
    fn partial_checksums_are_completed() {
        let mut frame =
            FrameSpec { l4: L4::Udp { source_port: 1, destination_port: 2 }, ..Default::default() }.to_bytes();
        let key = FlowKey::extract(&frame).unwrap();
        let good = frame.clone();
        let l4 = usize::from(key.l4_offset);
        frame[l4 + 6..l4 + 8].copy_from_slice(&[0x12, 0x34]);
        assert!(complete_checksum(&mut frame, &key));
        assert_eq!(frame, good);
    }

    #[test]
    fn cut_or_non_tcp_frames_are_not_segmented() {
        let frame = bulk(false, 3000);
        let key = FlowKey::extract(&frame).unwrap();
        assert!(TcpSuperFrame::parse(&frame[..1500], &key).is_none());
        let udp =
            FrameSpec { l4: L4::Udp { source_port: 1, destination_port: 2 }, payload_len: 3000, ..Default::default() }
                .to_bytes();
        assert!(TcpSuperFrame::parse(&udp, &FlowKey::extract(&udp).unwrap()).is_none());
    }
}
