//! Request extractors that answer with problem details.
//!
//! Use these instead of axum's `Json`, `Path`, `Query` and `Form`, whose
//! rejections are plain text. Every one of them names the field at fault.
//!
//! Text that arrives in a request never holds a NUL character: PostgreSQL
//! cannot store one in a text column and SQLite would store it silently, so it
//! is refused here, once for every JSON body (values and keys), query string,
//! form and path parameter, before any handler or use case sees it.

use crate::error::{ApiError, ProblemKind};
use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, RawPathParamsRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use std::fmt;
use url::form_urlencoded;

/// Why a text holding a NUL character is refused.
pub const NUL_REASON: &str = "must not contain a NUL character";

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
/// unknown field (request types use `deny_unknown_fields`) or a NUL character
/// in any string answer 400 naming the field; an oversized body answers 413;
/// another content type 415.
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
/// on failure. Strings holding a NUL character are refused.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = nul_in_json(bytes) {
        return Err(ApiError::invalid(field, NUL_REASON));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| field_error(e, "body"))?;
    deserializer
        .end()
        .map_err(|_| ApiError::invalid("body", "unexpected data after the JSON value"))?;
    Ok(value)
}

/// The query string. A malformed value, an unknown parameter (query types use
/// `deny_unknown_fields`) or a NUL character answer 400 naming the parameter.
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
    for (name, value) in form_urlencoded::parse(input) {
        if name.contains('\0') {
            return Err(ApiError::invalid(
                whole,
                "a parameter name must not contain a NUL character",
            ));
        }
        if value.contains('\0') {
            return Err(ApiError::invalid(name, NUL_REASON));
        }
    }
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
    serde_path_to_error::deserialize(deserializer).map_err(|e| field_error(e, whole))
}

/// The path parameters. A value that does not parse, is not UTF-8 or holds a
/// NUL character answers 400 naming the parameter.
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
        if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
            return Err(ApiError::invalid(name, NUL_REASON));
        }
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

/// A `text/csv` body: UTF-8 without NUL characters; an oversized body
/// answers 413, another content type 415.
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
        if let Some(line) = text.lines().position(|line| line.contains('\0')) {
            return Err(ApiError::invalid(
                "body",
                format!("line {} {NUL_REASON}", line + 1),
            ));
        }
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

/// The path (as `serde_path_to_error` writes it: `admin.email`,
/// `questions[0].permission`) of the first string in a JSON document that
/// holds a NUL character; `None` for clean or malformed JSON (whose parse
/// error is reported by the typed pass).
fn nul_in_json(bytes: &[u8]) -> Option<String> {
    // JSON text can carry a NUL only as the escape `\u0000` (a raw control
    // character inside a string is invalid JSON): without one, no second
    // pass over the body.
    if !bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..] == b"0000")
    {
        return None;
    }
    let mut path = Vec::new();
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let _ = NulScan {
        path: &mut path,
        found: &mut found,
    }
    .deserialize(&mut deserializer);
    found
}

enum Segment {
    Key(String),
    Index(usize),
}

fn write_path(path: &[Segment]) -> String {
    if path.is_empty() {
        return "body".into();
    }
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Walks any JSON value, recording where a NUL character is (and then
/// stopping with an error, so the rest is not read).
struct NulScan<'a> {
    path: &'a mut Vec<Segment>,
    found: &'a mut Option<String>,
}

impl NulScan<'_> {
    fn refuse<E: de::Error>(self) -> Result<(), E> {
        *self.found = Some(write_path(self.path));
        Err(E::custom(NUL_REASON))
    }
}

impl<'de> DeserializeSeed<'de> for NulScan<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NulScan<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        if value.contains('\0') {
            self.refuse()
        } else {
            Ok(())
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Segment::Index(index));
            let more = seq.next_element_seed(NulScan {
                path: self.path,
                found: self.found,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return self.refuse();
            }
            self.path.push(Segment::Key(key));
            map.next_value_seed(NulScan {
                path: self.path,
                found: self.found,
            })?;
            self.path.pop();
        }
        Ok(())
    }
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

    #[test]
    fn a_nul_anywhere_in_json_is_refused_naming_its_path() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"email":"a\u0000b"}"#, "email"),
            (
                br#"{"questions":[],"admin":{"email":"\u0000"}}"#,
                "admin.email",
            ),
            (
                br#"{"questions":[{"email":"x"},{"email":"y\u0000"}]}"#,
                "questions[1].email",
            ),
            (br#"{"email":"x","role":1,"extra":["\u0000"]}"#, "extra[0]"),
            (br#"{"e\u0000mail":"x"}"#, "body"),
            (br#""\u0000""#, "body"),
        ];
        for (json, field) in cases {
            let e = parse::<serde_json::Value>(json).unwrap_err();
            assert_eq!(
                e.field.as_deref(),
                Some(field),
                "{}",
                String::from_utf8_lossy(json)
            );
            assert_eq!(e.detail.as_deref(), Some(NUL_REASON));
        }
        // An escaped backslash followed by "u0000" is not a NUL.
        assert!(parse::<Invite>(br#"{"email":"\\u0000"}"#).is_ok());
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
        let e = parse_urlencoded::<Page>(b"q=a%00b", "query").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("q"));
        assert_eq!(e.detail.as_deref(), Some(NUL_REASON));
        let e = parse_urlencoded::<Page>(b"q%00=a", "query").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("query"));
        let page = parse_urlencoded::<Page>(b"q=a+b&limit=5", "query").unwrap();
        assert_eq!((page.q.as_deref(), page.limit), (Some("a b"), Some(5)));
    }
}
