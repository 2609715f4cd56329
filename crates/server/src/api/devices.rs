//! Devices: the combined list (everything the caller may view across its
//! scope, SPEC.md section 4 rule 9) with filters, a single device, creating,
//! editing and deleting devices, and their auth tokens.
//!
//! Bodies refuse unknown fields (400), so `hierarchy_id`, `auth_token`,
//! `id` or `created_at` — and on edits `org_id` and `owner_id`, which change
//! only by transfer — are never applied.
//!
//! The list and the single get are one predicate (arbor-core's
//! `Actor::list_devices` / `Actor::view_device`): a device a caller may not
//! view answers 404 and never appears in a list.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use arbor_app::model::{DeviceQuery, DeviceRecord, DeviceTemplateId, NewDevice, PageRequest};
use arbor_app::{DeviceDetail, DeviceEdit, DeviceSearch};
use arbor_core::{DeviceId, LocationId, OrgId, UserId};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub id: i64,
    pub name: String,
    /// The org the device lives in.
    pub org_id: i64,
    /// Ids from the hierarchy's root down to the device's org.
    pub org_path: Vec<i64>,
    /// The device's owner (a member of its org), or none while unclaimed.
    pub owner_id: Option<i64>,
    pub template_id: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The device's location, if set. It describes the device only: a
    /// location never grants or limits access.
    pub location_id: Option<i64>,
    /// Its tags (names from the catalog of its org), by name.
    pub tags: Vec<String>,
    /// When it last called the device API (unix milliseconds), if ever.
    pub last_seen_at: Option<i64>,
}

