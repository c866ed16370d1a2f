//! The Alibaba lifecycle and service state, through `Control` and a real SQLite store.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use rand::SeedableRng;
use tapwire_control::ops::{Operation, Output, RequestContext};
use tapwire_control::{Control, ControlConfig, Dialect, ErrorKind, ResourceKind, SystemClock};
use tapwire_model::AccountId;
use tapwire_model::resource::ResourceStatus;

fn open(dir: &std::path::Path) -> Control {
    let store = tapwire_store::SqliteStore::open_dir(dir).unwrap();
    let entropy = Box::new(rand::rngs::StdRng::seed_from_u64(3));
    Control::open(Box::new(store), Box::new(SystemClock), entropy, ControlConfig::default()).unwrap()
}

fn ctx() -> RequestContext {
    RequestContext::system(AccountId::DEFAULT, "cn-hangzhou")
}

fn create_filter() -> Operation {
    Operation::CreateFilter { name: None, description: None, tags: vec![], resource_group: None, rules: vec![] }
}

fn finish_all(control: &Control) -> usize {
    let pending = control.read().pending_tasks();
    for (task, scope) in &pending {
        control.complete_task(*task, scope).unwrap();
    }
    pending.len()
}

#[test]
fn alibaba_writes_wait_for_the_service_and_go_through_the_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let control = open(dir.path());
    let err = control.execute(&ctx(), Dialect::Alibaba, create_filter()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OptInRequired);
    control.execute(&ctx(), Dialect::Alibaba, Operation::OpenService).unwrap();
    assert_eq!(
        control.execute(&ctx(), Dialect::Alibaba, Operation::OpenService).unwrap_err().kind,
        ErrorKind::AlreadyOpened
    );

    let Output::Filter(view) = control.execute(&ctx(), Dialect::Alibaba, create_filter()).unwrap() else { panic!() };
    let id = view.filter.id;
    assert_eq!(control.read().filters[&id].status, ResourceStatus::Creating);
    let busy = control.execute(&ctx(), Dialect::Alibaba, Operation::DeleteFilter(id)).unwrap_err();
    assert_eq!(busy.kind, ErrorKind::IncorrectStatus(ResourceKind::Filter));
    assert_eq!(finish_all(&control), 1);
    assert_eq!(control.read().filters[&id].status, ResourceStatus::Created);
    assert_eq!(finish_all(&control), 0);

    control.execute(&ctx(), Dialect::Alibaba, Operation::DeleteFilter(id)).unwrap();
    assert_eq!(control.read().filters[&id].status, ResourceStatus::Deleting);
    // Durable: a restart finds the pending task and the opened service.
    drop(control);
    let control = open(dir.path());
    assert!(
        control.read().service_open(&tapwire_model::resource::Scope {
            account: AccountId::DEFAULT,
            region: "cn-hangzhou".into()
        })
    );
    assert_eq!(finish_all(&control), 1);
    assert!(!control.read().filters.contains_key(&id));
}

#[test]
fn ec2_writes_are_created_at_once_and_stale_tasks_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let control = open(dir.path());
    let Output::Filter(view) = control.execute(&ctx(), Dialect::Ec2, create_filter()).unwrap() else { panic!() };
    assert_eq!(view.filter.status, ResourceStatus::Created);
    assert!(control.read().pending_tasks().is_empty());
    // A task for a status the resource has left is a no-op.
    let stale = tapwire_control::Task {
        resource: tapwire_control::ops::ResourceRef::Filter(view.filter.id),
        status: ResourceStatus::Deleting,
    };
    control.complete_task(stale, &view.filter.scope).unwrap();
    assert!(control.read().filters.contains_key(&view.filter.id));
}
