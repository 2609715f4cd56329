//! Liveness and readiness.

use crate::AppState;
use crate::error::{ApiError, ProblemKind};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness, and the version of the running server.
#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The server's version, as `arbor --version` prints it.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// The process is up; names its version.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = Live)))]
async fn healthz() -> Json<Live> {
    Json(Live {
        status: "ok",
        version: crate::observe::scrape::VERSION,
    })
}

/// The process can serve requests: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "The database answers", body = Health), (status = 503, body = crate::error::Problem)),
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.app.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            ProblemKind::ServiceUnavailable,
            "the database does not answer",
        )
    })?;
    Ok(Json(Health { status: "ready" }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
