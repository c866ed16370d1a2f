//! Settings of the control logic.

use tapwire_model::limits::Quotas;

/// Settings of the control logic.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Quotas.
    pub quotas: Quotas,
    /// How long a ClientToken's answer is kept, in seconds; a token reused later starts a
    /// new request. EC2 keeps tokens for at least a day.
    pub client_token_ttl: i64,
}

/// ClientTokens are kept a day.
pub const DEFAULT_CLIENT_TOKEN_TTL: i64 = 24 * 60 * 60;

impl Default for ControlConfig {
    fn default() -> Self {
        Self { quotas: Quotas::default(), client_token_ttl: DEFAULT_CLIENT_TOKEN_TTL }
    }
}
