//! One log line per request, after its answer: request ID, account, access key ID,
//! dialect, action, HTTP status, latency and source address (target `tapwire::request`).
//! Secrets never appear: only the key's ID. The dialect fronts put a [`RequestNote`] on
//! their answers; a request that reached neither (a wrong path) is logged with what the
//! listener knows.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::query::{Peer, RequestNote};

/// The layer around the whole router.
pub async fn log_requests(Peer(peer): Peer, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = next.run(req).await;
    let note = resp.extensions().get::<RequestNote>().cloned().unwrap_or_default();
    // Hundredths of a millisecond: a number in JSON lines, short in text ones.
    let latency_ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    tracing::info!(
        target: "tapwire::request",
        request_id = %note.request_id,
        account = %note.account.map(|a| a.to_string()).unwrap_or_default(),
        access_key = %note.access_key.as_deref().unwrap_or(""),
        dialect = note.dialect,
        action = %note.action,
        status = resp.status().as_u16(),
        latency_ms,
        source = %peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        method = %method,
        path = %path,
        "request"
    );
    resp
}
