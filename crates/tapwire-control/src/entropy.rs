//! Randomness for IDs and VNIs, injected so tests can seed it.

/// A source of random bytes.
pub trait Entropy: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<R: rand::RngCore + Send> Entropy for R {
    fn fill(&mut self, buf: &mut [u8]) {
        self.fill_bytes(buf);
    }
}
