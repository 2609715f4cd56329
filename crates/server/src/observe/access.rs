//! One access-log line per request (target `arbor::access`, INFO) and the
//! per-request metrics, both written by the edge layer once the response is
//! ready.
//!
//! The line is a structured event: method, route template, path (without
//! the query, which may carry a token; none under `/external/api/`, where a
//! device token may be part of the path), status, latency, request id, the
//! authenticated user and client kind, and the response's size when known.
//! Headers are never logged (`Authorization` and `Cookie` carry sessions).

use crate::request_id::RequestContext;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use std::time::Instant;

pub const TARGET: &str = "arbor::access";

/// Paths of the device API (issue 12): its requests are also counted on
/// their own, and their paths are not logged.
const DEVICE_API_PREFIX: &str = "/external/api/";

/// The label of requests that matched no route: the raw path is never a
/// label (unbounded cardinality).
const UNMATCHED: &str = "unmatched";

/// What the edge keeps of a request until its response is ready.
pub struct Seen {
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
    device_api: bool,
    /// Only when the access log is on.
    path: Option<String>,
}

impl Seen {
    pub fn start(request: &Request) -> Self {
        let path = request.uri().path();
        let device_api = path.starts_with(DEVICE_API_PREFIX);
        let logged = tracing::enabled!(target: TARGET, tracing::Level::INFO);
        Self {
            started: Instant::now(),
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
            device_api,
            path: (logged && !device_api).then(|| path.to_owned()),
        }
    }

    /// Counts the request and writes its access-log line.
    pub fn finish(self, response: &Response, context: &RequestContext) {
        let elapsed = self.started.elapsed();
        let status = response.status().as_u16();
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let method = method_label(&self.method);
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        metrics::counter!(super::HTTP_REQUESTS, &labels).increment(1);
        metrics::histogram!(super::HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
        if self.device_api {
            metrics::counter!(super::DEVICE_API_REQUESTS, "status" => status.to_string())
                .increment(1);
        }
        let user = context.user();
        // Microsecond precision is plenty, and keeps the line short.
        let latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        tracing::info!(
            target: TARGET,
            method = %self.method,
            route,
            path = self.path.as_deref(),
            status,
            latency_ms,
            request_id = %context.id,
            user_id = user.map(|(user, _)| user.0),
            client = user.map(|(_, client)| client.as_str()),
            bytes = response.body().size_hint().exact(),
            "request"
        );
    }
}

/// Standard methods by name; any other is "other", so that a client cannot
/// grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
