//! One error type for the HTTP layer, rendered as RFC 9457 problem details.
//!
//! Every error kind has a stable `type` URI (`urn:arbor:problem:<kind>`). A 500
//! says only "internal error" and the request id; its cause goes to the log.

use crate::request_id;
use arbor_core::{Decision, DomainError, Outcome};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The kinds of problem the API answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    ServiceUnavailable,
    Internal,
}

impl ProblemKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooManyRequests => "too-many-requests",
            Self::ServiceUnavailable => "service-unavailable",
            Self::Internal => "internal",
        }
    }

    pub const ALL: [ProblemKind; 11] = [
        ProblemKind::InvalidRequest,
        ProblemKind::Unauthorized,
        ProblemKind::Forbidden,
        ProblemKind::NotFound,
        ProblemKind::MethodNotAllowed,
        ProblemKind::Conflict,
        ProblemKind::PayloadTooLarge,
        ProblemKind::UnsupportedMediaType,
        ProblemKind::TooManyRequests,
        ProblemKind::ServiceUnavailable,
        ProblemKind::Internal,
    ];

    /// The kind a status stands for, for the statuses the API answers with.
    pub fn from_status(status: StatusCode) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.status() == status)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is invalid",
            Self::Unauthorized => "Authentication is required",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "The request conflicts with the current state",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::TooManyRequests => "Too many requests",
            Self::ServiceUnavailable => "Service unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// RFC 9457 problem details, as sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI of the error kind, e.g. `urn:arbor:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, for `invalid-request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id (also in the `x-request-id` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For a refusal by the no-escalation rule (rule 6): the ids of the
    /// permissions the caller lacks, e.g. `["users.delete"]`. Also under
    /// `extra.missing_permissions`, where earlier clients read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permissions: Option<Vec<String>>,
    /// Extra machine-readable data (e.g. counts for a refused deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub extra: Option<serde_json::Value>,
}

/// An error on its way to becoming a problem-details response.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ProblemKind,
    pub detail: Option<String>,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
            field: None,
            retry_after_secs: None,
            extra: None,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ProblemKind::InvalidRequest, reason)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ProblemKind::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Unauthorized, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Conflict, detail)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                ProblemKind::TooManyRequests,
                "too many attempts; try again later",
            )
        }
    }

    /// An internal failure: logged with its cause, answered without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current().unwrap_or_default(), "internal error: {cause}");
        Self {
            kind: ProblemKind::Internal,
            detail: None,
            field: None,
            retry_after_secs: None,
            extra: None,
        }
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// A denied decision: hidden objects answer 404, visible ones 403.
    pub fn denied(decision: &Decision, what: &str) -> Self {
        match decision.outcome {
            Outcome::Hidden | Outcome::Allowed => Self::not_found(what),
            Outcome::Forbidden => Self::new(ProblemKind::Forbidden, decision.explain()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { what } => Self::not_found(what),
            DomainError::Conflict { what } => Self::conflict(what),
            DomainError::Invalid { field, reason } => Self::invalid(field, reason),
        }
    }
}

