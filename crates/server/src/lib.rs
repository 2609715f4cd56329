//! Arbor's HTTP server: the JSON API (with its OpenAPI document and an offline
//! reference page), authentication and mail.
//!
//! A handler is one call deep: extract, call the use case, map the error.

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod device_api;
pub mod edge;
pub mod error;
pub mod extract;
pub mod mail;
pub mod observe;
pub mod redact;
pub mod request_id;
pub mod retention;
pub mod web;

use crate::auth::client::TrustedProxies;
use crate::config::Config;
use arbor_app::App;
use arbor_app::accounts::AccountPolicy;
use arbor_app::model::Clock;
use arbor_app::users::Links;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Whose `X-Forwarded-For` names the client (the login throttle's key).
    pub trusted_proxies: Arc<TrustedProxies>,
    pub policy: AccountPolicy,
    pub links: Links,
    /// While no hierarchy exists: the one-time token that guards first-run
    /// setup over HTTP (printed to the server log at start).
    pub setup_token: Option<Arc<str>>,
    pub mail: mail::MailSignal,
    /// Holds refused (429) login attempts back before answering.
    pub tarpit: auth::tarpit::Tarpit,
}

impl AppState {
    /// The state over `app` (built with [`Config::cache_limits`], see
    /// [`App::configured`]), with the configured bounds on password hashing
    /// and the login throttle.
    pub fn new(app: App, clock: Arc<dyn Clock>, config: Config) -> Self {
        let policy = AccountPolicy {
            session_idle_ms: secs_to_ms(config.session.idle_timeout_secs),
            session_absolute_ms: secs_to_ms(config.session.absolute_timeout_secs),
            ..AccountPolicy::default()
        };
        let links = Links {
            base_url: config.public_base().to_owned(),
        };
        let mut app = app
            .with_login_limits(config.password_hashing.limits(), config.throttle.policy())
            .with_device_heartbeat(std::time::Duration::from_secs(config.device_heartbeat_secs))
            .with_device_api_limits(config.device_api.limits());
        // A configured key wins; otherwise the caller gave the app its key
        // (`arbor serve` reads the key file).
        if let Some(key) = config.configured_device_token_key() {
            app = app.with_device_token_key(key);
        }
        // `Config::load` refuses a bad entry; one set in code is dropped
        // (trusting fewer proxies, never more).
        let proxies: Vec<String> = config
            .trusted_proxies
            .iter()
            .filter(|entry| match auth::client::parse_proxy(entry) {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!("ignoring trusted_proxies entry: {e}");
                    false
                }
            })
            .cloned()
            .collect();
        let trusted_proxies = TrustedProxies::parse(&proxies).unwrap_or_default();
        // Before anything records: metrics recorded earlier are lost.
        observe::recorder();
        let tarpit = auth::tarpit::Tarpit::new(
            std::time::Duration::from_millis(config.throttle.hold_ms),
            usize::try_from(config.throttle.hold_slots).unwrap_or(usize::MAX),
        );
        Self {
            tarpit,
            trusted_proxies: Arc::new(trusted_proxies),
            app,
            clock,
            config: Arc::new(config),
            policy,
            links,
            setup_token: None,
            mail: mail::MailSignal::default(),
        }
    }

    /// Tells the mail worker that a use case queued mail.
    pub fn mailer_hint(&self) {
        self.mail.wake();
    }

    /// Opens first-run setup over HTTP with this token.
    pub fn with_setup_token(mut self, token: &str) -> Self {
        self.setup_token = Some(Arc::from(token));
        self
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The whole HTTP application and its OpenAPI document.
pub fn app(state: AppState) -> (Router, OpenApi) {
    let body_limit = state.config.body_limit_bytes;
    let (api_router, openapi) = api::split();
    // No remote validator: Swagger UI would otherwise send the document to
    // validator.swagger.io and show its badge.
    let docs = SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", openapi.clone())
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    let device_body_limit = state.config.device_api.body_limit_bytes;
    let edge = Arc::new(edge::Edge {
        body_limit,
        device_body_limit,
        cross_site: auth::cross_site::CrossSite {
            origins: auth::cross_site::Origins::new(&state.config.public_url),
            app: state.app.clone(),
            policy: state.policy,
        },
    });
    // Layers run from the last added to the first. The edge layer, outermost,
    // gives every request its id, refuses oversized and cross-site requests,
    // turns any plain error below it into problem details, counts the
    // request and writes its access-log line. Router layers run after
    // routing, so it sees the matched route template.
    let router = Router::new()
        .merge(api_router)
        .merge(device_api::router(device_body_limit))
        .merge(web::router())
        .merge(docs)
        // Not in the OpenAPI document: an operator's endpoint, not the API.
        .route("/metrics", get(observe::scrape::metrics))
        .fallback(api::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(edge, edge::layer));
    (router, openapi)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.app.clone();
    let (router, _) = app(state);
    // Live streams never finish on their own: end them with the server.
    let shutdown = async move {
        shutdown.await;
        live.close_live_updates();
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
