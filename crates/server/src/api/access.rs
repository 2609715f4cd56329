//! Access insight: `check` (the policy-decision endpoint other services
//! call), `explain`, `who-can` and effective permissions.
//!
//! Asking needs `roles.view` on the target's org, and the user asked about
//! must be visible to the caller (a member of an org in its scope, or the
//! caller itself); otherwise the target looks absent. Answers are
//! arbor-core's decision on fresh facts — the very decision the API takes.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use arbor_app::access::{Answer, AppErrorKind, Question, Target, WhoCan};
use arbor_core::{Decision, DeviceAction, DeviceId, OrgId, Permission, PermissionGroup, UserId};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most questions in one `check` request.
pub const MAX_QUESTIONS: usize = 100;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    pub user_id: i64,
    /// The org the user would act in (default: their home org).
    pub context_org_id: Option<i64>,
    /// An org-level permission id (with `org_id`), e.g. `organizations.settings`.
    pub permission: Option<String>,
    pub org_id: Option<i64>,
    /// A device action (with `device_id`): view, control, edit, delete,
    /// delete_data, download_reports, view_timeline, service_tab, transfer,
    /// edit_auth_token.
    pub action: Option<String>,
    pub device_id: Option<i64>,
    /// A member acted on (with a `users.*` permission), e.g. "may U edit V?".
    pub target_user_id: Option<i64>,
}

fn parse_permission(id: &str, field: &str) -> Result<Permission, ApiError> {
    id.parse::<Permission>()
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn parse_action(name: &str, field: &str) -> Result<DeviceAction, ApiError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|_| {
        let accepted: Vec<String> = DeviceAction::ALL
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        ApiError::invalid(
            field,
            format!(
                "unknown device action {name:?}; expected one of: {}",
                accepted.join(", ")
            ),
        )
    })
}

fn target_of(
    permission: Option<&str>,
    org: Option<i64>,
    action: Option<&str>,
    device: Option<i64>,
    member: Option<i64>,
) -> Result<Target, ApiError> {
    match (permission, org, action, device, member) {
        (Some(p), Some(org), None, None, None) => Ok(Target::Org {
            org: OrgId(org),
            permission: parse_permission(p, "permission")?,
        }),
        (None, None, Some(a), Some(device), None) => Ok(Target::Device {
            device: DeviceId(device),
            action: parse_action(a, "action")?,
        }),
        (Some(p), None, None, None, Some(user)) => {
            let permission = parse_permission(p, "permission")?;
            if permission.group() != PermissionGroup::Users {
                return Err(ApiError::invalid(
                    "permission",
                    "a question about a member names a users.* permission",
                ));
            }
            Ok(Target::Member {
                user: UserId(user),
                permission,
            })
        }
        _ => Err(ApiError::invalid(
            "question",
            "give permission and org_id, action and device_id, or permission and target_user_id",
        )),
    }
}

