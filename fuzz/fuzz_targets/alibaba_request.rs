//! Any query string and form body through the Alibaba decoder, every action's parser, the
//! planner and the JSON answer: never a panic, always a JSON object with a RequestId.
#![no_main]

mod support;

use axum::http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tapwire_api::{alibaba, collect_params};
use tapwire_model::AccountId;

fuzz_target!(|data: &[u8]| {
    let (query, body) = support::split(data);
    let pairs = collect_params(query.as_deref(), &HeaderMap::new(), &body);
    let action = pairs.iter().rev().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
    let control = support::world();
    let api = tapwire_api::Api { control, config: tapwire_api::ApiConfig::default() };
    let caller = alibaba::Caller { account: AccountId::DEFAULT };
    let reply = alibaba::handle(&api, &caller, &action, alibaba::params::Params::new(pairs), "fuzz");
    let v: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON answer");
    assert_eq!(v["RequestId"], "fuzz");
});
