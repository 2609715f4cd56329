//! The JSON API under `/api`, with routes and OpenAPI entries declared together.

mod health;

use crate::AppState;
use crate::error::ApiError;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Arbor",
        description = "Multi-tenant IoT platform server: organizations, users, roles, permissions and devices.",
    ),
    components(schemas(crate::error::Problem))
)]
struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(health::router())
}

/// Every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("resource")
}
