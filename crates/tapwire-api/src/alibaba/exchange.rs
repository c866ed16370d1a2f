//! One Alibaba request in flight, below the handlers: the region, the envelope (DryRun,
//! ClientToken), the order parse → execute, and the service check of List calls.
//!
//! Handlers hand [`Exchange::write`] or [`Exchange::read`] their action's pure parser,
//! which runs before anything executes. Alibaba's gateway ignores parameters an action
//! does not take, so there is no unknown-parameter check here (unlike EC2).

use std::sync::Arc;

use tapwire_control::ops::{IdempotencyKey, Operation, Output, RequestContext};
use tapwire_control::{ApiError, Dialect, ErrorKind, State};
use tapwire_model::resource::Scope;

use super::params::Params;
use super::{Caller, Fields};
use crate::Api;
use crate::auth::{self, standing::WriteStanding};
use tapwire_control::audit::AuditContext;

/// Longest ClientToken Alibaba accepts.
const CLIENT_TOKEN_MAX_CHARS: usize = 64;

/// One request in flight.
pub struct Exchange<'a> {
    api: &'a Api,
    caller: &'a Caller,
    /// The action's name.
    action: &'static str,
    /// ClientToken namespace of the action (apart from EC2's actions of the same name).
    idempotency_scope: &'static str,
    params: &'a Params,
    request_id: &'a str,
}

impl<'a> Exchange<'a> {
    /// A request for `action`, whose ClientTokens live in `idempotency_scope`.
    pub fn new(
        api: &'a Api,
        caller: &'a Caller,
        action: &'static str,
        idempotency_scope: &'static str,
        params: &'a Params,
        request_id: &'a str,
    ) -> Self {
        Self { api, caller, action, idempotency_scope, params, request_id }
    }

    /// `region` if this server serves it.
    fn served(&self, region: &str) -> Result<String, ApiError> {
        if self.api.config.regions.contains(region) {
            return Ok(region.to_owned());
        }
        Err(ApiError::new(ErrorKind::UnknownRegion, format!("The region '{region}' is not one this server serves.")))
    }

    /// The region of a traffic-mirror action: `RegionId`, required.
    fn region(&self) -> Result<String, ApiError> {
        self.served(self.params.required("RegionId")?)
    }

    /// The region of a service action: `RegionId` if given, else the server's.
    fn service_region(&self) -> Result<String, ApiError> {
        self.served(self.params.non_empty("RegionId").unwrap_or(&self.api.config.region))
    }

    fn context(&self, region: String) -> Result<RequestContext, ApiError> {
        let token = self.params.non_empty("ClientToken");
        if let Some(t) = token
            && (t.chars().count() > CLIENT_TOKEN_MAX_CHARS || !t.is_ascii())
        {
            return Err(ApiError::invalid(format!(
                "The ClientToken must be at most {CLIENT_TOKEN_MAX_CHARS} ASCII characters."
            )));
        }
        // The key's policy is checked by the writer, on the state the write lands on.
        let scope = Scope { account: self.caller.account, region: region.clone() };
        let standing = WriteStanding::new(&self.caller.who, self.policy_action(), Dialect::Alibaba, scope);
        Ok(RequestContext {
            account: self.caller.account,
            region,
            dry_run: self.params.flag("DryRun")?.unwrap_or(false),
            idempotency: token.map(|token| IdempotencyKey {
                action: self.idempotency_scope,
                token: token.to_owned(),
                fingerprint: self.params.fingerprint(),
            }),
            audit: Some(AuditContext {
                access_key: self.caller.who.key_id.clone(),
                source: self.caller.source.clone(),
                dialect: "alibaba",
                action: self.action,
                request_id: self.request_id.to_owned(),
            }),
            standing: Some(Arc::new(standing)),
        })
    }

    /// The policy name of this action.
    fn policy_action(&self) -> String {
        format!("vpc:{}", self.action)
    }

    /// Notes a refused write or a denied action in the audit trail.
    fn note(&self, err: &ApiError) {
        crate::query::refusal(
            &self.api.control,
            (&self.caller.who).into(),
            self.caller.source.as_deref(),
            "alibaba",
            self.action,
            super::error_code(&err.kind),
            self.request_id,
        );
    }

    /// Runs a write in the request's region: the envelope, the parser, the key's policy,
    /// the operation. A refusal is noted in the audit trail.
    pub fn write(&self, parse: fn(&Params) -> Result<Operation, ApiError>) -> Result<Output, ApiError> {
        let result = self.region().and_then(|region| {
            let ctx = self.context(region)?;
            let op = parse(self.params)?;
            self.api.control.execute(&ctx, Dialect::Alibaba, op)
        });
        if let Err(e) = &result
            && e.kind != ErrorKind::DryRunOperation
        {
            self.note(e);
        }
        result
    }

    /// Runs a write whose answer carries nothing but the `RequestId`.
    pub fn write_empty(&self, parse: fn(&Params) -> Result<Operation, ApiError>) -> Result<Fields, ApiError> {
        self.write(parse).map(|_| Fields::new())
    }

    /// Runs a service action (`RegionId` optional).
    pub fn write_service(&self, op: Operation) -> Result<Output, ApiError> {
        let result = self.service_region().and_then(|region| {
            let ctx = self.context(region)?;
            self.api.control.execute(&ctx, Dialect::Alibaba, op)
        });
        if let Err(e) = &result
            && e.kind != ErrorKind::DryRunOperation
        {
            self.note(e);
        }
        result
    }

    /// Checks the key's policy for a read (which names no resource).
    pub fn authorize_read(&self) -> Result<(), ApiError> {
        auth::authorize(&self.caller.who, &self.policy_action(), &[]).inspect_err(|e| self.note(e))
    }

    /// The scope of a service action.
    pub fn service_scope(&self) -> Result<Scope, ApiError> {
        Ok(Scope { account: self.caller.account, region: self.service_region()? })
    }

    /// Prepares a List call: the parser, then a snapshot, once the service is known to be
    /// open in the region.
    pub fn read<T>(&self, parse: fn(&Params) -> Result<T, ApiError>) -> Result<(T, Arc<State>, Scope), ApiError> {
        let scope = Scope { account: self.caller.account, region: self.region()? };
        let request = parse(self.params)?;
        self.authorize_read()?;
        let state = self.api.control.read();
        if !state.service_open(&scope) {
            return Err(ApiError::new(
                ErrorKind::OptInRequired,
                format!(
                    "The traffic mirror service is not opened in region {}; call OpenTrafficMirrorService first.",
                    scope.region
                ),
            ));
        }
        Ok((request, state, scope))
    }

    /// A snapshot of the state.
    pub fn state(&self) -> Arc<State> {
        self.api.control.read()
    }
}