impl From<arbor_app::AppError> for ApiError {
    fn from(e: arbor_app::AppError) -> Self {
        use arbor_app::AppError;
        match e {
            AppError::NotFound { what } => Self::not_found(what),
            AppError::Forbidden { reason } => Self::new(ProblemKind::Forbidden, reason),
            AppError::ForbiddenWith { reason, details } => {
                Self::new(ProblemKind::Forbidden, reason).with_extra(details)
            }
            AppError::Conflict { what } => Self::conflict(what),
            AppError::ConflictWith { what, details } => Self::conflict(what).with_extra(details),
            AppError::Invalid { field, reason } => Self::invalid(field, reason),
            AppError::Internal { reason } => Self::internal(&reason),
            AppError::Throttled { retry_after_secs } => Self::too_many_requests(retry_after_secs),
            AppError::Overloaded { retry_after_secs } => {
                let mut error = Self::new(
                    ProblemKind::ServiceUnavailable,
                    "too many password checks at once; try again shortly",
                );
                error.retry_after_secs = Some(retry_after_secs.max(1));
                error
            }
            AppError::Busy(_) => {
                let mut error = Self::new(
                    ProblemKind::ServiceUnavailable,
                    "the database is busy; try again",
                );
                error.retry_after_secs = Some(1);
                error
            }
            AppError::Database(cause) => Self::internal(&format!(
                "database error: {cause}: {:?}",
                std::error::Error::source(&*cause)
            )),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let missing_permissions = self
            .extra
            .as_ref()
            .and_then(|extra| extra.get("missing_permissions"))
            .and_then(|ids| serde_json::from_value::<Vec<String>>(ids.clone()).ok());
        let problem = Problem {
            kind: format!("urn:arbor:problem:{}", self.kind.slug()),
            title: self.kind.title().to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            field: self.field,
            request_id: request_id::current(),
            missing_permissions,
            extra: self.extra,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_app::AppError;

    async fn body(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_domain_and_store_error_maps_to_one_status_and_type() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                DomainError::NotFound { what: "device" }.into(),
                404,
                "not-found",
            ),
            (DomainError::conflict("last Admin").into(), 409, "conflict"),
            (
                DomainError::invalid("email", "malformed").into(),
                400,
                "invalid-request",
            ),
            (AppError::NotFound { what: "user" }.into(), 404, "not-found"),
            (
                AppError::conflict("duplicate email").into(),
                409,
                "conflict",
            ),
            (
                AppError::invalid("name", "empty").into(),
                400,
                "invalid-request",
            ),
            (AppError::Database(cause()).into(), 500, "internal"),
            (AppError::Busy(cause()).into(), 503, "service-unavailable"),
            (
                AppError::Overloaded {
                    retry_after_secs: 2,
                }
                .into(),
                503,
                "service-unavailable",
            ),
            (
                AppError::Throttled {
                    retry_after_secs: 9,
                }
                .into(),
                429,
                "too-many-requests",
            ),
            (
                AppError::Forbidden {
                    reason: "no".into(),
                }
                .into(),
                403,
                "forbidden",
            ),
            (ApiError::unauthorized("log in"), 401, "unauthorized"),
            (ApiError::too_many_requests(30), 429, "too-many-requests"),
        ];
        for (error, status, slug) in cases {
            let (got, _, json) = body(error).await;
            assert_eq!(got.as_u16(), status);
            assert_eq!(json["status"], status);
            assert_eq!(json["type"], format!("urn:arbor:problem:{slug}"));
        }
    }

    #[tokio::test]
    async fn invalid_requests_name_the_field() {
        let (_, _, json) = body(DomainError::invalid("email", "malformed").into()).await;
        assert_eq!(json["field"], "email");
        assert_eq!(json["detail"], "malformed");
    }

    #[tokio::test]
    async fn an_escalation_refusal_lists_the_missing_permission_ids_as_an_array() {
        let error = AppError::ForbiddenWith {
            reason: "rule 6".into(),
            details: serde_json::json!({ "missing_permissions": ["users.delete", "roles.edit"] }),
        };
        let (status, _, json) = body(error.into()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            json["missing_permissions"],
            serde_json::json!(["users.delete", "roles.edit"])
        );
        assert_eq!(
            json["extra"]["missing_permissions"],
            json["missing_permissions"]
        );
        let (_, _, plain) = body(AppError::conflict("taken").into()).await;
        assert!(plain.get("missing_permissions").is_none(), "{plain}");
    }

    #[tokio::test]
    async fn internal_errors_reveal_nothing() {
        let (_, _, json) = body(AppError::Database(cause()).into()).await;
        assert_eq!(json["title"], "Internal error");
        assert!(json.get("detail").is_none());
    }

    #[test]
    fn each_kind_has_its_own_status_and_slug() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_status(kind.status()), Some(kind));
            let same_slug = ProblemKind::ALL.iter().filter(|k| k.slug() == kind.slug());
            assert_eq!(same_slug.count(), 1, "{kind:?}");
        }
        assert_eq!(ProblemKind::from_status(StatusCode::IM_A_TEAPOT), None);
    }

    #[tokio::test]
    async fn too_many_requests_carries_retry_after() {
        let (_, retry, _) = body(ApiError::too_many_requests(42)).await;
        assert_eq!(retry.as_deref(), Some("42"));
    }

    fn cause() -> arbor_app::error::Cause {
        Box::new(std::io::Error::other("the pool timed out"))
    }
}
