//! The background task behind Alibaba's lifecycle.
//!
//! Alibaba writes leave resources `Creating`, `Modifying` or `Deleting`. [`run`] watches
//! the state and, once a task has been pending for the configured delay, finishes it
//! through [`Control::complete_task`]: a durable write like any other, so a finished task
//! stays finished. Pending tasks live only in the state, so after a restart the worker
//! finds them on its first look and finishes them a delay later.
//!
//! On a shared store only the replica that leads ([`Control::leads`]) finishes tasks; the
//! others look again each delay, so a survivor takes over within seconds of the leader's
//! death. The worker never waits on agents: whether a source's agent has applied a change is
//! reported separately (its applied revision).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tapwire_control::ops::Task;
use tapwire_control::{ApiError, Control};
use tapwire_model::resource::Scope;
use tokio::time::Instant;

use crate::Api;

/// Finishes every pending task now; returns how many there were. For tests and tools that
/// want the end state without waiting.
pub fn complete_all(control: &Control) -> Result<usize, ApiError> {
    let pending = control.read().pending_tasks();
    for (task, scope) in &pending {
        control.complete_task(*task, scope)?;
    }
    Ok(pending.len())
}

/// Runs the worker until the control plane's revision channel closes.
pub async fn run(api: Arc<Api>, delay: Duration) {
    let mut changes = api.control.subscribe();
    let mut first_seen: HashMap<Task, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        let pending = api.control.read().pending_tasks();
        first_seen.retain(|task, _| pending.iter().any(|(t, _)| t == task));
        for (task, _) in &pending {
            first_seen.entry(*task).or_insert(now);
        }
        let due: Vec<(Task, Scope)> = pending
            .into_iter()
            .filter(|(task, _)| first_seen.get(task).is_some_and(|seen| *seen + delay <= now))
            .collect();
        if !due.is_empty() && !leads(&api).await {
            // Another replica runs the tasks; look again a delay later, in case it went.
            for (task, _) in &due {
                first_seen.insert(*task, Instant::now());
            }
        } else if !due.is_empty() {
            let worker = api.clone();
            let finished = tokio::task::spawn_blocking(move || {
                due.into_iter()
                    .map(|(task, scope)| {
                        let result = worker.control.complete_task(task, &scope);
                        if let Err(e) = &result {
                            tracing::warn!(?task, error = %e, "could not finish a background task; retrying later");
                        }
                        (task, result.is_ok())
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(finished) = finished else {
                tracing::error!("the background task worker panicked");
                continue;
            };
            for (task, ok) in finished {
                if ok {
                    first_seen.remove(&task);
                } else {
                    // Wait a full delay before trying again.
                    first_seen.insert(task, Instant::now());
                }
            }
            continue;
        }
        let next_due = first_seen.values().min().map(|seen| *seen + delay);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(next_due) => {}
        }
    }
}

/// Whether this replica runs background work (asked off the async threads: a shared
/// store answers over the network).
pub async fn leads(api: &Arc<Api>) -> bool {
    let api = api.clone();
    tokio::task::spawn_blocking(move || api.control.leads()).await.unwrap_or(false)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
