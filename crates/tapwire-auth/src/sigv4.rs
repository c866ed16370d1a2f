//! AWS Signature Version 4, as the aws CLI, boto3, paws and the AWS SDKs send it for the
//! EC2 Query protocol: in the `Authorization` header (with `X-Amz-Date`), or in the query
//! string of a presigned request (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`). The same code signs, for
//! tapwire's own CLI.
//!
//! Verification recomputes the canonical request from what arrived (method, path, query,
//! the signed headers' values, the body's hash), derives the signing key from the secret
//! and compares the signatures in constant time. The caller checks what the scope says
//! (region and service) and the clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::{rfc3986, sha256_hex};

/// The algorithm name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request carries no usable SigV4 signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no `X-Amz-Signature` parameter.
    #[error("the request is not signed")]
    Missing,
    /// A signature is there but one of its parts is missing or malformed.
    #[error("{0}")]
    Incomplete(String),
}

/// What a request's signature claims, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Access key ID.
    pub access_key: String,
    /// Credential scope date, `YYYYMMDD`.
    pub scope_date: String,
    /// Credential scope region.
    pub region: String,
    /// Credential scope service (`ec2` for the EC2 API).
    pub service: String,
    /// Request time, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// Lower-case names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature, hex.
    pub signature: String,
    /// Presigned: seconds the signature is valid for.
    pub expires: Option<u64>,
    /// Whether the signature came in the query string.
    pub presigned: bool,
}

impl Claim {
    /// The credential scope, `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.scope_date, self.region, self.service)
    }
}

fn incomplete(what: &str) -> SigV4Error {
    SigV4Error::Incomplete(format!("The request signature is incomplete: {what}."))
}

/// Splits `AKID/date/region/service/aws4_request`.
fn credential(raw: &str) -> Result<(String, String, String, String), SigV4Error> {
    let parts: Vec<&str> = raw.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty() && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(((*key).to_owned(), (*date).to_owned(), (*region).to_owned(), (*service).to_owned()))
        }
        _ => Err(incomplete("the Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request")),
    }
}

fn valid_amz_date(d: &str) -> bool {
    d.len() == 16
        && d.as_bytes()[8] == b'T'
        && d.ends_with('Z')
        && d[..8].bytes().chain(d[9..15].bytes()).all(|b| b.is_ascii_digit())
}

/// Reads the claim from the `Authorization` header (with `x-amz-date`) or, when there is
/// none, from the query parameters of a presigned request.
pub fn claim(
    authorization: Option<&str>,
    amz_date_header: Option<&str>,
    query: &[(String, String)],
) -> Result<Claim, SigV4Error> {
    let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let (credential_text, signed, signature, amz_date, expires, presigned) = if let Some(auth) = authorization {
        let rest = auth
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| incomplete("the Authorization header does not start with AWS4-HMAC-SHA256"))?;
        let mut fields = [None, None, None];
        for part in rest.split(',') {
            let (k, v) =
                part.trim().split_once('=').ok_or_else(|| incomplete("a part of Authorization is not NAME=VALUE"))?;
            let slot = match k {
                "Credential" => 0,
                "SignedHeaders" => 1,
                "Signature" => 2,
                _ => continue,
            };
            fields[slot] = Some(v.to_owned());
        }
        let [Some(c), Some(h), Some(s)] = fields else {
            return Err(incomplete("Authorization needs Credential, SignedHeaders and Signature"));
        };
        let date = amz_date_header.ok_or_else(|| incomplete("the X-Amz-Date header is missing"))?.to_owned();
        (c, h, s, date, None, false)
    } else if let Some(sig) = param("X-Amz-Signature") {
        if param("X-Amz-Algorithm") != Some(ALGORITHM) {
            return Err(incomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
        }
        let need = |k: &str| param(k).map(str::to_owned).ok_or_else(|| incomplete(&format!("{k} is missing")));
        let expires = match param("X-Amz-Expires") {
            None => None,
            Some(raw) => Some(raw.parse::<u64>().map_err(|_| incomplete("X-Amz-Expires is not a number"))?),
        };
        (need("X-Amz-Credential")?, need("X-Amz-SignedHeaders")?, sig.to_owned(), need("X-Amz-Date")?, expires, true)
    } else {
        return Err(SigV4Error::Missing);
    };
    let (access_key, scope_date, region, service) = credential(&credential_text)?;
    if !valid_amz_date(&amz_date) {
        return Err(incomplete("the date must be YYYYMMDDTHHMMSSZ"));
    }
    if !amz_date.starts_with(&scope_date) {
        return Err(incomplete("the credential date is not the request date"));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("the Signature must be 64 hex digits"));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(String::is_empty) || !signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("SignedHeaders must name the host header"));
    }
    Ok(Claim { access_key, scope_date, region, service, amz_date, signed_headers, signature, expires, presigned })
}

/// The parts of a request the canonical request is made of.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path, as sent (already percent-encoded).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Looks up a header's values by lower-case name.
    pub header: &'a dyn Fn(&str) -> Vec<String>,
    /// The body.
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("method", &self.method).field("path", &self.path).finish_non_exhaustive()
    }
}

