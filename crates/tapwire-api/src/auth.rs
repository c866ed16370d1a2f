//! Who is calling. For now every caller maps to the default account (any key is
//! accepted), but the access key and the region are read from the signature so accounts
//! and verification can follow without touching the model.

use axum::http::HeaderMap;
use tapwire_model::AccountId;

/// What the request's credentials say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// Access key ID, if the request was signed.
    pub access_key: Option<String>,
    /// Region of the SigV4 credential scope, if any.
    pub region: Option<String>,
}

/// Reads a SigV4 `Authorization` header (`Credential=AKID/date/region/service/aws4_request`)
/// or its presigned-query form (`X-Amz-Credential`).
pub fn sigv4_credentials(headers: &HeaderMap, query_credential: Option<&str>) -> Credentials {
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AWS4-HMAC-SHA256"))
        .and_then(|rest| rest.split(',').find_map(|part| part.trim().strip_prefix("Credential=")));
    let Some(scope) = from_header.or(query_credential) else {
        return Credentials::default();
    };
    let mut parts = scope.split('/');
    let access_key = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
    let region = parts.nth(1).filter(|s| !s.is_empty()).map(str::to_owned);
    Credentials { access_key, region }
}

/// Reads an Alibaba caller's access key: from an ACS3 `Authorization` header
/// (`ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=…,Signature=…`, the Tea SDK) or from the
/// `AccessKeyId` parameter (signature V1, the legacy SDK). Alibaba has no region in the
/// credential; the region is the `RegionId` parameter.
pub fn acs_credentials(headers: &HeaderMap, access_key_param: Option<&str>) -> Credentials {
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ACS3-"))
        .and_then(|v| v.split_once(' '))
        .and_then(|(_, rest)| rest.split(',').find_map(|part| part.trim().strip_prefix("Credential=")));
    let access_key = from_header.or(access_key_param).filter(|s| !s.is_empty()).map(str::to_owned);
    Credentials { access_key, region: None }
}

/// Maps credentials to an account. Placeholder: every caller is the default account.
pub fn account_for(_credentials: &Credentials) -> AccountId {
    AccountId::DEFAULT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_and_region_from_the_credential_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=ab"
                .parse()
                .unwrap(),
        );
        let c = sigv4_credentials(&h, None);
        assert_eq!(c.access_key.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(sigv4_credentials(&HeaderMap::new(), None), Credentials::default());
        let q = sigv4_credentials(&HeaderMap::new(), Some("AK/20261122/ap-south-1/ec2/aws4_request"));
        assert_eq!(q.region.as_deref(), Some("ap-south-1"));
    }

    #[test]
    fn reads_the_alibaba_access_key_from_acs3_or_the_parameter() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            "ACS3-HMAC-SHA256 Credential=LTAIexample,SignedHeaders=host;x-acs-action,Signature=ab".parse().unwrap(),
        );
        assert_eq!(acs_credentials(&h, None).access_key.as_deref(), Some("LTAIexample"));
        assert_eq!(acs_credentials(&HeaderMap::new(), Some("LTAIlegacy")).access_key.as_deref(), Some("LTAIlegacy"));
        assert_eq!(acs_credentials(&HeaderMap::new(), None), Credentials::default());
    }
}
