//! A request id for every request: taken from a well-formed incoming
//! `x-request-id` or made fresh (UUIDv7), kept in a task-local so error
//! responses can carry it, attached to the request's tracing span and echoed in
//! the response header.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, inside a request.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs `handle` with the request's id set (task-local, tracing span,
/// response header).
pub async fn scoped<F, Fut>(request: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        // Never the raw query: link pages and the device API carry tokens there.
        uri = %crate::redact::redact_uri(request.uri()),
    );
    let mut response = REQUEST_ID
        .scope(id.clone(), handle(request).instrument(span.clone()))
        .await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_short_plain_ids_are_taken_from_the_client() {
        assert!(super::acceptable("abc-123_X"));
        assert!(!super::acceptable(""));
        assert!(!super::acceptable("a b"));
        assert!(!super::acceptable(&"x".repeat(65)));
        assert!(!super::acceptable("<script>"));
    }
}
