//! Token buckets: a rate and a burst, refilled by the time the caller passes in.

/// A token bucket.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: f64,
}

/// Rate and burst of a kind of bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_second: f64,
    /// Most tokens a bucket holds.
    pub burst: f64,
}

impl Bucket {
    /// A full bucket at time `now` (seconds).
    pub fn full(rate: Rate, now: f64) -> Self {
        Self { tokens: rate.burst, last: now }
    }

    /// Takes one token at time `now`, if there is one.
    pub fn take(&mut self, rate: Rate, now: f64) -> bool {
        let elapsed = (now - self.last).max(0.0);
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When (seconds from `now`) the next token will be there.
    pub fn wait(&self, rate: Rate) -> f64 {
        if self.tokens >= 1.0 || rate.per_second <= 0.0 { 0.0 } else { (1.0 - self.tokens) / rate.per_second }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let rate = Rate { per_second: 10.0, burst: 3.0 };
        let mut b = Bucket::full(rate, 0.0);
        assert!(b.take(rate, 0.0) && b.take(rate, 0.0) && b.take(rate, 0.0));
        assert!(!b.take(rate, 0.0));
        assert!((b.wait(rate) - 0.1).abs() < 1e-9);
        assert!(b.take(rate, 0.1));
        assert!(!b.take(rate, 0.1));
        assert!(b.take(rate, 10.0) && b.take(rate, 10.0) && b.take(rate, 10.0) && !b.take(rate, 10.0));
    }
}
