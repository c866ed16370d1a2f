//! Byte ranges of header fields, and big-endian reads through them.
//!
//! Each protocol module has a `field` table (`ipv4::field`, `ipv6::field`, …) that its
//! view, its emitter and the flow fast path all read, so an offset is written once.
//! The readers index the slice: callers pass ranges inside a length they checked.

use std::ops::Range;

/// The bytes of one header field.
pub type Field = Range<usize>;

/// A 16-bit big-endian field.
#[inline(always)]
pub fn be16(bytes: &[u8], f: Field) -> u16 {
    let b = &bytes[f];
    u16::from_be_bytes([b[0], b[1]])
}

/// A 32-bit big-endian field.
#[inline(always)]
pub fn be32(bytes: &[u8], f: Field) -> u32 {
    let b = &bytes[f];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A 128-bit big-endian field (an IPv6 address).
#[inline(always)]
pub fn be128(bytes: &[u8], f: Field) -> u128 {
    let mut word = [0u8; 16];
    word.copy_from_slice(&bytes[f]);
    u128::from_be_bytes(word)
}
