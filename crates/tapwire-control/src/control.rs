//! The engine: group commit of planned writes, and the published snapshot readers use.
//!
//! Invariants:
//! - One writer at a time per process; memory never runs ahead of the store: a batch of
//!   writes is planned on a private copy and published only after its commit.
//! - A DryRun request runs every check and writes nothing.
//! - A ClientToken answer is committed in the same transaction as the change it made, so a
//!   replay after a crash returns the same resource.
//! - The published state only moves forward: whoever publishes (the writer after its
//!   commit, a catch-up after another replica's) replaces it only with a later revision.
//! - On a shared store (replicas), [`Control::catch_up`] reads only what changed since the
//!   published revision; a lost commit race catches up the same way, never by a reload.
//! - Writes may be planned on a state behind the store (they do not catch up first): a
//!   write's caller's [`crate::ops::Standing`] is checked on the state it is planned
//!   against, a commit lands only on its base revision, and a batch with nothing to
//!   commit is answered only once the store's revision says its state was current.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tapwire_model::identity::AuditRecord;
use tapwire_store::{Record, RecordQuery, Store, StoreError, TelemetryRow};

use crate::audit::{self, AuditBuffer};
use crate::catch_up::{CatchUps, OwnCommit};
use crate::clock::Clock;
use crate::config::ControlConfig;
use crate::dialect::Dialect;
use crate::entropy::Entropy;
use crate::error::{ApiError, ErrorKind};
use crate::ops::{Operation, Output, RequestContext, Task};
use crate::plan::Planner;
use crate::state::{Change, IdempotencyRecord, State, idempotency_key};

/// How many times a commit is retried after another replica moved the store.
const MAX_COMMIT_ATTEMPTS: usize = 8;

/// The control plane's engine.
pub struct Control {
    store: Box<dyn Store>,
    /// The published state; readers clone the `Arc` and never wait for a commit.
    state: RwLock<Arc<State>>,
    /// Writes waiting for a leader; see [`Control::execute`].
    queue: Mutex<Vec<Arc<PendingWrite>>>,
    /// Held by the one thread that plans and commits a batch (the leader).
    writer: Mutex<Box<dyn Entropy>>,
    clock: Box<dyn Clock>,
    config: ControlConfig,
    revision: tokio::sync::watch::Sender<u64>,
    /// Refusals waiting to be appended to the audit trail.
    audit: AuditBuffer,
    /// One catch-up at a time, shared by the callers that wait for it.
    catch_ups: CatchUps,
    /// This replica's commit between the store and memory.
    own_commit: OwnCommit,
    /// Until when batches take the writer lock first: set when a commit lost a race.
    contended: Mutex<Option<Instant>>,
    /// The latest revision the store's word of commits named (any replica's).
    heard: AtomicU64,
}

/// Refusals held between audit flushes.
const AUDIT_BUFFER: usize = 10_000;

/// One queued write and, once a leader has run it, its answer.
struct PendingWrite {
    ctx: RequestContext,
    dialect: Dialect,
    op: Operation,
    answer: Mutex<Option<Result<Output, ApiError>>>,
}

impl PendingWrite {
    fn take_answer(&self) -> Option<Result<Output, ApiError>> {
        self.answer.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn set_answer(&self, answer: Result<Output, ApiError>) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
    }
}

