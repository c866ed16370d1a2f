//! Test support: a control plane over an in-memory store, with a fixed clock and seeded
//! randomness, so IDs and times are the same on every run. Used by this crate's planner
//! tests, the API's golden tests and the fuzz targets; nothing here touches a disk.

use rand::SeedableRng;
use tapwire_model::AccountId;
use tapwire_store::MemoryStore;

use crate::clock::Clock;
use crate::config::ControlConfig;
use crate::control::Control;
use crate::ops::{IdempotencyKey, RequestContext};

/// The time every [`FixedClock`] reports unless told otherwise (2026-11-18).
pub const FIXED_NOW: i64 = 1_795_000_000;

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Default for FixedClock {
    fn default() -> Self {
        Self(FIXED_NOW)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

/// A control plane over a fresh in-memory store, deterministic for `seed`.
pub fn control(seed: u64, config: ControlConfig) -> Control {
    let entropy = Box::new(rand::rngs::StdRng::seed_from_u64(seed));
    match Control::open(Box::new(MemoryStore::new()), Box::new(FixedClock::default()), entropy, config) {
        Ok(control) => control,
        // An empty in-memory store always loads.
        Err(e) => unreachable!("an empty memory store failed to load: {e}"),
    }
}

/// A request of the default account in `region`.
pub fn context(region: &str) -> RequestContext {
    RequestContext::system(AccountId::DEFAULT, region)
}

/// The same request with a ClientToken.
pub fn with_token(mut ctx: RequestContext, action: &'static str, token: &str, fingerprint: &str) -> RequestContext {
    ctx.idempotency = Some(IdempotencyKey { action, token: token.to_owned(), fingerprint: fingerprint.to_owned() });
    ctx
}
