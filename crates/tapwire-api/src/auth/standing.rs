//! A write's caller, checked again by the writer on the state the write is planned
//! against ([`tapwire_control::ops::Standing`]): the key still there, and its policy
//! allowing the action on the resources as they are in that state.
//!
//! The door checks the signature on this replica's state as it was; on a shared store a
//! write does not wait to catch up first (its commit's revision check does that job), so
//! what another replica changed a moment earlier, a key deleted or a tag that a policy
//! condition reads, is seen only here. A read catches up before the door instead.
//! Tapwire's own endpoints catch up before every request; their writes check the key
//! again here too, so one deleted between that catch-up and the commit does not write.

use tapwire_control::ops::{Operation, Standing};
use tapwire_control::{ApiError, Dialect, ErrorKind, State};
use tapwire_model::resource::Scope;

use super::{Identity, authorize, resources};

/// What one write's caller must still hold.
#[derive(Debug)]
pub struct WriteStanding {
    who: Identity,
    /// The policy decision to make again; `None` for tapwire's own actions, which a
    /// policy allows or not as a whole and which the door has decided for good (the
    /// state cannot change that answer).
    policy: Option<PolicyCheck>,
}

/// A cloud action whose policy decision reads the resources as they are in the state.
#[derive(Debug)]
struct PolicyCheck {
    /// The action as the policy names it (`ec2:CreateTrafficMirrorFilter`).
    action: String,
    dialect: Dialect,
    scope: Scope,
}

impl WriteStanding {
    /// The standing `who` needs to make `policy_action` in `scope`.
    pub fn new(who: &Identity, policy_action: String, dialect: Dialect, scope: Scope) -> Self {
        Self { who: who.clone(), policy: Some(PolicyCheck { action: policy_action, dialect, scope }) }
    }

    /// The standing `who` needs for one of tapwire's own writes: the key still there.
    pub fn own(who: &Identity) -> Self {
        Self { who: who.clone(), policy: None }
    }
}

impl Standing for WriteStanding {
    fn check(&self, state: &State, op: &Operation) -> Result<(), ApiError> {
        if let Some(key_id) = &self.who.key_id
            && state.access_keys.get(key_id).is_none_or(|key| key.account != self.who.account)
        {
            return Err(ApiError::new(ErrorKind::AuthFailure, super::UNKNOWN_KEY));
        }
        match &self.policy {
            Some(check) if self.who.policy.is_some() => {
                authorize(&self.who, &check.action, &resources::of(op, state, check.dialect, &check.scope))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tapwire_auth::policy::Policy;
    use tapwire_control::config::ControlConfig;
    use tapwire_control::testing;
    use tapwire_model::AccountId;

    use super::*;

    const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

    #[test]
    fn an_own_write_stands_while_its_key_is_there() {
        let control = testing::control(7, ControlConfig::default());
        let ctx = testing::context("us-east-1");
        for (name, root) in [("root", true), ("ops", false)] {
            control.execute(&ctx, Dialect::Tapwire, Operation::CreateAccount { name: name.into(), root }).unwrap();
        }
        let account = control.read().accounts.values().find(|a| !a.root).map(|a| a.id).unwrap();
        let key_id = "TWAKSTANDINGTEST0001".to_owned();
        let create = Operation::CreateAccessKey {
            account,
            key_id: key_id.clone(),
            sealed_secret: "sealed".into(),
            policy: None,
        };
        control.execute(&ctx, Dialect::Tapwire, create).unwrap();
        let who = Identity {
            account,
            root: false,
            key_id: Some(key_id.clone()),
            // The door has decided the policy already; the writer does not decide it again.
            policy: Some(Arc::new(Policy::parse(DENY_ALL).unwrap())),
            agent_host: None,
        };
        let write = Operation::DeleteJoinToken("TWJTNONE".into());
        assert!(WriteStanding::own(&who).check(&control.read(), &write).is_ok());

        control.execute(&ctx, Dialect::Tapwire, Operation::DeleteAccessKey(key_id)).unwrap();
        let refused = WriteStanding::own(&who).check(&control.read(), &write).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::AuthFailure);
        let other_account = Identity { account: AccountId::new(9).unwrap(), ..who };
        assert!(WriteStanding::own(&other_account).check(&control.read(), &write).is_err());
    }
}
