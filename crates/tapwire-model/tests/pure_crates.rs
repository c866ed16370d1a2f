//! The pure crates (`tapwire-model`, `tapwire-wire`, `tapwire-mirror`, `tapwire-auth`) do
//! no I/O: none of them may come to depend, directly or through another crate, on an
//! async runtime, an HTTP stack, the store, the system-call crates or the crates that do
//! I/O. Reads the
//! resolved dependency graph of this platform from `cargo metadata`; dev-dependencies do
//! not count.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

const PURE: &[&str] = &["tapwire-model", "tapwire-wire", "tapwire-mirror", "tapwire-auth"];

const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "axum",
    "hyper",
    "tower",
    "ureq",
    "reqwest",
    "socket2",
    "libc",
    "nix",
    "rustix",
    "rusqlite",
    "sqlx",
    "tokio-postgres",
    "tapwire-store",
    "tapwire-control",
    "tapwire-api",
    "tapwire-agent",
    "tapwire-receive",
];

/// The platform this is built for: dependencies of other platforms only (e.g. the libc
/// that `cpufeatures` uses on aarch64 Linux) are not this build's.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("rustc runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV names the host").to_owned()
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--filter-platform", &host(), "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every package reachable from `root` through normal and build dependencies.
fn closure(nodes: &HashMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(id) = stack.pop() {
        for dep in nodes.get(&id).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn pure_crates_never_reach_io() {
    let meta = metadata();
    let names: HashMap<String, String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap_or_default().to_owned(), p["name"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let nodes: HashMap<String, Vec<String>> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve graph")
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].as_str() != Some("dev")))
                .map(|d| d["pkg"].as_str().unwrap_or_default().to_owned())
                .collect();
            (n["id"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect();
    let mut checked = 0;
    for pure in PURE {
        let (id, _) =
            names.iter().find(|(_, name)| name == pure).unwrap_or_else(|| panic!("{pure} is in the workspace"));
        let reached: BTreeSet<&str> = closure(&nodes, id).iter().map(|d| names[d].as_str()).collect();
        let bad: Vec<&&str> = FORBIDDEN.iter().filter(|f| reached.contains(**f)).collect();
        assert!(bad.is_empty(), "{pure} depends on {bad:?} (through {reached:?})");
        checked += 1;
    }
    assert_eq!(checked, PURE.len());
    // The check can fail: the binary crate does reach the forbidden ones.
    let (bin, _) = names.iter().find(|(_, name)| *name == "tapwire").expect("the binary is in the workspace");
    let reached: BTreeSet<&str> = closure(&nodes, bin).iter().map(|d| names[d].as_str()).collect();
    assert!(reached.contains("tokio") && reached.contains("tapwire-store"));
}