/// What planning one write produced.
enum Planned {
    /// A stored ClientToken answer: nothing to write.
    Replay(Output),
    /// An answer, the changes that make it true, and its audit record.
    Write(Output, Vec<Change>, Option<Record>),
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
        Ok(Self {
            store,
            state: RwLock::new(Arc::new(state)),
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(entropy),
            clock,
            config,
            revision,
            audit: AuditBuffer::new(AUDIT_BUFFER),
            catch_ups: CatchUps::default(),
            own_commit: OwnCommit::default(),
            contended: Mutex::new(None),
            heard: AtomicU64::new(0),
        })
    }

    /// A consistent snapshot of the state for reads.
    pub fn read(&self) -> Arc<State> {
        // A poisoned lock means a panic during a swap; the Arc inside is still whole.
        self.state.read().unwrap_or_else(PoisonError::into_inner).clone()
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
    ///
    /// Group commit: the write joins a queue; whichever caller holds the writer lock drains
    /// the queue, plans every write in arrival order against a private copy of the state
    /// (so each sees the ones before it), commits them all in one store transaction, and
    /// only then publishes the new state and answers. Under load many writes share one
    /// fsync; alone, a write is its own batch.
    pub fn execute(&self, ctx: &RequestContext, dialect: Dialect, op: Operation) -> Result<Output, ApiError> {
        let mine = Arc::new(PendingWrite { ctx: ctx.clone(), dialect, op, answer: Mutex::new(None) });
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(mine.clone());
        let mut entropy = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = mine.take_answer() {
            return answer; // an earlier leader ran it while we waited
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        self.run_batch(&batch, &mut **entropy);
        drop(entropy);
        mine.take_answer().unwrap_or_else(|| Err(ApiError::internal("write left unanswered")))
    }

    /// Plans and commits one batch. On a shared store a replica writing alone commits
    /// without the writer lock (the revision check is enough); after a lost race it takes
    /// turns under the lock for [`ControlConfig::contended_for`].
    fn run_batch(&self, batch: &[Arc<PendingWrite>], entropy: &mut dyn Entropy) {
        let shared = self.store.shared();
        // None: not asked for; Some(None): asked for, not given in time.
        let mut turn = None;
        if shared && self.contended.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|t| t > Instant::now()) {
            match self.take_turn() {
                Ok(taken) => turn = Some(taken),
                Err(err) => return fail_all(batch, &err),
            }
        }
        // Whether a catch-up begun after these writes arrived has been planned on.
        let mut caught_up = false;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let base = self.read();
            let mut working = State::clone(&base);
            let mut answers = Vec::with_capacity(batch.len());
            let mut changes = Vec::new();
            let mut records = Vec::new();
            for write in batch {
                let answer = match self.plan(&working, write, entropy) {
                    Ok(Planned::Replay(output)) => Ok(output),
                    Ok(Planned::Write(output, planned, record)) => {
                        if !planned.is_empty() {
                            records.extend(record);
                        }
                        working.apply(planned.clone(), working.revision);
                        changes.extend(planned);
                        Ok(output)
                    }
                    Err(e) => Err(e),
                };
                answers.push(answer);
            }
            if changes.is_empty() {
                // Nothing to commit, so no revision check proved `base` current. Writes
                // are planned without catching up first; what they refuse (a resource
                // not found, a quota), a DryRun or a ClientToken replay must not come from
                // a state behind the store. One catch-up begun after they arrived is enough.
                if shared && turn.is_none() && !caught_up {
                    match self.catch_up() {
                        Ok(revision) if revision > base.revision => {
                            caught_up = true;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => return self.fail_batch(batch, answers, &ApiError::from_store(e)),
                    }
                }
                return answer_all(batch, answers);
            }
            let mut commit = match State::commit_for(base.revision, &changes) {
                Ok(c) => c,
                Err(e) => return self.fail_batch(batch, answers, &ApiError::internal(e)),
            };
            commit.records = records;
            commit.unlocked = shared && turn.is_none();
            let landing = self.own_commit.begin(base.revision + 1);
            let committed = self.store.commit(&commit);
            if let Ok(revision) = committed {
                working.revision = revision;
                self.publish(working);
            }
            drop(landing);
            match committed {
                Ok(_) => return answer_all(batch, answers),
                Err(e) if e.is_retryable() && shared && turn.is_none() => {
                    *self.contended.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + self.config.contended_for);
                    match self.take_turn() {
                        Ok(taken) => turn = Some(taken),
                        Err(err) => return self.fail_batch(batch, answers, &err),
                    }
                }
                Err(e) if e.is_retryable() => {
                    if let Err(e) = self.catch_up() {
                        return self.fail_batch(batch, answers, &ApiError::from_store(e));
                    }
                }
                Err(e) => return self.fail_batch(batch, answers, &ApiError::from_store(e)),
            }
        }
        fail_all(batch, &ApiError::internal("store kept moving under the writer"));
    }

    /// Takes the store's writer turn and catches up under it unless the revision read with
    /// the lock says memory is current. `None` when the lock did not come in time: the
    /// batch then commits on the revision check alone.
    fn take_turn(&self) -> Result<Option<WriterTurn<'_>>, ApiError> {
        let (turn, store_revision) = WriterTurn::take(&*self.store);
        let behind = store_revision.is_none_or(|revision| revision > self.read().revision);
        if behind {
            self.catch_up().map_err(ApiError::from_store)?;
        }
        Ok(turn)
    }

    /// The batch could not be committed (or its state not proved current): every write
    /// fails with `err`. Alone on its store a refusal still stands, since it was made on
    /// the current state; on a shared store that state may be behind, so refusals fail too.
    fn fail_batch(&self, batch: &[Arc<PendingWrite>], answers: Vec<Result<Output, ApiError>>, err: &ApiError) {
        if self.store.shared() {
            fail_all(batch, err);
        } else {
            fail_writes(batch, answers, err);
        }
    }

    /// Plans one write against `state`: the caller's standing, ClientToken replay,
    /// checks, changes, dry run.
    fn plan(&self, state: &State, write: &PendingWrite, entropy: &mut dyn Entropy) -> Result<Planned, ApiError> {
        let ctx = &write.ctx;
        if let Some(standing) = &ctx.standing {
            standing.check(state, &write.op)?;
        }
        let now = self.clock.now();
        let scope = tapwire_model::resource::Scope { account: ctx.account, region: ctx.region.clone() };
        let key = ctx.idempotency.as_ref().map(|k| (idempotency_key(&scope, k.action, &k.token), k));
        // An expired record is as good as none: the token starts a new request.
        if let Some((key, k)) = &key
            && let Some(record) = state.idempotency.get(key)
            && record.created_at + self.config.client_token_ttl > now
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
            return Ok(Planned::Replay(record.output.clone()));
        }
        let mut plan = Planner::new(state, ctx, write.dialect, now, &self.config, entropy);
        let output = plan.run(write.op.clone())?;
        if ctx.dry_run {
            return Err(dry_run());
        }
        let mut changes = plan.into_changes();
        if let Some((key, k)) = key {
            changes.push(Change::PutIdempotency(
                key,
                IdempotencyRecord { fingerprint: k.fingerprint.clone(), output: output.clone(), created_at: now },
            ));
        }
        let record = ctx.audit.as_ref().map(|a| {
            audit::to_record(&AuditRecord {
                at: now,
                account: Some(ctx.account),
                access_key: a.access_key.clone(),
                source: a.source.clone(),
                dialect: a.dialect.to_owned(),
                action: a.action.to_owned(),
                resources: audit::resource_ids(&write.op, &output),
                result: "OK".to_owned(),
                request_id: a.request_id.clone(),
            })
        });
        Ok(Planned::Write(output, changes, record))
    }

    /// Finishes one background task through the same plan → commit → apply path as every
    /// write, so the transition is durable. A task that has moved on is left alone.
    pub fn complete_task(&self, task: Task, scope: &tapwire_model::resource::Scope) -> Result<(), ApiError> {
        let ctx = RequestContext::system(scope.account, &scope.region);
        self.execute(&ctx, Dialect::Tapwire, Operation::CompleteTask(task)).map(|_| ())
    }

    /// Forgets ClientToken answers older than the configured lifetime, at most `limit` of
    /// them in one durable write; returns how many went. Run periodically.
    pub fn expire_client_tokens(&self, limit: usize) -> Result<usize, ApiError> {
        let cutoff = self.clock.now() - self.config.client_token_ttl;
        let keys: Vec<String> = self.read().idempotency_older_than(cutoff).take(limit).cloned().collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let n = keys.len();
        let ctx = RequestContext::system(tapwire_model::AccountId::DEFAULT, "");
        self.execute(&ctx, Dialect::Tapwire, Operation::ForgetClientTokens(keys)).map(|_| n)
    }

    /// Notes a refusal for the audit trail (appended with the next [`Control::flush_audit`]).
    pub fn note_refusal(&self, record: &AuditRecord) {
        self.audit.note(record);
    }

    /// Appends the refusals noted since the last flush; returns how many.
    pub fn flush_audit(&self) -> Result<usize, StoreError> {
        let records = self.audit.take();
        if !records.is_empty() {
            self.store.append(&records)?;
        }
        Ok(records.len())
    }

    /// Refusals that did not fit the buffer, since the start.
    pub fn audit_dropped(&self) -> u64 {
        self.audit.dropped()
    }

    /// Reads the audit trail, newest first.
    pub fn audit_records(&self, query: &RecordQuery) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let rows = self.store.records(&RecordQuery { kind: audit::KIND, ..query.clone() })?;
        Ok(rows.into_iter().filter_map(|r| Some((r.id, serde_json::from_str(&r.body).ok()?))).collect())
    }

    /// Drops audit records older than `retention` seconds and beyond the newest `keep`.
    pub fn prune_audit(&self, retention: i64, keep: usize) -> Result<usize, StoreError> {
        self.store.prune(audit::KIND, self.clock.now() - retention, keep)
    }

    /// Whether this replica runs background work now (always, alone on its store). A
    /// store out of reach means no: another replica may have taken over.
    pub fn leads(&self) -> bool {
        self.store.lead().unwrap_or(false)
    }

    /// Whether other replicas write to the same store.
    pub fn shared(&self) -> bool {
        self.store.shared()
    }

    /// Hands agents' telemetry to the other replicas (a shared store only).
    pub fn share_telemetry(&self, rows: &[TelemetryRow]) -> Result<(), StoreError> {
        self.store.put_telemetry(rows)
    }

    /// The telemetry replicas wrote after `cursor`, and the cursor to ask from next.
    pub fn shared_telemetry_since(&self, cursor: u64) -> Result<(Vec<TelemetryRow>, u64), StoreError> {
        self.store.telemetry_since(cursor)
    }

    /// Forgets shared telemetry of interfaces not in `keep`.
    pub fn retain_telemetry(&self, keep: &[String]) -> Result<usize, StoreError> {
        self.store.retain_telemetry(keep)
    }

    /// Brings the published state up to the store's revision with what other replicas
    /// committed since (the change feed; a full load only when the feed does not reach
    /// back). Returns the revision published. Cheap when nothing changed: one read of
    /// the store's revision. When word of a later commit came ([`Control::follow`]), the
    /// changes are read without that first read.
    ///
    /// Callers at once share one catch-up begun after they asked ([`CatchUps`]).
    pub fn catch_up(&self) -> Result<u64, StoreError> {
        self.catch_ups.run(|| self.catch_up_now())
    }

    fn catch_up_now(&self) -> Result<u64, StoreError> {
        // Word of a later commit (not this replica's own, which is waited for) says the
        // store moved: its changes are read at once (they carry the store's revision),
        // without asking the revision first.
        let heard = self.heard.load(Ordering::Relaxed);
        self.own_commit.wait_for(heard);
        let mut current = self.read();
        if heard <= current.revision {
            let store_revision = self.store.revision()?;
            // Read after the store's revision: a commit published meanwhile counts.
            current = self.read();
            // This replica's own commit, about to be published: no need to read it back.
            if store_revision > current.revision && self.own_commit.wait_for(store_revision) {
                current = self.read();
            }
            if store_revision <= current.revision {
                return Ok(current.revision);
            }
        }
        let next = match self.store.changes_since(current.revision)? {
            Some(set) => {
                let mut next = State::clone(&current);
                next.apply_stored(set)?;
                next
            }
            None => State::from_snapshot(self.store.load()?)?,
        };
        let revision = next.revision;
        self.publish(next);
        Ok(revision)
    }

    /// Catches up unless word of `heard` (a revision committed) says memory has it
    /// already, or is about to: this replica's own commits are heard of too.
    fn catch_up_with(&self, heard: Option<u64>) -> Result<u64, StoreError> {
        if let Some(heard) = heard {
            self.heard.fetch_max(heard, Ordering::Relaxed);
            self.own_commit.wait_for(heard);
            let current = self.read().revision;
            if heard <= current {
                return Ok(current);
            }
        }
        self.catch_up()
    }

    /// Waits for word of other replicas' commits and catches up, until `stop`: what wakes
    /// the agents' long polls on this replica for a change made on another. A store
    /// without such word is checked every `every`.
    pub fn follow(&self, every: std::time::Duration, stop: &AtomicBool) {
        let mut failing = false;
        while !stop.load(Ordering::Relaxed) {
            match self.store.wait_for_change(every).and_then(|heard| self.catch_up_with(heard)) {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("the store is reachable again; caught up");
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot follow the store; answering from the last state");
                    }
                    failing = true;
                    std::thread::sleep(every);
                }
            }
        }
    }

    /// Publishes `state` if it is later than the published one.
    fn publish(&self, state: State) {
        let revision = state.revision;
        let mut published = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if revision > published.revision {
            *published = Arc::new(state);
            drop(published);
            self.revision.send_replace(revision);
        }
    }
}

