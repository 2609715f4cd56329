//! User management by administrators.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Csv, Json, Path, Query};
use arbor_app::model::{AuditEntry, PageRequest, UserRecord};
use arbor_app::users::{Invite, UserEdit, UserQuery};
use arbor_core::{OrgId, RoleId, UserId, UserStatus};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// `pending`, `active` or `suspended`.
    pub status: String,
    pub locale: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id.0,
            email: u.email,
            name: u.name,
            status: u.status.as_str().to_owned(),
            locale: u.locale,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListParams {
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `pending`, `active` or `suspended`.
    pub status: Option<String>,
    /// Only members of this organization (in your scope).
    pub org_id: Option<i64>,
    /// Text contained in the email or name, ignoring case.
    pub q: Option<String>,
    /// Only users having the tag of this name (ignoring case).
    pub tag: Option<String>,
}

/// Users the caller may view (`users.view`) in its scope, by id, optionally
/// narrowed by status, organization, a search text and a tag.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "One page of users", body = UserPage)))]
async fn list_users(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<UserListParams>,
) -> ApiResult<axum::Json<UserPage>> {
    let status = match params.status.as_deref() {
        None => None,
        Some("pending") => Some(UserStatus::Pending),
        Some("active") => Some(UserStatus::Active),
        Some("suspended") => Some(UserStatus::Suspended),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("unknown status {other:?}; expected one of: pending, active, suspended"),
            ));
        }
    };
    let query = UserQuery {
        status,
        org: params.org_id.map(OrgId),
        search: params.q,
        tag: params.tag,
    };
    let page = state
        .app
        .search_users(
            &user.caller,
            &query,
            &PageRequest::after(params.cursor, params.limit),
        )
        .await?;
    Ok(axum::Json(UserPage {
        items: page.items.into_iter().map(UserView::from).collect(),
        next: page.next,
    }))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The user", body = UserView), (status = 404, body = crate::error::Problem)))]
