//! What of a request may reach a log line: its URI with every secret-bearing
//! query value replaced by `[redacted]`.
//!
//! Link pages take their one-time token as `?token=`, and so will the
//! device API (`/external/api/...?token=`); a setup token, a code or a
//! password could be sent the same way by a careless client. Every log
//! line that prints a URI or a path with its query goes through
//! [`redact_uri`] (the request span, the HTTP trace span, the access log).
//!
//! A parameter is secret when its name, percent-decoded and in lower case,
//! contains `token`, `password`, `secret` or `key`, or is `code`, `auth`
//! or `sig`. Unknown names keep their value: redaction is for secrets, not
//! for hiding what a request asked for. The names stay, so a reader still
//! sees which page was opened and with what kind of link.

use axum::http::Uri;

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Parameter names containing one of these carry a secret.
const SECRET_PARTS: &[&str] = &["token", "password", "passwd", "secret", "key"];

/// Parameter names that are a secret as a whole.
const SECRET_NAMES: &[&str] = &["code", "auth", "sig", "signature"];

fn is_secret(name: &str) -> bool {
    let name = form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(name, _)| name.to_lowercase())
        .unwrap_or_default();
    SECRET_PARTS.iter().any(|part| name.contains(part)) || SECRET_NAMES.contains(&name.as_str())
}

/// `query` (without the `?`) with the value of every secret parameter
/// replaced by [`REDACTED`]; everything else as it came.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}={REDACTED}"),
            // A bare value without a name may be a token pasted in whole.
            None if pair.len() >= 16 => REDACTED.to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The path and the redacted query of `uri`, for a log line (scheme and
/// authority, which a request line seldom carries, are left out).
pub fn redact_uri(uri: &Uri) -> String {
    match uri.query() {
        Some(query) => format!("{}?{}", uri.path(), redact_query(query)),
        None => uri.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn token_values_are_redacted_and_names_kept() {
        assert_eq!(
            redact_uri(&uri("/invitations/accept?token=abcDEF123")),
            "/invitations/accept?token=[redacted]"
        );
        assert_eq!(
            redact_uri(&uri("/external/api/get?token=t0k3n&pin=V1&x=1")),
            "/external/api/get?token=[redacted]&pin=V1&x=1"
        );
        assert_eq!(
            redact_query("setup_token=s&password=p&code=c&page=2&q=acme"),
            "setup_token=[redacted]&password=[redacted]&code=[redacted]&page=2&q=acme"
        );
    }

    #[test]
    fn disguised_names_are_still_recognised() {
        // Percent-encoded, upper case, array-style and `+` for space.
        assert_eq!(redact_query("%74oken=x"), "%74oken=[redacted]");
        assert_eq!(redact_query("TOKEN=x"), "TOKEN=[redacted]");
        assert_eq!(redact_query("token[]=x"), "token[]=[redacted]");
        assert_eq!(redact_query("api+key=x"), "api+key=[redacted]");
        assert_eq!(redact_query("Auth=x"), "Auth=[redacted]");
        // Repeated and empty parameters.
        assert_eq!(
            redact_query("token=a&token=b&&x="),
            "token=[redacted]&token=[redacted]&&x="
        );
    }

    #[test]
    fn a_long_bare_value_is_redacted_and_plain_paths_pass() {
        assert_eq!(
            redact_query("abcdefghijklmnopqrstuvwx"),
            "[redacted]".to_owned()
        );
        assert_eq!(redact_query("short"), "short");
        assert_eq!(redact_uri(&uri("/api/v1/orgs")), "/api/v1/orgs");
        assert_eq!(
            redact_uri(&uri("/api/v1/users?q=kim&limit=5")),
            "/api/v1/users?q=kim&limit=5"
        );
        assert_eq!(
            redact_uri(&uri("https://arbor.example/password-reset?token=z")),
            "/password-reset?token=[redacted]"
        );
    }
}
