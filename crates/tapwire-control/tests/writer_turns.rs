//! On a shared store a replica writing alone commits without the writer lock; once a
//! commit is refused because another replica holds the lock (or lost a race), it takes
//! the lock, commits under it, and keeps taking it first for `contended_for`.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use rand::SeedableRng;
use tapwire_control::ops::{Operation, Output, RequestContext};
use tapwire_control::{Control, ControlConfig, Dialect, SystemClock};
use tapwire_model::AccountId;
use tapwire_store::{Commit, MemoryStore, Store, StoreError};

/// What the control plane asked of the store, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Lock,
    Unlock,
    Commit { unlocked: bool },
}

/// A shared store in memory whose writer lock "another replica" may hold: then a commit
/// made without the lock is refused, as PostgreSQL's is, until this replica asks for the
/// lock (which the other gives back at once).
#[derive(Default)]
struct SharedStore {
    inner: MemoryStore,
    held_elsewhere: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

impl SharedStore {
    fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// The control plane's handle on the shared store; the test keeps another.
struct Handle(Arc<SharedStore>);

impl std::ops::Deref for Handle {
    type Target = SharedStore;
    fn deref(&self) -> &SharedStore {
        &self.0
    }
}

impl Store for Handle {
    support::pass_to_inner!();
    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.calls.lock().unwrap().push(Call::Commit { unlocked: commit.unlocked });
        if commit.unlocked && self.held_elsewhere.load(Ordering::SeqCst) {
            return Err(StoreError::Busy("another replica holds the writer lock".into()));
        }
        self.inner.commit(commit)
    }
    fn shared(&self) -> bool {
        true
    }
    fn begin_writes(&self) -> Result<Option<u64>, StoreError> {
        self.calls.lock().unwrap().push(Call::Lock);
        self.held_elsewhere.store(false, Ordering::SeqCst);
        self.inner.revision().map(Some)
    }
    fn end_writes(&self) {
        self.calls.lock().unwrap().push(Call::Unlock);
    }
}

fn control(store: &Arc<SharedStore>, contended_for: Duration) -> Control {
    let config = ControlConfig { contended_for, ..ControlConfig::default() };
    let entropy = Box::new(rand::rngs::StdRng::seed_from_u64(5));
    Control::open(Box::new(Handle(store.clone())), Box::new(SystemClock), entropy, config).unwrap()
}

fn create_filter(control: &Control) {
    let ctx = RequestContext {
        account: AccountId::DEFAULT,
        region: "us-east-1".into(),
        dry_run: false,
        idempotency: None,
        audit: None,
    };
    let op =
        Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] };
    assert!(matches!(control.execute(&ctx, Dialect::Ec2, op).unwrap(), Output::Filter(_)));
}

const UNLOCKED: Call = Call::Commit { unlocked: true };
const LOCKED: Call = Call::Commit { unlocked: false };

#[test]
fn a_replica_alone_commits_unlocked_and_takes_turns_once_refused() {
    let store = Arc::new(SharedStore::default());
    let control = control(&store, Duration::from_secs(3600));
    create_filter(&control);
    assert_eq!(store.take_calls(), [UNLOCKED], "alone: no lock");

    store.held_elsewhere.store(true, Ordering::SeqCst);
    create_filter(&control);
    assert_eq!(store.take_calls(), [UNLOCKED, Call::Lock, LOCKED, Call::Unlock], "refused, then its turn");

    // Within the window, the lock first: no unlocked commit to be refused again.
    store.held_elsewhere.store(true, Ordering::SeqCst);
    create_filter(&control);
    assert_eq!(store.take_calls(), [Call::Lock, LOCKED, Call::Unlock]);
    assert_eq!(control.read().filters.len(), 3);
    assert_eq!(store.inner.revision().unwrap(), 3);
}

#[test]
fn past_the_window_a_replica_commits_unlocked_again() {
    let store = Arc::new(SharedStore::default());
    let control = control(&store, Duration::ZERO);
    store.held_elsewhere.store(true, Ordering::SeqCst);
    create_filter(&control);
    assert_eq!(store.take_calls(), [UNLOCKED, Call::Lock, LOCKED, Call::Unlock]);
    create_filter(&control);
    assert_eq!(store.take_calls(), [UNLOCKED]);
    assert_eq!(control.read().filters.len(), 2);
}
