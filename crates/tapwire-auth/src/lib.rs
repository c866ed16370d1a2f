//! Who is calling, checked without I/O: the signatures both clouds' SDKs send, the
//! policy language keys carry, and the small machines the door needs to stay bounded.
//!
//! - [`sigv4`]: AWS Signature Version 4 (header and presigned forms), verify and sign;
//! - [`acs`]: Alibaba's V1 (HMAC-SHA1) and ACS3 (HMAC-SHA256) signatures;
//! - [`policy`]: an IAM-style policy language (Allow/Deny, wildcards, resource tags);
//! - [`seal`]: access-key secrets sealed at rest (AES-256-GCM);
//! - [`bucket`]: token buckets for throttling; [`nonces`]: the replay window;
//! - [`keys`]: access key IDs and secrets from caller-drawn bytes;
//! - [`encode`]: RFC 3986 encoding and SHA-256, as the signatures use them.
//!
//! Invariant: every signature comparison is constant-time; no function here reads a
//! clock or draws randomness (callers pass time and bytes in).

pub mod acs;
pub mod bucket;
pub mod encode;
pub mod keys;
pub mod nonces;
pub mod policy;
pub mod seal;
pub mod sigv4;
