//! Shared by the integration tests that wrap a store to watch or steer what the control
//! plane asks of it.

/// The [`tapwire_store::Store`] methods a wrapping test store hands straight to the
/// store in its `inner` field: everything but `commit` and the shared-store methods
/// (with `except_reads`, also but `revision` and `changes_since`).
macro_rules! pass_to_inner {
    () => {
        support::pass_to_inner!(except_reads);
        fn revision(&self) -> Result<u64, tapwire_store::StoreError> {
            self.inner.revision()
        }
        fn changes_since(&self, after: u64) -> Result<Option<tapwire_store::ChangeSet>, tapwire_store::StoreError> {
            self.inner.changes_since(after)
        }
    };
    (except_reads) => {
        fn load(&self) -> Result<tapwire_store::Snapshot, tapwire_store::StoreError> {
            self.inner.load()
        }
        fn append(&self, records: &[tapwire_store::Record]) -> Result<(), tapwire_store::StoreError> {
            self.inner.append(records)
        }
        fn records(
            &self,
            query: &tapwire_store::RecordQuery,
        ) -> Result<Vec<tapwire_store::StoredRecord>, tapwire_store::StoreError> {
            self.inner.records(query)
        }
        fn prune(&self, kind: &'static str, before: i64, keep: usize) -> Result<usize, tapwire_store::StoreError> {
            self.inner.prune(kind, before, keep)
        }
    };
}
pub(crate) use pass_to_inner;
