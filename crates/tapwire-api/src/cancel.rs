//! Cancellation of a request's work when its client goes.
//!
//! The dialects run on blocking threads; when the client hangs up, hyper drops the
//! request's future, and with it a [`CancelOnDrop`] guard that raises the flag the work
//! checks (EC2 Describe checks it as it walks the items it filters). A guard dropped after
//! the work is done raises a flag nobody reads any more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag raised when the request's client is gone.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the client is gone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that raises the flag when dropped.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Raises its [`Cancel`] when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::Relaxed);
    }
}