impl From<DeviceRecord> for DeviceView {
    fn from(d: DeviceRecord) -> Self {
        Self {
            id: d.id.0,
            name: d.name,
            org_id: d.org.id().0,
            org_path: d.org.ids().iter().map(|o| o.0).collect(),
            owner_id: d.owner.map(|u| u.0),
            template_id: d.template.0,
            created_at: d.created_at,
            location_id: d.location.map(|l| l.0),
            tags: d.tags,
            last_seen_at: d.last_seen_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DevicePage {
    pub items: Vec<DeviceView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceListParams {
    /// Only devices whose name contains this (case-insensitive).
    pub q: Option<String>,
    /// Only devices of this org (it must be in your list scope, else 404).
    pub org_id: Option<i64>,
    /// With `org_id`: the org's sub-orgs too (default false).
    pub include_suborgs: Option<bool>,
    /// Only devices of this device template.
    pub template_id: Option<i64>,
    /// Only devices owned by this user.
    pub owner_id: Option<i64>,
    /// Only devices having the tag of this name (ignoring case).
    pub tag: Option<String>,
    /// Only devices at this location.
    pub location_id: Option<i64>,
    /// Only devices online (`true`: seen through the device API within
    /// `device_heartbeat_secs`) or offline (`false`).
    pub online: Option<bool>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
}

/// The devices you may view, by id: by default one combined list across
/// your whole scope (with `X-Arbor-Org` naming a sub-org, that org's
/// subtree); `org_id` (with `include_suborgs`), `template_id`, `owner_id`,
/// `tag`, `location_id`, `online` and `q` narrow it (filters only ever
/// narrow what you may view). A device's history stays with it across
/// transfers.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceListParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "One page of devices", body = DevicePage),
        (status = 404, description = "`org_id` is not in your list scope", body = crate::error::Problem)))]
async fn list_devices(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<DeviceListParams>,
) -> ApiResult<axum::Json<DevicePage>> {
    let search = DeviceSearch {
        org: params.org_id.map(OrgId),
        include_suborgs: params.include_suborgs.unwrap_or(false),
        query: DeviceQuery {
            name: params.q,
            template: params.template_id.map(DeviceTemplateId),
            owner: params.owner_id.map(UserId),
            tag: params.tag,
            location: params.location_id.map(LocationId),
            online: None,
        },
        online: params.online,
    };
    let page = state
        .app
        .search_devices(
            &user.caller,
            &search,
            &PageRequest::after(params.cursor, params.limit),
        )
        .await?;
    Ok(axum::Json(DevicePage {
        items: page.items.into_iter().map(DeviceView::from).collect(),
        next: page.next,
    }))
}

/// A single device: the list's fields and its metafield values.
#[derive(Serialize, ToSchema)]
pub struct DeviceDetailView {
    #[serde(flatten)]
    pub device: DeviceView,
    /// Values keyed by the device template's metafield names.
    pub metafields: BTreeMap<String, String>,
}

impl From<DeviceDetail> for DeviceDetailView {
    fn from(d: DeviceDetail) -> Self {
        Self {
            device: d.device.into(),
            metafields: d.metafields.into_iter().collect(),
        }
    }
}

/// One device you may view (404 otherwise: existence does not leak).
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device", body = DeviceDetailView), (status = 404, body = crate::error::Problem)))]
async fn get_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<DeviceDetailView>> {
    let device = state.app.device_detail(&user.caller, DeviceId(id)).await?;
    Ok(axum::Json(device.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    pub name: String,
    /// A device template enabled for the org (409 otherwise).
    pub template_id: i64,
    /// The org the device lives in; default: the org you act in.
    pub org_id: Option<i64>,
    /// A member of that org. Without it the device is unclaimed if you
    /// hold `org_devices.add`, else yours (`own_devices.provision`).
    pub owner_id: Option<i64>,
    /// Values keyed by the template's metafield names (an unknown name is 400).
    #[serde(default)]
    pub metafields: BTreeMap<String, String>,
}

/// A device just created.
#[derive(Serialize, ToSchema)]
pub struct DeviceCreated {
    #[serde(flatten)]
    pub device: DeviceDetailView,
    /// The device's auth token: only if you hold `auth_tokens.edit` on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A device's auth token.
#[derive(Serialize, ToSchema)]
pub struct DeviceToken {
    pub token: String,
}

/// A reply that carries a secret: kept out of caches.
fn secret<T: Serialize>(status: StatusCode, body: T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Creates a device from a template enabled for the org: `org_devices.add`
/// on the org, or `own_devices.provision` for a device you own. The answer
/// carries the auth token only if you hold `auth_tokens.edit` on the device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = CreateDevice,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The device was created", body = DeviceCreated),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn create_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateDevice>,
) -> ApiResult<Response> {
    let device = NewDevice {
        name: body.name,
        template: DeviceTemplateId(body.template_id),
        owner: body.owner_id.map(UserId),
        metafields: body.metafields.into_iter().collect(),
    };
    let created = state
        .app
        .provision_device(&user.caller, body.org_id.map(OrgId), &device)
        .await?;
    Ok(secret(
        StatusCode::CREATED,
        DeviceCreated {
            device: created.device.into(),
            token: created.token,
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditDevice {
    pub name: Option<String>,
    /// Values to set, keyed by the template's metafield names; others keep
    /// theirs.
    #[serde(default)]
    pub metafields: BTreeMap<String, String>,
}

/// Renames a device and sets metafield values: `org_devices.edit`, or
/// `own_devices.edit` for a device you own. Org and owner change only by
/// transfer (`org_id` or `owner_id` here is 400).
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", request_body = EditDevice,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The edited device", body = DeviceDetailView),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
async fn edit_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<EditDevice>,
) -> ApiResult<axum::Json<DeviceDetailView>> {
    let edit = DeviceEdit {
        name: body.name,
        metafields: body.metafields.into_iter().collect(),
    };
    let device = state
        .app
        .edit_device(&user.caller, DeviceId(id), &edit)
        .await?;
    Ok(axum::Json(device.into()))
}

/// Deletes a device with its data (`org_devices.delete`); it answers 404
/// afterwards and leaves every list. Its audit trail stays.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "The device was deleted"),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn delete_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.app.delete_device(&user.caller, DeviceId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A device's auth token (`auth_tokens.edit` and device view). A token
/// issued before tokens could be shown again answers 409: regenerate it.
#[utoipa::path(get, path = "/api/v1/devices/{id}/auth-token", tag = "devices",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device's auth token", body = DeviceToken),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
async fn get_device_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let token = state.app.device_token(&user.caller, DeviceId(id)).await?;
    Ok(secret(StatusCode::OK, DeviceToken { token }))
}

/// Regenerates a device's auth token (`auth_tokens.edit` and device view):
/// the old token stops working at once, on every node.
#[utoipa::path(post, path = "/api/v1/devices/{id}/auth-token", tag = "devices",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The new auth token", body = DeviceToken),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn regenerate_device_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let token = state
        .app
        .regenerate_device_token(&user.caller, DeviceId(id))
        .await?;
    Ok(secret(StatusCode::OK, DeviceToken { token }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, edit_device, delete_device))
        .routes(routes!(get_device_token, regenerate_device_token))
}
