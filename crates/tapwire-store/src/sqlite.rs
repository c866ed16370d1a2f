//! The embedded SQLite backend: one file under the data directory, WAL mode.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    ChangeSet, Commit, FEED_REVISIONS, Record, RecordQuery, Snapshot, Store, StoreError, StoredDocument, StoredRecord,
};

/// Schema migrations, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_documents.sql"),
    include_str!("../migrations/sqlite/0002_records.sql"),
    include_str!("../migrations/sqlite/0003_changes.sql"),
];

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
    read_meta(conn, "revision")
}

fn read_meta(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let value: Option<i64> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(backend)?;
    let value = value.ok_or_else(|| StoreError::Backend(format!("meta.{key} missing")))?;
    u64::try_from(value).map_err(|_| StoreError::Backend(format!("negative meta.{key}")))
}

fn sql_int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("revision overflow".into()))
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
            insert_records(&tx, &commit.records)?;
            let next = actual + 1;
            let next_sql = sql_int(next)?;
            {
                let mut touched = tx
                    .prepare_cached("INSERT INTO changes (revision, kind, id) VALUES (?1, ?2, ?3)")
                    .map_err(backend)?;
                for (kind, id) in
                    commit.puts.iter().map(|d| (d.kind, &d.id)).chain(commit.deletes.iter().map(|(k, id)| (*k, id)))
                {
                    touched.execute(params![next_sql, kind, id]).map_err(backend)?;
                }
            }
            if next % 1_000 == 0 && next > FEED_REVISIONS {
                let start = sql_int(next - FEED_REVISIONS)?;
                tx.execute("DELETE FROM changes WHERE revision <= ?1", [start]).map_err(backend)?;
                tx.execute("UPDATE meta SET value = MAX(value, ?1) WHERE key = 'feed_start'", [start])
                    .map_err(backend)?;
            }
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'revision'", params![next_sql]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(next)
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| read_revision(conn))
    }

    fn changes_since(&self, after: u64) -> Result<Option<ChangeSet>, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(backend)?;
            let revision = read_revision(&tx)?;
            if after < read_meta(&tx, "feed_start")? {
                return Ok(None);
            }
            let mut set = ChangeSet { revision, ..ChangeSet::default() };
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT c.kind, c.id, d.body FROM (SELECT DISTINCT kind, id FROM changes WHERE revision > ?1) c \
                         LEFT JOIN documents d ON d.kind = c.kind AND d.id = c.id",
                    )
                    .map_err(backend)?;
                let mut rows = stmt.query([sql_int(after)?]).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    let (kind, id, body): (String, String, Option<String>) =
                        (row.get(0).map_err(backend)?, row.get(1).map_err(backend)?, row.get(2).map_err(backend)?);
                    match body {
                        Some(body) => set.puts.push(StoredDocument { kind, id, body }),
                        None => set.deletes.push((kind, id)),
                    }
                }
            }
            tx.commit().map_err(backend)?;
            Ok(Some(set))
        })
    }

    fn append(&self, records: &[Record]) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(backend)?;
            insert_records(&tx, records)?;
            tx.commit().map_err(backend)
        })
    }

    fn records(&self, q: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.with_conn(|conn| {
            let before = q.before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body FROM records WHERE kind = ?1 AND (?2 IS NULL OR account = ?2) \
                     AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR action GLOB ?4) AND id < ?5 \
                     ORDER BY id DESC LIMIT ?6",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![q.kind, q.account, q.since, q.action, before, limit], |r| {
                    Ok(StoredRecord { id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), body: r.get(1)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(backend)?;
            let mut gone = tx
                .execute("DELETE FROM records WHERE kind = ?1 AND at < ?2", params![kind, before])
                .map_err(backend)?;
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            gone += tx
                .execute(
                    "DELETE FROM records WHERE kind = ?1 AND id <= (SELECT id FROM records WHERE kind = ?1 \
                     ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![kind, keep],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(gone)
        })
    }
}

