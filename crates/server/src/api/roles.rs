//! Roles (hierarchy-wide names, at most nine), per-org permission sets and
//! permission templates.
//!
//! Role names belong to the hierarchy, so creating, renaming and deleting a
//! role is decided on the root org: only members of the root org holding
//! `roles.create` / `roles.edit` / `roles.delete` may. Permission sets are per
//! org and follow rule 4 on that org plus rule 6 (no one grants what they lack).

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use arbor_app::model::StoredTemplate;
use arbor_app::roles::MatrixView;
use arbor_core::role::{RoleDeletion, TemplatePush};
use arbor_core::{OrgId, PermissionGroup, PermissionSet, Role, RoleId};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    pub id: i64,
    pub name: String,
    /// `admin`, `staff` or `user` for the three default roles.
    pub builtin: Option<String>,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        Self {
            id: r.id.0,
            name: r.name,
            builtin: r.builtin.map(|b| b.default_name().to_lowercase()),
        }
    }
}

/// The hierarchy's roles (`roles.view`).
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The hierarchy's roles", body = Vec<RoleView>), (status = 403, body = crate::error::Problem)))]
async fn list_roles(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<axum::Json<Vec<RoleView>>> {
    let roles = state.app.list_roles(&user.caller).await?;
    Ok(axum::Json(roles.into_iter().map(RoleView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleName {
    /// 1–32 characters, unique in the hierarchy ignoring case.
    pub name: String,
}

/// Adds a role (`roles.create` in the root org; at most nine per
/// hierarchy). Its permission set is empty in every org until edited.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = RoleName,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The role was added", body = RoleView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn create_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<RoleName>,
) -> ApiResult<(StatusCode, axum::Json<RoleView>)> {
    let role = state.app.create_role(&user.caller, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(role.into())))
}

/// Renames a role (`roles.edit` in the root org).
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", request_body = RoleName,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The role as renamed", body = RoleView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn rename_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<RoleName>,
) -> ApiResult<axum::Json<RoleView>> {
    let role = state
        .app
        .rename_role(&user.caller, RoleId(id), &body.name)
        .await?;
    Ok(axum::Json(role.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteRoleParams {
    /// The role that the deleted role's members get instead.
    pub replacement: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MovedMembership {
    pub user_id: i64,
    pub org_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RoleDeleted {
    pub deleted: i64,
    pub replacement: i64,
    /// Memberships that now hold the replacement role.
    pub moved: Vec<MovedMembership>,
}

impl From<RoleDeletion> for RoleDeleted {
    fn from(d: RoleDeletion) -> Self {
        Self {
            deleted: d.deleted.0,
            replacement: d.replacement.0,
            moved: d
                .moved
                .into_iter()
                .map(|h| MovedMembership {
                    user_id: h.user.0,
                    org_id: h.org.0,
                })
                .collect(),
        }
    }
}

/// Deletes a role (`roles.delete` in the root org), moving its members to the
/// replacement; the replacement must grant nothing the caller lacks. Admin
/// cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), DeleteRoleParams),
    responses((status = 200, description = "The role was deleted and its members moved", body = RoleDeleted), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn delete_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<DeleteRoleParams>,
) -> ApiResult<axum::Json<RoleDeleted>> {
    let deleted = state
        .app
        .delete_role(&user.caller, RoleId(id), RoleId(params.replacement))
        .await?;
    Ok(axum::Json(deleted.into()))
}

#[derive(Serialize, ToSchema)]
pub struct PermissionRow {
    /// Stable id, e.g. `org_devices.view`.
    pub id: String,
    pub label: String,
    /// Permissions this one needs (saving a set adds them).
    pub requires: Vec<String>,
    /// The roles whose set in this org holds the permission.
    pub roles: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionGroupView {
    pub id: String,
    pub label: String,
    pub permissions: Vec<PermissionRow>,
}

#[derive(Serialize, ToSchema)]
pub struct MatrixResponse {
    pub org_id: i64,
    pub roles: Vec<RoleView>,
    /// Each role's set, by role id.
    pub sets: BTreeMap<i64, Vec<String>>,
    /// The catalog, grouped as the console shows it, with the roles holding each.
    pub groups: Vec<PermissionGroupView>,
}

fn ids(set: PermissionSet) -> Vec<String> {
    set.ids().into_iter().map(str::to_owned).collect()
}

impl From<MatrixView> for MatrixResponse {
    fn from(view: MatrixView) -> Self {
        let groups = PermissionGroup::ALL
            .into_iter()
            .map(|group| PermissionGroupView {
                id: group.id().to_owned(),
                label: group.label().to_owned(),
                permissions: group
                    .permissions()
                    .map(|info| PermissionRow {
                        id: info.id.to_owned(),
                        label: info.label.to_owned(),
                        requires: info.requires.iter().map(|p| p.id().to_owned()).collect(),
                        roles: view
                            .roles
                            .iter()
                            .filter(|r| view.matrix.get(r.id).contains(info.permission))
                            .map(|r| r.id.0)
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            org_id: view.org.0,
            sets: view
                .roles
                .iter()
                .map(|r| (r.id.0, ids(view.matrix.get(r.id))))
                .collect(),
            roles: view.roles.into_iter().map(RoleView::from).collect(),
            groups,
        }
    }
}

/// An org's permission matrix: roles × permissions (`roles.view` on the org).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/permissions", tag = "roles",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The org's permission matrix", body = MatrixResponse), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
async fn get_matrix(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<MatrixResponse>> {
    let view = state.app.permission_matrix(&user.caller, OrgId(id)).await?;
    Ok(axum::Json(view.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermissions {
    /// Permission ids; dependencies are added.
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionsSaved {
    /// The saved set, closed over dependencies.
    pub permissions: Vec<String>,
    /// Dependencies that were added to what was asked.
    pub added: Vec<String>,
}

/// Replaces one role's set in one org (`roles.edit` on the org, else 403; the
/// caller must hold every permission of the old and the new set — else 409
/// naming the missing ones; nothing changes).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/roles/{role_id}/permissions", tag = "roles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path), ("role_id" = i64, Path)), request_body = SetPermissions,
    responses((status = 200, description = "The saved set, closed over dependencies", body = PermissionsSaved), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn set_permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, role_id)): Path<(i64, i64)>,
    Json(body): Json<SetPermissions>,
) -> ApiResult<axum::Json<PermissionsSaved>> {
    let requested = PermissionSet::from_ids(&body.permissions)
        .map_err(|e| ApiError::invalid("permissions", e.to_string()))?;
    let closure = state
        .app
        .set_role_permissions(&user.caller, OrgId(id), RoleId(role_id), requested)
        .await?;
    Ok(axum::Json(PermissionsSaved {
        permissions: ids(closure.set),
        added: ids(closure.added),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub id: i64,
    pub name: String,
    /// Role id → permission ids.
    pub sets: BTreeMap<i64, Vec<String>>,
    pub created_at: i64,
}

impl From<StoredTemplate> for TemplateView {
    fn from(t: StoredTemplate) -> Self {
        Self {
            id: t.id,
            name: t.template.name,
            sets: t
                .template
                .sets
                .into_iter()
                .map(|(r, s)| (r.0, ids(s)))
                .collect(),
            created_at: t.created_at,
        }
    }
}

/// The hierarchy's permission templates (`roles.view`).
#[utoipa::path(get, path = "/api/v1/permission-templates", tag = "roles",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The hierarchy's permission templates", body = Vec<TemplateView>), (status = 403, body = crate::error::Problem)))]
async fn list_templates(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<axum::Json<Vec<TemplateView>>> {
    let templates = state.app.list_permission_templates(&user.caller).await?;
    Ok(axum::Json(
        templates.into_iter().map(TemplateView::from).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub name: String,
    /// The org whose current matrix the template copies.
    pub from_org_id: i64,
}

/// Saves an org's current matrix as a named template (`roles.edit` on that org).
#[utoipa::path(post, path = "/api/v1/permission-templates", tag = "roles",
    security(("bearer" = []), ("cookie" = [])), request_body = CreateTemplate,
    responses((status = 201, description = "The template was saved", body = TemplateView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn create_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateTemplate>,
) -> ApiResult<(StatusCode, axum::Json<TemplateView>)> {
    let template = state
        .app
        .create_permission_template(&user.caller, OrgId(body.from_org_id), &body.name)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(template.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateTarget {
    pub org_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateReport {
    /// How many orgs the operation covered.
    pub orgs: usize,
    /// The orgs whose matrix changed.
    pub changed: Vec<i64>,
}

impl From<TemplatePush> for TemplateReport {
    fn from(p: TemplatePush) -> Self {
        Self {
            orgs: p.orgs,
            changed: p.changed.into_iter().map(|o| o.0).collect(),
        }
    }
}

/// Applies a template to one org (`roles.edit` there, and every permission of
/// the sets replaced and written).
#[utoipa::path(post, path = "/api/v1/permission-templates/{id}/apply", tag = "roles",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    request_body = TemplateTarget,
    responses((status = 200, description = "What applying the template changed", body = TemplateReport), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
async fn apply_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<TemplateTarget>,
) -> ApiResult<axum::Json<TemplateReport>> {
    let applied = state
        .app
        .apply_permission_template(&user.caller, id, OrgId(body.org_id))
        .await?;
    Ok(axum::Json(TemplateReport {
        orgs: 1,
        changed: if applied.changed {
            vec![applied.org.0]
        } else {
            Vec::new()
        },
    }))
}

/// Pushes a template to every org of a subtree in one transaction; refused as
/// a whole (nothing changed) if any org of it is not the caller's to change.
#[utoipa::path(post, path = "/api/v1/permission-templates/{id}/push", tag = "roles",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    request_body = TemplateTarget,
    responses((status = 200, description = "The orgs the push covered and those it changed", body = TemplateReport), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
async fn push_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<TemplateTarget>,
) -> ApiResult<axum::Json<TemplateReport>> {
    let push = state
        .app
        .push_permission_template(&user.caller, id, OrgId(body.org_id))
        .await?;
    Ok(axum::Json(push.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(rename_role, delete_role))
        .routes(routes!(get_matrix))
        .routes(routes!(set_permissions))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(apply_template))
        .routes(routes!(push_template))
}
