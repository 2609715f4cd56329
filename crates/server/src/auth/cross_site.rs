//! Cross-site request refusal for cookie sessions.
//!
//! A browser attaches the session cookie (`arbor_session`, or
//! `__Host-arbor_session` over https) to requests that another
//! site makes it send. `SameSite=Lax` keeps the cookie off most cross-site
//! POSTs, but not off requests from a sibling subdomain ("same-site") nor off
//! every browser. So a request that changes something (any method but GET,
//! HEAD and OPTIONS) and would be authenticated by the cookie is refused with
//! 403 when the browser says it comes from elsewhere:
//!
//! - `Sec-Fetch-Site` is anything but `same-origin` or `none` (a typed URL, a
//!   bookmark); `cross-site` and `same-site` are refused;
//! - or `Origin` is neither the configured `public_url`'s origin nor the
//!   request's own `Host` (a direct connection to the server).
//!
//! Requests with neither header are allowed: browsers send at least one of
//! them on every such request, so their absence means a non-browser client.
//! A bearer token is never sent by a browser on its own, so bearer requests
//! are not checked. The check runs before routing, so it also covers routes
//! that do not authenticate and requests whose cookie is no longer valid. A
//! refusal is logged and, when the cookie's session is live, audited against
//! its user's home org (the attacker's target is the user, not another
//! tenant).

use crate::auth::session::{has_session_cookie, token_from};
use crate::error::{ApiError, ProblemKind};
use arbor_app::model::ClientKind;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

pub const FETCH_SITE: &str = "sec-fetch-site";

/// Where this server's pages come from.
#[derive(Clone, Debug)]
pub struct Origins {
    /// `scheme://host[:port]` of the configured public URL.
    public: Option<String>,
    /// Served over https: the session cookie is `__Host-arbor_session`.
    https: bool,
}

impl Origins {
    pub fn new(public_url: &str) -> Self {
        let parsed = url::Url::parse(public_url).ok();
        Self {
            https: parsed.as_ref().is_some_and(|url| url.scheme() == "https"),
            public: parsed.map(|url| url.origin().ascii_serialization()),
        }
    }

    /// Whether an `Origin` header value names this server.
    fn is_own(&self, origin: &str, host: Option<&str>) -> bool {
        let Ok(origin) = url::Url::parse(origin) else {
            return false; // includes the opaque origin "null"
        };
        if origin.path() != "/" || origin.query().is_some() {
            return false;
        }
        let serialized = origin.origin().ascii_serialization();
        if self.public.as_deref() == Some(serialized.as_str()) {
            return true;
        }
        // `Origin` omits a default port, as `Host` does.
        let authority = match (origin.host_str(), origin.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return false,
        };
        host.is_some_and(|host| host.eq_ignore_ascii_case(&authority))
    }

    /// Why a request must be refused, if it must.
    pub fn refusal(
        &self,
        method: &Method,
        headers: &HeaderMap,
        host: Option<&str>,
    ) -> Option<String> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        // An Authorization header decides the session (never the cookie):
        // checked first, without copying the token, on the hot path.
        // Either cookie name counts: refusing a write that the cookie of the
        // other scheme would not even authenticate costs nothing.
        if headers.contains_key(header::AUTHORIZATION) || !has_session_cookie(headers) {
            return None;
        }
        if let Some(site) = headers.get(FETCH_SITE) {
            let site = site.to_str().unwrap_or("?");
            if !matches!(site, "same-origin" | "none") {
                return Some(format!("Sec-Fetch-Site: {site}"));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("?");
            if !self.is_own(origin, host) {
                return Some(format!("Origin: {origin}"));
            }
        }
        None
    }
}

/// What the refusal layer needs: this server's origins, and the use cases to
/// audit a refusal with.
pub struct CrossSite {
    pub origins: Origins,
    pub app: arbor_app::App,
    pub policy: arbor_app::accounts::AccountPolicy,
}

/// A request refused as cross-site, with what its audit row needs.
pub struct Refused {
    why: String,
    what: String,
    session: Option<(String, ClientKind)>,
}

impl CrossSite {
    /// Whether a request is a cross-site write that the session cookie
    /// would authenticate (checked without awaiting anything).
    pub fn check(&self, request: &Request) -> Option<Refused> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        let why = self
            .origins
            .refusal(request.method(), request.headers(), host)?;
        Some(Refused {
            why,
            what: format!("request:{} {}", request.method(), request.uri().path()),
            session: token_from(request.headers(), self.origins.https),
        })
    }

    /// Logs and audits a refusal (when the cookie's session is live) and
    /// answers it.
    pub async fn refuse(&self, refused: Refused) -> Response {
        tracing::warn!(
            request = %refused.what,
            reason = %refused.why,
            "cross-site request with the session cookie refused"
        );
        if let Some((token, client)) = refused.session {
            let audited = self
                .app
                .audit_refused_request(&token, &self.policy, client, refused.what, &refused.why)
                .await;
            if let Err(e) = audited {
                tracing::warn!("auditing a refused cross-site request failed: {e}");
            }
        }
        ApiError::new(
            ProblemKind::Forbidden,
            "cross-site request refused: a request made with the session cookie must come from this server's own pages",
        )
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    const COOKIE: (&str, &str) = ("cookie", "arbor_session=t");
    const HOST: Option<&str> = Some("127.0.0.1:8080");

    #[test]
    fn cookie_writes_from_elsewhere_are_refused() {
        let origins = Origins::new("https://arbor.example.com/");
        for refused in [
            vec![COOKIE, ("origin", "https://evil.example")],
            vec![COOKIE, ("origin", "null")],
            vec![COOKIE, ("origin", "http://arbor.example.com")],
            vec![COOKIE, ("origin", "https://arbor.example.com:8443")],
            vec![COOKIE, ("sec-fetch-site", "cross-site")],
            vec![COOKIE, ("sec-fetch-site", "same-site")],
            vec![
                COOKIE,
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example"),
            ],
        ] {
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                assert!(
                    origins.refusal(&method, &headers(&refused), HOST).is_some(),
                    "{method} {refused:?}"
                );
            }
        }
    }

    #[test]
    fn own_pages_safe_methods_bearer_tokens_and_plain_clients_pass() {
        let origins = Origins::new("https://arbor.example.com/");
        let post = Method::POST;
        for allowed in [
            vec![COOKIE],
            vec![COOKIE, ("origin", "https://arbor.example.com")],
            vec![COOKIE, ("origin", "https://ARBOR.example.com:443")],
            vec![COOKIE, ("origin", "http://127.0.0.1:8080")],
            vec![COOKIE, ("sec-fetch-site", "same-origin")],
            vec![COOKIE, ("sec-fetch-site", "none")],
            vec![("origin", "https://evil.example")],
            vec![
                COOKIE,
                ("authorization", "Bearer t"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert_eq!(
                origins.refusal(&post, &headers(&allowed), HOST),
                None,
                "{allowed:?}"
            );
        }
        let forged = headers(&[COOKIE, ("origin", "https://evil.example")]);
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(origins.refusal(&method, &forged, HOST), None, "{method}");
        }
    }
}
