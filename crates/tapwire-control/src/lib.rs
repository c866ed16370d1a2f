//! tapwire's control logic.
//!
//! [`Control`] executes dialect-neutral [`Operation`]s: it plans an operation against the
//! in-memory [`State`] (every check, quota and ID choice happens here), commits the
//! resulting [`Change`]s to the [`Store`] in one transaction, and only then applies them
//! to memory and answers. Reads take a consistent snapshot of the state.
//!
//! Invariants:
//! - One writer at a time per process; memory never runs ahead of the store.
//! - A DryRun request runs every check and writes nothing.
//! - A ClientToken answer is committed in the same transaction as the change it made, so a
//!   replay after a crash returns the same resource.
//! - Time and randomness come from the injected [`Clock`] and [`Entropy`].

mod error;
mod exec;
pub mod ops;
pub mod render;
mod state;

use std::sync::{Mutex, RwLock, RwLockReadGuard};

use tapwire_model::limits::Quotas;
use tapwire_store::{Store, StoreError};

pub use error::{ApiError, ErrorKind, Quota, ResourceKind};
pub use ops::{Operation, Output, RequestContext, Task};
pub use state::{Change, IdempotencyRecord, ServiceRecord, State, idempotency_key};

/// Which API a request came through; a few rules differ by dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// EC2 Query.
    Ec2,
    /// Alibaba RPC.
    Alibaba,
    /// tapwire's own JSON endpoints.
    Tapwire,
}

/// Wall-clock time, injected so tests can fix it.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// Randomness for IDs and VNIs, injected so tests can seed it.
pub trait Entropy: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<R: rand::RngCore + Send> Entropy for R {
    fn fill(&mut self, buf: &mut [u8]) {
        self.fill_bytes(buf);
    }
}

/// Settings of the control logic.
#[derive(Debug, Clone, Default)]
pub struct ControlConfig {
    /// Quotas.
    pub quotas: Quotas,
}

/// How many times a commit is retried after another replica moved the store.
const MAX_COMMIT_ATTEMPTS: usize = 8;

/// The control plane's engine.
pub struct Control {
    store: Box<dyn Store>,
    state: RwLock<State>,
    writer: Mutex<Box<dyn Entropy>>,
    clock: Box<dyn Clock>,
    config: ControlConfig,
    revision: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Control {
    /// Loads the state from `store`.
    pub fn open(
        store: Box<dyn Store>,
        clock: Box<dyn Clock>,
        entropy: Box<dyn Entropy>,
        config: ControlConfig,
    ) -> Result<Self, StoreError> {
        let state = State::from_snapshot(store.load()?)?;
        let (revision, _) = tokio::sync::watch::channel(state.revision);
        Ok(Self { store, state: RwLock::new(state), writer: Mutex::new(entropy), clock, config, revision })
    }

    /// A consistent view of the state for reads.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        // A poisoned lock means a panic mid-apply; the data is still the last committed state.
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to revision changes (agents' long polls wait on it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// Current time from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Executes one operation: plan, commit, apply, answer.
    pub fn execute(&self, ctx: &RequestContext, dialect: Dialect, op: Operation) -> Result<Output, ApiError> {
        let mut entropy = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let (output, changes, base_revision) = {
                let state = self.read();
                let key = ctx.idempotency.as_ref().map(|k| (idempotency_key(ctx.account, k.action, &k.token), k));
                if let Some((key, k)) = &key
                    && let Some(record) = state.idempotency.get(key)
                {
                    if record.fingerprint != k.fingerprint {
                        return Err(ApiError::new(
                            ErrorKind::IdempotentParameterMismatch,
                            format!("The client token '{}' was already used with different parameters.", k.token),
                        ));
                    }
                    if ctx.dry_run {
                        return Err(dry_run());
                    }
                    return Ok(record.output.clone());
                }
                let mut plan = exec::Planner::new(&state, ctx, dialect, self.clock.now(), &self.config, &mut **entropy);
                let output = plan.run(op.clone())?;
                if ctx.dry_run {
                    return Err(dry_run());
                }
                let mut changes = plan.into_changes();
                if let Some((key, k)) = key {
                    changes.push(Change::PutIdempotency(
                        key,
                        IdempotencyRecord { fingerprint: k.fingerprint.clone(), output: output.clone() },
                    ));
                }
                (output, changes, state.revision)
            };
            let commit = State::commit_for(base_revision, &changes).map_err(ApiError::internal)?;
            match self.store.commit(&commit) {
                Ok(revision) => {
                    self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(changes, revision);
                    self.revision.send_replace(revision);
                    return Ok(output);
                }
                Err(e) if e.is_retryable() => self.reload().map_err(ApiError::internal)?,
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        Err(ApiError::internal("store kept moving under the writer"))
    }

    /// Finishes one background task through the same plan → commit → apply path as every
    /// write, so the transition is durable. A task that has moved on is left alone.
    pub fn complete_task(&self, task: Task, scope: &tapwire_model::resource::Scope) -> Result<(), ApiError> {
        let ctx =
            RequestContext { account: scope.account, region: scope.region.clone(), dry_run: false, idempotency: None };
        self.execute(&ctx, Dialect::Tapwire, Operation::CompleteTask(task)).map(|_| ())
    }

    /// Reloads the state from the store (after another replica wrote).
    pub fn reload(&self) -> Result<(), StoreError> {
        let state = State::from_snapshot(self.store.load()?)?;
        let revision = state.revision;
        *self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
        self.revision.send_replace(revision);
        Ok(())
    }
}

fn dry_run() -> ApiError {
    ApiError::new(ErrorKind::DryRunOperation, "Request would have succeeded, but DryRun flag is set.")
}
