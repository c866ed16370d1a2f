//! The shared PostgreSQL backend: several control-plane replicas on one database.
//!
//! Invariants:
//! - A commit is one statement ([`COMMIT_SQL`], prepared once per connection): it moves
//!   the revision row only from the commit's base, and writes nothing else unless it
//!   did. Commits of all replicas are serialised on that row: the one computed against
//!   an old revision waits for the other, then finds the row moved and conflicts. It is
//!   durable when PostgreSQL acknowledges it (`synchronous_commit`).
//! - A replica writing alone commits without a lock: the revision check is enough. Once
//!   it loses a race it plans and commits under a writer lock (an advisory lock on a
//!   connection of its own, taken with a read of the revision in one round trip), so
//!   replicas writing at once take turns instead of losing races over and over. A commit
//!   made without the lock also takes it for its own transaction, without waiting: while
//!   another replica holds it, the commit writes nothing and is `Busy`, so a replica
//!   that waited its turn is never overtaken.
//! - Each commit notifies `tapwire_revision` with its revision in its own transaction:
//!   replicas that LISTEN hear of it once it is visible, never before.
//! - Reads return documents and the revision they belong to together: `load` in one
//!   REPEATABLE READ transaction, `changes_since` in one statement.
//! - Calls share a small pool of connections ([`connect`]: TLS, bounds); the listener has
//!   its own. A lost connection is made again on the next use; until then calls fail with
//!   [`StoreError::Unavailable`]. The URL (which may hold a password) is never logged.
//! - Agents' telemetry lives beside the documents, outside the revision
//!   ([`Store::put_telemetry`]).

pub mod connect;
mod telemetry;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use connect::{Connector, Pool, Pooled};

use postgres::fallible_iterator::FallibleIterator;
use std::collections::BTreeMap;

use postgres::{Client, GenericClient, IsolationLevel, SimpleQueryMessage, Transaction};

use crate::{
    ChangeSet, Commit, FEED_REVISIONS, Record, RecordQuery, Snapshot, Store, StoreError, StoredDocument, StoredRecord,
    TelemetryRow,
};

/// Schema migrations, applied in order; `tapwire_meta.schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_schema.sql"),
    include_str!("../../migrations/postgres/0002_telemetry.sql"),
];
/// The channel each commit notifies with its revision.
const CHANNEL: &str = "tapwire_revision";
/// Serialises replicas migrating the same database at once.
const MIGRATION_LOCK: i64 = 0x7461_7077_6972_6501;
/// Held (for its session) by the replica that runs background work.
const LEADER_LOCK: i64 = 0x7461_7077_6972_6502;
/// Held by the replica planning and committing a batch of writes.
const WRITER_LOCK: i64 = 0x7461_7077_6972_6503;
/// Longest a replica waits for the writer lock before committing without it.
const WRITER_LOCK_WAIT: &str = "5s";

/// A store in a PostgreSQL database, shared by replicas.
pub struct PostgresStore {
    pool: Pool,
    /// LISTENs, and holds the leader lock once taken: both end with its session.
    listener: Mutex<Option<Client>>,
    /// Holds the writer lock between [`Store::begin_writes`] and [`Store::end_writes`].
    writer: Mutex<Option<Client>>,
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
        let mut clients = self.pool.drain();
        clients.extend(self.listener.get_mut().ok().and_then(Option::take));
        clients.extend(self.writer.get_mut().ok().and_then(Option::take));
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
        // No SQL state: the connection failed, or this side did (a value that does not
        // convert, a row count not as expected), which another connection would not mend.
        None if err.is_closed() || std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>()) => {
            StoreError::Unavailable(err.to_string())
        }
        None => StoreError::Backend(err.to_string()),
    }
}

fn sql_int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend("revision overflow".into()))
}

