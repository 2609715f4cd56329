//! What an operator sees of the server: Prometheus metrics ([`scrape`],
//! served at `/metrics`) and one access-log line per request ([`access`],
//! written by the edge layer).
//!
//! The metrics recorder is process-wide (the `metrics` facade has one global
//! recorder, and other modules record through its macros); it is installed
//! once, when the first server state is built, and several servers in one
//! process (the test suites) share it.

pub mod access;
pub mod scrape;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Requests answered, by route template, method and status.
pub const HTTP_REQUESTS: &str = "arbor_http_requests_total";
/// Time from a request's arrival at the edge to its response, in seconds.
pub const HTTP_DURATION: &str = "arbor_http_request_duration_seconds";
/// Requests under `/external/api/` (the device API), by status.
pub const DEVICE_API_REQUESTS: &str = "arbor_device_api_requests_total";
/// Failed logins (wrong email or password).
pub const LOGIN_FAILURES: &str = "arbor_login_failures_total";

/// Upper bounds of the latency histogram's buckets, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are drained into their buckets. Without upkeep the
/// exporter keeps every sample recorded since the last scrape.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's metrics recorder, installed on first use; `None` when
/// another recorder was installed first (metrics then go there and
/// `/metrics` answers 503).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &DURATION_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder);
    let handle = match installed {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics is unavailable");
            return None;
        }
    };
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        // Scrapes still drain the histograms (render runs the same upkeep).
        tracing::warn!(error = %e, "metrics upkeep thread not started");
    }
    Some(handle)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route template, method and status"
    );
    describe_counter!(
        DEVICE_API_REQUESTS,
        "Requests to the device API (paths under /external/api/), by status"
    );
    describe_counter!(LOGIN_FAILURES, "Failed logins");
    scrape::describe();
}
