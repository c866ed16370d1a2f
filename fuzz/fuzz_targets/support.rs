//! What the request targets share: a small world to run requests against, built the same
//! way for every input so a crash reproduces from its input alone.

use tapwire_control::ops::{InterfaceRegistration, NewSession, Operation};
use tapwire_control::testing::{self, context};
use tapwire_control::{Control, ControlConfig, Dialect};
use tapwire_model::SessionNumber;
use tapwire_model::resource::{SessionTarget, TargetDestination};

/// The API over [`world`], with default settings.
pub fn api() -> tapwire_api::Api {
    tapwire_api::Api::unauthenticated(world(), tapwire_api::ApiConfig::default())
}

/// A control plane holding two interfaces, a target, a filter and a session in
/// `us-east-1`, and the Alibaba service opened in `cn-hangzhou`.
pub fn world() -> Control {
    let control = testing::control(1, ControlConfig::default());
    let ctx = context("us-east-1");
    let run = |op| control.execute(&ctx, Dialect::Ec2, op).expect("fixture op");
    let register = |host: &str, ip: &str| {
        let reg = InterfaceRegistration::on_host(host, "eth0", vec![ip.parse().expect("ip")]);
        run(Operation::RegisterInterface(reg)).into_interface().expect("interface").id
    };
    let source = register("web1", "198.18.0.2");
    let sensor = register("sensor1", "198.18.1.2");
    let target = run(Operation::CreateTarget {
        destination: TargetDestination::NetworkInterface(sensor),
        description: Some("sensor".into()),
        tags: vec![],
    })
    .into_target()
    .expect("target")
    .id;
    let filter = run(Operation::CreateFilter {
        name: None,
        description: Some("web".into()),
        tags: vec![],
        resource_group: None,
        rules: vec![],
    })
    .into_filter()
    .expect("filter")
    .filter
    .id;
    let number = SessionNumber::new(1).expect("1");
    run(Operation::CreateSession(NewSession::new(vec![source], SessionTarget::Target(target), filter, number)));
    control.execute(&context("cn-hangzhou"), Dialect::Alibaba, Operation::OpenService).expect("open");
    control
}

/// Splits an input into a query string and a form body at the first `\n`.
pub fn split(data: &[u8]) -> (Option<String>, Vec<u8>) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (Some(String::from_utf8_lossy(&data[..at]).into_owned()), data[at + 1..].to_vec()),
        None => (None, data.to_vec()),
    }
}

// The fixture's IDs (seeded), which the seed inputs use:
// interfaces eni-611830d3641a68f94 (web1) and eni-25d1f4b0dac948325 (sensor1),
// target tmt-d32564371735f32c5, filter tmf-e24d2a413b159584c, session tms-eccfc4caa8cd7b63c.
