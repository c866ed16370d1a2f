//! Who is calling, checked at the door before any action is parsed.
//!
//! - EC2 (and tapwire's own endpoints, service `tapwire`): AWS SigV4 in the header or a
//!   presigned query; the signed region is the region the request addresses; more than 15
//!   minutes of skew is `RequestExpired`.
//! - Alibaba: V1 (HMAC-SHA1 parameters) or ACS3 (`Authorization` header); the timestamp
//!   within 15 minutes, the nonce never seen within that window.
//! - The key's secret is unsealed with the master key only to check the signature.
//! - Then the key's token bucket ([`Authenticator::throttle`]), and, once the operation is
//!   parsed, its policy ([`authorize`]): a read's here, a write's by the writer, on the
//!   state it is planned against, with the key checked again there ([`standing`]).
//!
//! An unknown or deleted key is `AuthFailure` and a wrong signature
//! `SignatureDoesNotMatch`, however the request is otherwise formed; nothing of the
//! request is acted on before the signature holds. `--auth none` (loopback listeners
//! only) makes every caller the root account.

pub mod resources;
pub mod standing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderMap;
use tapwire_auth::acs::{self, AcsError};
use tapwire_auth::bucket::{Bucket, Rate};
use tapwire_auth::nonces::{Admission, Nonces};
use tapwire_auth::policy::{Decision, Policy, Resource};
use tapwire_auth::seal::SecretBox;
use tapwire_auth::sigv4::{self, SigV4Error};
use tapwire_control::{ApiError, ErrorKind, State};
use tapwire_model::AccountId;
use tapwire_model::identity::AccessKey;

use crate::query::By;

/// A rate no caller reaches (authentication off, tests).
pub const UNLIMITED: Rate = Rate { per_second: 1e12, burst: 1e12 };
/// The default rate of each access key: 100 requests a second, bursts of 200.
pub const DEFAULT_RATE: Rate = Rate { per_second: 100.0, burst: 200.0 };

/// Enrollments per second across all callers, and their burst.
pub const ENROLL_RATE: Rate = Rate { per_second: 20.0, burst: 50.0 };

/// The refusal of a key that does not exist (or no longer does).
pub(crate) const UNKNOWN_KEY: &str = "The access key ID is not known to this server (or has been deleted).";

/// Largest skew between a request's time and the server's, in seconds.
pub const MAX_SKEW: i64 = 15 * 60;
/// Longest claimed key ID the audit trail keeps of a refused request.
pub const CLAIMED_KEY_MAX: usize = 64;
/// Most Alibaba nonces remembered within the window (16 bytes each, about 50 MB in all):
/// a key's nonces are bounded by its rate, since the bucket is drawn from first.
pub const NONCE_CAPACITY: usize = 1_000_000;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Every request is signed by a known key.
    Verify(Box<SecretBox>),
    /// Nobody is checked; every caller is the root account (loopback only).
    Open,
}

/// Who a verified request comes from.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The key's account.
    pub account: AccountId,
    /// Whether that is the root account.
    pub root: bool,
    /// The key, unless authentication is off.
    pub key_id: Option<String>,
    /// The key's policy; `None` = all the account may do.
    pub policy: Option<Arc<Policy>>,
    /// An agent credential's host: such a caller may only register that host's
    /// interfaces, read their configuration and report their status.
    pub agent_host: Option<String>,
}

impl Identity {
    /// The identity every caller has with authentication off.
    pub fn open_root() -> Self {
        Self { account: AccountId::DEFAULT, root: true, key_id: None, policy: None, agent_host: None }
    }
}

/// The parts of a request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as sent.
    pub path: &'a str,
    /// Query-string parameters.
    pub query: &'a [(String, String)],
    /// Query and body parameters together.
    pub params: &'a [(String, String)],
    /// Headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

impl Signed<'_> {
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The door's authentication: the mode, the replay window and the buckets.
#[derive(Debug)]
pub struct Authenticator {
    mode: Mode,
    rate: Rate,
    nonces: Mutex<Nonces>,
    buckets: Mutex<HashMap<String, Bucket>>,
    policies: Mutex<HashMap<String, (String, Arc<Policy>)>>,
    throttled: AtomicU64,
    /// Enrollments (unsigned: the join token is the credential) share one bucket.
    enrollments: Mutex<Option<Bucket>>,
    /// Alibaba requests signed before this are refused: their nonces were seen, if ever,
    /// by a process whose memory is gone.
    started_at: i64,
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, message)
}

