//! The JSON API, with routes and OpenAPI entries declared together.

mod access;
mod accounts;
mod device_data;
mod devices;
mod health;
mod live;
mod orgs;
mod places;
mod roles;
mod templates;
mod transfer;
mod users;

use crate::AppState;
use crate::auth::session::ORG_HEADER;
use crate::error::{ApiError, ProblemKind};
use axum::http::StatusCode;
use std::collections::BTreeSet;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Arbor",
        description = "Multi-tenant IoT platform server: organizations, users, roles, permissions and devices.\\n\\n\
Authenticate with `POST /api/v1/auth/login`; send the returned token as `Authorization: Bearer <token>` \
(or rely on the session cookie: `arbor_session`, or `__Host-arbor_session` when served over https). Name the organization a request acts in with the `X-Arbor-Org` \
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

/// The component name of the `X-Arbor-Org` header parameter.
pub const ORG_PARAMETER: &str = "XArborOrg";

/// What every operation shares and the annotations leave out, applied once
/// to the finished document:
///
/// - every authenticated operation takes the optional `X-Arbor-Org` header
///   and may answer 400 (a malformed header or path) and 401; one that
///   changes something may answer 403 (also: a cross-site request with the
///   session cookie, see `auth::cross_site`);
/// - an operation with a request body may answer 413 and 415;
/// - every error response is `application/problem+json` with the `Problem`
///   schema, as `ApiError` renders it: a reference to the shared response of
///   its kind (`#/components/responses/NotFound`, …), or, where an
///   annotation describes it, that description with the same content.
struct EdgeContract;

impl Modify for EdgeContract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut kinds = BTreeSet::new();
        for item in openapi.paths.paths.values_mut() {
            for (changes, operation) in operations(item) {
                edge_contract(operation, changes, &mut kinds);
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .parameters
            .insert(ORG_PARAMETER.into(), RefOr::T(org_parameter()));
        for kind in kinds {
            let response = problem_response(kind.title());
            components
                .responses
                .insert(component_name(kind), RefOr::T(response));
        }
    }
}

fn org_parameter() -> Parameter {
    let header = ParameterBuilder::new()
        .name("X-Arbor-Org")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The id of the organization the request acts in (default: the caller's home organization).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        ))
        .build();
    debug_assert!(header.name.eq_ignore_ascii_case(ORG_HEADER));
    header
}

fn problem_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/problem+json".into(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
    );
    response
}

/// `NotFound` for `not-found`.
fn component_name(kind: ProblemKind) -> String {
    kind.slug()
        .split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

/// A path's operations, each with whether it changes something.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, &mut item.get),
        (false, &mut item.head),
        (false, &mut item.options),
        (true, &mut item.post),
        (true, &mut item.put),
        (true, &mut item.patch),
        (true, &mut item.delete),
        (true, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(changes, operation)| Some((changes, operation.as_mut()?)))
}

fn edge_contract(operation: &mut Operation, changes: bool, kinds: &mut BTreeSet<ProblemKind>) {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut may_answer = Vec::new();
    if authenticated {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::Ref(Ref::new(format!(
                "#/components/parameters/{ORG_PARAMETER}"
            ))));
        may_answer.extend([StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED]);
        if changes {
            may_answer.push(StatusCode::FORBIDDEN);
        }
    }
    if operation.request_body.is_some() {
        may_answer.extend([
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ]);
    }
    let responses = &mut operation.responses.responses;
    for status in may_answer {
        responses
            .entry(status.as_str().to_owned())
            .or_insert_with(|| RefOr::T(Response::default()));
    }
    for (status, response) in responses.iter_mut() {
        let Some(status) = status
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| s.is_client_error() || s.is_server_error())
        else {
            continue;
        };
        let description = match response {
            RefOr::T(declared) if !declared.description.is_empty() => {
                Some(declared.description.clone())
            }
            _ => None,
        };
        *response = match (description, ProblemKind::from_status(status)) {
            (Some(description), _) => RefOr::T(problem_response(&description)),
            (None, Some(kind)) => {
                kinds.insert(kind);
                RefOr::Ref(Ref::from_response_name(component_name(kind)))
            }
            (None, None) => RefOr::T(problem_response(
                status.canonical_reason().unwrap_or("Error"),
            )),
        };
    }
}

/// The API's routes and its finished OpenAPI document.
pub fn split() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = router().split_for_parts();
    EdgeContract.modify(&mut openapi);
    (routes, openapi)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(orgs::router())
        .merge(roles::router())
        .merge(access::router())
        .merge(devices::router())
        .merge(device_data::router())
        .merge(live::router())
        .merge(transfer::router())
        .merge(templates::router())
        .merge(places::router())
}

/// Every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("resource")
}
