//! Agents: join tokens, the exchange of a token for a host-bound credential, revocation.
//!
//! - A token is drawn by the API (ID, secret) and stored with its secret hashed; the
//!   planner checks what needs the state: the account's live tokens are bounded, the
//!   life and use count within their limits.
//! - Enrollment checks the presented secret's hash before anything else (so only a
//!   holder of the secret learns whether the token expired or is used up), then expiry,
//!   uses and the host binding; it uses the token up by one, and replaces any earlier
//!   credential of the host (an agent that lost its state enrolls again).
//! - Revocation deletes a host's credentials; the API closes their long polls.

use tapwire_model::identity::{AccessKey, JoinToken};
use tapwire_model::limits;

use super::Planner;
use crate::error::{ApiError, ErrorKind, ResourceKind};
use crate::ops::Output;
use crate::state::Change;

/// Whether `host` is a name an agent may carry: 1–253 characters, no controls or spaces.
fn valid_host(host: &str) -> bool {
    let n = host.chars().count();
    (1..=limits::HOST_NAME_MAX_CHARS).contains(&n) && host.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorKind::AuthFailure, message)
}

impl Planner<'_> {
    pub(super) fn create_join_token(&mut self, token: JoinToken) -> Result<Output, ApiError> {
        if token.account != self.ctx.account {
            return Err(ApiError::internal("a join token of another account"));
        }
        if let Some(host) = &token.host
            && !valid_host(host)
        {
            return Err(ApiError::invalid("A host name must be 1 to 253 printable characters without spaces."));
        }
        let ttl = token.expires_at - self.now;
        if ttl <= 0 || ttl > limits::JOIN_TOKEN_MAX_TTL {
            return Err(ApiError::invalid(format!(
                "A join token lives from 1 second to {} days.",
                limits::JOIN_TOKEN_MAX_TTL / 86_400
            )));
        }
        if token.uses_left == 0 || token.uses_left > limits::JOIN_TOKEN_MAX_USES {
            return Err(ApiError::invalid(format!(
                "A join token allows 1 to {} enrollments.",
                limits::JOIN_TOKEN_MAX_USES
            )));
        }
        let live =
            self.state.join_tokens.values().filter(|t| t.account == token.account && t.expires_at > self.now).count();
        if live >= limits::JOIN_TOKENS_PER_ACCOUNT {
            return Err(ApiError::invalid(format!(
                "An account can have at most {} live join tokens.",
                limits::JOIN_TOKENS_PER_ACCOUNT
            )));
        }
        // Expired tokens of the account go as a new one comes: the map stays bounded.
        for old in self.state.join_tokens.values().filter(|t| t.account == token.account && t.expires_at <= self.now) {
            self.changes.push(Change::DeleteJoinToken(old.id.clone()));
        }
        self.changes.push(Change::PutJoinToken(token.clone()));
        Ok(Output::JoinToken(token))
    }

    pub(super) fn delete_join_token(&mut self, id: String) -> Result<Output, ApiError> {
        match self.state.join_tokens.get(&id) {
            Some(t) if t.account == self.ctx.account => {
                self.changes.push(Change::DeleteJoinToken(id.clone()));
                Ok(Output::Deleted(id))
            }
            _ => Err(ApiError::not_found(ResourceKind::JoinToken, &id)),
        }
    }

    pub(super) fn enroll_agent(
        &mut self,
        token_id: String,
        presented_hash: String,
        host: String,
        key_id: String,
        sealed_secret: String,
    ) -> Result<Output, ApiError> {
        let token = match self.state.join_tokens.get(&token_id) {
            Some(t) if constant_time_eq(&t.secret_hash, &presented_hash) => t.clone(),
            _ => return Err(refused("The join token is not valid.")),
        };
        if token.expires_at <= self.now {
            return Err(refused("The join token has expired."));
        }
        if token.uses_left == 0 {
            return Err(refused("The join token has been used up."));
        }
        if !valid_host(&host) {
            return Err(ApiError::invalid("A host name must be 1 to 253 printable characters without spaces."));
        }
        if let Some(bound) = &token.host
            && *bound != host
        {
            return Err(refused(&format!("The join token is for host '{bound}', not '{host}'.")));
        }
        let account = token.account;
        let earlier: Vec<String> = self.state.agent_keys_of(account, &host).map(|k| k.id.clone()).collect();
        let agents = self.state.access_keys_of(account).filter(|k| k.agent_host.is_some()).count();
        if earlier.is_empty() && agents >= limits::AGENT_CREDENTIALS_PER_ACCOUNT {
            return Err(ApiError::invalid(format!(
                "An account can have at most {} enrolled agents.",
                limits::AGENT_CREDENTIALS_PER_ACCOUNT
            )));
        }
        if self.state.access_keys.contains_key(&key_id) {
            return Err(ApiError::invalid(format!("The access key '{key_id}' already exists.")));
        }
        for id in earlier {
            self.changes.push(Change::DeleteAccessKey(id));
        }
        let mut spent = token;
        spent.uses_left -= 1;
        self.changes.push(if spent.uses_left == 0 {
            Change::DeleteJoinToken(spent.id.clone())
        } else {
            Change::PutJoinToken(spent)
        });
        let key = AccessKey {
            id: key_id,
            account,
            sealed_secret,
            policy: None,
            created_at: self.now,
            agent_host: Some(host),
        };
        self.changes.push(Change::PutAccessKey(key.clone()));
        Ok(Output::AccessKey(key))
    }

    pub(super) fn revoke_agent(&mut self, host: String) -> Result<Output, ApiError> {
        let keys: Vec<String> = self.state.agent_keys_of(self.ctx.account, &host).map(|k| k.id.clone()).collect();
        if keys.is_empty() {
            return Err(ApiError::not_found(ResourceKind::Agent, &host));
        }
        for id in keys {
            self.changes.push(Change::DeleteAccessKey(id));
        }
        Ok(Output::Deleted(host))
    }
}
