//! On a shared store a replica writing alone commits without the writer lock; once a
//! commit is refused because another replica holds the lock (or lost a race), it takes
//! the lock, commits under it, and keeps taking it first for `contended_for`. A write is
//! planned without catching up first, so what it refuses, and whether its caller may
//! make it, is decided again on the store's latest state.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use rand::SeedableRng;
use tapwire_control::ops::{Operation, Output, RequestContext, Standing};
use tapwire_control::{ApiError, Control, ControlConfig, Dialect, ErrorKind, State, SystemClock};
use tapwire_model::{AccountId, FilterId};
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
    /// The store's revision and changes cannot be read (the database went away).
    reads_fail: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

impl SharedStore {
    fn reading(&self) -> Result<(), StoreError> {
        if self.reads_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the database went away".into()));
        }
        Ok(())
    }

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
    support::pass_to_inner!(except_reads);
    fn revision(&self) -> Result<u64, StoreError> {
        self.reading()?;
        self.inner.revision()
    }
    fn changes_since(&self, after: u64) -> Result<Option<tapwire_store::ChangeSet>, StoreError> {
        self.reading()?;
        self.inner.changes_since(after)
    }
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

fn execute(control: &Control, op: Operation, standing: Option<Arc<dyn Standing>>) -> Result<Output, ApiError> {
    let ctx = RequestContext { standing, ..RequestContext::system(AccountId::DEFAULT, "us-east-1") };
    control.execute(&ctx, Dialect::Ec2, op)
}

fn new_filter() -> Operation {
    Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] }
}

fn create_filter(control: &Control) -> FilterId {
    match execute(control, new_filter(), None).unwrap() {
        Output::Filter(view) => view.filter.id,
        other => panic!("a create answered {other:?}"),
    }
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

#[test]
fn a_write_refused_on_a_state_behind_the_store_is_planned_again_once_caught_up() {
    let store = Arc::new(SharedStore::default());
    let (a, b) = (control(&store, Duration::ZERO), control(&store, Duration::ZERO));
    let made_on_a = create_filter(&a);
    assert!(b.read().filters.is_empty(), "b has not caught up");
    // On b's own state the filter does not exist; the store says b is behind.
    execute(&b, Operation::DeleteFilter(made_on_a), None).unwrap();
    assert!(b.read().filters.is_empty());
    a.catch_up().unwrap();
    assert!(a.read().filters.is_empty(), "the delete reached the store");
}

/// Allows a write only while no filter exists.
#[derive(Debug)]
struct OnlyTheFirstFilter;

impl Standing for OnlyTheFirstFilter {
    fn check(&self, state: &State, _: &Operation) -> Result<(), ApiError> {
        if state.filters.is_empty() { Ok(()) } else { Err(ApiError::new(ErrorKind::Unauthorized, "not any more")) }
    }
}

#[test]
fn a_callers_standing_is_checked_on_the_state_the_write_lands_on() {
    let store = Arc::new(SharedStore::default());
    let (a, b) = (control(&store, Duration::ZERO), control(&store, Duration::ZERO));
    create_filter(&a);
    // Planned on b's own state (no filter) the write is allowed; it lands only on the
    // store's, where a filter exists, and there it is not.
    let refused = execute(&b, new_filter(), Some(Arc::new(OnlyTheFirstFilter))).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unauthorized);
    assert_eq!(store.inner.revision().unwrap(), 1, "nothing written");
    assert_eq!(b.read().filters.len(), 1, "b caught up");
}

#[test]
fn a_refusal_that_cannot_be_proved_current_is_the_stores_error() {
    let store = Arc::new(SharedStore::default());
    let (a, b) = (control(&store, Duration::ZERO), control(&store, Duration::ZERO));
    let made_on_a = create_filter(&a);
    store.reads_fail.store(true, Ordering::SeqCst);
    // On b's own state the filter does not exist; that cannot be checked against the
    // store, so the answer is not NotFound but "cannot reach the store".
    let refused = execute(&b, Operation::DeleteFilter(made_on_a), None).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unavailable, "{refused:?}");
    store.reads_fail.store(false, Ordering::SeqCst);
    execute(&b, Operation::DeleteFilter(made_on_a), None).unwrap();
}
