//! `GET /metrics`: the Prometheus text format, for operators' scrapers.
//!
//! Who may read it is configured in [`crate::config::MetricsConfig`]: by
//! default loopback peers only (without forwarding headers), or anyone with
//! the configured bearer token. Everyone else gets the same 404 as an
//! unknown path, with no data.
//!
//! Besides what is recorded as requests come (request counts and
//! latencies, login failures, throttling, mail queue depth), a scrape sets
//! the gauges that are cheaper to read than to track: the connection pool,
//! the decision cache's counters and lag (one statement), resident memory
//! and the build.

use crate::AppState;
use crate::config::MetricsConfig;
use crate::error::{ApiError, ProblemKind};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

const POOL_CONNECTIONS: &str = "arbor_db_pool_connections";
const POOL_MAX: &str = "arbor_db_pool_max_connections";
const CACHE_HITS: &str = "arbor_authz_cache_hits_total";
const CACHE_MISSES: &str = "arbor_authz_cache_misses_total";
const CACHE_VERSION_READS: &str = "arbor_authz_cache_version_reads_total";
const CACHE_CATCH_UPS: &str = "arbor_authz_cache_catch_ups_total";
const CACHE_LAG: &str = "arbor_authz_cache_version_lag";
const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
const BUILD_INFO: &str = "arbor_build_info";

/// The version in `/healthz`, `arbor --version` and `arbor_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database connections open, by state (idle, in_use)"
    );
    describe_gauge!(POOL_MAX, "The most database connections the pool opens");
    describe_counter!(CACHE_HITS, "Decision cache lookups answered from memory");
    describe_counter!(
        CACHE_MISSES,
        "Decision cache lookups read from the database"
    );
    describe_counter!(
        CACHE_VERSION_READS,
        "Reads of the authorization version (shared by concurrent requests)"
    );
    describe_counter!(
        CACHE_CATCH_UPS,
        "Times the decision cache read the change feed to catch up"
    );
    describe_gauge!(
        CACHE_LAG,
        "Authorization changes committed that the decision cache has not applied yet"
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the process"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the label names the running version");
}

/// The scrape handler.
pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    if !allowed(&state.config.metrics, peer, request.headers()) {
        return ApiError::not_found("resource").into_response();
    }
    let Some(recorder) = super::recorder() else {
        return ApiError::new(
            ProblemKind::ServiceUnavailable,
            "metrics are not available in this process",
        )
        .into_response();
    };
    update(&state).await;
    let mut response = recorder.render().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A scrape is served to a bearer of the configured token, or (when
/// allowed) to a loopback peer whose request was not forwarded by a proxy.
fn allowed(config: &MetricsConfig, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    if !config.enabled {
        return false;
    }
    if let Some(expected) = &config.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if let Some(presented) = presented {
            use sha2::Digest as _;
            use subtle::ConstantTimeEq as _;
            // Compare digests: equal lengths, and no early exit on a prefix.
            let a = sha2::Sha256::digest(presented.as_bytes());
            let b = sha2::Sha256::digest(expected.trim().as_bytes());
            return bool::from(a.ct_eq(&b));
        }
    }
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    config.loopback && !forwarded && peer.is_some_and(|p| p.ip().is_loopback())
}

async fn update(state: &AppState) {
    use metrics::{counter, gauge};
    let pool = state.app.pool_stats();
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(pool.in_use()));
    gauge!(POOL_MAX).set(f64::from(pool.max));
    match state.app.cache_report().await {
        Ok(Some(report)) => {
            counter!(CACHE_HITS).absolute(report.stats.hits);
            counter!(CACHE_MISSES).absolute(report.stats.misses);
            counter!(CACHE_VERSION_READS).absolute(report.stats.version_reads);
            counter!(CACHE_CATCH_UPS).absolute(report.stats.catch_ups);
            if let Some(lag) = report.version_lag {
                // Versions are counts of commits: far below 2^53.
                gauge!(CACHE_LAG).set(lag as f64);
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "reading the decision cache's lag for /metrics failed")
        }
    }
    if let Some(bytes) = resident_memory_bytes() {
        gauge!(RESIDENT_MEMORY).set(bytes as f64);
    }
    gauge!(BUILD_INFO, "version" => VERSION).set(1.0);
}

/// Resident memory from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_local_unforwarded_scrapers_or_token_bearers_are_served() {
        let local = Some(SocketAddr::from(([127, 0, 0, 1], 4000)));
        let remote = Some(SocketAddr::from(([192, 0, 2, 7], 4000)));
        let default = MetricsConfig::default();
        assert!(allowed(&default, local, &headers(&[])));
        assert!(!allowed(&default, remote, &headers(&[])));
        assert!(!allowed(&default, None, &headers(&[])));
        // A reverse proxy on the same host forwards outside requests.
        assert!(!allowed(
            &default,
            local,
            &headers(&[("x-forwarded-for", "192.0.2.7")])
        ));
        let token = MetricsConfig {
            token: Some("a-scrape-token-of-length".into()),
            loopback: false,
            ..MetricsConfig::default()
        };
        assert!(allowed(
            &token,
            remote,
            &headers(&[("authorization", "Bearer a-scrape-token-of-length")])
        ));
        assert!(!allowed(
            &token,
            remote,
            &headers(&[("authorization", "Bearer a-scrape-token-of-lengt")])
        ));
        assert!(!allowed(&token, local, &headers(&[])));
        let off = MetricsConfig {
            enabled: false,
            ..MetricsConfig::default()
        };
        assert!(!allowed(&off, local, &headers(&[])));
    }

    #[test]
    fn resident_memory_is_read_from_vm_rss() {
        let status = "Name:\tarbor\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tarbor\n"), None);
        #[cfg(target_os = "linux")]
        assert!(resident_memory_bytes().is_some_and(|b| b > 0));
    }
}
