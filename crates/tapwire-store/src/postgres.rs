//! The shared PostgreSQL backend: several control-plane replicas on one database.
//!
//! Invariants:
//! - A commit locks the revision row (`FOR UPDATE`), so commits of all replicas are
//!   serialised on it: the one computed against an old revision sees the new one and
//!   conflicts. It is durable when PostgreSQL acknowledges it (`synchronous_commit`).
//! - Each commit notifies `tapwire_revision` in its own transaction: replicas that LISTEN
//!   hear of it once it is visible, never before.
//! - Reads (`load`, `changes_since`) run in one REPEATABLE READ transaction, so the
//!   documents and the revision they return belong together.
//! - A lost connection is made again on the next use; until then calls fail with
//!   [`StoreError::Unavailable`]. The URL (which may hold a password) is never logged.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls, Transaction};

use crate::{
    ChangeSet, Commit, FEED_REVISIONS, Record, RecordQuery, Snapshot, Store, StoreError, StoredDocument, StoredRecord,
};

/// Schema migrations, applied in order; `tapwire_meta.schema` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/postgres/0001_schema.sql")];
/// The channel each commit notifies with its revision.
const CHANNEL: &str = "tapwire_revision";
/// Serialises replicas migrating the same database at once.
const MIGRATION_LOCK: i64 = 0x7461_7077_6972_6501;
/// Held (for its session) by the replica that runs background work.
const LEADER_LOCK: i64 = 0x7461_7077_6972_6502;

/// A store in a PostgreSQL database, shared by replicas.
pub struct PostgresStore {
    url: String,
    conn: Mutex<Option<Client>>,
    /// LISTENs, and holds the leader lock once taken: both end with its session.
    listener: Mutex<Option<Client>>,
    leading: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A client closes its connection with a blocking call, which panics on a thread
        // that drives async tasks (where the last owner may drop the store): close them
        // on a thread of their own.
        let clients: Vec<Client> = [&mut self.conn, &mut self.listener]
            .into_iter()
            .filter_map(|m| m.get_mut().ok().and_then(Option::take))
            .collect();
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

fn backend(err: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match err.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            StoreError::Busy(err.to_string())
        }
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
            StoreError::Unavailable(err.to_string())
        }
        Some(_) => StoreError::Backend(err.to_string()),
        // No SQL state: the connection itself failed.
        None => StoreError::Unavailable(err.to_string()),
    }
}

fn sql_int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("revision overflow".into()))
}

