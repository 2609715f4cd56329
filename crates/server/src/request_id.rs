//! A request id for every request: taken from a well-formed incoming
//! `x-request-id` or made fresh (UUIDv7), kept in a task-local so error
//! responses can carry it, attached to the request's tracing span and echoed in
//! the response header.
//!
//! The same task-local carries who made the request once the session
//! extractor has authenticated it ([`authenticated`]), so the access log
//! written after the handler can name the user.

use arbor_app::model::ClientKind;
use arbor_core::UserId;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use std::cell::Cell;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// What the edge learns about a request while it is handled.
pub struct RequestContext {
    pub id: String,
    user: Cell<Option<(UserId, ClientKind)>>,
}

impl RequestContext {
    /// The authenticated user and how they came (bearer token or cookie),
    /// when a handler authenticated the request.
    pub fn user(&self) -> Option<(UserId, ClientKind)> {
        self.user.get()
    }
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// The current request's id, inside a request.
pub fn current() -> Option<String> {
    REQUEST.try_with(|r| r.id.clone()).ok()
}

/// Records that the current request was made by `user` (for the access
/// log); nothing outside a request.
pub fn authenticated(user: UserId, client: ClientKind) {
    let _ = REQUEST.try_with(|r| r.user.set(Some((user, client))));
}

fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs `handle` with the request's id set (task-local, tracing span,
/// response header); gives the response and what was learnt meanwhile.
pub async fn scoped<F, Fut>(request: Request, handle: F) -> (Response, RequestContext)
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
    // The URI as received, with token-bearing query values redacted.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        // Never the raw query: link pages and the device API carry tokens there.
        uri = %crate::redact::redact_uri(request.uri()),
    );
    let header = HeaderValue::from_str(&id).ok();
    let scope = REQUEST.scope(
        RequestContext {
            id,
            user: Cell::new(None),
        },
        handle(request).instrument(span.clone()),
    );
    let mut scope = std::pin::pin!(scope);
    let mut response = scope.as_mut().await;
    // The future gives the context back once it is done.
    let context = scope.take_value().unwrap_or_else(|| RequestContext {
        id: String::new(),
        user: Cell::new(None),
    });
    // At DEBUG, a line inside the span (which names the redacted URI); the
    // access log writes the INFO line.
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if let Some(value) = header {
        response.headers_mut().insert(HEADER, value);
    }
    (response, context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[test]
    fn only_short_plain_ids_are_taken_from_the_client() {
        assert!(acceptable("abc-123_X"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable(&"x".repeat(65)));
        assert!(!acceptable("<script>"));
    }

    #[tokio::test]
    async fn the_context_names_the_id_and_the_user_a_handler_recorded() {
        let request = Request::builder()
            .header(HEADER, "req-1")
            .body(Body::empty())
            .unwrap();
        let (response, context) = scoped(request, |_| async {
            assert_eq!(current().as_deref(), Some("req-1"));
            authenticated(UserId(7), ClientKind::Api);
            Response::new(Body::empty())
        })
        .await;
        assert_eq!(response.headers()[HEADER], "req-1");
        assert_eq!(context.id, "req-1");
        assert_eq!(context.user(), Some((UserId(7), ClientKind::Api)));
        // Outside a request, recording is a no-op.
        authenticated(UserId(8), ClientKind::Web);
        assert_eq!(current(), None);
    }
}
