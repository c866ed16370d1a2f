//! tapwire's durable store.
//!
//! The control plane keeps its working state in memory and persists it here as
//! *documents*: `(kind, id) → JSON body`. A [`Commit`] is a set of puts and deletes that
//! lands in one transaction and bumps the store's revision by one. That is the whole
//! contract, so a backend is small: the embedded SQLite one ([`SqliteStore`]), the shared
//! PostgreSQL one for several replicas ([`PostgresStore`]) and an in-memory one for tests
//! ([`MemoryStore`]) implement [`Store`], with no change to control logic.
//!
//! Every commit also records which documents it touched (the change feed), so a replica
//! that fell behind reads only what changed since its revision ([`Store::changes_since`]).
//!
//! A shared store also carries agents' telemetry between replicas ([`TelemetryRow`]):
//! the latest state per interface, outside the revision, last report wins.
//!
//! Beside the documents, a store keeps an append-only log of [`Record`]s (the audit
//! trail), appended with a commit or alone, read newest first, pruned by age and count.
//!
//! Invariants:
//! - A commit is atomic and durable before [`Store::commit`] returns: an acknowledged write
//!   survives `kill -9` (SQLite WAL with `synchronous=FULL`).
//! - Commits are optimistic: each names the revision it was computed against, and fails
//!   with [`StoreError::Conflict`] if another writer (another replica) got there first.
//! - The change feed is complete from its start revision on: a reader behind that (the
//!   feed keeps [`FEED_REVISIONS`] revisions) gets `None` and loads everything.

mod memory;
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// How many revisions of the change feed a store keeps.
pub const FEED_REVISIONS: u64 = 100_000;

/// What changed after a revision: each touched document as it is now (or gone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// The revision these changes bring a reader to.
    pub revision: u64,
    /// Documents put (their bodies as of `revision`).
    pub puts: Vec<StoredDocument>,
    /// `(kind, id)` of documents deleted.
    pub deletes: Vec<(String, String)>,
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Document kind, e.g. `filter`, `session`, `idempotency`.
    pub kind: &'static str,
    /// Identity within the kind.
    pub id: String,
    /// JSON body.
    pub body: String,
}

/// A document loaded from the store; the kind is owned because it comes from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Document kind.
    pub kind: String,
    /// Identity within the kind.
    pub id: String,
    /// JSON body.
    pub body: String,
}

/// Everything the store holds, at one revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Number of commits so far.
    pub revision: u64,
    /// Every document.
    pub documents: Vec<StoredDocument>,
}

/// A set of changes applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Revision the changes were computed against.
    pub base_revision: u64,
    /// Documents to insert or replace.
    pub puts: Vec<Document>,
    /// `(kind, id)` of documents to delete; deleting a missing document is not an error.
    pub deletes: Vec<(&'static str, String)>,
    /// Records appended in the same transaction (a write's audit record).
    pub records: Vec<Record>,
    /// Made without asking for the writer lock ([`Store::begin_writes`]): a shared store
    /// refuses it with [`StoreError::Busy`] while another writer holds the lock, so a
    /// replica writing on its own never overtakes one that waited its turn.
    pub unlocked: bool,
}

/// An append-only record (the audit trail). Records are not documents: the state does
/// not load them, and appending one alone does not move the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record kind, e.g. `audit`.
    pub kind: &'static str,
    /// When (seconds since the epoch).
    pub at: i64,
    /// The account it belongs to, for filtering.
    pub account: Option<String>,
    /// The action, for filtering.
    pub action: String,
    /// JSON body.
    pub body: String,
}

/// A record read back, with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Increasing position; later records have larger IDs.
    pub id: u64,
    /// JSON body.
    pub body: String,
}

