//! Arbor's use cases. Each runs through one runner ([`run`]): resolve the
//! caller, load the target within its hierarchy, let arbor-core decide with
//! the decision named after the action, lock, write with the proof, and
//! commit together with the audit event; a refusal commits its audit row
//! alone. Transient contention (SQLite busy, PostgreSQL deadlock) reruns the
//! whole transaction a few times.

pub mod access;
pub mod accounts;
pub mod cache;
pub mod device_api;
pub mod device_data;
mod device_tokens;
mod device_writer;
mod devices;
pub mod error;
pub mod hashing;
mod lists;
pub mod live;
pub mod maintenance;
mod members;
pub mod model;
mod orgs;
pub mod password;
mod places;
pub mod recovery;
pub mod roles;
mod run;
pub mod stats;
pub mod templates;
pub mod throttle;
mod transfer;
pub mod users;

pub use device_tokens::DeviceTokenKey;
pub use devices::{CreatedDevice, DeviceDetail, DeviceEdit};
pub use error::AppError;
pub use lists::DeviceSearch;
pub use members::NewMember;
pub use orgs::{
    HierarchyCreated, MAX_TREE_ORGS, NewHierarchy, OrgDeleted, OrgEdit, OrgSearchPage, OrgTree,
};
pub use places::{LocationEdit, NewLocation};
pub use transfer::{DeviceTransfer, TransferTo};

use arbor_core::{OrgId, UserId};
use arbor_store::{ClientKind, Store};
use cache::CacheLimits as Limits;
use cache::{AuthzCache, CacheLimits};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Who makes a request: the authenticated user, the session it came with (so
/// a revoked session is denied at once), and the org it switched to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    /// Hash of the session token; `None` for callers without a session (CLI).
    pub session_token_hash: Option<String>,
    /// The context org `C`; `None` acts in the home org.
    pub context: Option<OrgId>,
    pub client: ClientKind,
    /// The authorization version the session was checked at through the
    /// decision cache (`None`: not checked through it). A request answered
    /// from the cache starts from this version instead of reading it again.
    pub authz_version: Option<arbor_store::AuthzVersion>,
}

impl Caller {
    pub fn new(user: UserId, client: ClientKind) -> Self {
        Self {
            user,
            session_token_hash: None,
            context: None,
            client,
            authz_version: None,
        }
    }

    pub fn in_org(mut self, context: OrgId) -> Self {
        self.context = Some(context);
        self
    }
}

/// The use cases, over one store, with the decision cache if enabled.
#[derive(Clone, Debug)]
pub struct App {
    store: Store,
    cache: Option<Arc<AuthzCache>>,
    /// Every password hash and verification runs here, bounded.
    hashing: hashing::Hashing,
    /// Failed-login throttling over the stored counters.
    throttle: throttle::ThrottlePolicy,
    /// A device is online while it called the device API this recently.
    device_heartbeat: Duration,
    /// The key device auth tokens are derived with.
    device_tokens: Arc<DeviceTokenKey>,
    /// The device API's limits and per-device request limiter.
    device_api: Arc<device_api::DeviceApi>,
    /// This node's channel of committed device changes (live updates).
    live: Arc<live::LiveHub>,
    /// This node's writer of grouped device updates.
    device_writer: Arc<device_writer::DeviceWriter>,
}

/// The default of `device_heartbeat_secs` (SPEC.md section 7).
pub const DEFAULT_DEVICE_HEARTBEAT: Duration = Duration::from_secs(60);

pub(crate) const ATTEMPTS: u32 = 12;

impl App {
    /// Without the decision cache: every decision reads the store (the CLI's
    /// one-shot commands, and tests that compare against the cache).
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: None,
            hashing: hashing::Hashing::default(),
            throttle: throttle::ThrottlePolicy::default(),
            device_heartbeat: DEFAULT_DEVICE_HEARTBEAT,
            device_tokens: Arc::new(DeviceTokenKey::random()),
            device_api: device_api::DeviceApi::new(device_api::DeviceApiLimits::default()),
            live: live::LiveHub::new(),
            device_writer: Arc::default(),
        }
    }

    /// With this heartbeat for the online state of devices (the server's
    /// `device_heartbeat_secs`) instead of the default.
    pub fn with_device_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.device_heartbeat = heartbeat;
        self
    }

    /// How recently a device must have called to count as online.
    pub fn device_heartbeat(&self) -> Duration {
        self.device_heartbeat
    }

    pub(crate) fn device_heartbeat_ms(&self) -> i64 {
        i64::try_from(self.device_heartbeat.as_millis()).unwrap_or(i64::MAX)
    }

    /// With this key for device auth tokens (the server's configured one)
    /// instead of a key of this process only.
    pub fn with_device_token_key(mut self, key: DeviceTokenKey) -> Self {
        self.device_tokens = Arc::new(key);
        self
    }

    /// With these bounds on password hashing and this login throttle (the
    /// server's configuration) instead of the defaults.
    pub fn with_login_limits(
        mut self,
        hashing: hashing::HashLimits,
        throttle: throttle::ThrottlePolicy,
    ) -> Self {
        self.hashing = hashing::Hashing::new(hashing);
        self.throttle = throttle;
        self
    }

    pub fn hashing(&self) -> &hashing::Hashing {
        &self.hashing
    }

    /// With the decision cache when `limits` are given (the server's
    /// `authz_cache.enabled`), without it otherwise.
    pub fn configured(store: Store, limits: Option<Limits>) -> Self {
        match limits {
            Some(limits) => Self::with_cache(store, limits),
            None => Self::new(store),
        }
    }

    /// With the decision cache ([`cache`]), as the server runs.
    pub fn with_cache(store: Store, limits: CacheLimits) -> Self {
        Self {
            cache: Some(Arc::new(AuthzCache::new(store.clone(), limits))),
            ..Self::new(store)
        }
    }

    pub fn cache(&self) -> Option<&AuthzCache> {
        self.cache.as_deref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a whole transaction again on transient contention.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    // Jittered backoff so that the losers do not collide again.
                    let jitter = rand::random_range(0..(5u64 << attempt.min(6)));
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                other => return other,
            }
        }
    }
}

/// A fresh, unguessable auth token (≥ 128 bits) and the hash the store keeps.
/// The token is shown once; only [`hash_token`] of it is stored.
pub fn new_token() -> (String, String) {
    use base64::Engine as _;
    let bytes: [u8; 24] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token: SHA-256, hex. Tokens carry ≥ 128 random bits,
/// so a plain digest suffices (no salt or stretching needed), and a database
/// dump does not reveal usable tokens.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
