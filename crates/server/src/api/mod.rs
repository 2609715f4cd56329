//! The JSON API, with routes and OpenAPI entries declared together.

mod access;
mod accounts;
mod health;
mod orgs;
mod roles;
mod users;

use crate::AppState;
use crate::error::ApiError;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Arbor",
        description = "Multi-tenant IoT platform server: organizations, users, roles, permissions and devices.\\n\\n\
Authenticate with `POST /api/v1/auth/login`; send the returned token as `Authorization: Bearer <token>` \
(or rely on the `arbor_session` cookie). Name the organization a request acts in with the `X-Arbor-Org` \
header (an org id); without it, requests act in your home organization. Errors are RFC 9457 problem \
details; objects outside your scope answer 404.",
    ),
    modifiers(&Security),
    components(schemas(crate::error::Problem)),
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::session::COOKIE,
            ))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(orgs::router())
        .merge(roles::router())
        .merge(access::router())
}

/// Every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("resource")
}