impl QuestionBody {
    fn question(&self) -> Result<Question, ApiError> {
        Ok(Question {
            user: UserId(self.user_id),
            context: self.context_org_id.map(OrgId),
            target: target_of(
                self.permission.as_deref(),
                self.org_id,
                self.action.as_deref(),
                self.device_id,
                self.target_user_id,
            )?,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// 1–100 questions.
    pub questions: Vec<QuestionBody>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckAnswer {
    pub allowed: bool,
    /// `allowed`, `forbidden` (the user would get 403) or `hidden` (404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The deciding rule, e.g. `device_owned`, `outside_scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Set when the caller may not ask this question: `not_found` or `forbidden`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckResponse {
    /// One answer per question, in order.
    pub answers: Vec<CheckAnswer>,
}

fn snake<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Answers a batch of "may user U do P on target T?" questions with
/// allow/deny. Questions the caller may not ask answer `allowed: false` with
/// an `error`.
#[utoipa::path(post, path = "/api/v1/access/check", tag = "access", request_body = CheckRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "One answer per question, in order", body = CheckResponse), (status = 400, body = crate::error::Problem)))]
async fn check(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CheckRequest>,
) -> ApiResult<axum::Json<CheckResponse>> {
    if body.questions.is_empty() || body.questions.len() > MAX_QUESTIONS {
        return Err(ApiError::invalid(
            "questions",
            format!("1 to {MAX_QUESTIONS} questions"),
        ));
    }
    let questions = body
        .questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            q.question().map_err(|mut e| {
                e.field = e.field.map(|f| format!("questions[{i}].{f}"));
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answers = state.app.check_access(&user.caller, &questions).await?;
    Ok(axum::Json(CheckResponse {
        answers: answers
            .into_iter()
            .map(|a| match a {
                Answer::Decided(d) => CheckAnswer {
                    allowed: d.is_allowed(),
                    outcome: snake(&d.outcome),
                    rule: snake(&d.rule),
                    error: None,
                },
                Answer::NotAllowedToAsk(kind) => CheckAnswer {
                    allowed: false,
                    outcome: None,
                    rule: None,
                    error: Some(
                        match kind {
                            AppErrorKind::NotFound => "not_found",
                            AppErrorKind::Forbidden => "forbidden",
                        }
                        .into(),
                    ),
                },
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Explanation {
    pub allowed: bool,
    /// A sentence naming the membership, role, org, permission and rule.
    pub explanation: String,
    /// The decision as arbor-core took it: outcome, rule, user, via
    /// (membership org and role), context, target_org, permission, missing.
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
    /// The section 4 checks in order, up to the deciding one.
    #[schema(value_type = Vec<Object>)]
    pub trace: serde_json::Value,
}

fn explanation(decision: &Decision) -> Explanation {
    Explanation {
        allowed: decision.is_allowed(),
        explanation: decision.explain(),
        decision: serde_json::to_value(decision).unwrap_or_default(),
        trace: serde_json::to_value(decision.trace()).unwrap_or_default(),
    }
}

/// Explains whether user U may do P on target T: the decision and the trace
/// of the rules that led to it.
#[utoipa::path(post, path = "/api/v1/access/explain", tag = "access", request_body = QuestionBody,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The decision and the trace of the rules that led to it", body = Explanation), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn explain(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<QuestionBody>,
) -> ApiResult<axum::Json<Explanation>> {
    let question = body.question()?;
    let decision = state.app.explain_access(&user.caller, &question).await?;
    Ok(axum::Json(explanation(&decision)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WhoCanParams {
    /// An org-level permission id (with `org_id`).
    pub permission: Option<String>,
    pub org_id: Option<i64>,
    /// A device action (with `device_id`).
    pub action: Option<String>,
    pub device_id: Option<i64>,
    /// A member (with a `users.*` permission): who may manage that user.
    pub target_user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    pub user_id: i64,
    /// Only for callers holding `users.view`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Only for callers holding `users.view`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The membership that grants it: its org and role.
    pub via_org_id: i64,
    pub via_role_id: i64,
    /// `org_permission`, `device_in_scope` or `device_owned`.
    pub rule: String,
    pub permission: Option<String>,
}

impl From<WhoCan> for GrantView {
    fn from(w: WhoCan) -> Self {
        let g = w.grant;
        Self {
            user_id: g.user.0,
            email: w.email,
            name: w.name,
            via_org_id: g.via.org.0,
            via_role_id: g.via.role.0,
            rule: snake(&g.rule).unwrap_or_default(),
            permission: g.permission.map(|p| p.id().to_owned()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WhoCanResponse {
    pub grants: Vec<GrantView>,
}

/// Which users may do P on org O, action A on device D, or `users.*`
/// permission P on member U, each with the membership that grants it. Only
/// memberships in the caller's scope are listed, and names and emails only
/// to callers holding `users.view` (ids otherwise).
#[utoipa::path(get, path = "/api/v1/access/who-can", tag = "access", params(WhoCanParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The users who may, each with the membership that grants it", body = WhoCanResponse), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn who_can(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<WhoCanParams>,
) -> ApiResult<axum::Json<WhoCanResponse>> {
    let target = target_of(
        params.permission.as_deref(),
        params.org_id,
        params.action.as_deref(),
        params.device_id,
        params.target_user_id,
    )?;
    let grants = state.app.who_can(&user.caller, target).await?;
    Ok(axum::Json(WhoCanResponse {
        grants: grants.into_iter().map(GrantView::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EffectiveParams {
    pub user_id: i64,
    pub org_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EffectiveGroup {
    pub id: String,
    pub label: String,
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EffectiveResponse {
    pub user_id: i64,
    pub org_id: i64,
    /// The membership used (rule 8).
    pub via_org_id: Option<i64>,
    pub via_role_id: Option<i64>,
    pub permissions: Vec<String>,
    /// The same permissions grouped as the catalog (non-empty groups only).
    pub groups: Vec<EffectiveGroup>,
    /// Whether the user's scope reaches the org's descendants.
    pub includes_suborgs: bool,
    /// Why the user cannot act in this org at all (rules 1, 2, 8), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<Explanation>,
}

/// The permissions a user acts with in an org.
#[utoipa::path(get, path = "/api/v1/access/effective-permissions", tag = "access",
    params(EffectiveParams), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The user's permissions in the org", body = EffectiveResponse), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
async fn effective(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<EffectiveParams>,
) -> ApiResult<axum::Json<EffectiveResponse>> {
    let e = state
        .app
        .effective_permissions(&user.caller, UserId(params.user_id), OrgId(params.org_id))
        .await?;
    let groups = PermissionGroup::ALL
        .into_iter()
        .filter_map(|g| {
            let permissions: Vec<String> = g
                .permissions()
                .filter(|info| e.permissions.contains(info.permission))
                .map(|info| info.id.to_owned())
                .collect();
            (!permissions.is_empty()).then(|| EffectiveGroup {
                id: g.id().to_owned(),
                label: g.label().to_owned(),
                permissions,
            })
        })
        .collect();
    Ok(axum::Json(EffectiveResponse {
        user_id: e.user.0,
        org_id: e.org.0,
        via_org_id: e.via.map(|v| v.org.0),
        via_role_id: e.via.map(|v| v.role.0),
        permissions: e.permissions.ids().into_iter().map(str::to_owned).collect(),
        groups,
        includes_suborgs: e.descendants,
        denied: e.denied.as_ref().map(explanation),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(explain))
        .routes(routes!(who_can))
        .routes(routes!(effective))
}