fn unsigned(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend("negative revision".into()))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, TLS as
    /// [`connect`] reads it), runs pending migrations and starts listening for other
    /// replicas' commits.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self {
            pool: Pool::new(Connector::from_url(url)?),
            listener: Mutex::new(None),
            writer: Mutex::new(None),
            leading: std::sync::atomic::AtomicBool::new(false),
        };
        store.with_conn(migrate)?;
        drop(store.listener()?);
        Ok(store)
    }

    /// Whether the connections to the database are encrypted.
    pub fn encrypted(&self) -> bool {
        self.pool.connector().encrypted()
    }

    /// The listening connection, made again (and LISTENing) if it was lost.
    fn listener(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.listener.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            // A new session holds no leader lock.
            self.leading.store(false, std::sync::atomic::Ordering::Relaxed);
            let mut client = self.pool.connector().connect()?;
            client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(backend)?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// `f` on a pooled connection; one that fails for want of the database is dropped.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_pooled(|conn| f(conn))
    }

    /// [`Self::with_conn`] with the pooled connection itself (its prepared statements).
    fn with_pooled<T>(&self, f: impl FnOnce(&mut Pooled<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        let out = f(&mut conn);
        if matches!(out, Err(StoreError::Unavailable(_))) {
            conn.discard();
        }
        out
    }

    /// A read: on a connection found broken (the database restarted), once more on a new
    /// one. Writes are not retried here: a commit whose answer was lost may have landed.
    fn reading<T>(&self, mut f: impl FnMut(&mut Pooled<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.with_pooled(&mut f) {
            Err(StoreError::Unavailable(_)) => self.with_pooled(f),
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

/// What changed after `$1`: the revision and feed start on every row, then each document
/// touched since (its body, or none once deleted); one row without a document when
/// nothing changed or the feed does not reach back. One statement is one snapshot, so
/// the revision and the documents belong together.
const CHANGES_SQL: &str = "\
    SELECT m.revision, m.feed_start, c.kind, c.id, d.body FROM \
        (SELECT (SELECT value FROM tapwire_meta WHERE key = 'revision') AS revision, \
                (SELECT value FROM tapwire_meta WHERE key = 'feed_start') AS feed_start) m \
        LEFT JOIN LATERAL (SELECT DISTINCT t.kind, t.id FROM tapwire_changes t \
            WHERE t.revision > $1::BIGINT AND m.feed_start <= $1::BIGINT) c ON true \
        LEFT JOIN tapwire_documents d ON d.kind = c.kind AND d.id = c.id";

/// The store's revision: prepared by [`Store::revision`], sent as text by
/// [`read_revision`] and after the writer lock.
const REVISION_SQL: &str = "SELECT value FROM tapwire_meta WHERE key = 'revision'";

/// The store's revision, in one round trip without preparing (inside a transaction, or
/// once after a lost race).
fn read_revision(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    revision_in(client, REVISION_SQL)
}

/// The revision in the last row `sql` returns (simple statements, the last of them
/// [`REVISION_SQL`]).
fn revision_in(client: &mut impl GenericClient, sql: &str) -> Result<u64, StoreError> {
    let messages = client.simple_query(sql).map_err(backend)?;
    let value = messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0),
        _ => None,
    });
    let value = value.ok_or_else(|| StoreError::Backend("tapwire_meta.revision missing".into()))?;
    value.parse().map_err(|_| StoreError::Backend(format!("tapwire_meta.revision is not a number: {value}")))
}

/// One commit's documents as they end: each `(kind, id)` once, put (its last body) or
/// deleted (a delete after a put wins, as the commit lists them in that order).
fn final_documents(commit: &Commit) -> BTreeMap<(&str, &str), Option<&str>> {
    let mut out = BTreeMap::new();
    for d in &commit.puts {
        out.insert((d.kind, d.id.as_str()), Some(d.body.as_str()));
    }
    for (kind, id) in &commit.deletes {
        out.insert((*kind, id.as_str()), None);
    }
    out
}

/// A commit in one statement, so one round trip: the revision moves from `$1 - 1` to `$1`
/// only if the store is still at `$1 - 1` (the row lock makes a concurrent commit wait,
/// then see the moved revision), and every other write happens only if it moved. No row
/// back means another commit came first and nothing was written. Documents, the change
/// feed, records, and the notification.
const COMMIT_SQL: &str = "\
    WITH moved AS (UPDATE tapwire_meta SET value = $1::BIGINT WHERE key = 'revision' AND value = $1::BIGINT - 1 \
            AND CASE WHEN $16::BOOLEAN THEN pg_try_advisory_xact_lock($17::BIGINT) ELSE true END RETURNING value), \
        put AS (INSERT INTO tapwire_documents (kind, id, body) \
            SELECT * FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[]) WHERE EXISTS (SELECT FROM moved) \
            ON CONFLICT (kind, id) DO UPDATE SET body = EXCLUDED.body), \
        gone AS (DELETE FROM tapwire_documents d USING unnest($5::TEXT[], $6::TEXT[]) AS x (kind, id) \
            WHERE d.kind = x.kind AND d.id = x.id AND EXISTS (SELECT FROM moved)), \
        touched AS (INSERT INTO tapwire_changes (revision, kind, id) \
            SELECT $1, * FROM unnest($7::TEXT[], $8::TEXT[]) WHERE EXISTS (SELECT FROM moved)), \
        logged AS (INSERT INTO tapwire_records (kind, at, account, action, body) \
            SELECT * FROM unnest($9::TEXT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[]) \
            WHERE EXISTS (SELECT FROM moved)) \
    SELECT pg_notify($14, $15) FROM moved";

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

/// Runs [`COMMIT_SQL`]; `trim` (every 1,000th revision) also cuts the change feed to
/// what starts after it, in the same transaction. Whether the revision moved.
fn commit_on(
    conn: &mut Pooled<'_>,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    trim: Option<i64>,
) -> Result<bool, StoreError> {
    let statement = conn.prepared(COMMIT_SQL).map_err(backend)?;
    let Some(start) = trim else {
        return Ok(!conn.query(&statement, params).map_err(backend)?.is_empty());
    };
    let mut tx = conn.transaction().map_err(backend)?;
    if tx.query(&statement, params).map_err(backend)?.is_empty() {
        return Ok(false); // the transaction rolls back as it drops
    }
    tx.execute("DELETE FROM tapwire_changes WHERE revision <= $1", &[&start]).map_err(backend)?;
    tx.execute("UPDATE tapwire_meta SET value = GREATEST(value, $1) WHERE key = 'feed_start'", &[&start])
        .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(true)
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_snapshot(|tx| {
            let revision = read_revision(tx)?;
            let rows = tx.query("SELECT kind, id, body FROM tapwire_documents", &[]).map_err(backend)?;
            let documents =
                rows.iter().map(|r| StoredDocument { kind: r.get(0), id: r.get(1), body: r.get(2) }).collect();
            Ok(Snapshot { revision, documents })
        })
    }

    fn commit(&self, commit: &Commit) -> Result<u64, StoreError> {
        let documents = final_documents(commit);
        let (mut put_kinds, mut put_ids, mut put_bodies) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gone_kinds, mut gone_ids) = (Vec::new(), Vec::new());
        for ((kind, id), body) in &documents {
            match body {
                Some(body) => {
                    put_kinds.push(*kind);
                    put_ids.push(*id);
                    put_bodies.push(*body);
                }
                None => {
                    gone_kinds.push(*kind);
                    gone_ids.push(*id);
                }
            }
        }
        let touched_kinds: Vec<&str> = documents.keys().map(|(k, _)| *k).collect();
        let touched_ids: Vec<&str> = documents.keys().map(|(_, i)| *i).collect();
        let r = &commit.records;
        let record_kinds: Vec<&str> = r.iter().map(|r| r.kind).collect();
        let record_at: Vec<i64> = r.iter().map(|r| r.at).collect();
        let record_accounts: Vec<Option<&str>> = r.iter().map(|r| r.account.as_deref()).collect();
        let record_actions: Vec<&str> = r.iter().map(|r| r.action.as_str()).collect();
        let record_bodies: Vec<&str> = r.iter().map(|r| r.body.as_str()).collect();
        let next =
            commit.base_revision.checked_add(1).ok_or_else(|| StoreError::Backend("revision overflow".into()))?;
        let (next_sql, next_text) = (sql_int(next)?, next.to_string());
        let params: [&(dyn postgres::types::ToSql + Sync); 17] = [
            &next_sql,
            &put_kinds,
            &put_ids,
            &put_bodies,
            &gone_kinds,
            &gone_ids,
            &touched_kinds,
            &touched_ids,
            &record_kinds,
            &record_at,
            &record_accounts,
            &record_actions,
            &record_bodies,
            &CHANNEL,
            &next_text,
            &commit.unlocked,
            &WRITER_LOCK,
        ];
        let trim = (next % 1_000 == 0 && next > FEED_REVISIONS).then(|| sql_int(next - FEED_REVISIONS)).transpose()?;
        self.with_pooled(|conn| {
            if commit_on(conn, &params, trim)? {
                return Ok(next);
            }
            let actual = read_revision(&mut **conn)?;
            if actual == commit.base_revision && commit.unlocked {
                return Err(StoreError::Busy("another replica holds the writer lock".into()));
            }
            Err(StoreError::Conflict { expected: commit.base_revision, actual })
        })
    }

    fn revision(&self) -> Result<u64, StoreError> {
        // Asked before nearly every request: prepared, so it is not parsed and planned each time.
        self.reading(|conn| {
            let statement = conn.prepared(REVISION_SQL).map_err(backend)?;
            let value: i64 = conn.query_one(&statement, &[]).map_err(backend)?.get(0);
            unsigned(value)
        })
    }

    fn changes_since(&self, after: u64) -> Result<Option<ChangeSet>, StoreError> {
        self.reading(|conn| {
            let statement = conn.prepared(CHANGES_SQL).map_err(backend)?;
            let rows = conn.query(&statement, &[&sql_int(after)?]).map_err(backend)?;
            let first = rows.first().ok_or_else(|| StoreError::Backend("tapwire_meta is empty".into()))?;
            let (revision, feed_start): (Option<i64>, Option<i64>) = (first.get(0), first.get(1));
            let meta = |value: Option<i64>, key: &str| {
                value.ok_or_else(|| StoreError::Backend(format!("tapwire_meta.{key} missing"))).and_then(unsigned)
            };
            let (revision, feed_start) = (meta(revision, "revision")?, meta(feed_start, "feed_start")?);
            if after < feed_start {
                return Ok(None);
            }
            let mut set = ChangeSet { revision, ..ChangeSet::default() };
            for row in &rows {
                let (kind, id, body): (Option<String>, Option<String>, Option<String>) =
                    (row.get(2), row.get(3), row.get(4));
                let (Some(kind), Some(id)) = (kind, id) else { continue };
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

    fn begin_writes(&self) -> Result<Option<u64>, StoreError> {
        let mut guard = self.writer.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let mut client = self.pool.connector().connect()?;
            client.batch_execute(&format!("SET lock_timeout = '{WRITER_LOCK_WAIT}'")).map_err(backend)?;
            *guard = Some(client);
        }
        let client = guard.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        // The lock, then the revision it lets this replica write on: one round trip.
        let taken = revision_in(client, &format!("SELECT pg_advisory_lock({WRITER_LOCK}); {REVISION_SQL}"));
        if taken.is_err() {
            // The lock may be held though the read failed: ending the session frees it.
            *guard = None;
        }
        taken.map(Some)
    }

    fn end_writes(&self) {
        let Ok(mut guard) = self.writer.lock() else { return };
        let Some(client) = guard.as_mut() else { return };
        // A connection that cannot say so is dropped: its session's end frees the lock.
        if client.batch_execute(&format!("SELECT pg_advisory_unlock({WRITER_LOCK})")).is_err() {
            *guard = None;
        }
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

    fn wait_for_change(&self, timeout: Duration) -> Result<Option<u64>, StoreError> {
        let mut guard = self.listener()?;
        let client = guard.as_mut().ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        let mut notifications = client.notifications();
        let revision = |n: postgres::Notification| n.payload().parse::<u64>().ok();
        let Some(first) = notifications.timeout_iter(timeout).next().map_err(backend)? else { return Ok(None) };
        // Commits that came together are one catch-up. A payload that is not a revision
        // (none of ours) counts as the revision it follows: unknown, so check.
        let mut highest = revision(first);
        while let Some(next) = notifications.iter().next().map_err(backend)? {
            highest = highest.zip(revision(next)).map(|(a, b)| a.max(b));
        }
        Ok(highest)
    }

    fn put_telemetry(&self, rows: &[TelemetryRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with_conn(|client| telemetry::put(client, rows))
    }

    fn telemetry_since(&self, cursor: u64) -> Result<(Vec<TelemetryRow>, u64), StoreError> {
        self.reading(|client| telemetry::since(client, cursor))
    }

    fn retain_telemetry(&self, keep: &[String]) -> Result<usize, StoreError> {
        self.with_conn(|client| telemetry::retain(client, keep))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    #[test]
    fn a_commit_writes_each_document_once_as_it_ends() {
        let put = |id: &str, body: &str| Document { kind: "filter", id: id.into(), body: body.into() };
        let commit = Commit {
            puts: vec![put("a", "1"), put("b", "1"), put("a", "2")],
            deletes: vec![("filter", "b".into()), ("filter", "c".into())],
            ..Commit::default()
        };
        let out: Vec<_> = final_documents(&commit).into_iter().collect();
        assert_eq!(out, [(("filter", "a"), Some("2")), (("filter", "b"), None), (("filter", "c"), None)]);
    }
}
