//! The capture loop of one interface: polls, configuration changes, re-attachment to a
//! re-made interface, flushes and publishing of the interface report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Pipeline;
use crate::capture::Capture;
use crate::follow::Link;
use crate::output::Transmit;
use crate::report::InterfaceReport;

/// How often ring statistics are read and counters published.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the capture loop until `stop`: follows `link` to a new interface index (the
/// interface was made again), applies new configurations (re-attaching the pre-filter),
/// feeds every frame to the pipeline, flushes after every poll, and publishes the
/// interface report into `published` every [`PUBLISH_INTERVAL`] and once more on the way
/// out. A failing poll (the link is down or gone) is logged once, then waited out.
pub fn run<T: Transmit>(
    capture: &mut dyn Capture,
    pipeline: &mut Pipeline<T>,
    interface: &str,
    poll_timeout: Duration,
    stop: &AtomicBool,
    published: &Mutex<InterfaceReport>,
    link: &Link,
) {
    let mut last_publish = Instant::now();
    let mut link_generation = link.generation();
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        if link.generation() != link_generation {
            link_generation = link.generation();
            let filter = pipeline.config().map(|c| c.prefilter.clone()).unwrap_or_default();
            match capture.reattach(link.ifindex(), &filter) {
                Ok(()) => {
                    pipeline.record_reattach();
                    tracing::info!(interface, ifindex = link.ifindex(), "capture re-attached");
                }
                Err(e) => tracing::warn!(interface, error = %e, "re-attaching the capture failed"),
            }
        }
        if let Some(config) = pipeline.refresh() {
            let attached = capture.set_filter(&config.prefilter);
            if let Err(e) = &attached {
                tracing::error!(interface, error = %e, "the kernel refused the pre-filter; keeping the previous one");
            }
            pipeline.record_filter(attached.is_ok());
            // Right away, so the watcher's report names the revision now in use.
            publish(capture, pipeline, interface, published);
        }
        match capture.poll(poll_timeout, &mut |frame| pipeline.handle(frame)) {
            Ok(_) if failing => {
                failing = false;
                tracing::info!(interface, "capture resumed");
            }
            Ok(_) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(interface, error = %e, "capture poll failed; waiting for the link");
                }
                failing = true;
                pipeline.record_poll_error();
                std::thread::sleep(poll_timeout);
            }
        }
        pipeline.flush();
        if last_publish.elapsed() >= PUBLISH_INTERVAL {
            last_publish = Instant::now();
            publish(capture, pipeline, interface, published);
        }
    }
    pipeline.flush();
    publish(capture, pipeline, interface, published);
}

fn publish<T: Transmit>(
    capture: &mut dyn Capture,
    pipeline: &mut Pipeline<T>,
    interface: &str,
    published: &Mutex<InterfaceReport>,
) {
    match capture.statistics() {
        Ok(stats) => pipeline.record_ring(stats),
        Err(e) => tracing::warn!(interface, error = %e, "reading ring statistics failed"),
    }
    let report = pipeline.report(interface);
    *published.lock().unwrap_or_else(PoisonError::into_inner) = report;
}
