//! The in-process cache of the facts authorization decisions read: sessions,
//! principals, org paths and device facts.
//!
//! It never answers from stale facts, on one node or many:
//!
//! - Every committed write that changed an authorization fact bumps the
//!   store's authorization version, and the database's own triggers record
//!   which facts the write changed (`arbor-store`, `authz.rs`); a write that
//!   changed none (a denied attempt's audit row) leaves the version alone.
//! - Each request first reads the current version (one statement, shared by
//!   the requests waiting at that moment: see [`VersionReads`]). If it moved,
//!   the cache reads the changes since its version and drops exactly the facts
//!   they name before anything is answered. A write committed before the
//!   request arrived, on any node, is therefore seen by it.
//! - A fact loaded on a miss is read in one statement together with the
//!   version it is as of, and kept only if that is the cache's version.
//! - A decision uses facts of one version only: a request that meets two
//!   versions (the cache moved while it ran) starts over.
//!
//! The maps are bounded: once one is full, misses are read from the store
//! and not kept. A full warm-up ([`AuthzCache::warm`]) loads every org path,
//! principal and device up to those bounds.

use arbor_core::{DeviceId, OrgId, OrgPath, Principal, UserId};
use arbor_store::{
    AuthzChange, AuthzVersion, DeviceAccess, SessionId, SessionRecord, Store, StoreError,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Bounds of the cache (entries per map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    pub sessions: usize,
    pub principals: usize,
    pub orgs: usize,
    pub devices: usize,
}

impl Default for CacheLimits {
    /// Room for the generator's full world (100,000 users, 1,000,000 devices)
    /// with headroom; about 150 MiB when every map is full.
    fn default() -> Self {
        Self {
            sessions: 100_000,
            principals: 500_000,
            orgs: 100_000,
            devices: 2_000_000,
        }
    }
}

/// Counters, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Version reads that went to the store (several requests share one).
    pub version_reads: u64,
    /// Catch-ups that read changes from the store.
    pub catch_ups: u64,
}

#[derive(Default)]
struct Inner {
    /// The version every entry is as of; `None` until the first read.
    version: Option<AuthzVersion>,
    sessions: HashMap<String, SessionRecord>,
    principals: HashMap<UserId, Principal>,
    /// The users whose cached principal has a membership in an org (it may
    /// name users no longer cached or no longer members: dropping those
    /// again is harmless). Spares a scan of every principal per org change.
    members: HashMap<OrgId, HashSet<UserId>>,
    orgs: HashMap<OrgId, OrgPath>,
    devices: HashMap<DeviceId, DeviceAccess>,
}

impl Inner {
    fn put_principal(&mut self, principal: Principal) {
        for m in &principal.memberships {
            self.members
                .entry(m.org.id())
                .or_default()
                .insert(principal.user);
        }
        self.principals.insert(principal.user, principal);
    }

    fn put_device(&mut self, access: DeviceAccess, path: OrgPath, limits: &CacheLimits) {
        if self.devices.len() < limits.devices {
            self.devices.insert(access.id, access);
        }
        if self.orgs.len() < limits.orgs {
            self.orgs.insert(access.org, path);
        }
    }

    fn clear(&mut self) {
        self.sessions.clear();
        self.principals.clear();
        self.members.clear();
        self.orgs.clear();
        self.devices.clear();
    }

    fn apply(&mut self, changes: &[AuthzChange]) {
        let mut orgs = HashSet::new();
        let mut sessions = HashSet::new();
        for change in changes {
            match *change {
                AuthzChange::User(user) => {
                    self.principals.remove(&user);
                }
                AuthzChange::Device(device) => {
                    self.devices.remove(&device);
                }
                AuthzChange::Org(org) => {
                    orgs.insert(org);
                }
                AuthzChange::Session(session) => {
                    sessions.insert(session);
                }
            }
        }
        for org in &orgs {
            self.orgs.remove(org);
            // A principal carries the paths and permission sets of its
            // memberships' orgs. A moved subtree changes every path in it, and
            // each of those orgs is recorded, so the membership's own org
            // suffices.
            for user in self.members.remove(org).unwrap_or_default() {
                self.principals.remove(&user);
            }
        }
        if !sessions.is_empty() {
            self.sessions.retain(|_, s| !sessions.contains(&s.id));
        }
    }
}

/// Requests that need the current version at the same moment share one
/// read: a request waits for the next read that *starts* after it asked, so
/// it still sees every write committed before it arrived.
struct VersionReads {
    store: Store,
    waiting: Mutex<(Vec<oneshot::Sender<Option<AuthzVersion>>>, bool)>,
    reads: AtomicU64,
}

