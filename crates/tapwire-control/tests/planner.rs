//! The planner's rules, one row per check and quota: each row builds a small world on an
//! in-memory store, runs one operation that must be refused, and checks the error kind
//! and that the refusal wrote nothing. A second table runs the same operations' happy
//! paths. No disk, no root, no network: `cargo test -p tapwire-control` catches a broken
//! rule in a second.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

#[path = "planner/refusals.rs"]
mod refusals;
#[path = "planner/world.rs"]
mod world;

use std::collections::BTreeSet;

use Dialect::{Alibaba, Ec2, Tapwire};
use ErrorKind as K;
use tapwire_control::ops::{
    IdempotencyKey, Operation, ResourceRef, RuleChanges, SessionChanges, TagSelector, Task, Update,
};
use tapwire_control::testing::{self, context};
use tapwire_control::{Dialect, ErrorKind};
use tapwire_model::resource::{NetworkService, ResourceStatus, SessionTarget, TargetDestination};
use tapwire_model::rule::{Direction, PortRange};
use tapwire_model::{AccountId, Vni};

use refusals::*;
use world::*;

#[test]
fn every_check_and_quota_refuses_and_writes_nothing() {
    let mut kinds = BTreeSet::new();
    for case in REFUSALS {
        let mut w = World::with_quotas((case.quotas)());
        let op = (case.setup)(&mut w);
        let before = w.control.read();
        let err = w.run(case.dialect, op).expect_err(case.name);
        assert_eq!(err.kind, case.expect, "{}: {}", case.name, err.message);
        assert!(!err.message.is_empty(), "{}", case.name);
        let after = w.control.read();
        assert_eq!(after.revision, before.revision, "{}: a refusal wrote", case.name);
        assert_index_consistent(&w);
        kinds.insert(format!("{:?}", case.expect));
    }
    assert!(kinds.len() >= 30, "only {} distinct kinds covered", kinds.len());
}

#[test]
fn dry_run_checks_everything_and_writes_nothing() {
    let mut w = World::new();
    let m = w.mirrored();
    let dry = |token: Option<&str>| {
        let mut ctx = context(REGION);
        ctx.dry_run = true;
        ctx.idempotency = token.map(|t| IdempotencyKey { action: "A", token: t.into(), fingerprint: "f".into() });
        ctx
    };
    let before = w.control.read().revision;
    let err = w.control.execute(&dry(None), Ec2, create_filter_op()).unwrap_err();
    assert_eq!(err.kind, K::DryRunOperation);
    // A dry run of something that would fail fails with that error, not DryRunOperation.
    let err = w.control.execute(&dry(None), Ec2, Operation::DeleteFilter(m.filter)).unwrap_err();
    assert_eq!(err.kind, K::FilterInUse);
    assert_eq!(w.control.read().revision, before);
}

#[test]
fn client_tokens_replay_and_refuse_other_parameters() {
    let w = World::new();
    let with =
        |fingerprint: &str| testing::with_token(context(REGION), "CreateTrafficMirrorFilter", "t-1", fingerprint);
    let first = w.control.execute(&with("a"), Ec2, create_filter_op()).unwrap().into_filter().unwrap();
    let again = w.control.execute(&with("a"), Ec2, create_filter_op()).unwrap().into_filter().unwrap();
    assert_eq!(first.filter.id, again.filter.id);
    assert_eq!(w.control.read().filters.len(), 1);
    let err = w.control.execute(&with("b"), Ec2, create_filter_op()).unwrap_err();
    assert_eq!(err.kind, K::IdempotentParameterMismatch);
}

#[test]
fn happy_paths_change_what_they_say() {
    let mut w = World::new();
    let m = w.mirrored();
    // Rules: create, modify (ports need TCP), delete.
    let rule = w.rule(m.filter, Direction::Ingress, 10);
    let changes = RuleChanges {
        protocol: Update::Set(6),
        destination_ports: Update::Set(PortRange::new(443, 443).unwrap()),
        ..RuleChanges::default()
    };
    let modified = w.ec2(Operation::ModifyRule { rule_id: rule, changes }).into_rule().unwrap();
    assert_eq!(modified.matches.destination_ports, PortRange::new(443, 443));
    // Network services.
    let add: BTreeSet<_> = [NetworkService::AmazonDns].into();
    let view = w
        .ec2(Operation::ModifyNetworkServices { filter_id: m.filter, add, remove: BTreeSet::new() })
        .into_filter()
        .unwrap();
    assert!(view.filter.network_services.contains(&NetworkService::AmazonDns));
    assert_eq!(view.rules.len(), 1);
    // Session: VNI removed draws a fresh one; packet length set.
    let changes = SessionChanges {
        vni: Update::Set(Vni::new(7).unwrap()),
        packet_length: Update::Set(tapwire_model::PacketLength::new(128).unwrap()),
        ..SessionChanges::default()
    };
    let s = w.ec2(Operation::ModifySession { session_id: m.session, changes }).into_session().unwrap();
    assert_eq!((s.vni.get(), s.packet_length.map(|l| l.get())), (7, Some(128)));
    let s = w
        .ec2(Operation::ModifySession {
            session_id: m.session,
            changes: SessionChanges { vni: Update::Remove, ..SessionChanges::default() },
        })
        .into_session()
        .unwrap();
    assert_ne!(s.vni.get(), 7);
    // Tags: upsert keeps position, value-conditional delete.
    let r = ResourceRef::Session(m.session);
    w.ec2(Operation::CreateTags { resources: vec![r], tags: vec![tag("a", "1"), tag("b", "2")] });
    w.ec2(Operation::CreateTags { resources: vec![r], tags: vec![tag("a", "3")] });
    w.ec2(Operation::DeleteTags {
        resources: vec![r],
        tags: vec![TagSelector { key: "b".into(), value: Some("x".into()) }],
    });
    assert_eq!(w.control.read().sessions[&m.session].tags, vec![tag("a", "3"), tag("b", "2")]);
    // NLB targets default to 8500 bytes.
    let nlb = w
        .ec2(Operation::CreateTarget {
            destination: TargetDestination::NetworkLoadBalancer(NLB.into()),
            description: None,
            tags: vec![],
        })
        .into_target()
        .unwrap();
    let other = w.iface(true);
    let s = w
        .ec2(Operation::CreateSession(new_session(other, SessionTarget::Target(nlb.id), m.filter, 1)))
        .into_session()
        .unwrap();
    assert_eq!(s.packet_length.map(|l| l.get()), Some(8500));
    // Deregistering a source removes its sessions.
    w.run(Tapwire, Operation::DeregisterInterface(m.source)).unwrap();
    assert!(!w.control.read().sessions.contains_key(&m.session));
    // Deletes, in dependency order.
    w.ec2(Operation::DeleteSession(s.id));
    w.ec2(Operation::DeleteTarget(m.target));
    w.ec2(Operation::DeleteFilter(m.filter));
    assert!(w.control.read().rules.is_empty());
    assert_index_consistent(&w);
}

