//! Keeping an interface's configuration current: register, long-poll by revision, apply,
//! report back — and ride out control-plane outages.
//!
//! The control plane is behind the [`ControlPlane`] trait (the `tapwire` binary
//! implements it over HTTP with its one client), so this loop is tested with a fake.
//! Rules: the data plane keeps the last applied configuration whatever happens here;
//! failures back off exponentially (`backoff_min` → `backoff_max`); after a failure the
//! next poll asks for the current document at once (the server may have restarted with a
//! different store); an unknown interface is registered again.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tapwire_model::NetworkInterfaceId;
use tapwire_model::config::InterfaceConfig;

use tapwire_mirror::CompileError;

use crate::applied::{AppliedConfig, RouteLookup};
use crate::offload::OffloadMode;
use crate::report::InterfaceReport;
pub use crate::shared::InterfaceShared;

/// What an agent registers for one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Host name.
    pub host: String,
    /// Interface name.
    pub ifname: String,
    /// Instance ID, if the operator gave one.
    pub instance_id: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// Addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
}

/// What the agent reports after applying a configuration and periodically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Revision the data plane runs with.
    pub applied_revision: Option<u64>,
    /// Host name.
    pub host: String,
    /// Counters and state of the interface.
    pub interface: InterfaceReport,
}

/// Why a control-plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The server does not know the interface (e.g. a new store): register again.
    #[error("the control plane does not know interface {0}")]
    UnknownInterface(String),
    /// Anything else: unreachable, 5xx, unreadable answer.
    #[error("{0}")]
    Unavailable(String),
}

/// The agent's view of the control plane.
pub trait ControlPlane: Send {
    /// Registers an interface; the same host and name always get the same ID.
    fn register(&mut self, registration: &Registration) -> Result<NetworkInterfaceId, ControlError>;
    /// The interface's configuration: at once when `after` is `None`, else as soon as the
    /// revision passes `after`, or `None` after `wait`.
    fn fetch_config(
        &mut self,
        eni: NetworkInterfaceId,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<Option<InterfaceConfig>, ControlError>;
    /// Reports the applied revision and counters.
    fn report_status(&mut self, eni: NetworkInterfaceId, report: &StatusReport) -> Result<(), ControlError>;
}

/// Timing of the watch loop.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Longest long poll.
    pub long_poll: Duration,
    /// Status report period.
    pub status_interval: Duration,
    /// First retry delay after a failure.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            long_poll: Duration::from_secs(10),
            status_interval: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// What the watcher needs to compile configurations.
pub struct ApplySettings {
    /// `SO_MARK` of the agent's output.
    pub mark: u32,
    /// Offload handling (decides the pre-filter's snap length).
    pub offload: OffloadMode,
    /// What the host knows of the route to an address.
    pub route: Box<dyn Fn(IpAddr) -> RouteLookup + Send + Sync>,
}

/// Runs the watch loop for one interface until `stop`.
pub fn watch(
    control: &mut dyn ControlPlane,
    registration: &Registration,
    shared: &InterfaceShared,
    settings: &ApplySettings,
    options: WatchOptions,
    stop: &AtomicBool,
) {
    let mut backoff = options.backoff_min;
    let fail = |shared: &InterfaceShared, error: &ControlError, backoff: &mut Duration| {
        tracing::warn!(interface = %shared.name, error = %error, retry_in = ?*backoff, "control plane unavailable");
        shared.update_control(|(_, s)| {
            s.connected = false;
            s.last_error = Some(error.to_string());
        });
        sleep_unless_stopped(*backoff, stop);
        *backoff = (*backoff * 2).min(options.backoff_max);
    };
    let connected = |shared: &InterfaceShared| {
        shared.update_control(|(_, s)| {
            s.connected = true;
            s.last_error = None;
        })
    };

    let mut eni: Option<NetworkInterfaceId> = None;
    let mut registered = shared.host_generation();
    let mut after: Option<u64> = None;
    let mut last_report: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        // The host's addresses or MAC changed (the follower saw it): register again.
        if eni.is_some() && shared.host_generation() != registered {
            eni = None;
        }
        let id = match eni {
            Some(id) => id,
            None => match control.register(&shared.registration(registration)) {
                Ok(id) => {
                    registered = shared.host_generation();
                    tracing::info!(interface = %shared.name, eni = %id, "registered");
                    shared.update_control(|(e, _)| *e = Some(id));
                    connected(shared);
                    backoff = options.backoff_min;
                    eni = Some(id);
                    id
                }
                Err(e) => {
                    fail(shared, &e, &mut backoff);
                    continue;
                }
            },
        };
        let mut report_now = false;
        // The poll ends by the next report's time, so counters leave every status_interval
        // even while the configuration stays the same (the server waits in whole seconds).
        let until_report = last_report.map_or(Duration::ZERO, |t| options.status_interval.saturating_sub(t.elapsed()));
        let poll = options.long_poll.min(Duration::from_secs(until_report.as_secs().max(1)));
        match control.fetch_config(id, after, poll) {
            Ok(Some(config)) => {
                connected(shared);
                backoff = options.backoff_min;
                after = Some(config.revision);
                apply(shared, settings, config);
                report_now = true;
            }
            Ok(None) => {
                connected(shared);
                backoff = options.backoff_min;
            }
            Err(e @ ControlError::UnknownInterface(_)) => {
                tracing::warn!(interface = %shared.name, error = %e, "registering again");
                eni = None;
                after = None;
            }
            Err(e) => {
                after = None;
                fail(shared, &e, &mut backoff);
                continue;
            }
        }
        if report_now || last_report.is_none_or(|t| t.elapsed() >= options.status_interval) {
            let mut interface = shared.report();
            interface.sessions.retain(|s| s.active || s.failed.is_some());
            interface.rules.retain(|r| r.active);
            let report = StatusReport {
                applied_revision: interface.applied_revision,
                host: registration.host.clone(),
                interface,
            };
            match control.report_status(id, &report) {
                Ok(()) => last_report = Some(Instant::now()),
                Err(e) => tracing::warn!(interface = %shared.name, error = %e, "status report failed"),
            }
        }
    }
}

