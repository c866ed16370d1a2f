//! Alibaba Cloud's request signatures.
//!
//! - **V1** (`SignatureMethod=HMAC-SHA1`, the legacy core SDK): every parameter of the query
//!   and the form body but `Signature`, sorted by key, RFC 3986-encoded as `k=v&…`; the
//!   string to sign is `METHOD&%2F&` + that text encoded once more; the signature is the
//!   Base64 of HMAC-SHA1 keyed with `secret&`.
//! - **ACS3** (`ACS3-HMAC-SHA256`, the Tea SDK): `Authorization: ACS3-HMAC-SHA256
//!   Credential=AK,SignedHeaders=a;b,Signature=hex`; the canonical request is
//!   `METHOD\n/\n` + the query sorted by key with RFC 3986-encoded values + `\n` + each
//!   signed header `name:value\n` + `\n` + the signed-header list + `\n` + the payload hash
//!   (`x-acs-content-sha256`, which must be the body's); the string to sign is
//!   `ACS3-HMAC-SHA256\n` + its hex SHA-256; the signature is hex HMAC-SHA256 keyed with the
//!   secret.
//!
//! Comparisons are constant-time. The caller checks the time and the nonce.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::encode::{rfc3986, sha256_hex};

/// The ACS3 algorithm name.
pub const ACS3: &str = "ACS3-HMAC-SHA256";

/// Why a request carries no usable Alibaba signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcsError {
    /// Neither an ACS3 `Authorization` header nor a `Signature` parameter.
    #[error("the request is not signed")]
    Missing,
    /// A part is missing or malformed.
    #[error("{0}")]
    Incomplete(String),
}

fn incomplete(what: &str) -> AcsError {
    AcsError::Incomplete(format!("The request signature is incomplete: {what}."))
}

/// What an Alibaba request's signature claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Signature V1 in the parameters.
    V1 {
        /// `AccessKeyId`.
        access_key: String,
        /// `Signature`, Base64.
        signature: String,
        /// `SignatureNonce`.
        nonce: String,
        /// `Timestamp`, ISO 8601 UTC.
        timestamp: String,
    },
    /// ACS3 in the headers.
    Acs3 {
        /// From `Credential=`.
        access_key: String,
        /// Lower-case names of the signed headers.
        signed_headers: Vec<String>,
        /// The signature, hex.
        signature: String,
        /// `x-acs-signature-nonce`.
        nonce: String,
        /// `x-acs-date`.
        timestamp: String,
    },
}

impl Claim {
    /// The access key ID.
    pub fn access_key(&self) -> &str {
        match self {
            Claim::V1 { access_key, .. } | Claim::Acs3 { access_key, .. } => access_key,
        }
    }

    /// The nonce.
    pub fn nonce(&self) -> &str {
        match self {
            Claim::V1 { nonce, .. } | Claim::Acs3 { nonce, .. } => nonce,
        }
    }

    /// The request time as sent.
    pub fn timestamp(&self) -> &str {
        match self {
            Claim::V1 { timestamp, .. } | Claim::Acs3 { timestamp, .. } => timestamp,
        }
    }
}

/// Reads the claim: ACS3 from the `Authorization` header, else V1 from the parameters.
pub fn claim(
    authorization: Option<&str>,
    header: &dyn Fn(&str) -> Option<String>,
    params: &[(String, String)],
) -> Result<Claim, AcsError> {
    let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(auth) = authorization {
        let rest = auth
            .strip_prefix(ACS3)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| incomplete("the Authorization header must be ACS3-HMAC-SHA256"))?;
        let (mut key, mut signed, mut sig) = (None, None, None);
        for part in rest.trim().split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => key = Some(v.to_owned()),
                Some(("SignedHeaders", v)) => signed = Some(v.to_owned()),
                Some(("Signature", v)) => sig = Some(v.to_owned()),
                _ => return Err(incomplete("a part of Authorization is not NAME=VALUE")),
            }
        }
        let (Some(access_key), Some(signed), Some(signature)) = (key, signed, sig) else {
            return Err(incomplete("Authorization needs Credential, SignedHeaders and Signature"));
        };
        let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
        for required in ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"] {
            if !signed_headers.iter().any(|h| h == required) {
                return Err(incomplete(&format!("SignedHeaders must name {required}")));
            }
        }
        let need = |h: &str| header(h).ok_or_else(|| incomplete(&format!("the {h} header is missing")));
        return Ok(Claim::Acs3 {
            access_key,
            signed_headers,
            signature,
            nonce: need("x-acs-signature-nonce")?,
            timestamp: need("x-acs-date")?,
        });
    }
    let Some(signature) = param("Signature") else {
        return Err(AcsError::Missing);
    };
    if param("SignatureMethod").as_deref() != Some("HMAC-SHA1") || param("SignatureVersion").as_deref() != Some("1.0") {
        return Err(incomplete("SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0"));
    }
    let need = |k: &str| param(k).filter(|v| !v.is_empty()).ok_or_else(|| incomplete(&format!("{k} is missing")));
    Ok(Claim::V1 {
        access_key: need("AccessKeyId")?,
        signature,
        nonce: need("SignatureNonce")?,
        timestamp: need("Timestamp")?,
    })
}