impl VersionReads {
    async fn read(self: &Arc<Self>) -> Result<AuthzVersion, StoreError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = lock(&self.waiting);
            waiting.0.push(tx);
            !std::mem::replace(&mut waiting.1, true)
        };
        if start {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.serve().await });
        }
        match rx.await {
            Ok(Some(version)) => Ok(version),
            // The shared read failed (or the reader went away): read alone,
            // to report the store's own error.
            _ => self.store.authz_version().await,
        }
    }

    async fn serve(&self) {
        // If this task ends early (a panic, or the runtime shutting down
        // while it waits), the next request starts a new reader, and the
        // requests waiting now read alone: nobody waits forever.
        struct Done<'a>(&'a VersionReads);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut waiting = lock(&self.0.waiting);
                waiting.0.clear();
                waiting.1 = false;
            }
        }
        let done = Done(self);
        loop {
            let batch = {
                let mut waiting = lock(&self.waiting);
                if waiting.0.is_empty() {
                    // Stop under the lock: a request arriving next starts a
                    // new reader.
                    waiting.1 = false;
                    drop(waiting);
                    std::mem::forget(done);
                    return;
                }
                std::mem::take(&mut waiting.0)
            };
            self.reads.fetch_add(1, Ordering::Relaxed);
            let version = self.store.authz_version().await.ok();
            for waiter in batch {
                let _ = waiter.send(version);
            }
        }
    }
}

/// A poisoned lock only means another request panicked while holding it;
/// the maps are still consistent (every update is a single map operation).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fact together with the version it is as of.
pub(crate) type At<T> = (AuthzVersion, T);

pub struct AuthzCache {
    store: Store,
    limits: CacheLimits,
    inner: Mutex<Inner>,
    reads: Arc<VersionReads>,
    catching_up: tokio::sync::Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
    catch_ups: AtomicU64,
}

