//! The audit trail: who did what, when, from where, with what result.
//!
//! - A write's record is committed in the same transaction as the write
//!   ([`crate::control::Control::execute`] adds it), so the trail never misses a write that
//!   happened and never shows one that did not.
//! - Refusals (authentication failed, action denied, a write the checks refused) are
//!   noted in a bounded buffer ([`AuditBuffer`]) and appended in batches, so a flood of
//!   bad requests costs one fsync a second, not one each; what the buffer cannot hold is
//!   counted and logged, never silently lost.
//! - Records live in the store's append-only log, not in the state; retention is bounded
//!   by age and count ([`crate::control::Control::prune_audit`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tapwire_model::identity::AuditRecord;
use tapwire_store::Record;

use crate::ops::{Operation, Output};

/// The record kind of the audit trail in the store's log.
pub const KIND: &str = "audit";

/// Who asked, how, and under which request ID: what a write's record needs besides the
/// operation and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// The access key (or agent credential) used.
    pub access_key: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// `ec2`, `alibaba` or `tapwire`.
    pub dialect: &'static str,
    /// The action name.
    pub action: &'static str,
    /// The request ID of the answer.
    pub request_id: String,
}

/// The store record of an audit record.
pub fn to_record(r: &AuditRecord) -> Record {
    Record {
        kind: KIND,
        at: r.at,
        account: r.account.map(|a| a.to_string()),
        action: r.action.clone(),
        body: serde_json::to_string(r).unwrap_or_else(|_| "{}".into()),
    }
}

/// IDs an operation and its output name, for the record.
pub fn resource_ids(op: &Operation, output: &Output) -> Vec<String> {
    let mut ids = match output {
        Output::Filter(v) => {
            std::iter::once(v.filter.id.to_string()).chain(v.rules.iter().map(|r| r.id.to_string())).collect()
        }
        Output::Rule(r) => vec![r.id.to_string()],
        Output::Rules(rs) => rs.iter().map(|r| r.id.to_string()).collect(),
        Output::Session(s) => vec![s.id.to_string()],
        Output::Target(t) => vec![t.id.to_string()],
        Output::Interface(i) => vec![i.id.to_string()],
        Output::Account(a) => vec![a.id.to_string()],
        Output::AccessKey(k) => vec![k.id.clone()],
        Output::JoinToken(t) => vec![t.id.clone()],
        Output::SensorGroup(g) => vec![g.id.to_string()],
        Output::Deleted(id) => vec![id.clone()],
        Output::Done => Vec::new(),
    };
    let refs = match op {
        Operation::CreateTags { resources, .. } | Operation::DeleteTags { resources, .. } => resources.clone(),
        Operation::MoveResourceGroup { resource, .. } => vec![*resource],
        Operation::CompleteTask(task) => vec![task.resource],
        _ => Vec::new(),
    };
    ids.extend(refs.iter().map(|r| r.to_string()));
    if let Operation::DeleteRules { rule_ids, .. } = op {
        ids.extend(rule_ids.iter().map(ToString::to_string));
    }
    ids.dedup();
    ids
}

/// Refusals waiting to be appended.
#[derive(Debug)]
pub struct AuditBuffer {
    capacity: usize,
    pending: Mutex<Vec<Record>>,
    dropped: AtomicU64,
}

impl AuditBuffer {
    /// Holds at most `capacity` records between flushes.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, pending: Mutex::new(Vec::new()), dropped: AtomicU64::new(0) }
    }

    /// Notes one record, or counts it as dropped when the buffer is full.
    pub fn note(&self, record: &AuditRecord) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(to_record(record));
    }

    /// Everything noted since the last take.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Records dropped because the buffer was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
