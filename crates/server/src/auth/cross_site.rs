//! Cross-site request refusal for cookie sessions.
//!
//! A browser attaches the `arbor_session` cookie to requests that another
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

use crate::auth::session::token_from;
use crate::error::{ApiError, ProblemKind};
use arbor_app::model::ClientKind;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub const FETCH_SITE: &str = "sec-fetch-site";

/// Where this server's pages come from.
#[derive(Clone, Debug)]
pub struct Origins {
    /// `scheme://host[:port]` of the configured public URL.
    public: Option<String>,
}

impl Origins {
    pub fn new(public_url: &str) -> Self {
        Self {
            public: url::Url::parse(public_url)
                .ok()
                .map(|url| url.origin().ascii_serialization()),
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
        if !matches!(token_from(headers), Some((_, ClientKind::Web))) {
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

/// Refuses cross-site requests that the session cookie would authenticate.
pub async fn middleware(
    State(cross_site): State<Arc<CrossSite>>,
    request: Request,
    next: Next,
) -> Response {
    let origins = &cross_site.origins;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if let Some(why) = origins.refusal(request.method(), request.headers(), host) {
        tracing::warn!(
            method = %request.method(),
            path = %request.uri().path(),
            "cross-site request with the session cookie refused ({why})"
        );
        if let Some((token, client)) = token_from(request.headers()) {
            let what = format!("request:{} {}", request.method(), request.uri().path());
            let audited = cross_site
                .app
                .audit_refused_request(&token, &cross_site.policy, client, what, &why)
                .await;
            if let Err(e) = audited {
                tracing::warn!("auditing a refused cross-site request failed: {e}");
            }
        }
        return ApiError::new(
            ProblemKind::Forbidden,
            "cross-site request refused: a request made with the session cookie must come from this server's own pages",
        )
        .into_response();
    }
    next.run(request).await
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
