//! First-run setup, login/logout, the caller's own account, and the two
//! link-based flows (accept an invitation, complete a password reset).

use crate::AppState;
use crate::auth::client::ClientAddr;
use crate::auth::session::{CurrentUser, clear_cookie, session_cookie};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use arbor_app::accounts::FirstRun;
use arbor_app::model::ClientKind;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time token the server printed to its log at start.
    pub setup_token: String,
    pub org_name: String,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SetupResponse {
    pub org_id: i64,
    pub admin_user_id: i64,
}

/// First-run setup: creates the first hierarchy, its root org and its Admin.
/// Usable only while no hierarchy exists, with the setup token from the log.
#[utoipa::path(post, path = "/api/v1/setup", tag = "accounts",
    request_body = SetupRequest,
    responses((status = 201, description = "The first hierarchy, its root org and its Admin were created", body = SetupResponse), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn setup(
    State(state): State<AppState>,
    Json(body): Json<SetupRequest>,
) -> ApiResult<(StatusCode, axum::Json<SetupResponse>)> {
    let expected = state
        .setup_token
        .as_ref()
        .ok_or_else(|| ApiError::not_found("setup"))?;
    let valid: bool = body
        .setup_token
        .as_bytes()
        .ct_eq(expected.as_bytes())
        .into();
    if !valid {
        return Err(ApiError::unauthorized("the setup token is not valid"));
    }
    let created = state
        .app
        .first_run(
            &FirstRun {
                org_name: body.org_name,
                admin_email: body.admin_email,
                admin_name: body.admin_name,
                admin_password: body.admin_password,
            },
            ClientKind::Api,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SetupResponse {
            org_id: created.root.id.0,
            admin_user_id: created.admin.0,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`; also set as the session cookie.
    pub token: String,
    pub user_id: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// Logs in. Wrong email, wrong password and inactive account answer the same
/// 401. After repeated failures of this client at this account (or at many
/// accounts) it must wait: 429 with `Retry-After`, answered after a pause
/// (`throttle.hold_ms`). 503 with `Retry-After`
/// when too many passwords are being checked at once.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses((status = 200, description = "Logged in; the token is also set as the session cookie", body = LoginResponse), (status = 401, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    Json(body): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let attempt = state.app.login(
        &body.email,
        &body.password,
        ClientKind::Api,
        &from,
        &state.policy,
    );
    let logged_in = state.tarpit.hold(attempt.await).await?;
    let Some(logged_in) = logged_in else {
        return Err(ApiError::unauthorized("invalid email or password"));
    };
    crate::request_id::authenticated(logged_in.user, ClientKind::Api);
    let max_age = (logged_in.expires_at - state.clock.now_ms()) / 1000;
    let cookie = session_cookie(&logged_in.token, max_age, state.config.https());
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        axum::Json(LoginResponse {
            token: logged_in.token,
            user_id: logged_in.user.0,
            expires_at: logged_in.expires_at,
        }),
    ))
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "The session has ended; the session cookie is cleared"), (status = 401, body = crate::error::Problem)))]
async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<impl IntoResponse> {
    state.app.logout(&user.auth, user.caller.client).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, clear_cookie(state.config.https()))]),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub org_id: i64,
    pub org_name: String,
    pub role_id: i64,
    pub role: String,
    pub home: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: String,
    pub locale: String,
    pub memberships: Vec<MembershipView>,
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's account and memberships", body = Me), (status = 401, body = crate::error::Problem)))]
async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<axum::Json<Me>> {
    let (record, memberships) = state.app.profile(&user.auth).await?;
    Ok(axum::Json(Me {
        id: record.id.0,
        email: record.email,
        name: record.name,
        status: record.status.as_str().to_owned(),
        locale: record.locale,
        memberships: memberships
            .into_iter()
            .map(|(m, role)| MembershipView {
                org_id: m.org.0,
                org_name: m.org_name,
                role_id: m.role.0,
                role,
                home: m.home,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub locale: Option<String>,
}

/// Edits the caller's own name and locale.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ProfileUpdate,
    responses((status = 204, description = "Saved"), (status = 400, body = crate::error::Problem)))]
async fn update_me(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<StatusCode> {
    state
        .app
        .update_own_profile(
            &user.auth,
            body.name.as_deref(),
            body.locale.as_deref(),
            user.caller.client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the caller's password; every other session of the caller ends.
/// Wrong current passwords are throttled like failed logins (429).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordChange,
    responses((status = 204, description = "The password is changed; the caller's other sessions have ended"), (status = 400, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn change_password(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    user: CurrentUser,
    Json(body): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let changed = state.app.change_own_password(
        &user.auth,
        &body.current_password,
        &body.new_password,
        user.caller.client,
        &from,
    );
    state.tarpit.hold(changed.await).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The token from the invitation link.
    pub token: String,
    pub password: String,
    /// Optionally correct the name the inviter typed.
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Activated {
    pub user_id: i64,
}

/// Accepts an invitation: sets the password and activates the account.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "accounts",
    request_body = AcceptInvitation,
    responses((status = 200, description = "The account is active", body = Activated), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn accept_invitation(
    State(state): State<AppState>,
    Json(body): Json<AcceptInvitation>,
) -> ApiResult<axum::Json<Activated>> {
    let user = state
        .app
        .accept_invitation(
            &body.token,
            &body.password,
            body.name.as_deref(),
            ClientKind::Api,
        )
        .await?;
    Ok(axum::Json(Activated { user_id: user.0 }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteReset {
    /// The token from the reset link.
    pub token: String,
    pub password: String,
}

/// Sets a new password from a reset link; every session of the account ends
/// and every failed-login delay of the account is forgotten.
#[utoipa::path(post, path = "/api/v1/password-reset/complete", tag = "accounts",
    request_body = CompleteReset,
    responses((status = 200, description = "The password is set", body = Activated), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn complete_reset(
    State(state): State<AppState>,
    Json(body): Json<CompleteReset>,
) -> ApiResult<axum::Json<Activated>> {
    let user = state
        .app
        .complete_password_reset(&body.token, &body.password, ClientKind::Api)
        .await?;
    Ok(axum::Json(Activated { user_id: user.0 }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(accept_invitation))
        .routes(routes!(complete_reset))
}
