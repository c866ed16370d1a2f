//! Any query string and form body through the EC2 decoder, every action's parser, the
//! planner and the XML writer: never a panic, always a well-formed document.
#![no_main]

mod support;

use axum::http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use tapwire_api::cancel::Cancel;
use tapwire_api::{decode, ec2};

fuzz_target!(|data: &[u8]| {
    let (query, body) = support::split(data);
    // The door refuses what it must; what it lets through must never break the dialect.
    let Ok(decoded) = decode::decode(&Method::POST, query.as_deref(), &HeaderMap::new(), &body) else { return };
    let mut pairs = decoded.all;
    pairs.retain(|(k, _)| k != "Version");
    pairs.push(("Version".into(), ec2::VERSION.into()));
    let api = support::api();
    let caller = ec2::Caller::root("us-east-1");
    let reply = ec2::handle(&api, &caller, ec2::params::Params::new(pairs), "fuzz", &Cancel::default());
    assert!(reply.status == 200 || (400..600).contains(&reply.status));
    let mut reader = quick_xml::Reader::from_str(&reply.body);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML ({e}): {}", reply.body),
        }
    }
});