impl std::fmt::Debug for AuthzCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzCache")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuthzCache {
    pub fn new(store: Store, limits: CacheLimits) -> Self {
        Self {
            reads: Arc::new(VersionReads {
                store: store.clone(),
                waiting: Mutex::new((Vec::new(), false)),
                reads: AtomicU64::new(0),
            }),
            store,
            limits,
            inner: Mutex::new(Inner::default()),
            catching_up: tokio::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            version_reads: self.reads.reads.load(Ordering::Relaxed),
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
        }
    }

    /// The version every cached fact is as of; `None` before the first request.
    pub fn version(&self) -> Option<AuthzVersion> {
        lock(&self.inner).version
    }

    /// Reads the current version and brings the cache up to it; returns it.
    pub async fn sync(&self) -> Result<AuthzVersion, StoreError> {
        let current = self.reads.read().await?;
        self.advance(current).await?;
        Ok(current)
    }

    /// Drops what changed up to `to` (one read of the change feed).
    async fn advance(&self, to: AuthzVersion) -> Result<(), StoreError> {
        if self.version().is_some_and(|v| v >= to) {
            return Ok(());
        }
        let _one_at_a_time = self.catching_up.lock().await;
        let Some(from) = self.version() else {
            lock(&self.inner).version = Some(to);
            return Ok(());
        };
        if from >= to {
            return Ok(());
        }
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        let changes = self.store.authz_changes(from, to).await?;
        let mut inner = lock(&self.inner);
        if from < changes.floor {
            inner.clear();
        } else {
            inner.apply(&changes.changes);
        }
        inner.version = Some(to);
        Ok(())
    }

    /// A fact from the cache (`get`), else from the store (`load`, one
    /// statement that also reads the version), kept (`put`) if it is as of
    /// the cache's version.
    async fn lookup<T: Clone>(
        &self,
        get: impl FnOnce(&Inner) -> Option<T>,
        load: impl Future<Output = Result<At<Option<T>>, StoreError>>,
        put: impl FnOnce(&mut Inner, T),
    ) -> Result<At<Option<T>>, StoreError> {
        let cached = {
            let inner = lock(&self.inner);
            inner.version.and_then(|v| Some((v, Some(get(&inner)?))))
        };
        if let Some(found) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (version, found) = load.await?;
        if let Some(fact) = &found {
            let mut inner = lock(&self.inner);
            if inner.version == Some(version) {
                put(&mut inner, fact.clone());
            }
        }
        Ok((version, found))
    }

    /// A session by token hash, after bringing the cache up to the current
    /// version: the first step of every request. A cached session whose last
    /// use is more than `fresh_ms` ago is read again: another node may have
    /// seen it used since.
    pub async fn session(
        &self,
        token_hash: &str,
        now: i64,
        fresh_ms: i64,
    ) -> Result<At<Option<SessionRecord>>, StoreError> {
        self.sync().await?;
        let limit = self.limits.sessions;
        self.lookup(
            |inner| {
                let s = inner.sessions.get(token_hash)?;
                (now - s.last_seen_at <= fresh_ms).then(|| s.clone())
            },
            self.store.session_at(token_hash),
            |inner, session| {
                if inner.sessions.len() < limit {
                    inner.sessions.insert(token_hash.to_owned(), session);
                }
            },
        )
        .await
    }

    /// Records that the session was used at `now` (after the store was told).
    pub fn touched(&self, token_hash: &str, session: SessionId, now: i64) {
        let mut inner = lock(&self.inner);
        if let Some(s) = inner.sessions.get_mut(token_hash)
            && s.id == session
        {
            s.last_seen_at = s.last_seen_at.max(now);
        }
    }

    pub async fn principal(&self, user: UserId) -> Result<At<Option<Principal>>, StoreError> {
        let limit = self.limits.principals;
        self.lookup(
            |inner| inner.principals.get(&user).cloned(),
            self.store.principal_at(user),
            |inner, principal| {
                if inner.principals.len() < limit {
                    inner.put_principal(principal);
                }
            },
        )
        .await
    }

    pub async fn org_path(&self, org: OrgId) -> Result<At<Option<OrgPath>>, StoreError> {
        let limit = self.limits.orgs;
        self.lookup(
            |inner| inner.orgs.get(&org).cloned(),
            self.store.org_path_at(org),
            |inner, path| {
                if inner.orgs.len() < limit {
                    inner.orgs.insert(org, path);
                }
            },
        )
        .await
    }

    /// A device's facts and its org's path.
    pub async fn device(
        &self,
        device: DeviceId,
    ) -> Result<At<Option<(DeviceAccess, OrgPath)>>, StoreError> {
        let limits = self.limits;
        self.lookup(
            |inner| {
                let access = inner.devices.get(&device)?;
                Some((*access, inner.orgs.get(&access.org)?.clone()))
            },
            self.store.device_at(device),
            |inner, (access, path)| inner.put_device(access, path, &limits),
        )
        .await
    }

    /// Loads the facts of a batch that are not cached yet in one read
    /// transaction (three statements instead of one per fact), keeping them
    /// if they are as of the cache's version.
    pub async fn prefetch(
        &self,
        users: &[UserId],
        devices: &[DeviceId],
        orgs: &[OrgId],
    ) -> Result<(), StoreError> {
        let (users, devices, orgs) = {
            let inner = lock(&self.inner);
            let users: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|u| !inner.principals.contains_key(u))
                .collect();
            let devices: Vec<DeviceId> = devices
                .iter()
                .copied()
                .filter(|d| !inner.devices.contains_key(d))
                .collect();
            let orgs: Vec<OrgId> = orgs
                .iter()
                .copied()
                .filter(|o| !inner.orgs.contains_key(o))
                .collect();
            (users, devices, orgs)
        };
        if users.is_empty() && devices.is_empty() && orgs.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.read().await?;
        let version = tx.authz_version().await?;
        let principals = tx.principals(&users).await?;
        let devices = tx.devices(&devices).await?;
        let paths = tx.org_paths(&orgs).await?;
        tx.finish().await?;
        let mut inner = lock(&self.inner);
        if inner.version != Some(version) {
            return Ok(());
        }
        for p in principals {
            if inner.principals.len() < self.limits.principals {
                inner.put_principal(p);
            }
        }
        for d in devices {
            let access = DeviceAccess {
                id: d.id,
                org: d.org.id(),
                owner: d.owner,
            };
            inner.put_device(access, d.org, &self.limits);
        }
        for path in paths {
            if inner.orgs.len() < self.limits.orgs {
                inner.orgs.insert(path.id(), path);
            }
        }
        Ok(())
    }

    /// Loads every org path, principal and device (up to the bounds), page
    /// by page; each page is read in one read transaction with its version
    /// and kept only if the cache is at that version (otherwise the cache
    /// catches up and the page is read again). Returns the entries kept.
    pub async fn warm(&self) -> Result<usize, StoreError> {
        let mut kept = 0;
        loop {
            let mut tx = self.store.read().await?;
            let version = tx.authz_version().await?;
            let paths = tx.all_org_paths().await?;
            tx.finish().await?;
            if self.put_page(version, |inner| {
                for path in paths {
                    if inner.orgs.len() >= self.limits.orgs {
                        break;
                    }
                    inner.orgs.insert(path.id(), path);
                }
                inner.orgs.len()
            }) {
                kept += lock(&self.inner).orgs.len();
                break;
            }
            self.sync().await?;
        }
        const USERS_PER_PAGE: i64 = 5_000;
        let mut after = UserId(0);
        loop {
            let mut tx = self.store.read().await?;
            let version = tx.authz_version().await?;
            let (principals, last) = tx.principals_in_range(after, USERS_PER_PAGE).await?;
            tx.finish().await?;
            let n = principals.len();
            if self.put_page(version, |inner| {
                for p in principals {
                    if inner.principals.len() >= self.limits.principals {
                        break;
                    }
                    inner.put_principal(p);
                }
                n
            }) {
                kept += n;
                after = UserId(after.0 + USERS_PER_PAGE);
                if after.0 >= last.0 || lock(&self.inner).principals.len() >= self.limits.principals
                {
                    break;
                }
            } else {
                self.sync().await?;
            }
        }
        const DEVICES_PER_PAGE: i64 = 20_000;
        let mut after = DeviceId(0);
        loop {
            let mut tx = self.store.read().await?;
            let version = tx.authz_version().await?;
            let devices = tx.devices_after(after, DEVICES_PER_PAGE).await?;
            tx.finish().await?;
            let Some(last) = devices.last().map(|d| d.id) else {
                break;
            };
            let n = devices.len();
            if self.put_page(version, |inner| {
                for d in devices {
                    if inner.devices.len() >= self.limits.devices {
                        break;
                    }
                    inner.devices.insert(d.id, d);
                }
                n
            }) {
                kept += n;
                after = last;
                if lock(&self.inner).devices.len() >= self.limits.devices {
                    break;
                }
            } else {
                self.sync().await?;
            }
        }
        Ok(kept)
    }

    /// Runs `put` if the cache is at `version` (a first page sets it).
    fn put_page(&self, version: AuthzVersion, put: impl FnOnce(&mut Inner) -> usize) -> bool {
        let mut inner = lock(&self.inner);
        match inner.version {
            None => inner.version = Some(version),
            Some(v) if v != version => return false,
            Some(_) => {}
        }
        put(&mut inner);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_core::{Membership, RoleId, UserStatus};

    fn principal(user: i64, org: &OrgPath) -> Principal {
        Principal {
            user: UserId(user),
            status: UserStatus::Active,
            session_revoked: false,
            memberships: vec![Membership {
                org: org.clone(),
                role: RoleId(1),
                permissions: arbor_core::PermissionSet::EMPTY,
                home: true,
            }],
        }
    }

    #[test]
    fn changes_drop_exactly_what_they_name() {
        let root = OrgPath::root(OrgId(1));
        let child = root.child(OrgId(2));
        let mut inner = Inner::default();
        inner.put_principal(principal(10, &root));
        inner.put_principal(principal(11, &child));
        inner.put_principal(principal(12, &root));
        inner.orgs.insert(OrgId(1), root.clone());
        inner.orgs.insert(OrgId(2), child.clone());
        for id in [100, 101] {
            inner.devices.insert(
                DeviceId(id),
                DeviceAccess {
                    id: DeviceId(id),
                    org: OrgId(2),
                    owner: None,
                },
            );
        }
        for (hash, id) in [("a", 1), ("b", 2)] {
            inner.sessions.insert(
                hash.into(),
                SessionRecord {
                    id: SessionId(id),
                    user: UserId(10),
                    created_at: 0,
                    last_seen_at: 0,
                    expires_at: 1,
                    revoked: false,
                },
            );
        }
        inner.apply(&[
            AuthzChange::Org(OrgId(2)),
            AuthzChange::User(UserId(12)),
            AuthzChange::Device(DeviceId(101)),
            AuthzChange::Session(SessionId(2)),
        ]);
        let mut users: Vec<_> = inner.principals.keys().copied().collect();
        users.sort();
        assert_eq!(users, vec![UserId(10)]);
        assert!(inner.orgs.contains_key(&OrgId(1)) && !inner.orgs.contains_key(&OrgId(2)));
        assert!(inner.devices.contains_key(&DeviceId(100)));
        assert!(!inner.devices.contains_key(&DeviceId(101)));
        assert!(inner.sessions.contains_key("a") && !inner.sessions.contains_key("b"));
    }
}