fn insert_records(tx: &rusqlite::Transaction<'_>, records: &[Record]) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached("INSERT INTO records (kind, at, account, action, body) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(backend)?;
    for r in records {
        insert.execute(params![r.kind, r.at, r.account, r.action, r.body]).map_err(backend)?;
    }
    Ok(())
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
            let commit = Commit {
                base_revision: 0,
                puts: vec![doc("filter", "tmf-1", "{}")],
                deletes: vec![],
                ..Commit::default()
            };
            assert_eq!(store.commit(&commit).unwrap(), 1);
            let commit = Commit {
                base_revision: 1,
                puts: vec![doc("filter", "tmf-2", "{\"a\":1}")],
                deletes: vec![("filter", "tmf-1".into())],
                ..Commit::default()
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
        store
            .commit(&Commit { base_revision: 0, puts: vec![doc("k", "a", "1")], deletes: vec![], ..Commit::default() })
            .unwrap();
        let err = store.commit(&Commit {
            base_revision: 0,
            puts: vec![doc("k", "b", "2")],
            deletes: vec![],
            ..Commit::default()
        });
        assert!(matches!(err, Err(StoreError::Conflict { expected: 0, actual: 1 })));
        assert!(err.unwrap_err().is_retryable());
        assert_eq!(store.load().unwrap().documents.len(), 1);
    }

    #[test]
    fn records_append_query_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let rec = |at: i64, account: &str, action: &str| Record {
            kind: "audit",
            at,
            account: Some(account.into()),
            action: action.into(),
            body: format!("{at}"),
        };
        store.append(&[rec(1, "a", "CreateX"), rec(2, "b", "DeleteX")]).unwrap();
        let commit = Commit { base_revision: 0, records: vec![rec(3, "a", "CreateY")], ..Commit::default() };
        assert_eq!(store.commit(&commit).unwrap(), 1);
        let q = |account: Option<&str>, action: Option<&str>| RecordQuery {
            kind: "audit",
            account: account.map(Into::into),
            action: action.map(Into::into),
            limit: 10,
            ..RecordQuery::default()
        };
        let bodies = |rs: Vec<StoredRecord>| rs.into_iter().map(|r| r.body).collect::<Vec<_>>();
        assert_eq!(bodies(store.records(&q(None, None)).unwrap()), ["3", "2", "1"]);
        assert_eq!(bodies(store.records(&q(Some("a"), Some("Create*"))).unwrap()), ["3", "1"]);
        assert_eq!(store.revision().unwrap(), 1, "appending alone does not move the revision");
        assert_eq!(store.prune("audit", 2, 10).unwrap(), 1);
        assert_eq!(store.prune("audit", 0, 1).unwrap(), 1);
        assert_eq!(bodies(store.records(&q(None, None)).unwrap()), ["3"]);
    }

    #[test]
    fn two_handles_on_one_file_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open_dir(dir.path()).unwrap();
        let b = SqliteStore::open_dir(dir.path()).unwrap();
        a.commit(&Commit { base_revision: 0, puts: vec![doc("k", "a", "1")], deletes: vec![], ..Commit::default() })
            .unwrap();
        assert_eq!(b.revision().unwrap(), 1);
        assert!(matches!(
            b.commit(&Commit { base_revision: 0, puts: vec![], deletes: vec![], ..Commit::default() }),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn the_change_feed_names_what_changed_since_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let put = |base, puts: Vec<Document>, deletes: Vec<(&'static str, String)>| {
            store.commit(&Commit { base_revision: base, puts, deletes, ..Commit::default() }).unwrap()
        };
        put(0, vec![doc("k", "a", "1"), doc("k", "b", "1")], vec![]);
        put(1, vec![doc("k", "a", "2")], vec![]);
        put(2, vec![], vec![("k", "b".into())]);
        let since = |after| store.changes_since(after).unwrap().unwrap();
        let set = since(1);
        assert_eq!(set.revision, 3);
        assert_eq!(set.puts, vec![StoredDocument { kind: "k".into(), id: "a".into(), body: "2".into() }]);
        assert_eq!(set.deletes, vec![("k".to_owned(), "b".to_owned())]);
        assert_eq!(since(3), ChangeSet { revision: 3, ..ChangeSet::default() });
        // A store older than the feed starts it where it was: earlier readers load everything.
        let conn = store.conn.lock().unwrap();
        conn.execute("UPDATE meta SET value = 2 WHERE key = 'feed_start'", []).unwrap();
        drop(conn);
        assert!(store.changes_since(1).unwrap().is_none());
        assert!(store.changes_since(2).unwrap().is_some());
    }
}