fn unsigned(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend("negative revision".into()))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`), runs pending
    /// migrations and starts listening for other replicas' commits.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config =
            url.parse().map_err(|e| StoreError::Backend(format!("the PostgreSQL URL does not parse: {e}")))?;
        if matches!(config.get_ssl_mode(), postgres::config::SslMode::Require) {
            return Err(StoreError::Backend(
                "sslmode=require: TLS to PostgreSQL is not built in yet; reach the database over a trusted \
                 network or a local socket"
                    .into(),
            ));
        }
        let store = Self {
            url: url.to_owned(),
            conn: Mutex::new(None),
            listener: Mutex::new(None),
            leading: std::sync::atomic::AtomicBool::new(false),
        };
        {
            let mut conn = store.conn()?;
            migrate(conn.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?)?;
        }
        drop(store.listener()?);
        Ok(store)
    }

    fn open(&self) -> Result<Client, StoreError> {
        Client::connect(&self.url, NoTls).map_err(|e| StoreError::Unavailable(format!("connecting to PostgreSQL: {e}")))
    }

    /// The working connection, made again if it was lost.
    fn conn(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.conn.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.open()?);
        }
        Ok(guard)
    }

    /// The listening connection, made again (and LISTENing) if it was lost.
    fn listener(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.listener.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            // A new session holds no leader lock.
            self.leading.store(false, std::sync::atomic::Ordering::Relaxed);
            let mut client = self.open()?;
            client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(backend)?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut guard = self.conn()?;
        let client = guard.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        f(client)
    }

    /// A read: on a connection found broken (the database restarted), once more on a new
    /// one. Writes are not retried here: a commit whose answer was lost may have landed.
    fn reading<T>(&self, mut f: impl FnMut(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.with_conn(&mut f) {
            Err(StoreError::Unavailable(_)) => {
                if let Ok(mut guard) = self.conn.lock() {
                    *guard = None;
                }
                self.with_conn(f)
            }
            other => other,
        }
    }

    fn with_snapshot<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.reading(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(backend)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tapwire_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL); \
         INSERT INTO tapwire_meta (key, value) VALUES ('schema', 0) ON CONFLICT (key) DO NOTHING;",
    )
    .map_err(backend)?;
    let applied: i64 =
        tx.query_one("SELECT value FROM tapwire_meta WHERE key = 'schema'", &[]).map_err(backend)?.get(0);
    let applied = usize::try_from(applied).map_err(|_| StoreError::Backend("negative schema version".into()))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {applied} is newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(sql).map_err(backend)?;
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        tx.execute("UPDATE tapwire_meta SET value = $1 WHERE key = 'schema'", &[&version]).map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

fn read_meta(tx: &mut Transaction<'_>, key: &str, lock: bool) -> Result<u64, StoreError> {
    let sql = if lock {
        "SELECT value FROM tapwire_meta WHERE key = $1 FOR UPDATE"
    } else {
        "SELECT value FROM tapwire_meta WHERE key = $1"
    };
    let row = tx.query_opt(sql, &[&key]).map_err(backend)?;
    unsigned(row.ok_or_else(|| StoreError::Backend(format!("tapwire_meta.{key} missing")))?.get(0))
}

/// `*` and `?` wildcards as a LIKE pattern (`\` escapes LIKE's own `%` and `_`).
fn like_pattern(wildcard: &str) -> String {
    let mut out = String::with_capacity(wildcard.len());
    for c in wildcard.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn insert_records(tx: &mut Transaction<'_>, records: &[Record]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let insert = tx
        .prepare("INSERT INTO tapwire_records (kind, at, account, action, body) VALUES ($1, $2, $3, $4, $5)")
        .map_err(backend)?;
    for r in records {
        tx.execute(&insert, &[&r.kind, &r.at, &r.account, &r.action, &r.body]).map_err(backend)?;
    }
    Ok(())
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_snapshot(|tx| {
            let revision = read_meta(tx, "revision", false)?;
            let rows = tx.query("SELECT kind, id, body FROM tapwire_documents", &[]).map_err(backend)?;
            let documents =
                rows.iter().map(|r| StoredDocument { kind: r.get(0), id: r.get(1), body: r.get(2) }).collect();
            Ok(Snapshot { revision, documents })
        })
    }

    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        self.with_conn(|client| {
            let mut tx = client.transaction().map_err(backend)?;
            let actual = read_meta(&mut tx, "revision", true)?;
            if actual != commit.base_revision {
                return Err(StoreError::Conflict { expected: commit.base_revision, actual });
            }
            let next = actual + 1;
            let next_sql = sql_int(next)?;
            let put = tx
                .prepare(
                    "INSERT INTO tapwire_documents (kind, id, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (kind, id) DO UPDATE SET body = EXCLUDED.body",
                )
                .map_err(backend)?;
            let delete = tx.prepare("DELETE FROM tapwire_documents WHERE kind = $1 AND id = $2").map_err(backend)?;
            let touched =
                tx.prepare("INSERT INTO tapwire_changes (revision, kind, id) VALUES ($1, $2, $3)").map_err(backend)?;
            for d in &commit.puts {
                tx.execute(&put, &[&d.kind, &d.id, &d.body]).map_err(backend)?;
                tx.execute(&touched, &[&next_sql, &d.kind, &d.id]).map_err(backend)?;
            }
            for (kind, id) in &commit.deletes {
                tx.execute(&delete, &[kind, id]).map_err(backend)?;
                tx.execute(&touched, &[&next_sql, kind, id]).map_err(backend)?;
            }
            insert_records(&mut tx, &commit.records)?;
            if next % 1_000 == 0 && next > FEED_REVISIONS {
                let start = sql_int(next - FEED_REVISIONS)?;
                tx.execute("DELETE FROM tapwire_changes WHERE revision <= $1", &[&start]).map_err(backend)?;
                tx.execute("UPDATE tapwire_meta SET value = GREATEST(value, $1) WHERE key = 'feed_start'", &[&start])
                    .map_err(backend)?;
            }
            tx.execute("UPDATE tapwire_meta SET value = $1 WHERE key = 'revision'", &[&next_sql]).map_err(backend)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &next.to_string()]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(next)
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.reading(|client| {
            let row =
                client.query_one("SELECT value FROM tapwire_meta WHERE key = 'revision'", &[]).map_err(backend)?;
            unsigned(row.get(0))
        })
    }

    fn changes_since(&self, after: u64) -> Result<Option<ChangeSet>, StoreError> {
        self.with_snapshot(|tx| {
            let revision = read_meta(tx, "revision", false)?;
            if after < read_meta(tx, "feed_start", false)? {
                return Ok(None);
            }
            let rows = tx
                .query(
                    "SELECT c.kind, c.id, d.body FROM (SELECT DISTINCT kind, id FROM tapwire_changes WHERE revision > $1) c \
                     LEFT JOIN tapwire_documents d ON d.kind = c.kind AND d.id = c.id",
                    &[&sql_int(after)?],
                )
                .map_err(backend)?;
            let mut set = ChangeSet { revision, ..ChangeSet::default() };
            for row in rows {
                let (kind, id, body): (String, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
                match body {
                    Some(body) => set.puts.push(StoredDocument { kind, id, body }),
                    None => set.deletes.push((kind, id)),
                }
            }
            Ok(Some(set))
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn lead(&self) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        let mut guard = self.listener()?;
        if self.leading.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let client = guard.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        let took: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]).map_err(backend)?.get(0);
        self.leading.store(took, Ordering::Relaxed);
        Ok(took)
    }

    fn wait_for_change(&self, timeout: Duration) -> Result<bool, StoreError> {
        let mut guard = self.listener()?;
        let client = guard.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        let mut notifications = client.notifications();
        let heard = notifications.timeout_iter(timeout).next().map_err(backend)?.is_some();
        // Commits that came together are one catch-up.
        while notifications.iter().next().map_err(backend)?.is_some() {}
        Ok(heard)
    }

    fn append(&self, records: &[Record]) -> Result<(), StoreError> {
        self.with_conn(|client| {
            let mut tx = client.transaction().map_err(backend)?;
            insert_records(&mut tx, records)?;
            tx.commit().map_err(backend)
        })
    }

    fn records(&self, q: &RecordQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.reading(|client| {
            let before = q.before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let action = q.action.as_deref().map(like_pattern);
            let rows = client
                .query(
                    "SELECT id, body FROM tapwire_records WHERE kind = $1 AND ($2::TEXT IS NULL OR account = $2) \
                     AND ($3::BIGINT IS NULL OR at >= $3) AND ($4::TEXT IS NULL OR action LIKE $4) AND id < $5 \
                     ORDER BY id DESC LIMIT $6",
                    &[&q.kind, &q.account, &q.since, &action, &before, &limit],
                )
                .map_err(backend)?;
            Ok(rows
                .iter()
                .map(|r| StoredRecord { id: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0), body: r.get(1) })
                .collect())
        })
    }

    fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, StoreError> {
        self.with_conn(|client| {
            let mut tx = client.transaction().map_err(backend)?;
            let mut gone = tx
                .execute("DELETE FROM tapwire_records WHERE kind = $1 AND at < $2", &[&kind, &before])
                .map_err(backend)?;
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            gone += tx
                .execute(
                    "DELETE FROM tapwire_records WHERE kind = $1 AND id <= (SELECT id FROM tapwire_records \
                     WHERE kind = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                    &[&kind, &keep],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(usize::try_from(gone).unwrap_or(usize::MAX))
        })
    }
}
