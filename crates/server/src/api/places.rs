//! Locations and tags: `/api/v1/locations`, `/api/v1/tags`, and a device's
//! (or a user's) location and tags.
//!
//! A location never grants or limits access: who may view or control a
//! device is decided without it (SPEC.md section 4), before and after a
//! location is set. Tags are labels from an org's catalog.

use super::devices::DeviceView;
use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use arbor_app::model::{LocationRecord, PageRequest, TagRecord};
use arbor_app::{LocationEdit, NewLocation};
use arbor_core::{DeviceId, LocationId, OrgId, TagId, UserId};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(tags(
    (name = "locations", description = "Named places (name 1–48 characters, an address, \
latitude and longitude), owned by an organization (`org_locations.*`) or by a user \
(`own_locations.*`, for that user alone), with assigned users. A device can be placed at \
a location. **A location never grants or limits access**: who may see or control a \
device is decided by permissions alone (SPEC.md section 4), whatever its location."),
    (name = "tags", description = "Labels from an organization's tag catalog (`tags.view`, \
`tags.manage`): names 1–24 characters, unique per organization ignoring case, at most 20 \
per organization and at most 5 per device or user. Tagging a device is a device edit \
(`org_devices.edit`, or `own_devices.edit` for its owner); tagging a user needs \
`users.edit` on that user. Tags never grant or limit access."),
))]
struct PlacesDoc;

#[derive(Serialize, ToSchema)]
pub struct LocationView {
    pub id: i64,
    /// The owning org, for an organization's location.
    pub org_id: Option<i64>,
    /// The owning user, for a user's own location.
    pub owner_user_id: Option<i64>,
    pub name: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The assigned users' ids.
    pub user_ids: Vec<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<LocationRecord> for LocationView {
    fn from(l: LocationRecord) -> Self {
        Self {
            id: l.id.0,
            org_id: l.org().map(|o| o.0),
            owner_user_id: l.owner_user().map(|u| u.0),
            name: l.name,
            address: l.address,
            lat: l.lat,
            lon: l.lon,
            user_ids: l.users.iter().map(|u| u.0).collect(),
            created_at: l.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LocationPage {
    pub items: Vec<LocationView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLocation {
    /// The owning org (`org_locations.create` there); without it the
    /// location is your own (`own_locations.create`).
    pub org_id: Option<i64>,
    /// 1–48 characters.
    pub name: String,
    /// One line, at most 256 characters.
    #[serde(default)]
    pub address: String,
    /// In [-90, 90]; with `lon`.
    pub lat: Option<f64>,
    /// In [-180, 180]; with `lat`.
    pub lon: Option<f64>,
    /// Users to assign (`assign_users`): members within your scope.
    #[serde(default)]
    pub user_ids: Vec<i64>,
}

/// `Some(None)` for an explicit `null`, `None` (by `default`) for a missing key.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditLocation {
    pub name: Option<String>,
    pub address: Option<String>,
    /// `null` clears the coordinates (with `lon`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub lat: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub lon: Option<Option<f64>>,
    /// Replaces the assigned users (`assign_users`).
    pub user_ids: Option<Vec<i64>>,
}

#[derive(Serialize, ToSchema)]
pub struct LocationDeleted {
    /// How many devices were at the location (they now have none).
    pub devices_cleared: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLocation {
    /// The location (visible to you, in the device's hierarchy), or `null`
    /// for none.
    pub location_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TagView {
    pub id: i64,
    /// The org whose catalog holds the tag.
    pub org_id: i64,
    pub name: String,
}

impl From<TagRecord> for TagView {
    fn from(t: TagRecord) -> Self {
        Self {
            id: t.id.0,
            org_id: t.org.0,
            name: t.name,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TagParams {
    /// The org whose catalog to list (default: the org you act in).
    pub org_id: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    /// The org whose catalog gets the tag (default: the org you act in).
    pub org_id: Option<i64>,
    /// 1–24 characters, unique in the catalog ignoring case.
    pub name: String,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// At most 5 names from the catalog of the device's (or member's) org.
    pub tags: Vec<String>,
}

/// The locations you may view, by id: your organizations' (with
/// `org_locations.view`, across your scope) and your own (with
/// `own_locations.view`). A location never grants or limits access.
#[utoipa::path(get, path = "/api/v1/locations", tag = "locations", params(PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "One page of locations", body = LocationPage)))]
async fn list_locations(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<LocationPage>> {
    let page = state
        .app
        .list_locations(
            &user.caller,
            &PageRequest::after(params.cursor, params.limit),
        )
        .await?;
    Ok(axum::Json(LocationPage {
        items: page.items.into_iter().map(LocationView::from).collect(),
        next: page.next,
    }))
}

/// Creates a location: an organization's (`org_id`, `org_locations.create`
/// there) or your own (`own_locations.create`); assigning users needs
/// `assign_users`. A location never grants or limits access.
#[utoipa::path(post, path = "/api/v1/locations", tag = "locations", request_body = CreateLocation,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The new location", body = LocationView),
        (status = 404, body = crate::error::Problem)))]
async fn create_location(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateLocation>,
) -> ApiResult<(StatusCode, axum::Json<LocationView>)> {
    let new = NewLocation {
        org: body.org_id.map(OrgId),
        name: body.name,
        address: body.address,
        lat: body.lat,
        lon: body.lon,
        users: body.user_ids.into_iter().map(UserId).collect(),
    };
    let location = state.app.create_location(&user.caller, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(location.into())))
}

/// One location you may view (404 otherwise).
#[utoipa::path(get, path = "/api/v1/locations/{id}", tag = "locations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The location", body = LocationView),
        (status = 404, body = crate::error::Problem)))]
async fn get_location(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<LocationView>> {
    let location = state.app.get_location(&user.caller, LocationId(id)).await?;
    Ok(axum::Json(location.into()))
}

/// Edits a location (`edit`) and/or replaces its assigned users
/// (`assign_users`); absent fields stay as they are. Changes no one's access.
#[utoipa::path(patch, path = "/api/v1/locations/{id}", tag = "locations", request_body = EditLocation,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The location as edited", body = LocationView),
        (status = 404, body = crate::error::Problem)))]
async fn edit_location(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<EditLocation>,
) -> ApiResult<axum::Json<LocationView>> {
    let edit = LocationEdit {
        name: body.name,
        address: body.address,
        lat: body.lat,
        lon: body.lon,
        users: body
            .user_ids
            .map(|users| users.into_iter().map(UserId).collect()),
    };
    let location = state
        .app
        .edit_location(&user.caller, LocationId(id), &edit)
        .await?;
    Ok(axum::Json(location.into()))
}

/// Deletes a location (`delete`); the devices there lose their location in
/// the same transaction.
#[utoipa::path(delete, path = "/api/v1/locations/{id}", tag = "locations",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The location is gone", body = LocationDeleted),
        (status = 404, body = crate::error::Problem)))]
