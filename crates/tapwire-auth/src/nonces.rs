//! The replay window of Alibaba requests: a nonce seen within the window is refused.
//!
//! - The caller picks the window: a request whose timestamp may be up to `skew` seconds
//!   either side of the clock is acceptable for `2 × skew` seconds after it is first seen,
//!   so that is how long its nonce must be kept.
//! - Bounded: at most `capacity` nonces are remembered, each as a 16-byte digest (the
//!   caller's text, namespaced by key, may be long); they are forgotten once their window
//!   has passed. When the window holds `capacity` live nonces, new requests are refused
//!   rather than an old nonce forgotten early, which would let it be replayed.
//! - Memory only: what a restart forgets, the caller covers by refusing requests signed
//!   before it started.

use std::collections::{HashSet, VecDeque};

use sha2::{Digest, Sha256};

/// What [`Nonces::admit`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New: remembered until the window passes.
    Fresh,
    /// Seen within the window.
    Replayed,
    /// The window is full of live nonces.
    Full,
}

type Digest16 = [u8; 16];

/// Nonces seen within the last `window` seconds.
#[derive(Debug)]
pub struct Nonces {
    window: i64,
    capacity: usize,
    seen: HashSet<Digest16>,
    order: VecDeque<(i64, Digest16)>,
}

fn digest(nonce: &str) -> Digest16 {
    let full = Sha256::digest(nonce.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl Nonces {
    /// Remembers up to `capacity` nonces for `window` seconds.
    pub fn new(window: i64, capacity: usize) -> Self {
        Self { window, capacity, seen: HashSet::new(), order: VecDeque::new() }
    }

    /// Admits `nonce` (already namespaced by the caller, e.g. with the access key) at
    /// `now` (seconds).
    pub fn admit(&mut self, nonce: &str, now: i64) -> Admission {
        while let Some((at, _)) = self.order.front() {
            if *at + self.window > now {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let d = digest(nonce);
        if self.seen.contains(&d) {
            return Admission::Replayed;
        }
        if self.seen.len() >= self.capacity {
            return Admission::Full;
        }
        self.seen.insert(d);
        self.order.push_back((now, d));
        Admission::Fresh
    }

    /// Nonces remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_refused_within_the_window_only() {
        let mut n = Nonces::new(1800, 2);
        assert_eq!(n.admit("a", 0), Admission::Fresh);
        assert_eq!(n.admit("a", 1799), Admission::Replayed);
        assert_eq!(n.admit("b", 1799), Admission::Fresh);
        assert_eq!(n.admit("c", 1799), Admission::Full);
        assert_eq!(n.admit("a", 1800), Admission::Fresh, "the window passed");
        assert_eq!(n.len(), 2);
    }
}
