//! Live updates over Server-Sent Events (issue 12 item 3):
//! `GET /api/v1/devices/stream` for every device the caller may view, and
//! `GET /api/v1/devices/{id}/stream` for one.
//!
//! Each committed change is shown only if the caller may view its device at
//! that moment (`App::may_view_devices`, at the current authorization
//! version): a permission change or transfer stops a device's flow at once.
//! A one-device stream whose device is no longer visible ends with an `end`
//! event; so does any stream whose session ended.

use crate::AppState;
use crate::auth::session::CurrentUser;
use crate::device_api::json_value;
use crate::error::ApiResult;
use crate::extract::Path;
use arbor_app::live::{LiveChange, LiveReceive, LiveUpdate, LiveUpdates};
use arbor_app::{App, Caller};
use arbor_core::DeviceId;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Changes decided together (one authorization check per batch).
const BATCH: usize = 512;

/// A subscription on its way to the client.
struct Live {
    app: App,
    caller: Caller,
    /// The session's token hash and the policy it is checked against again
    /// with every batch: a stream ends with its session.
    session: (String, arbor_app::accounts::AccountPolicy),
    only: Option<DeviceId>,
    updates: LiveUpdates,
    out: VecDeque<Event>,
    done: bool,
}

fn event(update: &LiveUpdate) -> Event {
    let device = update.device.0;
    let (name, data) = match &update.change {
        LiveChange::Value { pin, value, at } => (
            "value",
            json!({ "device_id": device, "pin": pin, "value": json_value(value), "at": at }),
        ),
        LiveChange::Event {
            code,
            level,
            description,
            at,
        } => (
            "event",
            json!({ "device_id": device, "code": code, "level": level,
                "description": description, "at": at }),
        ),
        LiveChange::Online { offline_at, at } => (
            "online",
            json!({ "device_id": device, "offline_at": offline_at, "at": at }),
        ),
    };
    Event::default().event(name).data(data.to_string())
}

fn end(reason: &str) -> Event {
    Event::default()
        .event("end")
        .data(json!({ "reason": reason }).to_string())
}

impl Live {
    /// Waits for the next changes, keeps those the caller may view now, and
    /// queues their events.
    async fn fill(&mut self) {
        let mut batch: Vec<Arc<LiveUpdate>> = Vec::new();
        let mut receive = Some(self.updates.next().await);
        while let Some(received) = receive.take() {
            match received {
                LiveReceive::Update(update) => {
                    if self.only.is_none_or(|d| d == update.device) {
                        batch.push(update);
                    }
                }
                LiveReceive::Missed(n) => self.out.push_back(
                    Event::default()
                        .event("missed")
                        .data(json!({ "changes": n }).to_string()),
                ),
                LiveReceive::Closed => {
                    self.out.push_back(end("shutdown"));
                    self.done = true;
                }
            }
            if batch.len() < BATCH && !self.done {
                receive = self.updates.ready();
            }
        }
        if batch.is_empty() {
            return;
        }
        let mut devices: Vec<DeviceId> = batch.iter().map(|u| u.device).collect();
        devices.sort_unstable();
        devices.dedup();
        let (token_hash, policy) = &self.session;
        match self.app.authenticate_hash(token_hash.clone(), policy).await {
            Ok(Some(live)) if live.user == self.caller.user => {}
            _ => {
                self.out.push_back(end("session"));
                self.done = true;
                return;
            }
        }
        match self.app.may_view_devices(&self.caller, &devices).await {
            Ok(allowed) => {
                for update in &batch {
                    let i = devices.binary_search(&update.device).unwrap_or(usize::MAX);
                    if allowed.get(i).copied().unwrap_or(false) {
                        self.out.push_back(event(update));
                    } else if self.only.is_some() {
                        self.out.push_back(end("access"));
                        self.done = true;
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "a live stream ends");
                self.out.push_back(end("session"));
                self.done = true;
            }
        }
    }
}

fn sse(live: Live) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        loop {
            if let Some(event) = live.out.pop_front() {
                return Some((Ok(event), live));
            }
            if live.done {
                return None;
            }
            live.fill().await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Live changes of every device you may view, as Server-Sent Events:
/// `value` (`device_id`, `pin`, `value`, `at`), `event` (`device_id`,
/// `code`, `level`, `description`, `at`), `online` (`device_id`,
/// `offline_at`, `at`); `missed` when the stream fell behind, `end` when it
/// ends. A device leaves the stream the moment you lose access to it. Changes
/// committed on this node are shown (with several nodes, subscribe on the
/// node your devices talk to).
#[utoipa::path(get, path = "/api/v1/devices/stream", tag = "device data",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String)))]
async fn stream_all(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    sse(Live {
        updates: state.app.live_updates(),
        app: state.app.clone(),
        session: (user.auth.token_hash.clone(), state.policy),
        caller: user.caller,
        only: None,
        out: VecDeque::new(),
        done: false,
    })
}

/// Live changes of one device you may view (404 otherwise), as on
/// `/api/v1/devices/stream`; the stream ends (`end`, reason `access`) once
/// you may no longer view the device.
#[utoipa::path(get, path = "/api/v1/devices/{id}/stream", tag = "device data",
    security(("bearer" = []), ("cookie" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, body = crate::error::Problem)))]
async fn stream_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe first: nothing committed after the check is missed.
    let updates = state.app.live_updates();
    state.app.device_detail(&user.caller, DeviceId(id)).await?;
    Ok(sse(Live {
        updates,
        app: state.app.clone(),
        session: (user.auth.token_hash.clone(), state.policy),
        caller: user.caller,
        only: Some(DeviceId(id)),
        out: VecDeque::new(),
        done: false,
    }))
}

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(stream_all))
        .routes(utoipa_axum::routes!(stream_device))
}