async fn get_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<UserView>> {
    let record = state.app.get_user(&user.caller, UserId(id)).await?;
    Ok(axum::Json(record.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditUser {
    pub name: Option<String>,
    pub locale: Option<String>,
    /// Another role in the org the user is managed in.
    pub role_id: Option<i64>,
}

/// Edits a member (`users.edit`; a new role also needs every permission it grants).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)), request_body = EditUser,
    responses((status = 204, description = "Saved"), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn edit_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<EditUser>,
) -> ApiResult<StatusCode> {
    let edit = UserEdit {
        name: body.name,
        locale: body.locale,
        role: body.role_id.map(RoleId),
    };
    state.app.edit_user(&user.caller, UserId(id), &edit).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// An Admin who takes over the user's devices (default: the earliest Admin
    /// of each device's org).
    pub heir: Option<i64>,
}

/// Deletes a user; owned devices pass to an Admin of their org.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path), DeleteParams),
    responses((status = 204, description = "The user was deleted"), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn delete_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<DeleteParams>,
) -> ApiResult<StatusCode> {
    state
        .app
        .delete_user(&user.caller, UserId(id), params.heir.map(UserId))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    pub name: String,
    pub org_id: i64,
    pub role_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct InviteResponse {
    pub user_id: i64,
    /// When the link stops working (unix milliseconds).
    pub expires_at: i64,
}

/// Invites a new person: a pending account and a single-use link by mail.
#[utoipa::path(post, path = "/api/v1/users/invitations", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    request_body = InviteRequest,
    responses((status = 201, description = "The pending account was created and the invitation mailed", body = InviteResponse), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn invite(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<InviteRequest>,
) -> ApiResult<(StatusCode, axum::Json<InviteResponse>)> {
    let invite = Invite {
        email: body.email,
        name: body.name,
        org: OrgId(body.org_id),
        role: RoleId(body.role_id),
    };
    let invited = state
        .app
        .invite(&user.caller, &invite, &state.links, &state.policy)
        .await?;
    state.mailer_hint();
    Ok((
        StatusCode::CREATED,
        axum::Json(InviteResponse {
            user_id: invited.user.0,
            expires_at: invited.expires_at,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct BulkRowView {
    pub line: u64,
    pub email: String,
    pub user_id: Option<i64>,
    /// Why the row was not invited; the row changed nothing.
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkReport {
    pub invited: usize,
    pub failed: usize,
    pub rows: Vec<BulkRowView>,
}

/// Invites from a CSV body (`text/csv`, header `email,name,role,org`; role by
/// name, org by id). Each row succeeds or fails on its own.
#[utoipa::path(post, path = "/api/v1/users/invitations/bulk", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "A report of every row", body = BulkReport), (status = 400, body = crate::error::Problem)))]
async fn invite_bulk(
    State(state): State<AppState>,
    user: CurrentUser,
    Csv(body): Csv,
) -> ApiResult<axum::Json<BulkReport>> {
    let rows = state
        .app
        .invite_csv(&user.caller, &body, &state.links, &state.policy)
        .await?;
    state.mailer_hint();
    let invited = rows.iter().filter(|r| r.error.is_none()).count();
    Ok(axum::Json(BulkReport {
        invited,
        failed: rows.len() - invited,
        rows: rows
            .into_iter()
            .map(|r| BulkRowView {
                line: r.line,
                email: r.email,
                user_id: r.user.map(|u| u.0),
                error: r.error,
            })
            .collect(),
    }))
}

/// Sends a pending user a fresh invitation link (the old one stops working).
#[utoipa::path(post, path = "/api/v1/users/{id}/invitation/resend", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "A fresh link was mailed", body = InviteResponse), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn resend_invitation(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<InviteResponse>> {
    let invited = state
        .app
        .resend_invitation(&user.caller, UserId(id), &state.links, &state.policy)
        .await?;
    state.mailer_hint();
    Ok(axum::Json(InviteResponse {
        user_id: invited.user.0,
        expires_at: invited.expires_at,
    }))
}

/// Withdraws a pending user's invitation; the pending account is removed.
#[utoipa::path(delete, path = "/api/v1/users/{id}/invitation", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "The invitation was withdrawn and the pending account removed"), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn revoke_invitation(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .app
        .revoke_invitation(&user.caller, UserId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails the user a one-time link to choose a new password
/// (`users.change_password`). The administrator never sees the password.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 202, description = "The reset link is queued for mailing"), (status = 404, body = crate::error::Problem)))]
async fn password_reset(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .app
        .request_password_reset(&user.caller, UserId(id), &state.links, &state.policy)
        .await?;
    state.mailer_hint();
    Ok(StatusCode::ACCEPTED)
}

#[derive(Serialize, ToSchema)]
pub struct LoggedOut {
    pub sessions_revoked: u64,
}

/// Ends every session of the user at once (`users.force_logout`).
#[utoipa::path(post, path = "/api/v1/users/{id}/logout", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "Every session of the user has ended", body = LoggedOut), (status = 404, body = crate::error::Problem)))]
async fn force_logout(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<LoggedOut>> {
    let sessions_revoked = state.app.force_logout(&user.caller, UserId(id)).await?;
    Ok(axum::Json(LoggedOut { sessions_revoked }))
}

/// Suspends a user and ends their sessions (`users.suspend`).
#[utoipa::path(post, path = "/api/v1/users/{id}/suspend", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "The user is suspended"), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn suspend(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .app
        .set_suspended(&user.caller, UserId(id), true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reinstates a suspended user (`users.suspend`).
#[utoipa::path(post, path = "/api/v1/users/{id}/unsuspend", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "The user is reinstated"), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn unsuspend(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .app
        .set_suspended(&user.caller, UserId(id), false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferUser {
    pub org_id: i64,
    pub role_id: i64,
    /// Move the user's devices along (default: they pass to an Admin of the old org).
    #[serde(default)]
    pub with_devices: bool,
}

/// Moves a user to another org of the hierarchy with a role (`users.transfer`).
#[utoipa::path(post, path = "/api/v1/users/{id}/transfer", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)), request_body = TransferUser,
    responses((status = 204, description = "The user was moved"), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn transfer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<TransferUser>,
) -> ApiResult<StatusCode> {
    state
        .app
        .transfer_user(
            &user.caller,
            UserId(id),
            OrgId(body.org_id),
            RoleId(body.role_id),
            body.with_devices,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A CSV cell that a spreadsheet would not run as a formula.
pub fn neutralize(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// Every user the caller may list, as CSV (`users.download_list`).
#[utoipa::path(get, path = "/api/v1/users.csv", tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Every user the caller may list, as CSV", content_type = "text/csv", body = String)))]
async fn users_csv(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<impl IntoResponse> {
    let users = state.app.export_users(&user.caller).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = ["id", "email", "name", "status", "locale", "created_at"];
    writer
        .write_record(header)
        .map_err(|e| ApiError::internal(&e))?;
    for u in users {
        let row = [
            u.id.0.to_string(),
            neutralize(&u.email),
            neutralize(&u.name),
            u.status.as_str().to_owned(),
            neutralize(&u.locale),
            u.created_at.to_string(),
        ];
        writer
            .write_record(&row)
            .map_err(|e| ApiError::internal(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| ApiError::internal(&e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"users.csv\"",
            ),
        ],
        bytes,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only this user's actions.
    pub user_id: Option<i64>,
    /// Only events older than this event id (the previous page's last id).
    pub before: Option<i64>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub actor_user_id: Option<i64>,
    pub actor_home_org_id: Option<i64>,
    pub target_org_id: Option<i64>,
    pub client: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_user_id: e.actor.map(|u| u.0),
            actor_home_org_id: e.actor_home_org.map(|o| o.0),
            target_org_id: e.target_org.map(|o| o.0),
            client: e.client,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            details: e.details,
        }
    }
}

/// The actions log: audit events about orgs in the caller's scope
/// (`users.view_actions_log`), newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "users", params(AuditParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Audit events, newest first", body = Vec<AuditView>)))]
async fn actions_log(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<AuditParams>,
) -> ApiResult<axum::Json<Vec<AuditView>>> {
    let entries = state
        .app
        .actions_log(
            &user.caller,
            params.user_id.map(UserId),
            params.before,
            params.limit.unwrap_or(100),
        )
        .await?;
    Ok(axum::Json(
        entries.into_iter().map(AuditView::from).collect(),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(users_csv))
        .routes(routes!(get_user, edit_user, delete_user))
        .routes(routes!(invite))
        .routes(routes!(invite_bulk))
        .routes(routes!(resend_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(password_reset))
        .routes(routes!(force_logout))
        .routes(routes!(suspend))
        .routes(routes!(unsuspend))
        .routes(routes!(transfer))
        .routes(routes!(actions_log))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_neutralized() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(super::neutralize(cell).starts_with('\''), "{cell:?}");
        }
        assert_eq!(super::neutralize("ann@example.com"), "ann@example.com");
    }
}
