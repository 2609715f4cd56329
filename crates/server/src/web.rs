//! The two pages a mailed link opens: accept an invitation, and choose a new
//! password after an administrator asked for a reset. Plain HTML forms posting
//! back to the same path (no script, no session: the token in the form is the
//! credential), rendered with askama (escaped output).
//!
//! The token is in the page's URL and its form, so every answer of these
//! routes is kept out of caches (`Cache-Control: no-store`), sends no
//! `Referer` onwards (`Referrer-Policy: no-referrer`) and cannot be framed by
//! another site (`frame-ancestors 'none'`, `X-Frame-Options: DENY`). The
//! request log redacts the token ([`crate::redact`]).

use crate::AppState;
use crate::error::{ApiError, ProblemKind};
use crate::extract::{Form, Query};
use arbor_app::model::ClientKind;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPassword<'a> {
    heading: &'a str,
    action: &'a str,
    button: &'a str,
    success: &'a str,
    ask_name: bool,
    token: String,
    error: Option<String>,
    done: bool,
}

impl SetPassword<'_> {
    fn render_page(&self, status: StatusCode) -> Response {
        match self.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => ApiError::internal(&e).into_response(),
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
struct PasswordForm {
    token: String,
    password: String,
    name: Option<String>,
}

fn invitation_page(token: String) -> SetPassword<'static> {
    SetPassword {
        heading: "Activate your Arbor account",
        action: "/invitations/accept",
        button: "Activate",
        success: "Your account is active. You can now log in.",
        ask_name: true,
        token,
        error: None,
        done: false,
    }
}

fn reset_page(token: String) -> SetPassword<'static> {
    SetPassword {
        heading: "Choose a new Arbor password",
        action: "/password-reset",
        button: "Set password",
        success: "Your password is set; every earlier session has ended. You can now log in.",
        ask_name: false,
        token,
        error: None,
        done: false,
    }
}

fn missing_token(mut page: SetPassword<'_>) -> Response {
    page.error = Some("This link is incomplete: open the whole link from the mail.".into());
    page.done = false;
    page.render_page(StatusCode::BAD_REQUEST)
}

/// The page again for a request that could not be read (a malformed link or
/// form): a person reads HTML, never the API's problem details.
fn unreadable(mut page: SetPassword<'_>, error: ApiError) -> Response {
    let status = error.kind.status();
    page.error = Some(match error.kind {
        ProblemKind::PayloadTooLarge => "What was sent is too large.".to_owned(),
        ProblemKind::UnsupportedMediaType => "Send this form from its page.".to_owned(),
        _ => match (error.field, error.detail) {
            (Some(field), Some(detail)) => format!(
                "This form could not be read ({field}: {detail}). Open the whole link from the mail and try again."
            ),
            _ => "This form could not be read. Open the whole link from the mail and try again."
                .to_owned(),
        },
    });
    page.done = false;
    page.render_page(status)
}

async fn invitation_form(query: Result<Query<TokenQuery>, ApiError>) -> Response {
    match query {
        Ok(Query(TokenQuery { token: Some(token) })) => {
            invitation_page(token).render_page(StatusCode::OK)
        }
        Ok(_) => missing_token(invitation_page(String::new())),
        Err(e) => unreadable(invitation_page(String::new()), e),
    }
}

/// The message a person reads for a failed attempt.
fn failure(error: arbor_app::AppError) -> (StatusCode, String) {
    let api = ApiError::from(error);
    let status = api.kind.status();
    let message = match api.kind {
        ProblemKind::NotFound => "This link is not valid. Ask for a new one.".to_owned(),
        ProblemKind::Internal => "Something went wrong on our side. Try again later.".to_owned(),
        _ => api
            .detail
            .unwrap_or_else(|| "The request was refused.".into()),
    };
    (status, message)
}

async fn invitation_submit(
    State(state): State<AppState>,
    form: Result<Form<PasswordForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return unreadable(invitation_page(String::new()), e),
    };
    let name = form
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let result = state
        .app
        .accept_invitation(&form.token, &form.password, name, ClientKind::Web)
        .await;
    outcome(invitation_page(form.token.clone()), result)
}

async fn reset_form(query: Result<Query<TokenQuery>, ApiError>) -> Response {
    match query {
        Ok(Query(TokenQuery { token: Some(token) })) => {
            reset_page(token).render_page(StatusCode::OK)
        }
        Ok(_) => missing_token(reset_page(String::new())),
        Err(e) => unreadable(reset_page(String::new()), e),
    }
}

async fn reset_submit(
    State(state): State<AppState>,
    form: Result<Form<PasswordForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return unreadable(reset_page(String::new()), e),
    };
    let result = state
        .app
        .complete_password_reset(&form.token, &form.password, ClientKind::Web)
        .await;
    outcome(reset_page(form.token.clone()), result)
}

/// The page again, saying it is done or why not.
fn outcome<T>(mut page: SetPassword<'static>, result: Result<T, arbor_app::AppError>) -> Response {
    match result {
        Ok(_) => {
            page.done = true;
            page.render_page(StatusCode::OK)
        }
        Err(e) => {
            let (status, message) = failure(e);
            page.error = Some(message);
            page.render_page(status)
        }
    }
}

/// The headers every answer of a token page carries.
pub const TOKEN_PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

async fn token_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in TOKEN_PAGE_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/invitations/accept",
            get(invitation_form).post(invitation_submit),
        )
        .route("/password-reset", get(reset_form).post(reset_submit))
        .layer(axum::middleware::map_response(token_page_headers))
}
