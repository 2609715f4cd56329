//! Arbor's HTTP server: the JSON API (with its OpenAPI document and an offline
//! reference page), authentication and mail.
//!
//! A handler is one call deep: extract, call the use case, map the error.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod request_id;

use crate::auth::throttle::{Limits, Throttle};
use crate::config::Config;
use arbor_store::{Clock, Store};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    pub throttle: Arc<Throttle>,
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Config) -> Self {
        let limits = Limits {
            per_account: config.throttle.failures_per_account,
            per_client: config.throttle.failures_per_client,
            window_ms: i64::try_from(config.throttle.window_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        };
        Self {
            throttle: Arc::new(Throttle::new(limits, clock.clone())),
            store,
            clock,
            config: Arc::new(config),
        }
    }
}

/// The whole HTTP application and its OpenAPI document.
pub fn app(state: AppState) -> (Router, OpenApi) {
    let body_limit = state.config.body_limit_bytes;
    let (api_router, openapi) = api::router().split_for_parts();
    let docs = SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi.clone());
    let router = Router::new()
        .merge(api_router)
        .merge(docs)
        .fallback(api::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(request_id::middleware));
    (router, openapi)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = app(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
