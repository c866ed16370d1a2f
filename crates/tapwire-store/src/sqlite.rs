//! The embedded SQLite backend: one file under the data directory, WAL mode.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Commit, Snapshot, Store, StoreError, StoredDocument};

/// Schema migrations, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_documents.sql")];

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `tapwire.db` in `dir` and runs pending migrations.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        Self::open(&dir.join("tapwire.db"))
    }

    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(backend)?;
        // FULL: a commit is on disk before we acknowledge it, even across power loss.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        migrate(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        f(&mut conn)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(backend)?
        .try_into()
        .map_err(|_| StoreError::Backend("negative user_version".into()))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {applied} is newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", index + 1).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn read_revision(conn: &Connection) -> Result<u64, StoreError> {
    let value: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    let value = value.ok_or_else(|| StoreError::Backend("meta.revision missing".into()))?;
    u64::try_from(value).map_err(|_| StoreError::Backend("negative revision".into()))
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(backend)?;
            let revision = read_revision(&tx)?;
            let documents = {
                let mut stmt = tx.prepare("SELECT kind, id, body FROM documents").map_err(backend)?;
                let rows = stmt
                    .query_map([], |r| Ok(StoredDocument { kind: r.get(0)?, id: r.get(1)?, body: r.get(2)? }))
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            tx.commit().map_err(backend)?;
            Ok(Snapshot { revision, documents })
        })
    }

    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let actual = read_revision(&tx)?;
            if actual != commit.base_revision {
                return Err(StoreError::Conflict { expected: commit.base_revision, actual });
            }
            {
                let mut put = tx
                    .prepare_cached("INSERT OR REPLACE INTO documents (kind, id, body) VALUES (?1, ?2, ?3)")
                    .map_err(backend)?;
                for d in &commit.puts {
                    put.execute(params![d.kind, d.id, d.body]).map_err(backend)?;
                }
                let mut delete =
                    tx.prepare_cached("DELETE FROM documents WHERE kind = ?1 AND id = ?2").map_err(backend)?;
                for (kind, id) in &commit.deletes {
                    delete.execute(params![kind, id]).map_err(backend)?;
                }
            }
            let next = actual + 1;
            let next_sql = i64::try_from(next).map_err(|_| StoreError::Backend("revision overflow".into()))?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'revision'", params![next_sql]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(next)
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| read_revision(conn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    fn doc(kind: &'static str, id: &str, body: &str) -> Document {
        Document { kind, id: id.into(), body: body.into() }
    }

    #[test]
    fn commits_are_durable_and_bump_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open_dir(dir.path()).unwrap();
            assert_eq!(store.revision().unwrap(), 0);
            let commit = Commit { base_revision: 0, puts: vec![doc("filter", "tmf-1", "{}")], deletes: vec![] };
            assert_eq!(store.commit(&commit).unwrap(), 1);
            let commit = Commit {
                base_revision: 1,
                puts: vec![doc("filter", "tmf-2", "{\"a\":1}")],
                deletes: vec![("filter", "tmf-1".into())],
            };
            assert_eq!(store.commit(&commit).unwrap(), 2);
        }
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.revision, 2);
        assert_eq!(
            snap.documents,
            vec![StoredDocument { kind: "filter".into(), id: "tmf-2".into(), body: "{\"a\":1}".into() }]
        );
    }

    #[test]
    fn stale_commits_conflict_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        store.commit(&Commit { base_revision: 0, puts: vec![doc("k", "a", "1")], deletes: vec![] }).unwrap();
        let err = store.commit(&Commit { base_revision: 0, puts: vec![doc("k", "b", "2")], deletes: vec![] });
        assert!(matches!(err, Err(StoreError::Conflict { expected: 0, actual: 1 })));
        assert!(err.unwrap_err().is_retryable());
        assert_eq!(store.load().unwrap().documents.len(), 1);
    }

    #[test]
    fn two_handles_on_one_file_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open_dir(dir.path()).unwrap();
        let b = SqliteStore::open_dir(dir.path()).unwrap();
        a.commit(&Commit { base_revision: 0, puts: vec![doc("k", "a", "1")], deletes: vec![] }).unwrap();
        assert_eq!(b.revision().unwrap(), 1);
        assert!(matches!(
            b.commit(&Commit { base_revision: 0, puts: vec![], deletes: vec![] }),
            Err(StoreError::Conflict { .. })
        ));
    }
}
