//! Device templates (product definitions): datastreams on virtual pins
//! V0–V255, events and metafields.
//!
//! Created, edited and deleted only by members of the hierarchy's root org
//! holding `templates.create` / `.edit` / `.delete`; viewed with
//! `templates.view` (a sub-org member sees only the templates enabled for
//! its org). A template must be enabled for an org before devices of it can
//! live there; enabling and disabling for an org is decided at the org's
//! parent. Another hierarchy's template answers 404.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use arbor_app::model::{DeviceTemplateId, DeviceTemplateRecord, DeviceTemplateSummary};
use arbor_app::templates::TemplateEdit;
use arbor_core::OrgId;
use arbor_core::template::{
    Datastream, Event, EventLevel, Metafield, MetafieldType, Scalar, TemplateContent, ValueType,
};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What a datastream holds.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatastreamType {
    Integer,
    Double,
    String,
    Enum,
}

/// How serious an event is.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

/// What a metafield holds.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetafieldKind {
    Text,
    Number,
    Boolean,
}

/// A default value: a number for integer and double datastreams, a text
/// (one of the values) for enum ones, a text for string ones.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DefaultValue {
    Number(f64),
    Text(String),
}

/// A datastream on a virtual pin.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatastreamBody {
    /// The virtual pin, 0–255 (V0–V255); unique in the template.
    pub pin: u16,
    /// 1–64 characters.
    pub name: String,
    pub value_type: DatastreamType,
    /// Enum datastreams: 1–64 distinct values; empty for other types.
    #[serde(default)]
    pub enum_values: Vec<String>,
    /// Integer and double datastreams; `min` ≤ `max`.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Up to 16 characters (`°C`, `kWh`).
    #[serde(default)]
    pub units: String,
    /// Within `min`/`max`; for an enum, one of its values.
    pub default_value: Option<DefaultValue>,
    /// Double datastreams only: decimals shown, 0–6.
    pub decimals: Option<u8>,
}

/// An event devices of the template may log.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// 1–50 characters of `a-z`, `0-9`, `_`; unique in the template.
    pub code: String,
    /// 1–64 characters.
    pub name: String,
    pub level: Level,
}

/// A metafield every device of the template has.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetafieldBody {
    /// 1–64 characters; unique in the template, ignoring case.
    pub name: String,
    pub value_type: MetafieldKind,
    /// Empty for none; a number for `number`, `true`/`false` for `boolean`.
    #[serde(default)]
    pub default_value: String,
}

/// A new template. At most 256 datastreams, 64 events and 64 metafields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplateBody {
    /// 1–64 characters, unique in the hierarchy.
    pub name: String,
    /// Up to 2000 characters.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub datastreams: Vec<DatastreamBody>,
    #[serde(default)]
    pub events: Vec<EventBody>,
    #[serde(default)]
    pub metafields: Vec<MetafieldBody>,
    /// Days the values and events of the template's devices are kept,
    /// 1–3650; left out or `null`: the server's default
    /// (`device_api.history_retention_days`, 30 unless configured).
    #[serde(default)]
    pub history_retention_days: Option<i64>,
}

/// `Some(None)` for an explicit `null`, `None` (by `default`) for a missing key.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// An edit: each field given replaces the stored one (a list replaces the
/// whole list); fields left out stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateEditBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub datastreams: Option<Vec<DatastreamBody>>,
    pub events: Option<Vec<EventBody>>,
    pub metafields: Option<Vec<MetafieldBody>>,
    /// 1–3650 days; `null` goes back to the server's default; left out:
    /// unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub history_retention_days: Option<Option<i64>>,
}

/// A template with its parts. (Named apart in the OpenAPI document: the
/// roles API has a `TemplateView` of its own, which hid this one.)
#[derive(Serialize, ToSchema)]
#[schema(as = DeviceTemplateView)]
pub struct TemplateView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub datastreams: Vec<DatastreamBody>,
    pub events: Vec<EventBody>,
    pub metafields: Vec<MetafieldBody>,
    /// Days the values and events of the template's devices are kept;
    /// `null`: the server's default (`device_api.history_retention_days`).
    pub history_retention_days: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last edit, if any.
    pub updated_at: Option<i64>,
    /// The orgs of your scope the template is enabled for.
    pub enabled_org_ids: Vec<i64>,
}

