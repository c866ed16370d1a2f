//! Settings of the control logic.

use std::time::Duration;

use tapwire_model::limits::Quotas;

/// Settings of the control logic.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Quotas.
    pub quotas: Quotas,
    /// How long a ClientToken's answer is kept, in seconds; a token reused later starts a
    /// new request. EC2 keeps tokens for at least a day.
    pub client_token_ttl: i64,
    /// On a shared store, how long after a lost commit race this replica takes the
    /// store's writer lock before planning each batch (a replica writing alone takes
    /// none).
    pub contended_for: Duration,
}

/// ClientTokens are kept a day.
pub const DEFAULT_CLIENT_TOKEN_TTL: i64 = 24 * 60 * 60;

/// Replicas that raced take turns under the writer lock for a second.
pub const DEFAULT_CONTENDED_FOR: Duration = Duration::from_secs(1);

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            quotas: Quotas::default(),
            client_token_ttl: DEFAULT_CLIENT_TOKEN_TTL,
            contended_for: DEFAULT_CONTENDED_FOR,
        }
    }
}
