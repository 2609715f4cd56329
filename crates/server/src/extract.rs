//! Request extractors that answer with problem details.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON body. Malformed JSON, a wrong type or an unknown field (request types
/// use `deny_unknown_fields`) answer 400 naming the field; an oversized body
/// answers 413; another content type 415.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !json {
            return Err(ApiError::new(
                crate::error::ProblemKind::UnsupportedMediaType,
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        crate::error::ProblemKind::PayloadTooLarge,
                        "the request body is larger than the server accepts",
                    )
                } else {
                    ApiError::invalid("body", "the request body could not be read")
                }
            })?;
        parse(&bytes).map(Json)
    }
}

/// Parses JSON, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde's message for an unknown field already names it.
        let message = inner.to_string();
        let field = if path == "." || path == "?" || path.is_empty() {
            unknown_field(&message).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        let reason = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::invalid(field, reason)
    })
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
}
