//! One EC2 request in flight, below the handlers: the envelope (DryRun, ClientToken), the
//! order parse → check for unknown parameters → execute, and the response document.
//!
//! Handlers never see the parameters: they hand [`Exchange::write`] or [`Exchange::read`]
//! their action's pure parser, which runs first; any key the parser did not read is then
//! `UnknownParameter`, before anything executes. A handler can only render what came back.

use std::sync::Arc;

use tapwire_control::ops::{IdempotencyKey, Operation, Output, RequestContext};
use tapwire_control::{ApiError, Control, Dialect, ErrorKind, State};
use tapwire_model::resource::Scope;

use super::Caller;
use super::params::Params;
use super::xml::Xml;
use crate::auth::{self, standing::WriteStanding};
use crate::cancel::Cancel;
use tapwire_control::audit::AuditContext;

/// Whether an action takes a ClientToken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Create actions: a ClientToken makes a retry return the first answer.
    Idempotent,
    /// Everything else.
    None,
}

/// One request in flight.
pub struct Exchange<'a> {
    control: &'a Control,
    caller: &'a Caller,
    action: &'static str,
    params: &'a Params,
    request_id: &'a str,
    cancel: &'a Cancel,
}

/// Longest ClientToken EC2 accepts, in ASCII characters.
pub const CLIENT_TOKEN_MAX_CHARS: usize = 64;

impl<'a> Exchange<'a> {
    /// A request for `action` (one of the dispatch table's names).
    pub fn new(
        control: &'a Control,
        caller: &'a Caller,
        action: &'static str,
        params: &'a Params,
        request_id: &'a str,
        cancel: &'a Cancel,
    ) -> Self {
        Self { control, caller, action, params, request_id, cancel }
    }

    /// Raised when the client is gone; long reads check it.
    pub fn cancel(&self) -> &Cancel {
        self.cancel
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        Ok(self.params.flag("DryRun")?.unwrap_or(false))
    }

    fn client_token(&self) -> Option<&str> {
        self.params.get("ClientToken").filter(|t| !t.is_empty())
    }

    fn context(&self, token: Token) -> Result<RequestContext, ApiError> {
        if let Some(t) = self.client_token()
            && (t.len() > CLIENT_TOKEN_MAX_CHARS || !t.is_ascii())
        {
            return Err(ApiError::invalid(format!(
                "The ClientToken must be at most {CLIENT_TOKEN_MAX_CHARS} ASCII characters."
            )));
        }
        let idempotency = match token {
            Token::Idempotent => self.client_token().map(|token| IdempotencyKey {
                action: self.action,
                token: token.to_owned(),
                fingerprint: self.params.fingerprint(),
            }),
            Token::None => None,
        };
        // The key's policy is checked by the writer, on the state the write lands on.
        let scope = Scope { account: self.caller.account, region: self.caller.region.clone() };
        let standing = WriteStanding::new(&self.caller.who, self.policy_action(), Dialect::Ec2, scope);
        Ok(RequestContext {
            account: self.caller.account,
            region: self.caller.region.clone(),
            dry_run: self.dry_run()?,
            idempotency,
            audit: Some(AuditContext {
                access_key: self.caller.who.key_id.clone(),
                source: self.caller.source.clone(),
                dialect: "ec2",
                action: self.action,
                request_id: self.request_id.to_owned(),
            }),
            standing: Some(Arc::new(standing)),
        })
    }

    /// The policy name of this action.
    fn policy_action(&self) -> String {
        format!("ec2:{}", self.action)
    }

    /// Notes a refused write or a denied action in the audit trail.
    fn note(&self, err: &ApiError) {
        crate::query::refusal(
            self.control,
            (&self.caller.who).into(),
            self.caller.source.as_deref(),
            "ec2",
            self.action,
            super::error_code(&err.kind),
            self.request_id,
        );
    }

    /// Runs a write: the envelope, the action's parser, the unknown-parameter check, the
    /// key's policy, then the operation. A refusal is noted in the audit trail.
    pub fn write(&self, parse: fn(&Params) -> Result<Operation, ApiError>, token: Token) -> Result<Output, ApiError> {
        let result = self.checked_write(parse, token);
        if let Err(e) = &result
            && e.kind != ErrorKind::DryRunOperation
        {
            self.note(e);
        }
        result
    }

    fn checked_write(
        &self,
        parse: fn(&Params) -> Result<Operation, ApiError>,
        token: Token,
    ) -> Result<Output, ApiError> {
        let ctx = self.context(token)?;
        let op = parse(self.params)?;
        self.params.finish()?;
        self.control.execute(&ctx, Dialect::Ec2, op)
    }

    /// Prepares a read: the envelope, the action's parser, the unknown-parameter check,
    /// the key's policy, DryRun; then a snapshot of the state.
    pub fn read<T>(&self, parse: fn(&Params) -> Result<T, ApiError>) -> Result<(T, Arc<State>), ApiError> {
        let dry_run = self.dry_run()?;
        let request = parse(self.params)?;
        self.params.finish()?;
        if let Err(e) = auth::authorize(&self.caller.who, &self.policy_action(), &[]) {
            self.note(&e);
            return Err(e);
        }
        if dry_run {
            return Err(ApiError::new(
                ErrorKind::DryRunOperation,
                "Request would have succeeded, but DryRun flag is set.",
            ));
        }
        Ok((request, self.control.read()))
    }

    /// The current state, for rendering what a write returned.
    pub fn state(&self) -> Arc<State> {
        self.control.read()
    }

    /// The success document: `body` inside `<{Action}Response>`.
    pub fn respond(&self, body: impl FnOnce(&mut Xml)) -> String {
        Xml::response(self.action, self.request_id, body)
    }

    /// A create's document: `body`, then the echoed `clientToken`.
    pub fn respond_created(&self, body: impl FnOnce(&mut Xml)) -> String {
        let token = self.client_token();
        self.respond(|x| {
            body(x);
            x.opt("clientToken", token);
        })
    }

    /// Whether `scope` is the caller's account and region.
    pub fn in_scope(&self, scope: &Scope) -> bool {
        scope.account == self.caller.account && scope.region == self.caller.region
    }

    /// The caller.
    pub fn caller(&self) -> &Caller {
        self.caller
    }
}