/// The V1 string to sign over `params` (query and body together).
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").map(|(k, v)| (rfc3986(k), rfc3986(v))).collect();
    pairs.sort();
    let canonical: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}&%2F&{}", rfc3986(&canonical.join("&")))
}

/// The V1 signature of `string_to_sign`, Base64.
pub fn v1_sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The ACS3 canonical request. `query` are the query-string parameters only.
pub fn acs3_canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    header: &dyn Fn(&str) -> Vec<String>,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut sorted: Vec<&(String, String)> = query.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={}", rfc3986(v))).collect();
    let mut headers = String::new();
    for name in signed_headers {
        let mut values: Vec<String> = header(name).iter().map(|v| v.trim().to_owned()).collect();
        values.sort();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let path = if path.is_empty() { "/" } else { path };
    format!("{method}\n{path}\n{}\n{headers}\n{}\n{payload_hash}", query.join("&"), signed_headers.join(";"))
}

/// The ACS3 signature, hex.
pub fn acs3_sign(secret: &str, canonical_request: &str) -> String {
    let to_sign = format!("{ACS3}\n{}", sha256_hex(canonical_request.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two signatures as text.
pub fn same_signature(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parts of a request an Alibaba signature covers.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path, as sent.
    pub path: &'a str,
    /// Query-string parameters (what ACS3 signs).
    pub query: &'a [(String, String)],
    /// Query and body parameters together (what V1 signs).
    pub params: &'a [(String, String)],
    /// Looks up a header's values by lower-case name.
    pub header: &'a dyn Fn(&str) -> Vec<String>,
    /// The raw body.
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("method", &self.method).field("path", &self.path).finish_non_exhaustive()
    }
}

/// Whether `claim` is `secret`'s signature over `req`.
pub fn verify(secret: &str, claim: &Claim, req: &Request<'_>) -> bool {
    match claim {
        Claim::V1 { signature, .. } => {
            same_signature(&v1_sign(secret, &v1_string_to_sign(req.method, req.params)), signature)
        }
        Claim::Acs3 { signed_headers, signature, .. } => {
            let body_hash = sha256_hex(req.body);
            let declared = (req.header)("x-acs-content-sha256");
            if declared.first().is_none_or(|d| !same_signature(&d.to_ascii_lowercase(), &body_hash)) {
                return false;
            }
            let canonical =
                acs3_canonical_request(req.method, req.path, req.query, req.header, signed_headers, &body_hash);
            same_signature(&acs3_sign(secret, &canonical), &signature.to_ascii_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Alibaba's documented V1 example (DescribeRegions with testid/testsecret).
    #[test]
    fn v1_matches_the_documented_example() {
        let params = pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let to_sign = v1_string_to_sign("GET", &params);
        assert!(to_sign.starts_with("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions"));
        assert_eq!(v1_sign("testsecret", &to_sign), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn claims_name_what_is_missing() {
        let none = |_: &str| None;
        assert_eq!(claim(None, &none, &[]), Err(AcsError::Missing));
        let v1 = pairs(&[("Signature", "x"), ("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0")]);
        assert!(matches!(claim(None, &none, &v1), Err(AcsError::Incomplete(m)) if m.contains("AccessKeyId")));
        let auth = "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host,Signature=ab";
        assert!(matches!(claim(Some(auth), &none, &[]), Err(AcsError::Incomplete(m)) if m.contains("x-acs-date")));
    }

    #[test]
    fn acs3_round_trips_and_checks_the_body() {
        let headers = |name: &str| -> Vec<String> {
            match name {
                "host" => vec!["127.0.0.1:8787".into()],
                "x-acs-date" => vec!["2026-12-01T00:00:00Z".into()],
                "x-acs-signature-nonce" => vec!["n1".into()],
                "x-acs-content-sha256" => vec![sha256_hex(b"")],
                _ => vec![],
            }
        };
        let signed: Vec<String> =
            ["host", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce"].map(String::from).to_vec();
        let query = pairs(&[("RegionId", "cn-hangzhou"), ("A b", "x y*")]);
        let canonical = acs3_canonical_request("POST", "/", &query, &headers, &signed, &sha256_hex(b""));
        assert!(canonical.contains("A b=x%20y%2A&RegionId=cn-hangzhou"));
        let signature = acs3_sign("secret", &canonical);
        let c = Claim::Acs3 {
            access_key: "AK".into(),
            signed_headers: signed,
            signature,
            nonce: "n1".into(),
            timestamp: "t".into(),
        };
        let req = Request { method: "POST", path: "/", query: &query, params: &query, header: &headers, body: b"" };
        assert!(verify("secret", &c, &req));
        assert!(!verify("secret", &c, &Request { body: b"tampered", ..req }));
        assert!(!verify("other", &c, &req));
    }
}