/// A template in a list.
#[derive(Serialize, ToSchema)]
pub struct TemplateSummaryView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub datastream_count: i64,
    pub event_count: i64,
    pub metafield_count: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateSummaryView>,
}

impl From<DatastreamBody> for Datastream {
    fn from(d: DatastreamBody) -> Self {
        Self {
            pin: d.pin,
            name: d.name,
            value_type: match d.value_type {
                DatastreamType::Integer => ValueType::Integer,
                DatastreamType::Double => ValueType::Double,
                DatastreamType::String => ValueType::String,
                DatastreamType::Enum => ValueType::Enum,
            },
            enum_values: d.enum_values,
            min: d.min,
            max: d.max,
            units: d.units,
            default_value: d.default_value.map(|v| match v {
                DefaultValue::Number(n) => Scalar::Number(n),
                DefaultValue::Text(t) => Scalar::Text(t),
            }),
            decimals: d.decimals,
        }
    }
}

impl From<Datastream> for DatastreamBody {
    fn from(d: Datastream) -> Self {
        Self {
            pin: d.pin,
            name: d.name,
            value_type: match d.value_type {
                ValueType::Integer => DatastreamType::Integer,
                ValueType::Double => DatastreamType::Double,
                ValueType::String => DatastreamType::String,
                ValueType::Enum => DatastreamType::Enum,
            },
            enum_values: d.enum_values,
            min: d.min,
            max: d.max,
            units: d.units,
            default_value: d.default_value.map(|v| match v {
                Scalar::Number(n) => DefaultValue::Number(n),
                Scalar::Text(t) => DefaultValue::Text(t),
            }),
            decimals: d.decimals,
        }
    }
}

impl From<EventBody> for Event {
    fn from(e: EventBody) -> Self {
        Self {
            code: e.code,
            name: e.name,
            level: match e.level {
                Level::Info => EventLevel::Info,
                Level::Warning => EventLevel::Warning,
                Level::Critical => EventLevel::Critical,
            },
        }
    }
}

impl From<Event> for EventBody {
    fn from(e: Event) -> Self {
        Self {
            code: e.code,
            name: e.name,
            level: match e.level {
                EventLevel::Info => Level::Info,
                EventLevel::Warning => Level::Warning,
                EventLevel::Critical => Level::Critical,
            },
        }
    }
}

impl From<MetafieldBody> for Metafield {
    fn from(m: MetafieldBody) -> Self {
        Self {
            name: m.name,
            value_type: match m.value_type {
                MetafieldKind::Text => MetafieldType::Text,
                MetafieldKind::Number => MetafieldType::Number,
                MetafieldKind::Boolean => MetafieldType::Boolean,
            },
            default_value: m.default_value,
        }
    }
}

impl From<Metafield> for MetafieldBody {
    fn from(m: Metafield) -> Self {
        Self {
            name: m.name,
            value_type: match m.value_type {
                MetafieldType::Text => MetafieldKind::Text,
                MetafieldType::Number => MetafieldKind::Number,
                MetafieldType::Boolean => MetafieldKind::Boolean,
            },
            default_value: m.default_value,
        }
    }
}

fn parts<B, T: From<B>>(items: Vec<B>) -> Vec<T> {
    items.into_iter().map(T::from).collect()
}

impl From<DeviceTemplateRecord> for TemplateView {
    fn from(t: DeviceTemplateRecord) -> Self {
        Self {
            id: t.id.0,
            name: t.content.name,
            description: t.content.description,
            datastreams: parts(t.content.datastreams),
            events: parts(t.content.events),
            metafields: parts(t.content.metafields),
            history_retention_days: t.content.history_retention_days,
            created_at: t.created_at,
            updated_at: t.updated_at,
            enabled_org_ids: t.enabled_for.iter().map(|o| o.id().0).collect(),
        }
    }
}

impl From<DeviceTemplateSummary> for TemplateSummaryView {
    fn from(t: DeviceTemplateSummary) -> Self {
        Self {
            id: t.id.0,
            name: t.name,
            description: t.description,
            datastream_count: t.datastreams,
            event_count: t.events,
            metafield_count: t.metafields,
            created_at: t.created_at,
        }
    }
}

