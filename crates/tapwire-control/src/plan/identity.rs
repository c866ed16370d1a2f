//! Accounts and access keys: made and deleted through the same plan → commit path as
//! every resource, so they are durable and audited like any write.
//!
//! The planner trusts the API for what it drew (key IDs, sealed secrets) and checked
//! (policy documents); it checks what needs the state: names unique, one root account,
//! bounded counts, and never deleting the root account's last key (which would lock the
//! installation out).

use tapwire_model::identity::{AccessKey, Account};
use tapwire_model::ids::AccountId;
use tapwire_model::limits;

use super::Planner;
use crate::error::{ApiError, ErrorKind, ResourceKind};
use crate::ops::Output;
use crate::state::Change;

impl Planner<'_> {
    pub(super) fn create_account(&mut self, name: String, root: bool) -> Result<Output, ApiError> {
        let len = name.chars().count();
        if len == 0 || len > limits::ACCOUNT_NAME_MAX_CHARS {
            return Err(ApiError::invalid(format!(
                "An account name must be 1 to {} characters long.",
                limits::ACCOUNT_NAME_MAX_CHARS
            )));
        }
        if self.state.accounts.values().any(|a| a.name == name) {
            return Err(ApiError::invalid(format!("An account named '{name}' already exists.")));
        }
        if self.state.accounts.len() >= limits::MAX_ACCOUNTS {
            return Err(ApiError::invalid(format!(
                "An installation can have at most {} accounts.",
                limits::MAX_ACCOUNTS
            )));
        }
        let id = match (root, self.state.root_account()) {
            (true, Some(r)) => {
                return Err(ApiError::invalid(format!("The root account already exists ({}).", r.id)));
            }
            // The root owns whatever was made before accounts existed.
            (true, None) => AccountId::DEFAULT,
            (false, _) => self.fresh_account_id(),
        };
        let account = Account { id, name, root, created_at: self.now };
        self.changes.push(Change::PutAccount(account.clone()));
        Ok(Output::Account(account))
    }

    pub(super) fn create_access_key(
        &mut self,
        account: AccountId,
        key_id: String,
        sealed_secret: String,
        policy: Option<String>,
    ) -> Result<Output, ApiError> {
        if !self.state.accounts.contains_key(&account) {
            return Err(ApiError::not_found(ResourceKind::Account, &account.to_string()));
        }
        if self.state.access_keys.contains_key(&key_id) {
            return Err(ApiError::invalid(format!("The access key '{key_id}' already exists.")));
        }
        if self.state.access_keys_of(account).filter(|k| k.agent_host.is_none()).count()
            >= limits::ACCESS_KEYS_PER_ACCOUNT
        {
            return Err(ApiError::invalid(format!(
                "An account can have at most {} access keys.",
                limits::ACCESS_KEYS_PER_ACCOUNT
            )));
        }
        let key = AccessKey { id: key_id, account, sealed_secret, policy, created_at: self.now, agent_host: None };
        self.changes.push(Change::PutAccessKey(key.clone()));
        Ok(Output::AccessKey(key))
    }

    pub(super) fn delete_access_key(&mut self, key_id: String) -> Result<Output, ApiError> {
        let key =
            self.state.access_keys.get(&key_id).ok_or_else(|| ApiError::not_found(ResourceKind::AccessKey, &key_id))?;
        let root = self.state.accounts.get(&key.account).is_some_and(|a| a.root);
        if root && self.state.access_keys_of(key.account).count() == 1 {
            return Err(ApiError::new(
                ErrorKind::InvalidParameterValue,
                "This is the root account's last access key; make another one before deleting it.",
            ));
        }
        self.changes.push(Change::DeleteAccessKey(key_id.clone()));
        Ok(Output::Deleted(key_id))
    }

    /// A random 12-digit account ID that no account has (and not the root's).
    fn fresh_account_id(&mut self) -> AccountId {
        loop {
            let mut b = [0u8; 8];
            self.entropy.fill(&mut b);
            let n = u64::from_be_bytes(b) % 1_000_000_000_000;
            if let Some(id) = AccountId::new(n)
                && n >= 100_000_000_000
                && id != AccountId::DEFAULT
                && !self.state.accounts.contains_key(&id)
            {
                return id;
            }
        }
    }
}
