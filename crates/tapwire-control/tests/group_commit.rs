//! Group commit: concurrent writes share transactions, yet each sees the ones before it.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::SeedableRng;
use tapwire_control::ops::{IdempotencyKey, NewRule, Operation, Output, RequestContext};
use tapwire_control::{Control, ControlConfig, Dialect, ErrorKind, SystemClock};
use tapwire_model::AccountId;
use tapwire_model::rule::{Direction, RuleAction, RuleMatch};
use tapwire_store::{Commit, Record, RecordQuery, Snapshot, SqliteStore, Store, StoreError, StoredRecord};

/// Counts commits so the test can show how many writes shared one.
struct CountingStore {
    inner: SqliteStore,
    commits: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }
    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit(commit)
    }
    fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision()
    }
    fn append(&self, records: &[Record]) -> Result<(), StoreError> {
        self.inner.append(records)
    }
    fn records(&self, query: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.records(query)
    }
    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError> {
        self.inner.prune(kind, before, keep)
    }
}

fn ctx(token: Option<&str>) -> RequestContext {
    RequestContext {
        account: AccountId::DEFAULT,
        region: "us-east-1".into(),
        dry_run: false,
        idempotency: token.map(|t| IdempotencyKey {
            action: "CreateTrafficMirrorFilter",
            token: t.into(),
            fingerprint: "same".into(),
        }),
        audit: None,
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

    // The same holds after a reload from disk.
    drop(state);
    control.reload().unwrap();
    assert_eq!(control.read().filters.len(), 322);
    println!("{} writes landed in {} commits", 1 + 8 * 42, commits.load(Ordering::Relaxed));
}
