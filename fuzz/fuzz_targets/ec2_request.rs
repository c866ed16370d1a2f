//! Any query string and form body through the EC2 decoder, every action's parser, the
//! planner and the XML writer: never a panic, always a well-formed document.
#![no_main]

mod support;

use axum::http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tapwire_api::{collect_params, ec2};
use tapwire_model::AccountId;

fuzz_target!(|data: &[u8]| {
    let (query, body) = support::split(data);
    let mut pairs = collect_params(query.as_deref(), &HeaderMap::new(), &body);
    pairs.push(("Version".into(), ec2::VERSION.into()));
    let control = support::world();
    let caller = ec2::Caller { account: AccountId::DEFAULT, region: "us-east-1".into() };
    let reply = ec2::handle(&control, &caller, ec2::params::Params::new(pairs), "fuzz");
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