#[test]
fn accounts_and_keys_are_made_kept_and_deleted() {
    let w = World::new();
    let root = w.account_root();
    assert_eq!(root, AccountId::DEFAULT, "the root owns what was made before accounts");
    let team = w.account("team");
    assert_ne!(team, root);
    let key = w.run(Tapwire, key_op(team, "TWAKHAPPY00000000000")).unwrap().into_access_key().unwrap();
    assert_eq!((key.account, key.policy), (team, None));
    let state = w.control.read();
    assert!(state.accounts[&team].name == "team" && !state.accounts[&team].root && state.accounts[&root].root);
    assert_eq!(state.access_keys_of(team).count(), 1);
    w.run(Tapwire, Operation::DeleteAccessKey("TWAKHAPPY00000000000".into())).unwrap();
    assert!(w.control.read().access_keys.is_empty());
}

#[test]
fn alibaba_changes_wait_for_their_task() {
    let w = World::new();
    w.open_alibaba();
    let f = w.run(Alibaba, create_filter_op()).unwrap().into_filter().unwrap().filter;
    assert_eq!(f.status, ResourceStatus::Creating);
    let task = Task { resource: ResourceRef::Filter(f.id), status: ResourceStatus::Creating };
    w.control.complete_task(task, &f.scope).unwrap();
    assert_eq!(w.control.read().filters[&f.id].status, ResourceStatus::Created);
    // A finished task run again changes nothing.
    let rev = w.control.read().revision;
    w.control.complete_task(task, &f.scope).unwrap();
    assert_eq!(w.control.read().filters[&f.id].status, ResourceStatus::Created);
    assert!(w.control.read().revision >= rev);
    // ICMP follows the family when an Alibaba change moves the rule to IPv6.
    let rule = w.rule(f.id, Direction::Ingress, 1);
    let changes = RuleChanges {
        protocol: Update::Set(1),
        source_cidr: Some("::/0".parse().unwrap()),
        destination_cidr: Some("2001:db8::/32".parse().unwrap()),
        ..RuleChanges::default()
    };
    let r = w.run(Alibaba, Operation::ModifyRule { rule_id: rule, changes }).unwrap().into_rule().unwrap();
    assert_eq!(r.matches.protocol, Some(58));
    assert_eq!(w.control.read().pending_tasks().len(), 1);
    finish_tasks(&w);
    assert!(w.control.read().pending_tasks().is_empty());
    assert_index_consistent(&w);
}

#[test]
fn a_sessions_tapwire_tags_become_its_sampling_and_caps_in_the_agents_document() {
    use tapwire_model::resource::Tag;
    let mut w = World::new();
    let m = w.mirrored();
    let tag = |k: &str, v: &str| Tag { key: k.into(), value: v.into() };
    let tags = vec![tag("tapwire:sample-flows", "0.25"), tag("tapwire:max-pps", "1000"), tag("team", "ids")];
    w.ec2(Operation::CreateTags { resources: vec![ResourceRef::Session(m.session)], tags });
    let document = tapwire_control::render::interface_config(&w.control.read(), m.source, &[]).unwrap();
    let limits = document.sessions[0].limits;
    assert_eq!((limits.sample_flows_ppm, limits.max_pps, limits.max_bps), (Some(250_000), Some(1000), None));
    // Taking the tag off lifts the cap.
    let selectors = vec![TagSelector { key: "tapwire:max-pps".into(), value: None }];
    w.ec2(Operation::DeleteTags { resources: vec![ResourceRef::Session(m.session)], tags: selectors });
    let document = tapwire_control::render::interface_config(&w.control.read(), m.source, &[]).unwrap();
    assert_eq!(document.sessions[0].limits.max_pps, None);
}
