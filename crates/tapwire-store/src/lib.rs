//! tapwire's durable store.
//!
//! The control plane keeps its working state in memory and persists it here as
//! *documents*: `(kind, id) → JSON body`. A [`Commit`] is a set of puts and deletes that
//! lands in one transaction and bumps the store's revision by one. That is the whole
//! contract, so a backend is small: the embedded SQLite one ([`SqliteStore`]) and an
//! in-memory one for tests ([`MemoryStore`]) implement the three methods of [`Store`]; a
//! PostgreSQL backend would implement the same three, with no change to control logic.
//!
//! Beside the documents, a store keeps an append-only log of [`Record`]s (the audit
//! trail), appended with a commit or alone, read newest first, pruned by age and count.
//!
//! Invariants:
//! - A commit is atomic and durable before [`Store::commit`] returns: an acknowledged write
//!   survives `kill -9` (SQLite WAL with `synchronous=FULL`).
//! - Commits are optimistic: each names the revision it was computed against, and fails
//!   with [`StoreError::Conflict`] if another writer (another replica) got there first.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

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

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
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
    /// Appends records in one transaction, outside any commit (the revision stays).
    fn append(&self, records: &[Record]) -> Result<(), StoreError>;
    /// Reads records, newest first.
    fn records(&self, query: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError>;
    /// Drops records of `kind` older than `before`, and the oldest beyond `keep`; returns
    /// how many went.
    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError>;
}
