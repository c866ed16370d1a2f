//! `--dedup WINDOW`: drop a copy identical to one received within the window, from any
//! source and VNI: the second copy of a packet when both ends of its flow are mirrored.
//!
//! Identical means the same IP packet once what a hop changes is left out: the Ethernet
//! header and VLAN tags (routers rewrite MACs), the TTL or hop limit, and the IPv4
//! header checksum (which follows the TTL). Everything else counts, so two packets that
//! differ anywhere else never share a key ([`key`], 128 bits of XXH3 over those bytes).
//! A frame that is not IP is compared whole.
//!
//! Bounded: at most [`MAX_ENTRIES`] keys are remembered; when full, the oldest goes before
//! its window ends (counted, so a window too wide for the rate shows).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use tapwire_wire::FlowKey;
use xxhash_rust::xxh3::Xxh3;

/// Most keys remembered at once.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The identity of a frame for deduplication.
pub fn key(frame: &[u8]) -> u128 {
    let mut h = Xxh3::new();
    let l3 = FlowKey::extract(frame).map(|k| usize::from(k.l3_offset)).ok().filter(|&at| at < frame.len());
    let Some(at) = l3 else {
        h.update(b"frame");
        h.update(frame);
        return h.digest128();
    };
    let ip = &frame[at..];
    match ip[0] >> 4 {
        4 if ip.len() >= 20 => {
            h.update(b"ipv4");
            h.update(&ip[..8]);
            h.update(&[ip[9]]); // TTL (8) and checksum (10..12) left out
            h.update(&ip[12..]);
        }
        6 if ip.len() >= 40 => {
            h.update(b"ipv6");
            h.update(&ip[..7]);
            h.update(&ip[8..]); // hop limit (7) left out
        }
        _ => {
            h.update(b"frame");
            h.update(frame);
        }
    }
    h.digest128()
}

/// Keys are XXH3 hashes already: hashing them again (SipHash) would cost more than
/// the lookup. The low 64 bits are the bucket.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

/// What [`Dedup::check`] says of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First within the window: write it.
    New,
    /// A copy of one within the window: drop it.
    Duplicate,
}

/// The keys of the last window.
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    /// When each key was last written.
    seen: HashMap<u128, Duration, BuildHasherDefault<KeyHasher>>,
    /// Keys in the order written, to forget them when their window ends.
    order: VecDeque<(Duration, u128)>,
    /// Keys forgotten before their window ended, for room.
    pub evicted_early: u64,
}

impl Dedup {
    /// Deduplicates over `window`.
    pub fn new(window: Duration) -> Self {
        Self { window, seen: HashMap::default(), order: VecDeque::new(), evicted_early: 0 }
    }

    /// Looks at one frame received at `at` (receive timestamps; a frame earlier than the
    /// last only shortens what it is compared with).
    pub fn check(&mut self, frame: &[u8], at: Duration) -> Seen {
        let k = key(frame);
        while let Some(&(t, old)) = self.order.front() {
            if at.saturating_sub(t) <= self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&old) == Some(&t) {
                self.seen.remove(&old);
            }
        }
        if let Some(&t) = self.seen.get(&k)
            && at.saturating_sub(t) <= self.window
        {
            return Seen::Duplicate;
        }
        if self.seen.len() >= MAX_ENTRIES
            && let Some((t, old)) = self.order.pop_front()
        {
            if self.seen.get(&old) == Some(&t) {
                self.seen.remove(&old);
            }
            self.evicted_early += 1;
        }
        self.seen.insert(k, at);
        self.order.push_back((at, k));
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Ethernet (optionally one VLAN tag) + IPv4/UDP with the given TTL and MACs.
    fn v4(ttl: u8, mac: u8, vlan: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, mac, 2, 0, 0, 0, 0, mac ^ 1];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 7, 0, 0, ttl, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let sum = !ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>() as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x9c, 0x40, 0x13, 0x88]);
        f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_packet_seen_after_a_hop_is_the_same_and_expires_with_its_window() {
        let mut d = Dedup::new(Duration::from_millis(2));
        let ms = Duration::from_millis;
        assert_eq!(d.check(&v4(64, 1, false, b"hello"), ms(100)), Seen::New);
        // One router later: TTL, checksum and MACs changed, a VLAN tag added.
        assert_eq!(d.check(&v4(63, 9, true, b"hello"), ms(101)), Seen::Duplicate);
        assert_eq!(d.check(&v4(64, 1, false, b"hellp"), ms(101)), Seen::New);
        assert_eq!(d.check(&v4(64, 1, false, b"hello"), ms(104)), Seen::New, "the window ended");
    }

    proptest! {
        /// Two frames share a key exactly when they differ only in what a hop changes.
        #[test]
        fn distinct_packets_never_share_a_key(
            a in proptest::collection::vec(any::<u8>(), 0..64),
            b in proptest::collection::vec(any::<u8>(), 0..64),
            ttl in any::<u8>(),
            mac in any::<u8>(),
        ) {
            prop_assert_eq!(key(&v4(64, 1, false, &a)) == key(&v4(64, 1, false, &b)), a == b);
            prop_assert_eq!(key(&v4(64, 1, false, &a)), key(&v4(ttl, mac, mac % 2 == 0, &a)));
        }

        /// Non-IP frames are compared whole.
        #[test]
        fn other_frames_are_compared_whole(
            a in proptest::collection::vec(any::<u8>(), 14..80),
            b in proptest::collection::vec(any::<u8>(), 14..80),
        ) {
            let arp = |mut f: Vec<u8>| { f[12] = 0x08; f[13] = 0x06; f };
            prop_assert_eq!(key(&arp(a.clone())) == key(&arp(b.clone())), arp(a) == arp(b));
        }
    }
}