/// Seconds since the epoch of a SigV4 `YYYYMMDDTHHMMSSZ`.
fn amz_time(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(text, format).ok().map(|t| t.assume_utc().unix_timestamp())
}

/// Seconds since the epoch of an ISO 8601 UTC time (`2026-12-01T12:00:00Z`).
fn iso_time(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

impl Authenticator {
    /// An authenticator; `rate` bounds each key's requests.
    pub fn new(mode: Mode, rate: Rate) -> Self {
        Self {
            mode,
            rate,
            // A timestamp is acceptable MAX_SKEW either side of the clock: its nonce must be
            // kept twice that long after it is first seen.
            nonces: Mutex::new(Nonces::new(2 * MAX_SKEW, NONCE_CAPACITY)),
            started_at: i64::MIN,
            buckets: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            throttled: AtomicU64::new(0),
            enrollments: Mutex::new(None),
        }
    }

    /// Refuses Alibaba requests signed before `at` (the process's start): a restart
    /// forgets the nonces it saw, so older requests could otherwise be replayed.
    pub fn started_at(mut self, at: i64) -> Self {
        self.started_at = at;
        self
    }

    /// Whether every caller is checked.
    pub fn verifies(&self) -> bool {
        matches!(self.mode, Mode::Verify(_))
    }

    /// The master key, when authentication is on.
    pub fn secret_box(&self) -> Option<&SecretBox> {
        match &self.mode {
            Mode::Verify(b) => Some(b),
            Mode::Open => None,
        }
    }

    /// Whether the master key opens the stored secrets (one is tried): a wrong or
    /// replaced master key must stop the server at start, not fail every request.
    pub fn check_master_key(&self, state: &State) -> Result<(), String> {
        let (Mode::Verify(secrets), Some(key)) = (&self.mode, state.access_keys.values().next()) else { return Ok(()) };
        secrets.open(&key.id, &key.sealed_secret).map(drop).map_err(|_| {
            format!(
                "the master key does not open the secret of access key {}: is it the key this store was made with?",
                key.id
            )
        })
    }

    /// The identity of a known key.
    fn identity(&self, state: &State, key: &AccessKey) -> Result<Identity, ApiError> {
        // An agent of the root account is an agent, not an administrator.
        let root = key.agent_host.is_none() && state.accounts.get(&key.account).is_some_and(|a| a.root);
        let policy = match &key.policy {
            None => None,
            Some(text) => {
                let mut cache = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
                match cache.get(&key.id).filter(|(t, _)| t == text) {
                    Some((_, p)) => Some(p.clone()),
                    None => {
                        let parsed = Arc::new(Policy::parse(text).map_err(ApiError::internal)?);
                        if cache.len() > 100_000 {
                            cache.clear();
                        }
                        cache.insert(key.id.clone(), (text.clone(), parsed.clone()));
                        Some(parsed)
                    }
                }
            }
        };
        Ok(Identity {
            account: key.account,
            root,
            key_id: Some(key.id.clone()),
            policy,
            agent_host: key.agent_host.clone(),
        })
    }

    fn key_and_secret<'s>(&self, state: &'s State, key_id: &str) -> Result<(&'s AccessKey, String), ApiError> {
        let Mode::Verify(secrets) = &self.mode else {
            return Err(ApiError::internal("verification without a master key"));
        };
        let key = state.access_keys.get(key_id).ok_or_else(|| refuse(ErrorKind::AuthFailure, UNKNOWN_KEY))?;
        let secret = secrets.open(&key.id, &key.sealed_secret).map_err(ApiError::internal)?;
        Ok((key, secret))
    }

    /// Checks a SigV4 request for `service` at time `now`; returns the caller and the
    /// signed region.
    pub fn sigv4(
        &self,
        state: &State,
        req: &Signed<'_>,
        service: &str,
        now: i64,
    ) -> Result<(Identity, String), ApiError> {
        if !self.verifies() {
            let region = sigv4::claim(req.header("authorization"), req.header("x-amz-date"), req.query)
                .map(|c| c.region)
                .unwrap_or_default();
            return Ok((Identity::open_root(), region));
        }
        let claim = sigv4::claim(req.header("authorization"), req.header("x-amz-date"), req.query).map_err(|e| match e {
            SigV4Error::Missing => refuse(
                ErrorKind::MissingAuthentication,
                "The request must be signed with AWS Signature Version 4 (an Authorization header or X-Amz-Signature).",
            ),
            SigV4Error::Incomplete(m) => refuse(ErrorKind::IncompleteSignature, m),
        })?;
        if claim.service != service {
            return Err(refuse(
                ErrorKind::IncompleteSignature,
                format!("The credential scope names the service '{}'; this endpoint is '{service}'.", claim.service),
            ));
        }
        let (key, secret) = self.key_and_secret(state, &claim.access_key)?;
        let header = |name: &str| req.header_values(name);
        let request =
            sigv4::Request { method: req.method, path: req.path, query: req.query, header: &header, body: req.body };
        if !sigv4::verify(&secret, &claim, &request) {
            return Err(refuse(
                ErrorKind::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your secret access key and signing method.",
            ));
        }
        let at = amz_time(&claim.amz_date)
            .ok_or_else(|| refuse(ErrorKind::IncompleteSignature, "X-Amz-Date is not a time."))?;
        let expires = claim.expires.map_or(MAX_SKEW, |e| i64::try_from(e).unwrap_or(i64::MAX).min(7 * 24 * 3600));
        if (now - at).abs() > MAX_SKEW && !(claim.presigned && now >= at && now - at <= expires) {
            return Err(refuse(
                ErrorKind::RequestExpired,
                format!(
                    "The request was signed at {} and it is now more than 15 minutes later or earlier.",
                    claim.amz_date
                ),
            ));
        }
        if claim.presigned && now - at > expires {
            return Err(refuse(ErrorKind::RequestExpired, "The presigned request has expired."));
        }
        Ok((self.identity(state, key)?, claim.region))
    }

    /// Checks HTTP Basic credentials (`Basic base64(KEY_ID:SECRET)`), which Prometheus and
    /// a browser sign-in send over TLS: the secret is compared in constant time.
    pub fn basic(&self, state: &State, authorization: &str) -> Result<Identity, ApiError> {
        if !self.verifies() {
            return Ok(Identity::open_root());
        }
        use base64::Engine as _;
        let malformed = || refuse(ErrorKind::IncompleteSignature, "Basic credentials must be base64 of KEY_ID:SECRET.");
        let encoded = authorization.strip_prefix("Basic ").ok_or_else(malformed)?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (key_id, given) = text.split_once(':').ok_or_else(malformed)?;
        let (key, secret) = self.key_and_secret(state, key_id)?;
        if !acs::same_signature(&secret, given) {
            return Err(refuse(ErrorKind::SignatureDoesNotMatch, "The secret access key does not match the key ID."));
        }
        self.identity(state, key)
    }

    /// Checks an Alibaba request (V1 or ACS3) at time `now` (`fractional_now` for the
    /// bucket), and draws from the key's bucket.
    pub fn alibaba(
        &self,
        state: &State,
        req: &Signed<'_>,
        now: i64,
        fractional_now: f64,
    ) -> Result<Identity, ApiError> {
        if !self.verifies() {
            return Ok(Identity::open_root());
        }
        let header = |name: &str| req.header(name).map(str::to_owned);
        let claim = acs::claim(req.header("authorization"), &header, req.params).map_err(|e| match e {
            AcsError::Missing => refuse(
                ErrorKind::MissingAuthentication,
                "The request must be signed (ACS3-HMAC-SHA256, or signature V1 with HMAC-SHA1).",
            ),
            AcsError::Incomplete(m) => refuse(ErrorKind::IncompleteSignature, m),
        })?;
        let (key, secret) = self.key_and_secret(state, claim.access_key())?;
        let values = |name: &str| req.header_values(name);
        let request = acs::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            params: req.params,
            header: &values,
            body: req.body,
        };
        if !acs::verify(&secret, &claim, &request) {
            // As Alibaba words it: the legacy SDK compares the string to sign after the
            // colon with its own and, when they agree, tells its user the secret is wrong.
            let message = match claim {
                acs::Claim::V1 { .. } => format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{}",
                    acs::v1_string_to_sign(req.method, req.params)
                ),
                acs::Claim::Acs3 { .. } => {
                    "The request signature does not conform to Alibaba Cloud standards.".to_owned()
                }
            };
            return Err(refuse(ErrorKind::SignatureDoesNotMatch, message));
        }
        let at = iso_time(claim.timestamp())
            .ok_or_else(|| refuse(ErrorKind::IncompleteSignature, "The timestamp is not an ISO 8601 UTC time."))?;
        if (now - at).abs() > MAX_SKEW {
            return Err(refuse(
                ErrorKind::RequestExpired,
                format!("The timestamp {} is more than 15 minutes from the server's time.", claim.timestamp()),
            ));
        }
        if at < self.started_at {
            return Err(refuse(
                ErrorKind::RequestExpired,
                format!("The timestamp {} is before this server started; sign the request again.", claim.timestamp()),
            ));
        }
        // The key's bucket before its nonce: what one key can put in the window is bounded
        // by its rate, so it cannot fill the window for the others.
        let who = self.identity(state, key)?;
        self.throttle(&who, fractional_now)?;
        let nonce = format!("{}/{}", key.id, claim.nonce());
        match self.nonces.lock().unwrap_or_else(PoisonError::into_inner).admit(&nonce, now) {
            Admission::Fresh => {}
            Admission::Replayed => {
                return Err(refuse(ErrorKind::NonceUsed, "The nonce of this request has been used within 15 minutes."));
            }
            Admission::Full => {
                return Err(refuse(ErrorKind::Throttled, "Too many signed requests in the replay window."));
            }
        }
        Ok(who)
    }

    /// The key a refused request claimed (cut to [`CLAIMED_KEY_MAX`] characters) and, if it
    /// exists, its account: what the audit trail can say of who tried.
    pub(crate) fn claimed(&self, state: &State, req: &Signed<'_>) -> By {
        let header = |name: &str| req.header(name).map(str::to_owned);
        let key = sigv4::claim(req.header("authorization"), req.header("x-amz-date"), req.query)
            .map(|c| c.access_key)
            .or_else(|_| {
                acs::claim(req.header("authorization"), &header, req.params).map(|c| c.access_key().to_owned())
            })
            .ok()
            .map(|k| k.chars().take(CLAIMED_KEY_MAX).collect::<String>());
        let account = key.as_ref().and_then(|k| state.access_keys.get(k)).map(|k| k.account);
        By { account, access_key: key }
    }

    /// Requests refused by a key's bucket since start.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Takes a token from the enrollment bucket ([`ENROLL_RATE`]) at `now`.
    pub fn throttle_enrollment(&self, now: f64) -> Result<(), ApiError> {
        let mut bucket = self.enrollments.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = bucket.get_or_insert_with(|| Bucket::full(ENROLL_RATE, now));
        if bucket.take(ENROLL_RATE, now) {
            return Ok(());
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        Err(refuse(ErrorKind::Throttled, "Too many enrollments; retry in a second."))
    }

    /// Takes a token from the caller's bucket at `now` (seconds, fractional).
    pub fn throttle(&self, who: &Identity, now: f64) -> Result<(), ApiError> {
        let Some(key) = &who.key_id else { return Ok(()) };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 200_000 {
            // Only existing keys reach here; a table this large means keys were deleted.
            buckets.clear();
        }
        let bucket = buckets.entry(key.clone()).or_insert_with(|| Bucket::full(self.rate, now));
        if bucket.take(self.rate, now) {
            return Ok(());
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        Err(refuse(
            ErrorKind::Throttled,
            format!(
                "Request limit exceeded for this access key; the next request fits in {:.0} ms.",
                bucket.wait(self.rate) * 1e3
            ),
        ))
    }
}

/// Whether the caller's policy allows `action` (e.g. `ec2:CreateTrafficMirrorFilter`) on
/// `resources`.
pub fn authorize(who: &Identity, action: &str, resources: &[Resource]) -> Result<(), ApiError> {
    let Some(policy) = &who.policy else { return Ok(()) };
    match policy.decide(action, resources) {
        Decision::Allow => Ok(()),
        Decision::ExplicitDeny => Err(refuse(
            ErrorKind::Unauthorized,
            format!(
                "You are not authorized to perform this operation: an explicit deny in the key's policy covers {action}."
            ),
        )),
        Decision::ImplicitDeny => Err(refuse(
            ErrorKind::Unauthorized,
            format!("You are not authorized to perform this operation: the key's policy does not allow {action} here."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_the_sdks_send_them() {
        assert_eq!(amz_time("20261201T000000Z"), Some(1_796_083_200));
        assert_eq!(iso_time("2026-12-01T00:00:00Z"), Some(1_796_083_200));
        assert_eq!(amz_time("2026-12-01"), None);
    }
}
