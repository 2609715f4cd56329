//! Live updates (SPEC.md section 7, issue 12 item 3): what devices send and
//! users write, as it is committed, for the users who may view the device.
//!
//! The data plane publishes each committed change — a value, an event, a
//! device coming online or going offline — to this node's [`LiveHub`], after
//! its transaction committed, so nothing uncommitted is ever shown. A
//! subscriber ([`App::live_updates`]) receives every change and keeps only
//! those of devices the caller may view *now*: [`App::may_view_devices`]
//! decides a batch of devices at the current authorization version (one
//! shared version read through the decision cache), so a permission change
//! or a transfer committed on any node stops a device's flow for users who
//! lost access with the next change that would have reached them.
//!
//! The hub is per node: a change reaches the subscribers of the node that
//! committed it (docs/device-api.md says so for operators of several nodes).

use crate::{App, AppError, Caller};
use arbor_core::DeviceId;
use arbor_core::device_data::PinValue;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Changes a subscriber may fall behind by before it misses some (it is
/// told how many: [`LiveReceive::Missed`]).
pub const LIVE_BACKLOG: usize = 8192;

/// What changed on a device.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveChange {
    /// A datastream's new value, written at `at` (by the device or by a
    /// user's control).
    Value { pin: u16, value: PinValue, at: i64 },
    /// An event the device logged.
    Event {
        code: String,
        level: String,
        description: String,
        at: i64,
    },
    /// The device called after the heartbeat: offline since `offline_at`
    /// (if it had been seen before), online now.
    Online { offline_at: Option<i64>, at: i64 },
}

/// One committed change of one device.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveUpdate {
    pub device: DeviceId,
    pub change: LiveChange,
}

/// This node's channel of committed changes.
#[derive(Debug)]
pub(crate) struct LiveHub {
    sender: broadcast::Sender<Arc<LiveUpdate>>,
    /// Set when the server shuts down: every subscription ends.
    closed: tokio::sync::watch::Sender<bool>,
}

impl LiveHub {
    pub(crate) fn new() -> Arc<Self> {
        let (sender, _) = broadcast::channel(LIVE_BACKLOG);
        let (closed, _) = tokio::sync::watch::channel(false);
        Arc::new(Self { sender, closed })
    }

    /// Publishes committed changes (nobody listening is fine).
    pub(crate) fn publish(&self, device: DeviceId, changes: impl IntoIterator<Item = LiveChange>) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        for change in changes {
            let _ = self.sender.send(Arc::new(LiveUpdate { device, change }));
        }
    }
}

/// A subscription to this node's committed changes.
pub struct LiveUpdates {
    receiver: broadcast::Receiver<Arc<LiveUpdate>>,
    closed: tokio::sync::watch::Receiver<bool>,
}

/// What a subscription receives next.
#[derive(Debug)]
pub enum LiveReceive {
    Update(Arc<LiveUpdate>),
    /// The subscriber fell behind and this many changes were dropped.
    Missed(u64),
    /// The server is shutting down.
    Closed,
}

impl LiveUpdates {
    /// The next change, waiting for one.
    pub async fn next(&mut self) -> LiveReceive {
        let received = tokio::select! {
            received = self.receiver.recv() => received,
            _ = self.closed.wait_for(|closed| *closed) => return LiveReceive::Closed,
        };
        match received {
            Ok(update) => LiveReceive::Update(update),
            Err(broadcast::error::RecvError::Lagged(n)) => LiveReceive::Missed(n),
            Err(broadcast::error::RecvError::Closed) => LiveReceive::Closed,
        }
    }

    /// A change already waiting, without waiting.
    pub fn ready(&mut self) -> Option<LiveReceive> {
        match self.receiver.try_recv() {
            Ok(update) => Some(LiveReceive::Update(update)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(LiveReceive::Missed(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(LiveReceive::Closed),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

impl App {
    /// Subscribes to this node's committed device changes; filter them with
    /// [`App::may_view_devices`] before showing any.
    pub fn live_updates(&self) -> LiveUpdates {
        LiveUpdates {
            receiver: self.live.sender.subscribe(),
            closed: self.live.closed.subscribe(),
        }
    }

    /// Ends every live subscription of this node (the server is shutting
    /// down: open streams must not hold it up).
    pub fn close_live_updates(&self) {
        let _ = self.live.closed.send(true);
    }

    /// Which of `devices` the caller may view now (rule 5 with `view`),
    /// decided at the current authorization version — read afresh, so a
    /// change committed on any node counts. An error (the session ended,
    /// the account was suspended) ends a subscription.
    pub async fn may_view_devices(
        &self,
        caller: &Caller,
        devices: &[DeviceId],
    ) -> Result<Vec<bool>, AppError> {
        self.own_device_views(caller, devices).await
    }

    pub(crate) fn publish(&self, device: DeviceId, changes: impl IntoIterator<Item = LiveChange>) {
        self.live.publish(device, changes);
    }
}
