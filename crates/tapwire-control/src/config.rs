//! Settings of the control logic.

use tapwire_model::limits::Quotas;

/// Settings of the control logic.
#[derive(Debug, Clone, Default)]
pub struct ControlConfig {
    /// Quotas.
    pub quotas: Quotas,
}