/// The templates you may see (`templates.view`): all of the hierarchy's in
/// the root org, those enabled for your org in a sub-org.
#[utoipa::path(get, path = "/api/v1/device-templates", tag = "device-templates",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The templates you may see", body = TemplateList)))]
async fn list_templates(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<axum::Json<TemplateList>> {
    let items = state.app.list_templates(&user.caller).await?;
    Ok(axum::Json(TemplateList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a template in your hierarchy (`templates.create`, root org
/// only), enabled for the root org. `hierarchy_id` or any other unknown
/// field is refused.
#[utoipa::path(post, path = "/api/v1/device-templates", tag = "device-templates",
    request_body = NewTemplateBody, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "The template was created", body = TemplateView),
        (status = 403, description = "Not a root-org member with templates.create", body = crate::error::Problem),
        (status = 409, description = "A template with this name exists", body = crate::error::Problem)))]
async fn create_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<NewTemplateBody>,
) -> ApiResult<(StatusCode, axum::Json<TemplateView>)> {
    let content = TemplateContent {
        name: body.name,
        description: body.description,
        datastreams: parts(body.datastreams),
        events: parts(body.events),
        metafields: parts(body.metafields),
        history_retention_days: body.history_retention_days,
    };
    let template = state.app.create_template(&user.caller, content).await?;
    Ok((StatusCode::CREATED, axum::Json(template.into())))
}

/// One template with its parts (404 unless you may see it).
#[utoipa::path(get, path = "/api/v1/device-templates/{id}", tag = "device-templates",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "The template", body = TemplateView),
        (status = 404, body = crate::error::Problem)))]
async fn get_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<TemplateView>> {
    let template = state
        .app
        .device_template(&user.caller, DeviceTemplateId(id))
        .await?;
    Ok(axum::Json(template.into()))
}

/// Edits a template (`templates.edit`, root org only).
#[utoipa::path(patch, path = "/api/v1/device-templates/{id}", tag = "device-templates",
    request_body = TemplateEditBody, security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The template as edited", body = TemplateView),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn edit_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<TemplateEditBody>,
) -> ApiResult<axum::Json<TemplateView>> {
    let edit = TemplateEdit {
        name: body.name,
        description: body.description,
        datastreams: body.datastreams.map(parts),
        events: body.events.map(parts),
        metafields: body.metafields.map(parts),
        history_retention_days: body.history_retention_days,
    };
    let template = state
        .app
        .edit_template(&user.caller, DeviceTemplateId(id), &edit)
        .await?;
    Ok(axum::Json(template.into()))
}

/// Deletes a template (`templates.delete`, root org only); refused (409,
/// with the count) while devices use it.
#[utoipa::path(delete, path = "/api/v1/device-templates/{id}", tag = "device-templates",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "The template was deleted"),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "Devices use the template (`devices`: how many)", body = crate::error::Problem)))]
async fn delete_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .app
        .delete_template(&user.caller, DeviceTemplateId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a template for an org, so devices of it may live there.
/// Decided at the org's parent (`templates.edit` there): a sub-org's Admin
/// cannot enable templates for its own org.
#[utoipa::path(put, path = "/api/v1/device-templates/{id}/orgs/{org_id}", tag = "device-templates",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), ("org_id" = i64, Path)),
    responses((status = 204, description = "The template is enabled for the org"),
        (status = 404, body = crate::error::Problem)))]
async fn enable_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, org_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    state
        .app
        .enable_template(&user.caller, DeviceTemplateId(id), OrgId(org_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a template for an org (decided like enabling); refused (409,
/// with the count) while devices of it live in that org.
#[utoipa::path(delete, path = "/api/v1/device-templates/{id}/orgs/{org_id}", tag = "device-templates",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path), ("org_id" = i64, Path)),
    responses((status = 204, description = "The template is not enabled for the org"),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "Devices of the template live in the org (`devices`: how many)", body = crate::error::Problem)))]
async fn disable_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, org_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    state
        .app
        .disable_template(&user.caller, DeviceTemplateId(id), OrgId(org_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, edit_template, delete_template))
        .routes(routes!(enable_template, disable_template))
}
