//! The authenticated caller of a request.
//!
//! A session token arrives as `Authorization: Bearer <token>` (API clients) or
//! as the session cookie (`HttpOnly; SameSite=Lax`, the console). Served over
//! https (a `public_url` with that scheme) the cookie is
//! `__Host-arbor_session`, `Secure`, `Path=/` and without `Domain`, so no
//! sibling subdomain or plain-http page can set or shadow it; over http it is
//! `arbor_session`. Only the name that applies is read. The
//! org a request acts in is named by the `X-Arbor-Org` header (an org id);
//! without it the caller acts in their home org. Revocation is checked against
//! the database on every request, so a logout, suspension or password change
//! takes effect on the next request on every node.

use crate::AppState;
use crate::error::ApiError;
use arbor_app::Caller;
use arbor_app::accounts::Authenticated;
use arbor_app::model::ClientKind;
use arbor_core::OrgId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

/// The session cookie's name over http.
pub const COOKIE: &str = "arbor_session";
/// The session cookie's name over https.
pub const HOST_COOKIE: &str = "__Host-arbor_session";
pub const ORG_HEADER: &str = "x-arbor-org";

/// A request made by a logged-in user.
pub struct CurrentUser {
    pub auth: Authenticated,
    pub caller: Caller,
}

/// The session cookie's name when served over https or not.
pub fn cookie_name(https: bool) -> &'static str {
    if https { HOST_COOKIE } else { COOKIE }
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// Whether the request carries a session cookie of either name.
pub fn has_session_cookie(headers: &HeaderMap) -> bool {
    cookies(headers).any(|(name, _)| name == COOKIE || name == HOST_COOKIE)
}

/// The token and where it came from; the cookie is read under the name that
/// applies (`https`: served over https).
pub fn token_from(headers: &HeaderMap, https: bool) -> Option<(String, ClientKind)> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), ClientKind::Api));
    }
    let wanted = cookie_name(https);
    cookies(headers)
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| (value.to_owned(), ClientKind::Web))
}

fn context_from(headers: &HeaderMap) -> Result<Option<OrgId>, ApiError> {
    match headers.get(ORG_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|id| Some(OrgId(id)))
            .ok_or_else(|| ApiError::invalid("X-Arbor-Org", "must be an organization id")),
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (token, client) = token_from(&parts.headers, state.config.https())
            .ok_or_else(|| ApiError::unauthorized("log in first: send a session token"))?;
        let context = context_from(&parts.headers)?;
        let auth = state
            .app
            .authenticate(&token, &state.policy)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the session is not valid; log in again"))?;
        crate::request_id::authenticated(auth.user, client);
        let caller = auth.caller(client, context);
        Ok(Self { auth, caller })
    }
}

/// `Set-Cookie` value for a new session (`https`: served over https, which
/// takes the `__Host-` name and `Secure`).
pub fn session_cookie(token: &str, max_age_secs: i64, https: bool) -> String {
    let name = cookie_name(https);
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(https: bool) -> String {
    session_cookie("", 0, https)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_bearer_or_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=b; arbor_session=xyz".parse().unwrap());
        assert_eq!(
            token_from(&headers, false),
            Some(("xyz".into(), ClientKind::Web))
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(
            token_from(&headers, false),
            Some(("abc".into(), ClientKind::Api))
        );
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(token_from(&headers, false), None);
    }

    #[test]
    fn only_the_cookie_name_that_applies_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "arbor_session=plain".parse().unwrap());
        assert_eq!(token_from(&headers, true), None);
        assert!(has_session_cookie(&headers));
        headers.insert(
            header::COOKIE,
            "arbor_session=plain; __Host-arbor_session=host"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            token_from(&headers, true),
            Some(("host".into(), ClientKind::Web))
        );
        assert_eq!(
            token_from(&headers, false),
            Some(("plain".into(), ClientKind::Web))
        );
    }

    #[test]
    fn over_https_the_cookie_is_a_host_cookie() {
        let cookie = session_cookie("t", 60, true);
        assert!(
            cookie.starts_with("__Host-arbor_session=t; Path=/;"),
            "{cookie}"
        );
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
        assert!(session_cookie("t", 60, false).starts_with("arbor_session=t;"));
        assert!(clear_cookie(true).starts_with("__Host-arbor_session=;"));
    }

    #[test]
    fn cookies_are_http_only_and_same_site_lax() {
        let cookie = session_cookie("t", 60, true);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!session_cookie("t", 60, false).contains("Secure"));
    }
}
