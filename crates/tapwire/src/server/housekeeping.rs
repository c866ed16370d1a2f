//! The server's background chores, each on its own timer: forget expired ClientTokens,
//! append the audit trail's pending refusals, prune the audit trail, and on a shared
//! store trade agents' telemetry with the other replicas. A chore that fails is logged
//! once, and again when it works again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tapwire_api::Api;

/// How often expired ClientTokens are swept, and how many at most per sweep.
const TOKENS_EVERY: Duration = Duration::from_secs(60);
const TOKENS_BATCH: usize = 10_000;
/// How often noted refusals are appended to the audit trail.
const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the audit trail is pruned.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How often the shared store's telemetry of deregistered interfaces is dropped.
const TELEMETRY_RETAIN_EVERY: Duration = Duration::from_secs(60);

/// How long audit records are kept, and how many at most.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Seconds.
    pub age: i64,
    /// Records.
    pub count: usize,
}

/// Runs `chore` on a blocking thread every `every`, logging what it reports.
async fn every<T: Send + 'static>(
    every: Duration,
    what: &'static str,
    api: Arc<Api>,
    chore: fn(&Api) -> Result<T, String>,
    report: fn(&T) -> Option<String>,
) {
    let mut tick = tokio::time::interval(every);
    let mut failing = false;
    loop {
        tick.tick().await;
        let api = api.clone();
        match tokio::task::spawn_blocking(move || chore(&api)).await {
            Ok(Ok(out)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("{what}: working again");
                }
                if let Some(line) = report(&out) {
                    tracing::info!("{what}: {line}");
                }
            }
            Ok(Err(e)) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "{what} failed; trying again every {every:?}");
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::warn!(error = %e, "{what} stopped"),
        }
    }
}

/// Starts every chore; they run until the runtime stops.
pub fn start(api: &Arc<Api>, retention: Retention) {
    tokio::spawn(every(
        TOKENS_EVERY,
        "client tokens",
        api.clone(),
        // Expiry is the leading replica's (every replica on its own store leads).
        |api| {
            if api.control.leads() {
                api.control.expire_client_tokens(TOKENS_BATCH).map_err(|e| e.to_string())
            } else {
                Ok(0)
            }
        },
        |n| (*n > 0).then(|| format!("forgot {n} expired")),
    ));
    tokio::spawn(every(
        AUDIT_FLUSH_EVERY,
        "audit trail",
        api.clone(),
        |api| {
            static REPORTED: AtomicU64 = AtomicU64::new(0);
            let flushed = api.control.flush_audit().map_err(|e| e.to_string())?;
            let dropped = api.control.audit_dropped();
            Ok((flushed, dropped - REPORTED.swap(dropped, Ordering::Relaxed)))
        },
        |(_, new)| (*new > 0).then(|| format!("{new} refusals could not be recorded (the buffer was full)")),
    ));
    if api.control.shared() {
        tokio::spawn(every(
            tapwire_api::telemetry::sharing::SHARE_EVERY,
            "sharing telemetry",
            api.clone(),
            |api| api.telemetry.exchange(&api.control).map_err(|e| e.to_string()),
            |_| None,
        ));
        tokio::spawn(every(
            TELEMETRY_RETAIN_EVERY,
            "shared telemetry",
            api.clone(),
            |api| {
                if !api.control.leads() {
                    return Ok(0);
                }
                let keep: Vec<String> = api.control.read().interfaces.keys().map(ToString::to_string).collect();
                api.control.retain_telemetry(&keep).map_err(|e| e.to_string())
            },
            |n| (*n > 0).then(|| format!("forgot {n} deregistered interfaces")),
        ));
    }
    let api = api.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(AUDIT_PRUNE_EVERY);
        loop {
            tick.tick().await;
            let api = api.clone();
            let pruned = tokio::task::spawn_blocking(move || {
                if api.control.leads() { api.control.prune_audit(retention.age, retention.count) } else { Ok(0) }
            })
            .await;
            match pruned {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!("audit trail: pruned {n} records"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning the audit trail failed"),
                Err(e) => tracing::warn!(error = %e, "pruning the audit trail stopped"),
            }
        }
    });
}
