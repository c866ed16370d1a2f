//! Any bytes as what a caller controls before its signature is checked: the
//! `Authorization` header, `x-amz-date`, the parameters (SigV4 presigned, Alibaba V1) and a
//! policy document. Fields are split at NUL bytes. Nothing may panic; a claim that parses
//! must check without panicking and never verify under a secret the input did not sign with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_auth::policy::{Policy, Resource};
use tapwire_auth::{acs, sigv4};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let authorization = fields.next().unwrap_or_default();
    let date = fields.next().unwrap_or_default();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(fields.next().unwrap_or_default().as_bytes()).into_owned().collect();
    let policy = fields.next().unwrap_or_default();
    let auth = (!authorization.is_empty()).then_some(authorization);
    let header_values = |name: &str| match name {
        "authorization" => vec![authorization.to_owned()],
        "x-amz-date" | "x-acs-date" => vec![date.to_owned()],
        "host" => vec!["127.0.0.1:8787".to_owned()],
        _ => Vec::new(),
    };
    if let Ok(claim) = sigv4::claim(auth, Some(date), &params) {
        let req = sigv4::Request { method: "POST", path: "/", query: &params, header: &header_values, body: data };
        let _ = sigv4::canonical_request(&req, &claim.signed_headers, claim.presigned);
        assert!(!sigv4::verify("a secret the input cannot know", &claim, &req));
    }
    let header = |name: &str| header_values(name).into_iter().next();
    if let Ok(claim) = acs::claim(auth, &header, &params) {
        let req = acs::Request { method: "POST", path: "/", query: &params, params: &params, header: &header_values, body: data };
        assert!(!acs::verify("a secret the input cannot know", &claim, &req));
    }
    if let Ok(parsed) = Policy::parse(policy) {
        let resource = Resource { arn: "arn:aws:ec2:us-east-1:123456789012:traffic-mirror-session/tms-1".into(), tags: vec![] };
        let _ = parsed.decide("ec2:ModifyTrafficMirrorSession", &[resource]);
    }
});
