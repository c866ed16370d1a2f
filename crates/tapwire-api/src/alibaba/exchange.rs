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

/// Longest ClientToken Alibaba accepts.
const CLIENT_TOKEN_MAX_CHARS: usize = 64;

/// One request in flight.
pub struct Exchange<'a> {
    api: &'a Api,
    caller: &'a Caller,
    /// ClientToken namespace of the action (apart from EC2's actions of the same name).
    idempotency_scope: &'static str,
    params: &'a Params,
}

impl<'a> Exchange<'a> {
    /// A request whose ClientTokens live in `idempotency_scope`.
    pub fn new(api: &'a Api, caller: &'a Caller, idempotency_scope: &'static str, params: &'a Params) -> Self {
        Self { api, caller, idempotency_scope, params }
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
        Ok(RequestContext {
            account: self.caller.account,
            region,
            dry_run: self.params.flag("DryRun")?.unwrap_or(false),
            idempotency: token.map(|token| IdempotencyKey {
                action: self.idempotency_scope,
                token: token.to_owned(),
                fingerprint: self.params.fingerprint(),
            }),
        })
    }

    /// Runs a write in the request's region: the envelope, the parser, the operation.
    pub fn write(&self, parse: fn(&Params) -> Result<Operation, ApiError>) -> Result<Output, ApiError> {
        let ctx = self.context(self.region()?)?;
        let op = parse(self.params)?;
        self.api.control.execute(&ctx, Dialect::Alibaba, op)
    }

    /// Runs a write whose answer carries nothing but the `RequestId`.
    pub fn write_empty(&self, parse: fn(&Params) -> Result<Operation, ApiError>) -> Result<Fields, ApiError> {
        self.write(parse).map(|_| Fields::new())
    }

    /// Runs a service action (`RegionId` optional).
    pub fn write_service(&self, op: Operation) -> Result<Output, ApiError> {
        let ctx = self.context(self.service_region()?)?;
        self.api.control.execute(&ctx, Dialect::Alibaba, op)
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
