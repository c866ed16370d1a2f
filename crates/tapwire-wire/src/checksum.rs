//! The Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-header.
//!
//! Sums are accumulated in a `u64`, so any input up to several gigabytes folds
//! correctly; [`fold`] turns a running sum into the 16-bit one's-complement value.

use std::net::IpAddr;

/// Adds `data` (as big-endian 16-bit words, odd length padded with a zero byte) to `acc`.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds a running sum into 16 bits (one's-complement addition of the carries).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data`: the complement of its folded sum.
#[inline]
pub fn internet(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// The running sum of the pseudo-header that TCP, UDP and ICMPv6 checksums cover.
///
/// Mixed address families are treated as IPv6 with IPv4-mapped addresses, which no
/// real packet has; callers always pass one family.
#[inline]
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, upper_len: u32) -> u64 {
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = accumulate(acc, &s.octets());
            acc = accumulate(acc, &d.octets());
        }
        _ => {
            acc = accumulate(acc, &to_v6(src).octets());
            acc = accumulate(acc, &to_v6(dst).octets());
        }
    }
    acc + u64::from(protocol) + u64::from(upper_len >> 16) + u64::from(upper_len & 0xffff)
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The checksum of an upper-layer segment (header with a zeroed checksum field, plus
/// payload) under the pseudo-header of `src` and `dst`.
#[inline]
pub fn upper_layer(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    !fold(accumulate(pseudo_header(src, dst, protocol, len), segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(internet(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(accumulate(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }
}
