//! The door: every Query-style request (both dialects) is decoded here, strictly, before
//! either dialect sees a parameter.
//!
//! - Only `GET` (parameters in the query string, no body) and `POST` (query string and an
//!   `application/x-www-form-urlencoded` body) carry parameters.
//! - Media types are compared as RFC 9110 says: type and subtype case-insensitively,
//!   parameters after `;` (only `charset=utf-8` is allowed).
//! - Percent-escapes must be well-formed and the decoded bytes valid UTF-8; nothing is
//!   replaced.
//! - A key given twice, or in both the query and the body, is refused.
//! - Keys and values may only hold characters XML 1.0 can carry (what is stored is shown
//!   in EC2's XML), and are bounded in number and length.

use axum::http::{HeaderMap, Method, header};
use percent_encoding::percent_decode;
use tapwire_control::{ApiError, ErrorKind};

use crate::ec2::xml::is_xml_char;

/// Most parameters one request may carry (CreateTags with 1000 IDs and 50 tags fits).
pub const MAX_PARAMETERS: usize = 2_000;
/// Longest parameter name, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest parameter value, in characters; each field's own limit is usually far lower.
pub const MAX_VALUE_CHARS: usize = 8_192;
/// Largest request body read, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Which envelope a request's errors are answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// EC2 XML.
    Ec2,
    /// Alibaba JSON.
    Alibaba,
}

/// The dialect a request speaks, from what can be read before decoding: the `Version`
/// (query, body or `x-acs-version`), else Alibaba's marks (`x-acs-*` headers, an ACS3
/// signature, the legacy SDK's signature parameters), else EC2.
pub fn envelope(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Envelope {
    let raw = |text: &[u8]| -> Option<Envelope> {
        form_urlencoded::parse(text).find_map(|(k, v)| match (k.as_ref(), v.as_ref()) {
            ("Version", crate::alibaba::VERSION) => Some(Envelope::Alibaba),
            ("Version", crate::ec2::VERSION) => Some(Envelope::Ec2),
            ("SignatureNonce" | "AccessKeyId" | "Format", _) => Some(Envelope::Alibaba),
            _ => None,
        })
    };
    let acs_header = headers.keys().any(|k| k.as_str().starts_with("x-acs-"))
        || headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("ACS3-"));
    if acs_header {
        return Envelope::Alibaba;
    }
    query.and_then(|q| raw(q.as_bytes())).or_else(|| raw(body)).unwrap_or(Envelope::Ec2)
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::MalformedRequest, message)
}

/// Whether `value` names `application/x-www-form-urlencoded` (with at most a UTF-8
/// charset), per RFC 9110's media-type syntax.
pub fn is_form(value: &str) -> Result<bool, ApiError> {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Ok(false);
    }
    for param in parts {
        let (name, v) = param.split_once('=').unwrap_or((param, ""));
        let v = v.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8") {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!("The charset '{v}' is not supported; send UTF-8."),
            ));
        }
    }
    Ok(true)
}

/// One `k=v&…` text, strictly: well-formed escapes, valid UTF-8.
fn pairs(text: &[u8], out: &mut Vec<(String, String)>) -> Result<(), ApiError> {
    for segment in text.split(|b| *b == b'&').filter(|s| !s.is_empty()) {
        let (k, v) = match segment.iter().position(|b| *b == b'=') {
            Some(at) => (&segment[..at], &segment[at + 1..]),
            None => (segment, &b""[..]),
        };
        let (key, value) = (decode_component(k)?, decode_component(v)?);
        if key.is_empty() {
            return Err(malformed("A parameter has no name."));
        }
        out.push((key, value));
        if out.len() > MAX_PARAMETERS {
            return Err(malformed(format!("A request may carry at most {MAX_PARAMETERS} parameters.")));
        }
    }
    Ok(())
}

fn decode_component(raw: &[u8]) -> Result<String, ApiError> {
    // `%` must start a two-digit hex escape; `+` is a space.
    let mut i = 0;
    while let Some(at) = raw[i..].iter().position(|b| *b == b'%') {
        let hex = raw.get(i + at + 1..i + at + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        if hex.is_none() {
            return Err(malformed("The request has a malformed percent-escape."));
        }
        i += at + 3;
    }
    let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| malformed("The request is not valid UTF-8."))
}

