//! The bounded password-hashing service: every argon2 hash and verification
//! (login, first run, accepting an invitation, a password change or reset)
//! runs here, on a fixed number of worker threads, behind a queue with a
//! bound.
//!
//! Why: an argon2id verification holds 19 MiB and tens of milliseconds of
//! CPU. Run unbounded (one blocking task per request), a flood of failing
//! logins grew the server to gigabytes and starved every other request. Here
//! at most `workers` hashes run at once, each worker verifying into one
//! buffer it keeps, and at most `queue` more wait; a request beyond that is
//! refused at once ([`AppError::Overloaded`], answered 503 with
//! `Retry-After`) instead of waiting or allocating.
//!
//! Admission ([`Hashing::admit`]) is taken before anything else of a login
//! happens, so that a refused request costs neither a throttle reservation nor
//! a hash. A job whose requester has gone (the client hung up) is skipped.

use crate::{AppError, password};
use argon2::Block;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The bounds of the hashing service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// Hashes running at once (each holds 19 MiB while it runs).
    pub workers: usize,
    /// Requests waiting for a worker, beyond which requests are refused.
    pub queue: usize,
    /// What a refused request is told to wait (`Retry-After`).
    pub retry_after_secs: u64,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            // One core is left to everything else: measured on two cores,
            // a hashing flood then leaves `check` p99 at 1.3x its unloaded
            // value, against ~9x with both cores hashing
            // (docs/benchmarks/login-flood).
            workers: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
            queue: 64,
            retry_after_secs: 1,
        }
    }
}

enum Work {
    Hash(String, oneshot::Sender<Result<String, String>>),
    Verify(String, String, oneshot::Sender<bool>),
}

impl Work {
    fn abandoned(&self) -> bool {
        match self {
            Self::Hash(_, reply) => reply.is_closed(),
            Self::Verify(_, _, reply) => reply.is_closed(),
        }
    }
}

struct Job {
    work: Work,
    /// Held until the work is done: admission counts running and waiting jobs.
    _admitted: OwnedSemaphorePermit,
}

/// The running workers, started on first use.
struct Workers {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Gauges of the service (no-ops without a metrics recorder).
fn gauges(waiting_delta: f64, running_delta: f64) {
    if waiting_delta != 0.0 {
        metrics::gauge!("arbor_password_hash_waiting").increment(waiting_delta);
    }
    if running_delta != 0.0 {
        metrics::gauge!("arbor_password_hash_running").increment(running_delta);
    }
}

fn work(receiver: &Mutex<mpsc::Receiver<Job>>) {
    // The buffer every verification on this thread fills: allocated once.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv()
        };
        // All senders gone: the service was dropped.
        let Ok(job) = job else { return };
        gauges(-1.0, 0.0);
        if job.work.abandoned() {
            continue;
        }
        gauges(0.0, 1.0);
        match job.work {
            Work::Hash(plain, reply) => {
                let _ = reply.send(password::hash(&plain).map_err(|e| e.to_string()));
            }
            Work::Verify(plain, phc, reply) => {
                let _ = reply.send(password::verify_into(&mut memory, &plain, &phc));
            }
        }
        gauges(0.0, -1.0);
    }
}

/// The hashing service. Cheap to clone (shared).
#[derive(Clone)]
pub struct Hashing {
    limits: HashLimits,
    admission: Arc<Semaphore>,
    workers: Arc<OnceLock<Workers>>,
}

impl std::fmt::Debug for Hashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashing")
            .field("limits", &self.limits)
            .field("available", &self.admission.available_permits())
            .finish()
    }
}

impl Default for Hashing {
    fn default() -> Self {
        Self::new(HashLimits::default())
    }
}

/// A place in the hashing service: one hash or verification may run on it.
pub struct Admitted {
    permit: OwnedSemaphorePermit,
    hashing: Hashing,
}