/// The store's writer lock, held while a batch is planned and committed; given back on
/// drop. Not taken (the batch runs optimistically) when the store cannot give it.
struct WriterTurn<'a>(&'a dyn Store);

impl<'a> WriterTurn<'a> {
    /// The turn, and the store's revision under it when the store read it with the lock.
    fn take(store: &'a dyn Store) -> (Option<Self>, Option<u64>) {
        match store.begin_writes() {
            Ok(revision) => (Some(Self(store)), revision),
            Err(e) => {
                tracing::warn!(error = %e, "the store's writer lock was not taken; committing without it");
                (None, None)
            }
        }
    }
}

impl Drop for WriterTurn<'_> {
    fn drop(&mut self) {
        self.0.end_writes();
    }
}

fn answer_all(batch: &[Arc<PendingWrite>], answers: Vec<Result<Output, ApiError>>) {
    for (write, answer) in batch.iter().zip(answers) {
        write.set_answer(answer);
    }
}

/// Every write of the batch fails with `err`.
fn fail_all(batch: &[Arc<PendingWrite>], err: &ApiError) {
    batch.iter().for_each(|write| write.set_answer(Err(err.clone())));
}

/// The commit failed: writes that would have changed something fail; refusals stand.
fn fail_writes(batch: &[Arc<PendingWrite>], answers: Vec<Result<Output, ApiError>>, err: &ApiError) {
    for (write, answer) in batch.iter().zip(answers) {
        write.set_answer(answer.and(Err(err.clone())));
    }
}

fn dry_run() -> ApiError {
    ApiError::new(ErrorKind::DryRunOperation, "Request would have succeeded, but DryRun flag is set.")
}
