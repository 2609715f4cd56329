//! The API contract at the edge: every error answers RFC 9457 problem
//! details, whoever produced it.
//!
//! The extractors of [`crate::extract`] answer with problem details
//! themselves; this layer catches what is answered before or without them —
//! axum's empty 405 for a known path with another method, a 413 or 400 from
//! a body extractor, a rejection of a route added later — and rewrites any
//! plain-text or empty error into problem details with the same status (its
//! text is dropped: it is not part of the contract). HTML error pages (the
//! link pages) and problem details pass through unchanged.

use crate::error::{ApiError, ProblemKind};
use crate::extract::too_large;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the edge checks, once per request.
pub struct Edge {
    pub body_limit: usize,
    /// The device API's own limit (its timestamped batches).
    pub device_body_limit: usize,
    pub cross_site: crate::auth::cross_site::CrossSite,
}

/// The one edge layer: gives the request its id ([`crate::request_id`]); an
/// announced body over the limit answers 413, a cross-site cookie write 403
/// (before the handler, on every route and the fallback); whatever answers,
/// a plain error leaves as problem details; and the request is counted and
/// logged ([`crate::observe::access`]). One layer rather than five: each
/// `from_fn` layer costs a boxed future per request.
pub async fn layer(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let seen = crate::observe::access::Seen::start(&request);
    let (response, context) = crate::request_id::scoped(request, |request| async move {
        if request.uri().path().starts_with(crate::device_api::PREFIX) {
            if announced_too_large(&request, edge.device_body_limit) {
                return crate::device_api::too_large();
            }
        } else if announced_too_large(&request, edge.body_limit) {
            return too_large().into_response();
        }
        if let Some(refused) = edge.cross_site.check(&request) {
            return edge.cross_site.refuse(refused).await;
        }
        problem_details(next.run(request).await)
    })
    .await;
    seen.finish(&response, &context);
    response
}

/// Rewrites plain-text and empty error responses into problem details.
fn problem_details(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/plain")
        }),
    };
    if !plain {
        return response;
    }
    let kind = ProblemKind::from_status(status).unwrap_or_else(|| {
        tracing::warn!(
            status = status.as_u16(),
            "plain error response of an unexpected status"
        );
        if status.is_client_error() {
            ProblemKind::InvalidRequest
        } else {
            ProblemKind::Internal
        }
    });
    let mut problem = match kind {
        ProblemKind::Internal => ApiError::internal(&format!("a plain {status} response")),
        kind => ApiError::new(kind, detail(kind)),
    }
    .into_response();
    // Keep what tells the client how to go on.
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

fn detail(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::MethodNotAllowed => {
            "this path does not accept this method; see the Allow header"
        }
        ProblemKind::PayloadTooLarge => "the request body is larger than the server accepts",
        ProblemKind::UnsupportedMediaType => "the request body has an unsupported content type",
        ProblemKind::NotFound => "resource not found",
        _ => "the request could not be read",
    }
}

/// Answers 413 for any request that announces a body over the limit, before
/// any handler runs — also on routes whose handler never reads the body.
/// Bodies without a `Content-Length` are cut at the same limit by
/// `DefaultBodyLimit` where a handler reads them.
fn announced_too_large(request: &Request, limit: usize) -> bool {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    announced.is_some_and(|length| length > limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(router: Router, request: Request) -> (StatusCode, Response) {
        let response = router.oneshot(request).await.unwrap();
        (response.status(), response)
    }

    #[tokio::test]
    async fn plain_errors_become_problem_details_and_keep_their_status() {
        let router =
            Router::new()
                .route(
                    "/plain",
                    get(|| async { (StatusCode::BAD_REQUEST, "nope") }),
                )
                .route(
                    "/html",
                    get(|| async {
                        (StatusCode::BAD_REQUEST, axum::response::Html("<p>nope</p>"))
                    }),
                )
                .layer(axum::middleware::from_fn(
                    |request: Request, next: Next| async move {
                        problem_details(next.run(request).await)
                    },
                ));
        let request = |method: &str, path: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        let (status, response) = call(router.clone(), request("GET", "/plain")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let (status, response) = call(router.clone(), request("DELETE", "/plain")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
        let (status, response) = call(router, request("GET", "/html")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
