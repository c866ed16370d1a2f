//! An in-memory backend with the same contract as SQLite's but no durability: for tests,
//! fuzzing and benchmarks of the logic above the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Commit, Snapshot, Store, StoreError, StoredDocument};

/// Documents in a map; commits are atomic and optimistic like every backend's.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    revision: u64,
    documents: BTreeMap<(String, String), String>,
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
            inner.revision += 1;
            Ok(inner.revision)
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.with(|inner| Ok(inner.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    #[test]
    fn behaves_like_a_store() {
        let store = MemoryStore::new();
        let put = Document { kind: "filter", id: "tmf-1".into(), body: "{}".into() };
        assert_eq!(store.commit(&Commit { base_revision: 0, puts: vec![put], deletes: vec![] }).unwrap(), 1);
        assert!(matches!(
            store.commit(&Commit { base_revision: 0, puts: vec![], deletes: vec![] }),
            Err(StoreError::Conflict { expected: 0, actual: 1 })
        ));
        store.commit(&Commit { base_revision: 1, puts: vec![], deletes: vec![("filter", "tmf-1".into())] }).unwrap();
        let snap = store.load().unwrap();
        assert_eq!((snap.revision, snap.documents.len()), (2, 0));
    }
}