async fn delete_location(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<LocationDeleted>> {
    let devices_cleared = state
        .app
        .delete_location(&user.caller, LocationId(id))
        .await?;
    Ok(axum::Json(LocationDeleted { devices_cleared }))
}

/// Places a device at a location, or (`null`) at none: a device edit
/// (`org_devices.edit`, or `own_devices.edit` for its owner). The location
/// must be visible to you and in the device's hierarchy. A location never
/// grants or limits access: the device's viewers stay the same.
#[utoipa::path(put, path = "/api/v1/devices/{id}/location", tag = "locations", request_body = DeviceLocation,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device", body = DeviceView),
        (status = 404, body = crate::error::Problem)))]
async fn set_device_location(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<DeviceLocation>,
) -> ApiResult<axum::Json<DeviceView>> {
    let device = state
        .app
        .set_device_location(&user.caller, DeviceId(id), body.location_id.map(LocationId))
        .await?;
    Ok(axum::Json(device.into()))
}

/// An organization's tag catalog (`tags.view`), by name.
#[utoipa::path(get, path = "/api/v1/tags", tag = "tags", params(TagParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The catalog", body = [TagView]),
        (status = 404, body = crate::error::Problem)))]
async fn list_tags(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<TagParams>,
) -> ApiResult<axum::Json<Vec<TagView>>> {
    let tags = state
        .app
        .list_tags(&user.caller, params.org_id.map(OrgId))
        .await?;
    Ok(axum::Json(tags.into_iter().map(TagView::from).collect()))
}

/// Adds a tag to an organization's catalog (`tags.manage`); at most 20 per
/// organization (409 beyond), names unique ignoring case (409).
#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = CreateTag,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The new tag", body = TagView),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn create_tag(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateTag>,
) -> ApiResult<(StatusCode, axum::Json<TagView>)> {
    let tag = state
        .app
        .create_tag(&user.caller, body.org_id.map(OrgId), &body.name)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(tag.into())))
}

/// Deletes a tag (`tags.manage` on its org); it comes off every device and user.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "tags",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "The tag is gone"),
        (status = 404, body = crate::error::Problem)))]
async fn delete_tag(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.app.delete_tag(&user.caller, TagId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a device's tags: a device edit (`org_devices.edit`, or
/// `own_devices.edit` for its owner); `tags.manage` is not needed, the names
/// must already be in the catalog of the device's org (400 otherwise), at
/// most 5 (400 beyond).
#[utoipa::path(put, path = "/api/v1/devices/{id}/tags", tag = "tags", request_body = Tags,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The device", body = DeviceView),
        (status = 404, body = crate::error::Problem)))]
async fn set_device_tags(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Tags>,
) -> ApiResult<axum::Json<DeviceView>> {
    let device = state
        .app
        .set_device_tags(&user.caller, DeviceId(id), &body.tags)
        .await?;
    Ok(axum::Json(device.into()))
}

/// Replaces a member's tags (`users.edit` on the member, with rule 6), from
/// the catalog of the org of the membership acted on; at most 5.
#[utoipa::path(put, path = "/api/v1/users/{id}/tags", tag = "tags", request_body = Tags,
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The member's tags", body = Tags),
        (status = 404, body = crate::error::Problem)))]
async fn set_user_tags(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Tags>,
) -> ApiResult<axum::Json<Tags>> {
    let tags = state
        .app
        .set_user_tags(&user.caller, UserId(id), &body.tags)
        .await?;
    Ok(axum::Json(Tags { tags }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(PlacesDoc::openapi())
        .routes(routes!(list_locations, create_location))
        .routes(routes!(get_location, edit_location, delete_location))
        .routes(routes!(set_device_location))
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(delete_tag))
        .routes(routes!(set_device_tags))
        .routes(routes!(set_user_tags))
}
