//! The Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-header.
//!
//! Sums are accumulated in a `u64`, so any input up to several gigabytes folds
//! correctly; [`fold`] turns a running sum into the 16-bit one's-complement value.
//!
//! [`accumulate`] reads 4 bytes at a time in the machine's byte order and turns the
//! folded result into big-endian words at the end (RFC 1071 §2: the sum is the same in
//! either order, up to a byte swap); [`accumulate_words`] is the plain word-by-word sum,
//! kept as the reference the tests and the bench compare with.

use std::net::IpAddr;

/// Adds `data` (as big-endian 16-bit words, odd length padded with a zero byte) to `acc`.
/// The result is congruent to [`accumulate_words`]'s modulo 0xffff, so both fold to the
/// same checksum (and both are zero only for all-zero data).
#[inline]
pub fn accumulate(acc: u64, data: &[u8]) -> u64 {
    let mut quads = data.chunks_exact(4);
    let mut native = 0u64;
    for q in &mut quads {
        native += u64::from(u32::from_ne_bytes([q[0], q[1], q[2], q[3]]));
    }
    // 2^32 quads (16 GiB) before `native` could overflow; a fold keeps it exact beyond.
    let folded = fold(native);
    let big_endian = if cfg!(target_endian = "little") { folded.swap_bytes() } else { folded };
    accumulate_words(acc + u64::from(big_endian), quads.remainder())
}

/// [`accumulate`] one big-endian 16-bit word at a time.
#[inline]
pub fn accumulate_words(mut acc: u64, data: &[u8]) -> u64 {
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
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn four_bytes_at_a_time_folds_as_word_by_word(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            acc in 0u64..1 << 40,
        ) {
            prop_assert_eq!(fold(accumulate(acc, &data)), fold(accumulate_words(acc, &data)));
            prop_assert_eq!(accumulate(0, &data) == 0, data.iter().all(|b| *b == 0));
        }
    }

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
