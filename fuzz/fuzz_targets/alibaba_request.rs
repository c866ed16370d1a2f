//! Any query string and form body through the Alibaba decoder, every action's parser, the
//! planner and the JSON answer: never a panic, always a JSON object with a RequestId.
#![no_main]

mod support;

use axum::http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use tapwire_api::{alibaba, decode};

fuzz_target!(|data: &[u8]| {
    let (query, body) = support::split(data);
    let Ok(decoded) = decode::decode(&Method::POST, query.as_deref(), &HeaderMap::new(), &body) else { return };
    let pairs = decoded.all;
    let action = pairs.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
    let api = support::api();
    let caller = alibaba::Caller::root();
    let reply = alibaba::handle(&api, &caller, &action, alibaba::params::Params::new(pairs), "fuzz");
    let v: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON answer");
    assert_eq!(v["RequestId"], "fuzz");
});
