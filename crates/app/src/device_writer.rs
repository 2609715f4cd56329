//! Grouped commits for the device API's hot path, `update` (issue 12's
//! design constraints): the value writes of many requests commit in one data
//! transaction, and device tokens resolve through a cache.
//!
//! One writer task per node takes the waiting requests (up to
//! [`MAX_GROUP`]), runs each one's checks in a single data transaction —
//! token, rate limit, pins, values parsed to their datastreams — writes the
//! accepted values of all of them together, marks the devices seen, commits,
//! and only then answers each request: a 200 still means the value is
//! committed. A request refused by its checks writes nothing and does not
//! disturb the others; a failure of the transaction answers (or retries)
//! them all.
//!
//! The token cache maps token hashes to devices. It is valid for one
//! authorization version: every group first reads the version inside its
//! transaction, and a regenerated token or a deleted device has changed the
//! version (migration 0018 and 0002), so the cache starts over before the
//! old token could be used — on every node, since each reads the version
//! from the database.

use crate::device_api::{DeviceApiError, PinWrite};
use crate::live::LiveChange;
use crate::{App, AppError};
use arbor_core::DeviceId;
use arbor_core::device_data::seen_due;
use arbor_core::template::Datastream;
use arbor_store::{AuthzVersion, DeviceTemplateId, TokenDevice, ValueWrite};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Requests committed together at most.
pub const MAX_GROUP: usize = 512;
/// Requests waiting for the writer at most (beyond: they wait to queue).
const QUEUE: usize = 4096;
/// Tokens the cache keeps at most (it starts over when full).
const TOKENS: usize = 200_000;

/// Where a job's answer goes: the device its token named (for the journal)
/// and the answer.
pub(crate) type Reply = oneshot::Sender<(Option<DeviceId>, Result<(), DeviceApiError>)>;

/// One request waiting for the writer.
pub(crate) enum Job {
    /// An `update`: its token's hash, its writes, and where to send the
    /// device the token named (for the journal) and the answer.
    Update {
        hash: String,
        writes: Vec<PinWrite>,
        reply: Reply,
    },
    /// A read request's sighting of a device (due, see [`seen_due`]):
    /// marked with the next group; told when committed.
    Seen(
        TokenDevice,
        oneshot::Sender<(Option<DeviceId>, Result<(), DeviceApiError>)>,
    ),
}

/// The queue to this node's writer task (started with the first request).
#[derive(Debug, Default)]
pub(crate) struct DeviceWriter {
    sender: std::sync::OnceLock<mpsc::Sender<Job>>,
}

/// The writer task's own state.
struct Writer {
    app: App,
    receiver: mpsc::Receiver<Job>,
    version: Option<AuthzVersion>,
    tokens: HashMap<String, TokenDevice>,
}

/// What one request of a group comes to before the commit.
struct Checked {
    reply: Reply,
    device: Option<DeviceId>,
    answer: Result<(), DeviceApiError>,
}

impl DeviceWriter {
    /// Queues a job, starting the writer on first use.
    pub(crate) async fn submit(
        &self,
        app: &App,
        job: Job,
    ) -> Result<(), mpsc::error::SendError<Job>> {
        self.sender(app).send(job).await
    }

    /// Marks a device seen with the next group, and waits for its commit.
    pub(crate) async fn seen(&self, app: &App, device: TokenDevice) {
        let (reply, done) = oneshot::channel();
        if self.submit(app, Job::Seen(device, reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    fn sender(&self, app: &App) -> &mpsc::Sender<Job> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let writer = Writer {
                app: app.clone(),
                receiver,
                version: None,
                tokens: HashMap::new(),
            };
            tokio::spawn(writer.run());
            sender
        })
    }
}

impl Writer {
    async fn run(mut self) {
        let mut jobs = Vec::with_capacity(MAX_GROUP);
        loop {
            if self.receiver.recv_many(&mut jobs, MAX_GROUP).await == 0 {
                return; // every sender is gone: the app was dropped
            }
            let group = std::mem::take(&mut jobs);
            let Some(failed) = self.group(group).await else {
                continue;
            };
            if failed.len() == 1 {
                self.fail(failed);
                continue;
            }
            // A group failed for a reason not its own (say, a device deleted
            // after the version was read, on PostgreSQL): each request once
            // more alone, so that one cannot fail the others.
            for job in failed {
                if let Some(alone) = self.group(vec![job]).await {
                    self.fail(alone);
                }
            }
        }
    }

    /// Answers `jobs` with the failure of their transaction.
    fn fail(&self, jobs: Vec<Job>) {
        for job in jobs {
            let (Job::Update { reply, .. } | Job::Seen(_, reply)) = job;
            let error = AppError::internal("a group of device writes failed");
            let _ = reply.send((None, Err(DeviceApiError::Failed(error))));
        }
    }

    /// Commits one group and answers its requests; contention is retried.
    /// A group that still failed comes back unanswered (busy ones are
    /// answered busy: alone they would only wait again).
    async fn group(&mut self, mut jobs: Vec<Job>) -> Option<Vec<Job>> {
        let mut attempt = 0u32;
        loop {
            match self.attempt(jobs).await {
                Ok((checked, changes)) => {
                    for (device, change) in changes {
                        self.app.publish(device, [change]);
                    }
                    for c in checked {
                        let _ = c.reply.send((c.device, c.answer));
                    }
                    return None;
                }
                Err((e, pending)) if e.is_retryable() && attempt + 1 < crate::ATTEMPTS => {
                    attempt += 1;
                    self.tokens.clear();
                    self.version = None;
                    let jitter = rand::random_range(0..(5u64 << attempt.min(6)));
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    jobs = pending;
                }
                Err((e, pending)) => {
                    self.tokens.clear();
                    self.version = None;
                    tracing::error!(error = ?e, requests = pending.len(), "a group of device writes failed");
                    if !matches!(e, AppError::Busy(_)) {
                        return Some(pending);
                    }
                    for job in pending {
                        let (Job::Update { reply, .. } | Job::Seen(_, reply)) = job;
                        let busy = AppError::Busy("a group of device writes stayed busy".into());
                        let _ = reply.send((None, Err(DeviceApiError::Failed(busy))));
                    }
                    return None;
                }
            }
        }
    }

