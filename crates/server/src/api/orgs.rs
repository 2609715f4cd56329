//! Organizations: create (optionally inviting the first Admin), read, update
//! settings, list/search flat or as a tree, transfer (re-parent) and delete.
//!
//! Every request acts in the org named by the `X-Arbor-Org` header (default:
//! the caller's home org); SPEC.md section 4 rule 2 applies to it.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use arbor_app::model::{NewOrg, OrgRecord, PageRequest};
use arbor_app::{OrgDeleted, OrgEdit};
use arbor_core::{OrgId, OrgType, RoleId};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct OrgView {
    pub id: i64,
    pub parent_id: Option<i64>,
    /// Ids from the hierarchy's root down to this org.
    pub path: Vec<i64>,
    /// 1 for the root.
    pub depth: usize,
    /// ROOT, BUSINESS, PERSONAL, BRANCH, DISTRIBUTOR, CONTRACTOR, INSTALLER or RESELLER.
    #[serde(rename = "type")]
    pub org_type: String,
    pub name: String,
    pub description: String,
    pub timezone: String,
    /// `metric` or `imperial`.
    pub unit_system: String,
    pub contact: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<OrgRecord> for OrgView {
    fn from(o: OrgRecord) -> Self {
        Self {
            id: o.id.0,
            parent_id: o.parent.map(|p| p.0),
            path: o.path.ids().iter().map(|i| i.0).collect(),
            depth: o.path.depth(),
            org_type: o.org_type.as_str().to_owned(),
            name: o.name,
            description: o.description,
            timezone: o.timezone,
            unit_system: o.unit_system,
            contact: o.contact,
            created_at: o.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrgPage {
    pub items: Vec<OrgView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrgListParams {
    /// Only orgs whose name contains this (case-insensitive).
    pub q: Option<String>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
}

/// The orgs in the caller's scope (home org, plus its descendants with
/// `organizations.switch_to_suborgs`), by id; `q` searches by name.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organizations", params(OrgListParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "One page of orgs", body = OrgPage), (status = 400, body = crate::error::Problem)))]
async fn list_orgs(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<OrgListParams>,
) -> ApiResult<axum::Json<OrgPage>> {
    let (items, next) = match params.q.as_deref().map(str::trim) {
        Some(q) if !q.is_empty() => {
            let page = state
                .app
                .search_orgs(&user.caller, q, params.cursor.as_deref(), params.limit)
                .await?;
            (page.items, page.next)
        }
        _ => {
            let page = state
                .app
                .list_orgs(
                    &user.caller,
                    &PageRequest::after(params.cursor, params.limit),
                )
                .await?;
            (page.items, page.next)
        }
    };
    Ok(axum::Json(OrgPage {
        items: items.into_iter().map(OrgView::from).collect(),
        next,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct OrgNode {
    #[serde(flatten)]
    pub org: OrgView,
    #[schema(no_recursion)]
    pub children: Vec<OrgNode>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgTreeView {
    pub root: OrgNode,
    /// The subtree holds more orgs than `limit`; deeper ones were left out.
    pub truncated: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TreeParams {
    /// The subtree's root (default: the caller's home org).
    pub root: Option<i64>,
    /// At most this many orgs, 1–5000 (default 5000).
    pub limit: Option<u32>,
}

/// Nests orgs given parents-first into a tree under the first one.
fn nest(orgs: Vec<OrgRecord>) -> Option<OrgNode> {
    fn take(parent: i64, rest: &mut Vec<Option<OrgRecord>>) -> Vec<OrgNode> {
        let mut children = Vec::new();
        for i in 0..rest.len() {
            if rest[i]
                .as_ref()
                .is_some_and(|o| o.parent.map(|p| p.0) == Some(parent))
                && let Some(org) = rest[i].take()
            {
                let id = org.id.0;
                children.push(OrgNode {
                    org: org.into(),
                    children: take(id, rest),
                });
            }
        }
        children
    }
    let mut iter = orgs.into_iter();
    let root = iter.next()?;
    let mut rest: Vec<Option<OrgRecord>> = iter.map(Some).collect();
    let id = root.id.0;
    Some(OrgNode {
        org: root.into(),
        children: take(id, &mut rest),
    })
}

/// The caller's subtree (as far as its scope reaches) as a nested tree.
#[utoipa::path(get, path = "/api/v1/orgs/tree", tag = "organizations", params(TreeParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The subtree, nested", body = OrgTreeView), (status = 404, body = crate::error::Problem)))]
async fn org_tree(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<TreeParams>,
) -> ApiResult<axum::Json<OrgTreeView>> {
    let tree = state
        .app
        .org_tree(&user.caller, params.root.map(OrgId), params.limit)
        .await?;
    let root = nest(tree.orgs).ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(axum::Json(OrgTreeView {
        root,
        truncated: tree.truncated,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminInvitation {
    pub email: String,
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub parent_id: i64,
    pub name: String,
    /// Default BUSINESS ("client"); a PERSONAL org may only have PERSONAL children.
    #[serde(rename = "type")]
    pub org_type: Option<String>,
    pub description: Option<String>,
    /// Default `UTC`.
    pub timezone: Option<String>,
    /// `metric` (default) or `imperial`.
    pub unit_system: Option<String>,
    pub contact: Option<String>,
    /// Invite the new org's first Admin in the same request. If the invitation
    /// is refused, the org is not created.
    pub admin: Option<AdminInvitation>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgCreated {
    #[serde(flatten)]
    pub org: OrgView,
    /// The invited Admin (a pending user), if one was asked for.
    pub admin_user_id: Option<i64>,
    /// When the Admin's invitation link expires (unix milliseconds).
    pub admin_invitation_expires_at: Option<i64>,
}

/// Creates a sub-org (`organizations.create_suborgs` on the parent). Its
/// permission sets are copied from the parent's.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organizations", request_body = CreateOrg,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The org was created (and its Admin invited, if asked for)", body = OrgCreated), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn create_org(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateOrg>,
) -> ApiResult<(StatusCode, axum::Json<OrgCreated>)> {
    let org_type = match body.org_type.as_deref() {
        None => OrgType::Business,
        Some(t) => OrgType::parse(&t.to_uppercase())?,
    };
    let mut org = NewOrg::named(body.name, org_type);
    if let Some(v) = body.description {
        org.description = v;
    }
    if let Some(v) = body.timezone {
        org.timezone = v;
    }
    if let Some(v) = body.unit_system {
        org.unit_system = v;
    }
    if let Some(v) = body.contact {
        org.contact = v;
    }
    let admin = body
        .admin
        .as_ref()
        .map(|a| (a.email.as_str(), a.name.as_str()));
    let (created, invited) = state
        .app
        .create_suborg_with_admin(
            &user.caller,
            OrgId(body.parent_id),
            &org,
            admin,
            &state.links,
            &state.policy,
        )
        .await?;
    if invited.is_some() {
        state.mailer_hint();
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(OrgCreated {
            org: created.into(),
            admin_user_id: invited.as_ref().map(|i| i.user.0),
            admin_invitation_expires_at: invited.map(|i| i.expires_at),
        }),
    ))
}

/// One org in the caller's scope.
#[utoipa::path(get, path = "/api/v1/orgs/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The org", body = OrgView), (status = 404, body = crate::error::Problem)))]
async fn get_org(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<OrgView>> {
    let org = state.app.get_org(&user.caller, OrgId(id)).await?;
    Ok(axum::Json(org.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    pub unit_system: Option<String>,
    pub contact: Option<String>,
}

/// Updates an org's settings (`organizations.settings` on it).
#[utoipa::path(patch, path = "/api/v1/orgs/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    request_body = UpdateOrg,
    responses((status = 200, description = "The org as saved", body = OrgView), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn update_org(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<UpdateOrg>,
) -> ApiResult<axum::Json<OrgView>> {
    let edit = OrgEdit {
        name: body.name,
        description: body.description,
        timezone: body.timezone,
        unit_system: body.unit_system,
        contact: body.contact,
    };
    let org = state.app.update_org(&user.caller, OrgId(id), &edit).await?;
    Ok(axum::Json(org.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteOrgParams {
    /// Move sub-orgs, members and devices to the parent org first. Without
    /// it, deleting an org that holds any answers 409 with the counts.
    #[serde(default)]
    pub move_contents_to_parent: bool,
    /// The role each moved member gets in the parent, by old role:
    /// `OLD:NEW,OLD:NEW` (role ids). Members of unmapped roles get the
    /// hierarchy's least-privileged role there, so moving never widens
    /// anyone's scope.
    pub role_map: Option<String>,
}

/// Parses `OLD:NEW,OLD:NEW`.
fn parse_role_map(text: Option<&str>) -> Result<BTreeMap<RoleId, RoleId>, ApiError> {
    let mut map = BTreeMap::new();
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(map);
    };
    for pair in text.split(',') {
        let parsed = pair.split_once(':').and_then(|(old, new)| {
            Some((
                old.trim().parse::<i64>().ok()?,
                new.trim().parse::<i64>().ok()?,
            ))
        });
        let Some((old, new)) = parsed else {
            return Err(ApiError::invalid(
                "role_map",
                "expected OLD:NEW pairs of role ids separated by commas",
            ));
        };
        if map.insert(RoleId(old), RoleId(new)).is_some() {
            return Err(ApiError::invalid(
                "role_map",
                format!("role {old} is mapped twice"),
            ));
        }
    }
    Ok(map)
}

#[derive(Serialize, ToSchema)]
pub struct OrgContentsView {
    pub suborgs: u64,
    pub users: u64,
    pub devices: u64,
}

#[derive(Serialize, ToSchema)]
pub struct MovedMemberView {
    pub user_id: i64,
    pub old_role_id: i64,
    /// The role in the parent; absent when the user kept an existing
    /// membership of the parent instead.
    pub new_role_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgDeletedView {
    pub id: i64,
    /// Where the contents went (the parent), if anything was inside.
    pub moved_to: Option<i64>,
    pub moved: OrgContentsView,
    /// Every moved membership with its old and new role.
    pub members: Vec<MovedMemberView>,
}

impl From<OrgDeleted> for OrgDeletedView {
    fn from(d: OrgDeleted) -> Self {
        Self {
            id: d.org.0,
            moved_to: d.moved_to.map(|o| o.0),
            moved: OrgContentsView {
                suborgs: d.moved.suborgs,
                users: d.moved.users,
                devices: d.moved.devices,
            },
            members: d
                .members
                .into_iter()
                .map(|m| MovedMemberView {
                    user_id: m.user.0,
                    old_role_id: m.old_role.0,
                    new_role_id: m.new_role.map(|r| r.0),
                })
                .collect(),
        }
    }
}

/// Deletes a sub-org (`organizations.create_suborgs` on it and on its
/// parent). A 409 carries `extra.contents` (sub-orgs, users, devices) while
/// it is not empty. With `move_contents_to_parent`, moved members get the
/// role `role_map` names (else the least-privileged role) and the answer
/// lists each with its old and new role.
#[utoipa::path(delete, path = "/api/v1/orgs/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), DeleteOrgParams),
    responses((status = 200, description = "The org was deleted", body = OrgDeletedView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn delete_org(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<DeleteOrgParams>,
) -> ApiResult<axum::Json<OrgDeletedView>> {
    let role_map = parse_role_map(params.role_map.as_deref())?;
    let deleted = state
        .app
        .delete_org(
            &user.caller,
            OrgId(id),
            params.move_contents_to_parent,
            &role_map,
        )
        .await?;
    Ok(axum::Json(deleted.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOrg {
    pub new_parent_id: i64,
    /// Must be `true`: the whole subtree (orgs, users, devices) moves.
    pub confirm: bool,
}

/// Re-parents an org with its whole subtree within the hierarchy
/// (`organizations.transfer` on the org and on the new parent). Access
/// follows at once: the next request decides on the new paths.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/transfer", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    request_body = TransferOrg,
    responses((status = 200, description = "The org at its new place", body = OrgView), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn transfer_org(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<TransferOrg>,
) -> ApiResult<axum::Json<OrgView>> {
    let org = state
        .app
        .move_org(
            &user.caller,
            OrgId(id),
            OrgId(body.new_parent_id),
            body.confirm,
        )
        .await?;
    Ok(axum::Json(org.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(org_tree))
        .routes(routes!(get_org, update_org, delete_org))
        .routes(routes!(transfer_org))
}
