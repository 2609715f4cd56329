//! Devices: the combined list (everything the caller may view across its
//! scope, SPEC.md section 4 rule 9) with filters, and a single device.
//!
//! The list and the single get are one predicate (arbor-core's
//! `Actor::list_devices` / `Actor::view_device`): a device a caller may not
//! view answers 404 and never appears in a list.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::ApiResult;
use crate::extract::{Path, Query};
use arbor_app::DeviceSearch;
use arbor_app::model::{DeviceQuery, DeviceRecord, DeviceTemplateId, PageRequest};
use arbor_core::{DeviceId, LocationId, OrgId, UserId};
use axum::extract::State;
use serde::{Deserialize, Serialize};
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

/// One device you may view (404 otherwise: existence does not leak).
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device", body = DeviceView), (status = 404, body = crate::error::Problem)))]
async fn get_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<DeviceView>> {
    let device = state.app.get_device(&user.caller, DeviceId(id)).await?;
    Ok(axum::Json(device.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(get_device))
}
