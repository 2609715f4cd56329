//! Request extractors that answer with problem details.
//!
//! Use these instead of axum's `Json`, `Path`, `Query` and `Form`, whose
//! rejections are plain text. Every one of them names the field at fault.

use crate::error::{ApiError, ProblemKind};
use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, RawPathParamsRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use std::fmt;
use url::form_urlencoded;

/// The media type of a request (lowercase, without parameters).
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

fn unsupported(expected: &str) -> ApiError {
    ApiError::new(
        ProblemKind::UnsupportedMediaType,
        format!("send the body as {expected}"),
    )
}

/// The whole body, within the configured limit (`DefaultBodyLimit`).
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::invalid("body", "the request body could not be read")
            }
        })
}

/// The answer for a body over the limit.
pub fn too_large() -> ApiError {
    ApiError::new(
        ProblemKind::PayloadTooLarge,
        "the request body is larger than the server accepts",
    )
}

/// A JSON body. Malformed JSON, data after the JSON value, a wrong type, an
/// unknown field (request types use `deny_unknown_fields`) answer 400 naming
/// the field; an oversized body answers 413; another content type 415.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = media_type(request.headers())
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !json {
            return Err(unsupported("application/json"));
        }
        let bytes = body_bytes(request, state).await?;
        parse(&bytes).map(Json)
    }
}

/// Parses one JSON value (and nothing after it), naming the offending field
/// on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| field_error(e, "body"))?;
    deserializer
        .end()
        .map_err(|_| ApiError::invalid("body", "unexpected data after the JSON value"))?;
    Ok(value)
}

/// The query string. A malformed value or an unknown parameter (query types
/// use `deny_unknown_fields`) answer 400 naming the parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_urlencoded(parts.uri.query().unwrap_or_default().as_bytes(), "query").map(Query)
    }
}

/// An `application/x-www-form-urlencoded` body, checked as [`Query`] is; an
/// oversized body answers 413, another content type 415.
pub struct Form<T>(pub T);

impl<S, T> FromRequest<S> for Form<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = media_type(request.headers())
            .is_some_and(|mime| mime == "application/x-www-form-urlencoded");
        if !form {
            return Err(unsupported("application/x-www-form-urlencoded"));
        }
        let bytes = body_bytes(request, state).await?;
        parse_urlencoded(&bytes, "form").map(Form)
    }
}

/// Parses `application/x-www-form-urlencoded` pairs; `whole` names the input
/// when no single field is at fault.
pub fn parse_urlencoded<T: DeserializeOwned>(input: &[u8], whole: &str) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
    serde_path_to_error::deserialize(deserializer).map_err(|e| field_error(e, whole))
}

/// The path parameters. A value that does not parse or is not UTF-8 answers
/// 400 naming the parameter.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = match RawPathParams::from_request_parts(parts, state).await {
            Ok(raw) => raw,
            Err(RawPathParamsRejection::InvalidUtf8InPathParam(e)) => {
                return Err(ApiError::invalid("path", e.body_text()));
            }
            Err(other) => return Err(ApiError::internal(&other)),
        };
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(path_error(e.into_kind(), &raw))
            }
            Err(other) => Err(ApiError::internal(&other)),
        }
    }
}

fn path_error(kind: ErrorKind, raw: &RawPathParams) -> ApiError {
    let name_at = |index: usize| {
        raw.iter()
            .nth(index)
            .map_or_else(|| "path".to_owned(), |(name, _)| name.to_owned())
    };
    let expected = |expected_type: &str| {
        let integer = expected_type.len() > 1
            && matches!(expected_type.as_bytes()[0], b'i' | b'u')
            && expected_type[1..].bytes().all(|b| b.is_ascii_digit());
        if integer {
            "must be an integer".to_owned()
        } else {
            format!("must be a {expected_type}")
        }
    };
    match kind {
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => ApiError::invalid(key, expected(expected_type)),
        ErrorKind::ParseErrorAtIndex {
            index,
            expected_type,
            ..
        } => ApiError::invalid(name_at(index), expected(expected_type)),
        ErrorKind::ParseError { expected_type, .. } => {
            ApiError::invalid(name_at(0), expected(expected_type))
        }
        ErrorKind::InvalidUtf8InPathParam { key } => ApiError::invalid(key, "must be UTF-8"),
        ErrorKind::DeserializeError { key, message, .. } => ApiError::invalid(key, message),
        // A handler that asks for parameters its route does not have.
        kind @ (ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. }) => {
            ApiError::internal(&kind)
        }
        other => ApiError::invalid("path", other.to_string()),
    }
}

/// A `text/csv` body in UTF-8; an oversized body answers 413, another
/// content type 415.
pub struct Csv(pub String);

impl<S: Send + Sync> FromRequest<S> for Csv {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if media_type(request.headers()).as_deref() != Some("text/csv") {
            return Err(ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "send the rows as text/csv",
            ));
        }
        let bytes = body_bytes(request, state).await?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::invalid("body", "the rows must be UTF-8"))?;
        Ok(Csv(text))
    }
}

/// A deserialization error as a 400 naming the field (`whole` when none is).
fn field_error<E: fmt::Display>(e: serde_path_to_error::Error<E>, whole: &str) -> ApiError {
    let path = e.path().to_string();
    // serde's message for an unknown or missing field already names it.
    let message = e.into_inner().to_string();
    let field = if path == "." || path == "?" || path.is_empty() {
        unknown_field(&message).unwrap_or_else(|| whole.into())
    } else {
        path
    };
    let reason = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    ApiError::invalid(field, reason)
}

/// The field serde names in an unknown- or missing-field message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Invite {
        email: String,
        role: Option<i64>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Invite>(br#"{"email":"a@b.c","role":"x"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("role"));
        let e = parse::<Invite>(br#"{"email":"a@b.c","org_id":4}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("org_id"));
        let e = parse::<Invite>(br#"{"role":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("email"));
        assert!(e.detail.unwrap().contains("missing field `email`"));
        let e = parse::<Invite>(b"{not json").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
    }

    #[test]
    fn data_after_the_json_value_is_refused() {
        let e = parse::<Invite>(br#"{"email":"a@b.c"} x"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
        let e = parse::<Invite>(br#"{"email":"a@b.c"}{"email":"d@e.f"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
        assert!(parse::<Invite>(b"{\"email\":\"a@b.c\"}\n ").is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        q: Option<String>,
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_urlencoded::<Page>(b"limit=x", "query").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        let e = parse_urlencoded::<Page>(b"q=a&sort=name", "query").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sort"));
        let page = parse_urlencoded::<Page>(b"q=a+b&limit=5", "query").unwrap();
        assert_eq!((page.q.as_deref(), page.limit), (Some("a b"), Some(5)));
    }
}
