//! An in-memory backend with the same contract as SQLite's but no durability: for tests,
//! fuzzing and benchmarks of the logic above the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{ChangeSet, Commit, Record, RecordQuery, Snapshot, Store, StoreError, StoredDocument, StoredRecord};

/// Documents in a map; commits are atomic and optimistic like every backend's.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    revision: u64,
    documents: BTreeMap<(String, String), String>,
    records: Vec<(u64, Record)>,
    next_record: u64,
    /// `(revision, kind, id)` of every document each commit touched.
    changes: Vec<(u64, String, String)>,
}

impl Inner {
    fn push(&mut self, records: &[Record]) {
        for r in records {
            self.next_record += 1;
            self.records.push((self.next_record, r.clone()));
        }
    }
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        f(&mut inner)
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with(|inner| {
            let documents = inner
                .documents
                .iter()
                .map(|((kind, id), body)| StoredDocument { kind: kind.clone(), id: id.clone(), body: body.clone() })
                .collect();
            Ok(Snapshot { revision: inner.revision, documents })
        })
    }

    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.with(|inner| {
            if inner.revision != commit.base_revision {
                return Err(StoreError::Conflict { expected: commit.base_revision, actual: inner.revision });
            }
            for d in &commit.puts {
                inner.documents.insert((d.kind.to_owned(), d.id.clone()), d.body.clone());
            }
            for (kind, id) in &commit.deletes {
                inner.documents.remove(&((*kind).to_owned(), id.clone()));
            }
            inner.push(&commit.records);
            inner.revision += 1;
            let revision = inner.revision;
            let touched =
                commit.puts.iter().map(|d| (d.kind, &d.id)).chain(commit.deletes.iter().map(|(k, id)| (*k, id)));
            let touched: Vec<_> = touched.map(|(k, id)| (revision, k.to_owned(), id.clone())).collect();
            inner.changes.extend(touched);
            Ok(revision)
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.with(|inner| Ok(inner.revision))
    }

    fn changes_since(&self, after: u64) -> Result<Option<ChangeSet>, StoreError> {
        self.with(|inner| {
            let touched: std::collections::BTreeSet<(String, String)> =
                inner.changes.iter().filter(|(r, _, _)| *r > after).map(|(_, k, id)| (k.clone(), id.clone())).collect();
            let mut set = ChangeSet { revision: inner.revision, ..ChangeSet::default() };
            for (kind, id) in touched {
                match inner.documents.get(&(kind.clone(), id.clone())) {
                    Some(body) => set.puts.push(StoredDocument { kind, id, body: body.clone() }),
                    None => set.deletes.push((kind, id)),
                }
            }
            Ok(Some(set))
        })
    }

    fn append(&self, records: &[Record]) -> Result<(), StoreError> {
        self.with(|inner| {
            inner.push(records);
            Ok(())
        })
    }

    fn records(&self, q: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.with(|inner| {
            Ok(inner
                .records
                .iter()
                .rev()
                .filter(|(id, r)| {
                    r.kind == q.kind
                        && q.account.as_ref().is_none_or(|a| r.account.as_ref() == Some(a))
                        && q.since.is_none_or(|s| r.at >= s)
                        && q.action.as_ref().is_none_or(|p| tapwire_model::wildcard::matches(p, &r.action))
                        && q.before.is_none_or(|b| *id < b)
                })
                .take(q.limit)
                .map(|(id, r)| StoredRecord { id: *id, body: r.body.clone() })
                .collect())
        })
    }

    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError> {
        self.with(|inner| {
            let start = inner.records.len();
            inner.records.retain(|(_, r)| r.kind != kind || r.at >= before);
            let of_kind: Vec<u64> = inner.records.iter().filter(|(_, r)| r.kind == kind).map(|(id, _)| *id).collect();
            if of_kind.len() > keep {
                let cut = of_kind[of_kind.len() - keep - 1];
                inner.records.retain(|(id, r)| r.kind != kind || *id > cut);
            }
            Ok(start - inner.records.len())
        })
    }
}
