//! Shared harness of the golden tests: an in-process server over
//! `tapwire_control::testing` (in-memory store, seeded RNG, fixed clock, so IDs and times
//! are stable), interface registration, and the golden-file comparison. `UPDATE_GOLDEN=1` rewrites the files (review the diff before committing).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use tapwire_api::{Api, ApiConfig, router};
use tapwire_control::ops::{InterfaceRegistration, Operation, Output, RequestContext};
use tapwire_control::{ControlConfig, Dialect};
use tapwire_model::AccountId;
use tower::ServiceExt;

/// A server over a fresh in-memory store, deterministic for `seed`.
pub fn api(seed: u64) -> Arc<Api> {
    let control = tapwire_control::testing::control(seed, ControlConfig::default());
    Arc::new(Api::unauthenticated(control, ApiConfig::default()))
}

/// Registers an interface (attached to `instance`, or free) and returns its ID.
pub fn register(api: &Api, region: &str, ip: &str, instance: Option<&str>) -> String {
    let ctx = RequestContext::system(AccountId::DEFAULT, region);
    let reg = InterfaceRegistration {
        host: instance.map(|i| i.replace("i-", "host-")),
        ifname: Some("eth0".into()),
        instance_id: instance.map(str::to_owned),
        // One MAC per interface, as hosts have: the same MAC would be the same interface.
        mac: Some(match ip.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(v4) => format!("02:00:00:00:{:02x}:{:02x}", v4.octets()[2], v4.octets()[3]),
            std::net::IpAddr::V6(_) => "02:00:00:00:06:01".into(),
        }),
        addresses: vec![ip.parse().unwrap()],
    };
    match api.control.execute(&ctx, Dialect::Tapwire, Operation::RegisterInterface(reg)).unwrap() {
        Output::Interface(i) => i.id.to_string(),
        other => panic!("{other:?}"),
    }
}

/// Sends one request through the router; returns status and body.
pub async fn send(api: &Arc<Api>, req: Request<Body>) -> (u16, Vec<u8>) {
    let resp = router(api.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, bytes.to_vec())
}

/// Golden files in one folder, one per scripted step, named by the step; compared (or
/// rewritten) one by one.
pub struct Golden {
    dir: PathBuf,
    extension: &'static str,
    n: usize,
    names: std::collections::BTreeSet<String>,
    update: bool,
    failures: Vec<String>,
}

impl Golden {
    /// Golden files `tests/golden/{folder}/{step}.{extension}`.
    pub fn new(folder: &str, extension: &'static str) -> Self {
        Self {
            dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(folder),
            extension,
            n: 0,
            names: std::collections::BTreeSet::new(),
            update: std::env::var_os("UPDATE_GOLDEN").is_some(),
            failures: Vec::new(),
        }
    }

    /// Compares the next response (already normalised) with its file.
    pub fn check(&mut self, name: &str, status: u16, body: &str) {
        self.n += 1;
        assert!(self.names.insert(name.to_owned()), "two steps are named {name}");
        let path = self.dir.join(format!("{name}.{}", self.extension));
        let actual = format!("HTTP {status}\n{body}\n");
        if self.update {
            std::fs::write(&path, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| format!("<missing {}>", path.display()));
        if expected != actual {
            self.failures.push(format!("{}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display()));
        }
    }

    /// Fails the test with every mismatch, unless at least `at_least` files were checked,
    /// and when a golden file belongs to no step (a renamed or dropped step).
    pub fn finish(self, at_least: usize) {
        assert!(self.failures.is_empty(), "{} golden mismatches:\n{}", self.failures.len(), self.failures.join("\n"));
        assert!(self.n >= at_least, "only {} of {at_least} scripted calls were checked", self.n);
        if !self.update {
            let stale: Vec<String> = std::fs::read_dir(&self.dir)
                .unwrap()
                .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
                .filter(|stem| !self.names.contains(stem))
                .collect();
            assert!(stale.is_empty(), "golden files of no step: {stale:?}");
        }
    }
}