/// Checks one decoded parameter against the door's rules.
fn check(key: &str, value: &str) -> Result<(), ApiError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(malformed(format!("A parameter name is longer than {MAX_KEY_BYTES} bytes.")));
    }
    if let Some(c) = key.chars().chain(value.chars()).find(|c| !is_xml_char(*c)) {
        return Err(ApiError::invalid(format!(
            "The parameter {} contains the character U+{:04X}, which cannot be stored.",
            key.escape_debug(),
            u32::from(c)
        )));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::invalid(format!("The value of {key} is longer than {MAX_VALUE_CHARS} characters.")));
    }
    Ok(())
}

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Those of the query string (what ACS3 signs as its query).
    pub query: Vec<(String, String)>,
    /// Those of the query string and the body together.
    pub all: Vec<(String, String)>,
}

/// Decodes the parameters of a `GET` or `POST`: the query string and, for a form post,
/// the body; every rule of the module docs applies.
pub fn decode(method: &Method, query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Decoded, ApiError> {
    let mut out = Vec::new();
    pairs(query.unwrap_or_default().as_bytes(), &mut out)?;
    let query_len = out.len();
    if !body.is_empty() {
        if method == Method::GET {
            return Err(malformed("A GET request carries its parameters in the query string, not in a body."));
        }
        let form = match headers.get(header::CONTENT_TYPE) {
            None => true,
            Some(v) => is_form(v.to_str().map_err(|_| malformed("The Content-Type header is not text."))?)?,
        };
        if !form {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "The body must be application/x-www-form-urlencoded.",
            ));
        }
        pairs(body, &mut out)?;
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for (k, v) in &out {
        check(k, v)?;
        if !seen.insert(k.as_str()) {
            return Err(malformed(format!("The parameter {k} is given more than once.")));
        }
    }
    Ok(Decoded { query: out[..query_len].to_vec(), all: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(query: Option<&str>, body: &str) -> Result<Vec<(String, String)>, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "Application/X-WWW-Form-URLEncoded; Charset=UTF-8".parse().unwrap());
        decode(&Method::POST, query, &h, body.as_bytes()).map(|d| d.all)
    }

    #[test]
    fn decodes_strictly() {
        assert_eq!(post(Some("A=1"), "B=x+y%21").unwrap(), vec![("A".into(), "1".into()), ("B".into(), "x y!".into())]);
        let kind = |r: Result<Vec<(String, String)>, ApiError>| r.unwrap_err().kind;
        assert_eq!(kind(post(None, "A=1&A=2")), ErrorKind::MalformedRequest);
        assert_eq!(kind(post(Some("A=1"), "A=1")), ErrorKind::MalformedRequest);
        assert_eq!(kind(post(None, "A=%zz")), ErrorKind::MalformedRequest);
        assert_eq!(kind(post(None, "A=%ff")), ErrorKind::MalformedRequest);
        assert_eq!(kind(post(None, "A=a%01b")), ErrorKind::InvalidParameterValue);
        assert_eq!(kind(post(None, "A=%EF%BF%BE")), ErrorKind::InvalidParameterValue);
        assert_eq!(kind(post(None, "A=%1B")), ErrorKind::InvalidParameterValue);
        assert_eq!(
            decode(&Method::GET, None, &HeaderMap::new(), b"A=1").unwrap_err().kind,
            ErrorKind::MalformedRequest
        );
        let both = decode(&Method::POST, Some("Q=1"), &HeaderMap::new(), b"B=2").unwrap();
        assert_eq!((both.query.len(), both.all.len()), (1, 2));
        assert!(post(None, "A=tab%09and%0Anewline").is_ok());
    }

    #[test]
    fn media_types_follow_rfc_9110() {
        assert!(is_form("application/x-www-form-urlencoded").unwrap());
        assert!(is_form(" APPLICATION/x-www-form-urlencoded ;charset=\"utf-8\"").unwrap());
        assert!(!is_form("application/x-www-form-urlencodedX").unwrap());
        assert!(!is_form("text/plain").unwrap());
        assert!(is_form("application/x-www-form-urlencoded; charset=latin1").is_err());
    }

    #[test]
    fn envelope_follows_the_version_then_alibaba_marks() {
        let h = HeaderMap::new();
        assert_eq!(envelope(Some("Version=2016-04-28"), &h, b""), Envelope::Alibaba);
        assert_eq!(envelope(None, &h, b"Version=2016-11-15"), Envelope::Ec2);
        assert_eq!(envelope(Some("Action=X&SignatureNonce=1"), &h, b""), Envelope::Alibaba);
        assert_eq!(envelope(None, &h, b"Action=X"), Envelope::Ec2);
        let mut acs = HeaderMap::new();
        acs.insert("x-acs-action", "ListTrafficMirrorFilters".parse().unwrap());
        assert_eq!(envelope(None, &acs, b""), Envelope::Alibaba);
    }
}