/// Compiles `config` for the host as it is now: the routes to its targets, the
/// interface's MTU.
fn build(
    shared: &InterfaceShared,
    settings: &ApplySettings,
    config: InterfaceConfig,
) -> Result<AppliedConfig, CompileError> {
    let health = &shared.health;
    let mut applied =
        AppliedConfig::build_with_health(config, settings.mark, settings.offload, &*settings.route, &|a| {
            health.is_healthy(a)
        })?;
    applied.interface_mtu = Some(shared.host().mtu);
    Ok(applied)
}

/// Compiles and publishes `config`, then waits (briefly) until the capture thread runs it
/// and has published counters saying so, so the report that follows names the revision
/// really in use.
fn apply(shared: &InterfaceShared, settings: &ApplySettings, config: InterfaceConfig) {
    let revision = config.revision;
    let _one_at_a_time = shared.apply_lock();
    match build(shared, settings, config) {
        Ok(applied) => {
            for f in &applied.failed {
                tracing::warn!(interface = %shared.name, revision, session = %f.session_id, reason = %f.reason, "session not mirrored");
            }
            log_left_out(shared, &applied, None);
            if !applied.prefilter_exact {
                tracing::info!(interface = %shared.name, "rules too many for the kernel pre-filter; it accepts all IP traffic");
            }
            shared.slot.publish(Arc::new(applied));
            shared.update_control(|(_, s)| s.config_error = None);
            let deadline = Instant::now() + Duration::from_millis(500);
            let in_use = || shared.counters().applied_revision;
            while in_use() != Some(revision) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            tracing::info!(interface = %shared.name, revision, "configuration applied");
        }
        Err(e) => {
            tracing::error!(interface = %shared.name, revision, error = %e, "configuration refused; keeping the previous one");
            shared.update_control(|(_, s)| s.config_error = Some(format!("revision {revision}: {e}")));
        }
    }
}

/// Rebuilds the configuration in use for the host as it is now (new path MTUs, routes
/// come or gone, a new interface MTU) and publishes it if that changed anything.
pub fn rebuild(shared: &InterfaceShared, settings: &ApplySettings) {
    let _one_at_a_time = shared.apply_lock();
    let Some(current) = shared.slot.latest() else { return };
    match build(shared, settings, current.config.clone()) {
        Ok(fresh) if fresh.host_view_differs(&current) => {
            tracing::info!(interface = %shared.name, revision = fresh.revision(), "the host changed; configuration rebuilt");
            for f in fresh.failed.iter().filter(|f| !current.failed.contains(f)) {
                tracing::warn!(interface = %shared.name, session = %f.session_id, reason = %f.reason, "session not mirrored");
            }
            log_left_out(shared, &fresh, Some(&current));
            shared.slot.publish(Arc::new(fresh));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(interface = %shared.name, error = %e, "rebuilding for the host failed; keeping the configuration")
        }
    }
}

/// Logs the sensor-group members `applied` leaves out (unreachable, or failing their
/// health checks) that `before` did not.
fn log_left_out(shared: &InterfaceShared, applied: &AppliedConfig, before: Option<&AppliedConfig>) {
    let left_out =
        |a: &AppliedConfig| -> Vec<String> { a.groups.iter().flatten().flat_map(|g| g.left_out.clone()).collect() };
    let old = before.map(left_out).unwrap_or_default();
    for member in left_out(applied).into_iter().filter(|m| !old.contains(m)) {
        tracing::warn!(interface = %shared.name, %member, "sensor-group member left out");
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
