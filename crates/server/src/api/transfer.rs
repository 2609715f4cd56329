//! Device transfer (SPEC.md section 5), with a dry run.

use super::devices::DeviceView;
use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use arbor_app::{DeviceTransfer, TransferTo};
use arbor_core::policy::ActionUsers;
use arbor_core::{DeviceId, OrgId, UserId};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the device goes: exactly one of `user_id`, `email` or `org_id`
/// (`owner_id` only with `org_id`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// An active member in your scope; the device moves to that member's org.
    pub user_id: Option<i64>,
    /// The same, named by email.
    pub email: Option<String>,
    /// An org in your scope; the device moves there.
    pub org_id: Option<i64>,
    /// With `org_id`: the member of that org who becomes the owner (default:
    /// the org's earliest Admin).
    pub owner_id: Option<i64>,
}

impl TransferRequest {
    fn target(self) -> Result<TransferTo, ApiError> {
        match (self.user_id, self.email, self.org_id, self.owner_id) {
            (Some(user), None, None, None) => Ok(TransferTo::User(UserId(user))),
            (None, Some(email), None, None) => Ok(TransferTo::Email(email)),
            (None, None, Some(org), owner) => Ok(TransferTo::Org {
                org: OrgId(org),
                owner: owner.map(UserId),
            }),
            (None, None, None, Some(_)) => Err(ApiError::invalid(
                "owner_id",
                "only allowed together with org_id",
            )),
            _ => Err(ApiError::invalid(
                "body",
                "name exactly one of user_id, email or org_id",
            )),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TransferParams {
    /// Validate and answer the access change without changing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// User ids per device action.
#[derive(Serialize, ToSchema)]
pub struct AccessUsers {
    pub view: Vec<i64>,
    pub control: Vec<i64>,
}

impl From<ActionUsers> for AccessUsers {
    fn from(users: ActionUsers) -> Self {
        let ids = |v: Vec<UserId>| v.into_iter().map(|u| u.0).collect();
        Self {
            view: ids(users.view),
            control: ids(users.control),
        }
    }
}

/// Where the device goes (or went).
#[derive(Serialize, ToSchema)]
pub struct TransferDestination {
    pub org_id: i64,
    pub owner_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TransferAnswer {
    pub dry_run: bool,
    pub to: TransferDestination,
    /// The device after the transfer; absent on a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceView>,
    /// Users who may view / control the device afterwards and could not before.
    pub gain: AccessUsers,
    /// Users who could view / control the device before and may not afterwards.
    pub lose: AccessUsers,
}

/// Transfers a device to a user (by `user_id` or `email`: an active member
/// in your scope; the device moves to that member's org) or into an org
/// (`org_id`, owner `owner_id` or the org's earliest Admin). Needs device
/// view and `transfers.devices`; the template must be enabled where the
/// device goes (409); the same owner answers 400 "Can't transfer to the same
/// owner"; a user or org outside your scope answers 404 like an unknown one.
///
/// `gain` and `lose` list who gains and who loses `view` and `control`:
/// who-can (as `GET /access/who-can` answers it for you) on the device as it
/// is and as it is after the move. With `?dry_run=true` the same validation
/// runs and the same lists are answered, and nothing is changed or audited
/// as a change (a refused dry run is audited as `device.transfer_preview`).
///
/// History — datastream values, events, the audit trail — stays with the
/// device. Both owners get a timeline entry: besides the transfer's audit
/// event (`device.transfer`, target `device:{id}`), one audit event
/// `device.transfer.owner` with target `user:{id}` is written for the old
/// owner (`"as": "previous_owner"`, in the old org) and one for the new owner
/// (`"as": "new_owner"`, in the new org), in the same transaction.
#[utoipa::path(post, path = "/api/v1/devices/{id}/transfer", tag = "devices",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path), TransferParams), request_body = TransferRequest,
    responses((status = 200, description = "The transfer, done or previewed", body = TransferAnswer),
        (status = 403, description = "The device is visible, but you may not transfer it", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
async fn transfer_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(params): Query<TransferParams>,
    Json(body): Json<TransferRequest>,
) -> ApiResult<axum::Json<TransferAnswer>> {
    let to = body.target()?;
    let DeviceTransfer { device, change } = state
        .app
        .transfer_device(&user.caller, DeviceId(id), &to, params.dry_run)
        .await?;
    Ok(axum::Json(TransferAnswer {
        dry_run: params.dry_run,
        to: TransferDestination {
            org_id: device.org.id().0,
            owner_id: device.owner.map(|u| u.0),
        },
        device: (!params.dry_run).then(|| device.into()),
        gain: change.gain.into(),
        lose: change.lose.into(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(transfer_device))
}