/// Which records to read: newest first.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    /// Record kind.
    pub kind: &'static str,
    /// Only this account's.
    pub account: Option<String>,
    /// Only records at or after this time.
    pub since: Option<i64>,
    /// Only actions matching this pattern (`*` and `?` wildcards).
    pub action: Option<String>,
    /// Only records older than this position (paging).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// The latest telemetry of one agent's interface, as replicas share it: last report wins.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryRow {
    /// The interface.
    pub key: String,
    /// When the report it holds arrived (seconds since the epoch): a row never replaces
    /// a later one.
    pub at: f64,
    /// JSON body.
    pub body: String,
}

/// How many telemetry rows one [`Store::telemetry_since`] returns at most.
pub const TELEMETRY_PAGE: usize = 1_000;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another writer committed first; reload and retry.
    #[error("store revision moved from {expected} to {actual}")]
    Conflict {
        /// Revision the commit was computed against.
        expected: u64,
        /// Revision found in the store.
        actual: u64,
    },
    /// The database is busy or locked; retrying may succeed.
    #[error("store busy: {0}")]
    Busy(String),
    /// The database cannot be reached (a shared store's server is down or the connection
    /// was lost); it is tried again on the next call.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: I/O, corruption, a failed migration.
    #[error("store failure: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether retrying the same operation (after a reload, for conflicts) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::Busy(_))
    }
}

/// A durable, transactional document store with an append-only record log beside it.
pub trait Store: Send + Sync + 'static {
    /// Reads every document and the current revision.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies `commit` atomically; returns the new revision.
    fn commit(&self, commit: &Commit) -> Result<u64, StoreError>;
    /// The current revision (cheap; lets a replica notice another's writes).
    fn revision(&self) -> Result<u64, StoreError>;
    /// What changed after revision `after`, or `None` when the feed no longer reaches back
    /// that far (load everything instead).
    fn changes_since(&self, after: u64) -> Result<Option<ChangeSet>, StoreError>;
    /// Whether other processes write to this store (replicas): readers then check the
    /// revision before answering, and follow [`Store::wait_for_change`].
    fn shared(&self) -> bool {
        false
    }
    /// Waits up to `timeout` for word of a commit (any writer's); the highest revision
    /// heard of. `None` when no word came in time, or a store without such word slept the
    /// timeout: callers check the revision then.
    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<Option<u64>, StoreError> {
        std::thread::sleep(timeout);
        Ok(None)
    }
    /// Takes the store's writer lock, held until [`Store::end_writes`]: while one replica
    /// holds it, the others wait for it or see their [`Commit::unlocked`] commits refused,
    /// so a replica that caught up under it commits without a conflict (the revision
    /// check stays, as a safety net). A store of one process has nothing to take. The
    /// store's revision once the lock is held, when the same round trip read it (then a
    /// writer that is not behind need not ask again).
    fn begin_writes(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Gives the writer lock back.
    fn end_writes(&self) {}
    /// Whether this process is the one among the store's writers that runs background
    /// work (Alibaba lifecycle tasks, expiry). Held until the process or its connection
    /// goes, then taken by the next to ask. A store of one process always leads.
    fn lead(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Writes telemetry rows in one transaction, each unless the store holds a later one
    /// for its key. Only a shared store keeps them (one process has them in memory).
    fn put_telemetry(&self, rows: &[TelemetryRow]) -> Result<(), StoreError> {
        let _ = rows;
        Ok(())
    }
    /// Telemetry rows written after position `cursor`, at most [`TELEMETRY_PAGE`], and the
    /// position to ask from next.
    fn telemetry_since(&self, cursor: u64) -> Result<(Vec<TelemetryRow>, u64), StoreError> {
        Ok((Vec::new(), cursor))
    }
    /// Drops the telemetry of every key not in `keep`; returns how many went.
    fn retain_telemetry(&self, keep: &[String]) -> Result<usize, StoreError> {
        let _ = keep;
        Ok(0)
    }
    /// Appends records in one transaction, outside any commit (the revision stays).
    fn append(&self, records: &[Record]) -> Result<(), StoreError>;
    /// Reads records, newest first.
    fn records(&self, query: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError>;
    /// Drops records of `kind` older than `before`, and the oldest beyond `keep`; returns
    /// how many went.
    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError>;
}
