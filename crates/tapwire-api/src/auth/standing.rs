//! A write's caller, checked again by the writer on the state the write is planned
//! against ([`tapwire_control::ops::Standing`]): the key still there, and its policy
//! allowing the action on the resources as they are in that state.
//!
//! The door checks the signature on this replica's state as it was; on a shared store a
//! write does not wait to catch up first (its commit's revision check does that job), so
//! what another replica changed a moment earlier, a key deleted or a tag that a policy
//! condition reads, is seen only here. A read catches up before the door instead.

use tapwire_control::ops::{Operation, Standing};
use tapwire_control::{ApiError, Dialect, ErrorKind, State};
use tapwire_model::resource::Scope;

use super::{Identity, authorize, resources};

/// What one write's caller must still hold.
#[derive(Debug)]
pub struct WriteStanding {
    who: Identity,
    /// The action as the policy names it (`ec2:CreateTrafficMirrorFilter`).
    policy_action: String,
    dialect: Dialect,
    scope: Scope,
}

impl WriteStanding {
    /// The standing `who` needs to make `policy_action` in `scope`.
    pub fn new(who: &Identity, policy_action: String, dialect: Dialect, scope: Scope) -> Self {
        Self { who: who.clone(), policy_action, dialect, scope }
    }
}

impl Standing for WriteStanding {
    fn check(&self, state: &State, op: &Operation) -> Result<(), ApiError> {
        if let Some(key_id) = &self.who.key_id
            && state.access_keys.get(key_id).is_none_or(|key| key.account != self.who.account)
        {
            return Err(ApiError::new(ErrorKind::AuthFailure, super::UNKNOWN_KEY));
        }
        if self.who.policy.is_none() {
            return Ok(());
        }
        authorize(&self.who, &self.policy_action, &resources::of(op, state, self.dialect, &self.scope))
    }
}