/// The canonical request of SigV4.
pub fn canonical_request(req: &Request<'_>, signed_headers: &[String], presigned: bool) -> String {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (rfc3986(k), rfc3986(v)))
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> =
            (req.header)(name).iter().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let payload = match (req.header)("x-amz-content-sha256").first() {
        Some(v) if v == "UNSIGNED-PAYLOAD" => v.clone(),
        _ => sha256_hex(req.body),
    };
    let path = if req.path.is_empty() { "/" } else { req.path };
    format!("{}\n{path}\n{}\n{headers}\n{}\n{payload}", req.method, query.join("&"), signed_headers.join(";"))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signing key of `secret` for a scope.
fn signing_key(secret: &str, claim: &Claim) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), claim.scope_date.as_bytes());
    let k_region = hmac(&k_date, claim.region.as_bytes());
    let k_service = hmac(&k_region, claim.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn string_to_sign(claim: &Claim, canonical: &str) -> String {
    format!("{ALGORITHM}\n{}\n{}\n{}", claim.amz_date, claim.scope(), sha256_hex(canonical.as_bytes()))
}

/// Whether `claim`'s signature is `secret`'s over `req` (constant-time comparison).
pub fn verify(secret: &str, claim: &Claim, req: &Request<'_>) -> bool {
    let canonical = canonical_request(req, &claim.signed_headers, claim.presigned);
    let Ok(given) = hex::decode(&claim.signature) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(secret, claim))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign(claim, &canonical).as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Signs a request (tapwire's own CLI): returns the `Authorization` header value.
/// `claim.signature` is ignored.
pub fn sign(secret: &str, claim: &Claim, req: &Request<'_>) -> String {
    let canonical = canonical_request(req, &claim.signed_headers, false);
    let signature = hex::encode(hmac(&signing_key(secret, claim), string_to_sign(claim, &canonical).as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        claim.access_key,
        claim.scope(),
        claim.signed_headers.join(";")
    )
}

/// A key that signs requests as tapwire's own clients send them: `host` and
/// `x-amz-date` signed, the body's hash covered.
#[derive(Clone)]
pub struct Signer {
    /// Access key ID.
    pub access_key: String,
    /// Secret access key.
    pub secret: String,
    /// Region of the scope.
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A time as `x-amz-date` carries it, `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(at: time::OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

impl Signer {
    /// The `Authorization` value of a request for `service` to `host` at `amz_date`
    /// (`query` decoded, `path` as sent).
    pub fn authorization(
        &self,
        service: &str,
        amz_date: &str,
        host: &str,
        (method, path, query): (&str, &str, &[(String, String)]),
        body: &[u8],
    ) -> String {
        let claim = Claim {
            access_key: self.access_key.clone(),
            scope_date: amz_date.get(..8).unwrap_or_default().to_owned(),
            region: self.region.clone(),
            service: service.to_owned(),
            amz_date: amz_date.to_owned(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
            expires: None,
            presigned: false,
        };
        let header = |name: &str| match name {
            "host" => vec![host.to_owned()],
            "x-amz-date" => vec![amz_date.to_owned()],
            _ => Vec::new(),
        };
        sign(&self.secret, &claim, &Request { method, path, query, header: &header, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_signer_signs_verifies() {
        let signer = Signer { access_key: "TWAKTEST".into(), secret: "s3cr3t".into(), region: "us-east-1".into() };
        let date = amz_date(time::macros::datetime!(2026-12-01 08:09:10 UTC));
        assert_eq!(date, "20261201T080910Z");
        let query = vec![("after".to_owned(), "3".to_owned())];
        let auth = signer.authorization("tapwire", &date, "127.0.0.1:8787", ("GET", "/tapwire/v1/x", &query), b"");
        let claim = claim(Some(&auth), Some(&date), &[]).unwrap();
        let header = |name: &str| match name {
            "host" => vec!["127.0.0.1:8787".to_owned()],
            "x-amz-date" => vec![date.clone()],
            _ => Vec::new(),
        };
        let req = Request { method: "GET", path: "/tapwire/v1/x", query: &query, header: &header, body: b"" };
        assert!(verify("s3cr3t", &claim, &req));
        assert!(!verify("other", &claim, &req));
        assert!(!verify("s3cr3t", &claim, &Request { body: b"x", ..req }));
    }

    /// AWS's published example (the "get-vanilla" case of the SigV4 test suite).
    #[test]
    fn matches_the_aws_test_suite() {
        let claim = Claim {
            access_key: "AKIDEXAMPLE".into(),
            scope_date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            amz_date: "20150830T123600Z".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into(),
            expires: None,
            presigned: false,
        };
        let header = |name: &str| match name {
            "host" => vec!["example.amazonaws.com".to_owned()],
            "x-amz-date" => vec!["20150830T123600Z".to_owned()],
            _ => vec![],
        };
        let req = Request { method: "GET", path: "/", query: &[], header: &header, body: b"" };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert!(verify(secret, &claim, &req));
        assert!(!verify("other", &claim, &req));
        let auth = sign(secret, &claim, &req);
        assert!(auth.ends_with("Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
        let parsed = claim_of(&auth);
        assert_eq!(parsed.signature, claim.signature);
    }

    fn claim_of(auth: &str) -> Claim {
        claim(Some(auth), Some("20150830T123600Z"), &[]).unwrap()
    }

    #[test]
    fn malformed_signatures_are_incomplete_and_absent_ones_missing() {
        assert_eq!(claim(None, None, &[]), Err(SigV4Error::Missing));
        let bad = [
            "AWS4-HMAC-SHA256 Credential=AK/2015/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA512 Credential=AK/20150830/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
        ];
        for b in bad {
            assert!(matches!(claim(Some(b), Some("20150830T123600Z"), &[]), Err(SigV4Error::Incomplete(_))), "{b}");
        }
        let ok = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        );
        assert!(matches!(claim(Some(&ok), None, &[]), Err(SigV4Error::Incomplete(_))), "no date header");
        assert!(claim(Some(&ok), Some("20150830T123600Z"), &[]).is_ok());
        assert!(claim(Some(&ok), Some("20150831T123600Z"), &[]).is_err(), "scope date differs");
    }
}
