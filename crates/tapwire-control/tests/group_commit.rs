//! Group commit: concurrent writes share transactions, yet each sees the ones before it.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod support;

use rand::SeedableRng;
use tapwire_control::ops::{IdempotencyKey, NewRule, Operation, Output, RequestContext};
use tapwire_control::{Control, ControlConfig, Dialect, ErrorKind, SystemClock};
use tapwire_model::AccountId;
use tapwire_model::rule::{Direction, RuleAction, RuleMatch};
use tapwire_store::{Commit, SqliteStore, Store, StoreError};

/// Counts commits so the test can show how many writes shared one.
struct CountingStore {
    inner: SqliteStore,
    commits: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    support::pass_to_inner!();
    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit(commit)
    }
}

fn ctx(token: Option<&str>) -> RequestContext {
    RequestContext {
        idempotency: token.map(|t| IdempotencyKey {
            action: "CreateTrafficMirrorFilter",
            token: t.into(),
            fingerprint: "same".into(),
        }),
        ..RequestContext::system(AccountId::DEFAULT, "us-east-1")
    }
}

fn create_filter() -> Operation {
    Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] }
}

#[test]
fn concurrent_writes_all_land_and_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let store = CountingStore { inner: SqliteStore::open_dir(dir.path()).unwrap(), commits: commits.clone() };
    let control = Arc::new(
        Control::open(
            Box::new(store),
            Box::new(SystemClock),
            Box::new(rand::rngs::StdRng::seed_from_u64(3)),
            ControlConfig::default(),
        )
        .unwrap(),
    );
    let Output::Filter(view) = control.execute(&ctx(None), Dialect::Ec2, create_filter()).unwrap() else { panic!() };
    let filter_id = view.filter.id;

    // 8 threads: each creates 40 filters, one filter with a shared ClientToken, and tries
    // rule number 7 (exactly one of those may win).
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let control = control.clone();
            std::thread::spawn(move || {
                let mut created = Vec::new();
                for _ in 0..40 {
                    let Output::Filter(v) = control.execute(&ctx(None), Dialect::Ec2, create_filter()).unwrap() else {
                        panic!()
                    };
                    created.push(v.filter.id);
                }
                let Output::Filter(shared) =
                    control.execute(&ctx(Some("shared-token")), Dialect::Ec2, create_filter()).unwrap()
                else {
                    panic!()
                };
                let rule = NewRule {
                    direction: Direction::Ingress,
                    number: tapwire_model::RuleNumber::new(7).unwrap(),
                    action: RuleAction::Accept,
                    matches: RuleMatch {
                        protocol: None,
                        source_cidr: "0.0.0.0/0".parse().unwrap(),
                        destination_cidr: "0.0.0.0/0".parse().unwrap(),
                        source_ports: None,
                        destination_ports: None,
                    },
                    description: None,
                    tags: vec![],
                };
                let rule_result = control.execute(&ctx(None), Dialect::Ec2, Operation::CreateRule { filter_id, rule });
                (created, shared.filter.id, rule_result.map(|_| ()).map_err(|e| e.kind))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let created: Vec<_> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let state = control.read();
    assert!(created.iter().all(|id| state.filters.contains_key(id)));
    let shared: std::collections::HashSet<_> = results.iter().map(|r| r.1).collect();
    assert_eq!(shared.len(), 1, "one ClientToken, one filter");
    let winners = results.iter().filter(|r| r.2.is_ok()).count();
    assert_eq!(winners, 1);
    assert!(results.iter().filter_map(|r| r.2.clone().err()).all(|k| k == ErrorKind::RuleAlreadyExists));
    // 1 + 8*40 + 1 filters, one rule.
    assert_eq!(state.filters.len(), 322);
    assert_eq!(state.rules.len(), 1);

    // The same holds for a control plane that loads the store from disk.
    let reopened = Control::open(
        Box::new(SqliteStore::open_dir(dir.path()).unwrap()),
        Box::new(SystemClock),
        Box::new(rand::rngs::StdRng::seed_from_u64(4)),
        ControlConfig::default(),
    )
    .unwrap();
    assert_eq!(reopened.read().filters.len(), 322);
    println!("{} writes landed in {} commits", 1 + 8 * 42, commits.load(Ordering::Relaxed));
}

/// A second replica on the same store: it catches up from the change feed alone, to the
/// state a full load gives, and a write it loses the race for lands after its catch-up.
#[test]
fn a_replica_catches_up_from_the_change_feed_to_what_a_load_gives() {
    let dir = tempfile::tempdir().unwrap();
    let open = |seed| {
        Control::open(
            Box::new(SqliteStore::open_dir(dir.path()).unwrap()),
            Box::new(SystemClock),
            Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
            ControlConfig::default(),
        )
        .unwrap()
    };
    let (a, b) = (open(1), open(2));
    let mut filters = Vec::new();
    for _ in 0..5 {
        let Output::Filter(v) = a.execute(&ctx(None), Dialect::Ec2, create_filter()).unwrap() else { panic!() };
        filters.push(v.filter.id);
    }
    a.execute(&ctx(Some("token")), Dialect::Ec2, create_filter()).unwrap();
    a.execute(&ctx(None), Dialect::Ec2, Operation::DeleteFilter(filters[0])).unwrap();
    assert_eq!(b.read().filters.len(), 0, "b has not looked yet");

    let revision = b.catch_up().unwrap();
    let (caught, loaded) = (
        b.read(),
        tapwire_control::State::from_snapshot(SqliteStore::open_dir(dir.path()).unwrap().load().unwrap()).unwrap(),
    );
    assert_eq!(revision, loaded.revision);
    assert_eq!(caught.filters, loaded.filters);
    assert_eq!(caught.idempotency, loaded.idempotency);
    assert_eq!(caught.index, loaded.index);
    assert!(!caught.filters.contains_key(&filters[0]));

    // a moves on; b's next write loses the race, catches up and lands on top.
    a.execute(&ctx(None), Dialect::Ec2, create_filter()).unwrap();
    let Output::Filter(v) = b.execute(&ctx(None), Dialect::Ec2, create_filter()).unwrap() else { panic!() };
    a.catch_up().unwrap();
    assert!(a.read().filters.contains_key(&v.filter.id));
    assert_eq!(a.read().filters.len(), 7);
    assert_eq!(a.read().revision, b.read().revision);
}