impl Hashing {
    /// At least one worker; a queue of zero admits only as many requests as
    /// there are workers.
    pub fn new(limits: HashLimits) -> Self {
        let limits = HashLimits {
            workers: limits.workers.max(1),
            ..limits
        };
        Self {
            admission: Arc::new(Semaphore::new(limits.workers.saturating_add(limits.queue))),
            workers: Arc::new(OnceLock::new()),
            limits,
        }
    }

    pub fn limits(&self) -> HashLimits {
        self.limits
    }

    /// A place, or [`AppError::Overloaded`] at once when every worker is busy
    /// and the queue is full.
    pub fn admit(&self) -> Result<Admitted, AppError> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted {
                permit,
                hashing: self.clone(),
            }),
            Err(_) => {
                metrics::counter!("arbor_throttled_requests_total", "reason" => "hash_queue_full")
                    .increment(1);
                Err(AppError::Overloaded {
                    retry_after_secs: self.limits.retry_after_secs,
                })
            }
        }
    }

    fn start(&self) -> &Workers {
        self.workers.get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<Job>();
            let receiver = Arc::new(Mutex::new(receiver));
            for n in 0..self.limits.workers {
                let receiver = Arc::clone(&receiver);
                let spawned = std::thread::Builder::new()
                    .name(format!("arbor-hash-{n}"))
                    .spawn(move || work(&receiver));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start a password-hashing thread");
                }
            }
            Workers {
                jobs: Mutex::new(sender),
            }
        })
    }

    fn submit(&self, job: Job) -> Result<(), AppError> {
        let workers = self.start();
        let sender = workers.jobs.lock().unwrap_or_else(|e| e.into_inner());
        gauges(1.0, 0.0);
        sender.send(job).map_err(|_| {
            gauges(-1.0, 0.0);
            AppError::internal("the password-hashing threads have stopped")
        })
    }

    /// Admits and hashes (the rare paths: setting a password).
    pub async fn hash(&self, plain: &str) -> Result<String, AppError> {
        self.admit()?.hash(plain).await
    }
}

impl Admitted {
    /// A PHC-format argon2id hash of `plain`.
    pub async fn hash(self, plain: &str) -> Result<String, AppError> {
        let (reply, answer) = oneshot::channel();
        self.hashing.submit(Job {
            work: Work::Hash(plain.to_owned(), reply),
            _admitted: self.permit,
        })?;
        answer
            .await
            .map_err(|_| AppError::internal("a password-hashing thread stopped"))?
            .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
    }

    /// Whether `plain` matches the stored `phc`; without a stored hash, the
    /// time of a verification is spent on one that matches nothing.
    pub async fn verify(self, plain: &str, phc: Option<String>) -> Result<bool, AppError> {
        let found = phc.is_some();
        let phc = phc.unwrap_or_else(|| password::dummy_hash().to_owned());
        let (reply, answer) = oneshot::channel();
        self.hashing.submit(Job {
            work: Work::Verify(plain.to_owned(), phc, reply),
            _admitted: self.permit,
        })?;
        let matches = answer
            .await
            .map_err(|_| AppError::internal("a password-hashing thread stopped"))?;
        Ok(found && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_workers_and_the_queue_requests_are_refused_at_once() {
        let hashing = Hashing::new(HashLimits {
            workers: 1,
            queue: 1,
            retry_after_secs: 7,
        });
        let first = hashing.admit().unwrap();
        let second = hashing.admit().unwrap();
        match hashing.admit() {
            Err(AppError::Overloaded { retry_after_secs }) => assert_eq!(retry_after_secs, 7),
            other => panic!("expected Overloaded, got {:?}", other.map(|_| ())),
        }
        // A place is given back when its work is done.
        let phc = first.hash("a long enough password").await.unwrap();
        assert!(
            second
                .verify("a long enough password", Some(phc.clone()))
                .await
                .unwrap()
        );
        let third = hashing.admit().unwrap();
        assert!(!third.verify("another password", Some(phc)).await.unwrap());
        assert!(!hashing.admit().unwrap().verify("x", None).await.unwrap());
    }
}
