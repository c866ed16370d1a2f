//! Telemetry rows in PostgreSQL: upserts that never replace a later report, read back by
//! write order.
//!
//! `seq` comes from a sequence, taken when a row is written; two flushes committing out
//! of their `seq` order can hide the earlier one from a reader that already moved past
//! it. That costs a view one report interval at most: every report rewrites its row.

use postgres::Client;

use super::{backend, sql_int, unsigned};
use crate::{StoreError, TELEMETRY_PAGE, TelemetryRow};

pub(super) fn put(client: &mut Client, rows: &[TelemetryRow]) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(backend)?;
    let upsert = tx
        .prepare(
            "INSERT INTO tapwire_telemetry (key, at, seq, body) VALUES ($1, $2, nextval('tapwire_telemetry_seq'), $3) \
             ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at, seq = EXCLUDED.seq, body = EXCLUDED.body \
             WHERE tapwire_telemetry.at < EXCLUDED.at",
        )
        .map_err(backend)?;
    for row in rows {
        tx.execute(&upsert, &[&row.key, &row.at, &row.body]).map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

pub(super) fn since(client: &mut Client, cursor: u64) -> Result<(Vec<TelemetryRow>, u64), StoreError> {
    let limit = i64::try_from(TELEMETRY_PAGE).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT key, at, body, seq FROM tapwire_telemetry WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&sql_int(cursor)?, &limit],
        )
        .map_err(backend)?;
    let mut next = cursor;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        next = next.max(unsigned(r.get(3))?);
        out.push(TelemetryRow { key: r.get(0), at: r.get(1), body: r.get(2) });
    }
    Ok((out, next))
}

pub(super) fn retain(client: &mut Client, keep: &[String]) -> Result<usize, StoreError> {
    let gone = client.execute("DELETE FROM tapwire_telemetry WHERE NOT (key = ANY($1))", &[&keep]).map_err(backend)?;
    Ok(usize::try_from(gone).unwrap_or(usize::MAX))
}