    /// One transaction for the group: on success the checked requests and
    /// the live changes to publish; on failure the error and the jobs again.
    #[allow(clippy::type_complexity)]
    async fn attempt(
        &mut self,
        jobs: Vec<Job>,
    ) -> Result<(Vec<Checked>, Vec<(DeviceId, LiveChange)>), (AppError, Vec<Job>)> {
        match self.write(&jobs).await {
            Ok((answers, changes)) => {
                let checked = jobs
                    .into_iter()
                    .zip(answers)
                    .map(|(job, (device, answer))| Checked {
                        reply: match job {
                            Job::Update { reply, .. } | Job::Seen(_, reply) => reply,
                        },
                        device,
                        answer,
                    })
                    .collect();
                Ok((checked, changes))
            }
            Err(e) => Err((e, jobs)),
        }
    }

    #[allow(clippy::type_complexity)]
    async fn write(
        &mut self,
        jobs: &[Job],
    ) -> Result<
        (
            Vec<(Option<DeviceId>, Result<(), DeviceApiError>)>,
            Vec<(DeviceId, LiveChange)>,
        ),
        AppError,
    > {
        let app = self.app.clone();
        let mut tx = app.store().data().await?;
        let version = tx.authz_version().await?;
        if self.version != Some(version) || self.tokens.len() >= TOKENS {
            self.tokens.clear();
            self.version = Some(version);
        }
        let limit = app.device_api_limits().string_value_bytes;
        let now = tx.now();
        // The group's uncached tokens, in one statement.
        let missing: Vec<&str> = jobs
            .iter()
            .filter_map(|job| match job {
                Job::Update { hash, .. } if !self.tokens.contains_key(hash) => Some(hash.as_str()),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            for (hash, device) in tx.devices_for_tokens(&missing).await? {
                self.tokens.insert(hash, device);
            }
        }
        let mut streams: HashMap<DeviceTemplateId, Vec<Datastream>> = HashMap::new();
        let mut answers = Vec::with_capacity(jobs.len());
        let mut values: Vec<(TokenDevice, ValueWrite)> = Vec::new();
        let mut changes = Vec::new();
        // Devices to mark seen, with the token hash that named them.
        let mut seen: HashMap<DeviceId, (Option<&str>, TokenDevice)> = HashMap::new();
        for job in jobs {
            let (hash, writes) = match job {
                Job::Update { hash, writes, .. } => (hash, writes),
                Job::Seen(device, _) => {
                    seen.entry(device.id()).or_insert((None, device.clone()));
                    answers.push((Some(device.id()), Ok(())));
                    continue;
                }
            };
            let Some(device) = self.tokens.get(hash).cloned() else {
                answers.push((None, Err(DeviceApiError::InvalidToken)));
                continue;
            };
            let id = device.id();
            if !app.device_api_admit(id) {
                answers.push((Some(id), Err(DeviceApiError::RateLimited)));
                continue;
            }
            let template = device.template();
            if let std::collections::hash_map::Entry::Vacant(entry) = streams.entry(template) {
                entry.insert(tx.template_datastreams(template).await?);
            }
            let parsed = crate::device_api::parse_writes(
                streams.get(&template).map_or(&[][..], Vec::as_slice),
                writes,
                limit,
                now,
            );
            match parsed {
                Ok(accepted) => {
                    for write in &accepted {
                        changes.push((
                            id,
                            LiveChange::Value {
                                pin: write.pin,
                                value: write.value.clone(),
                                at: write.at,
                            },
                        ));
                    }
                    values.extend(accepted.into_iter().map(|w| (device.clone(), w)));
                    if seen_due(device.last_seen_at(), now) {
                        seen.insert(id, (Some(hash.as_str()), device));
                    }
                    answers.push((Some(id), Ok(())));
                }
                Err(refused) => answers.push((Some(id), Err(refused))),
            }
        }
        tx.put_many_values(&values).await?;
        let heartbeat = app.device_heartbeat_ms();
        let due: Vec<TokenDevice> = seen
            .values()
            .filter(|(_, d)| seen_due(d.last_seen_at(), now))
            .map(|(_, d)| d.clone())
            .collect();
        let mut back = Vec::new();
        for device in tx.mark_devices_seen(&due, heartbeat).await? {
            back.push((
                device.id(),
                LiveChange::Online {
                    offline_at: device.last_seen_at().map(|at| at.saturating_add(heartbeat)),
                    at: now,
                },
            ));
        }
        tx.commit_data().await?;
        // Committed: the cached sightings move on, so the next requests do
        // not mark the devices seen again within the second.
        for (hash, device) in seen.into_values() {
            if let Some(entry) = hash.and_then(|h| self.tokens.get_mut(h)) {
                *entry = device.seen(now);
            }
        }
        back.extend(changes);
        Ok((answers, back))
    }
}
