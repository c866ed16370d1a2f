//! tapwire's durable store.
//!
//! The control plane keeps its working state in memory and persists it here as
//! *documents*: `(kind, id) → JSON body`. A [`Commit`] is a set of puts and deletes that
//! lands in one transaction and bumps the store's revision by one. That is the whole
//! contract, so a backend is small: the embedded SQLite one ([`SqliteStore`]) and an
//! in-memory one for tests ([`MemoryStore`]) implement the three methods of [`Store`]; a
//! PostgreSQL backend would implement the same three, with no change to control logic.
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

/// A durable, transactional document store.
pub trait Store: Send + Sync + 'static {
    /// Reads every document and the current revision.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies `commit` atomically; returns the new revision.
    fn commit(&self, commit: &Commit) -> Result<u64, StoreError>;
    /// The current revision (cheap; lets a replica notice another's writes).
    fn revision(&self) -> Result<u64, StoreError>;
}
