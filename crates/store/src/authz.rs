//! The authorization change feed, and the single-statement fact reads of the
//! in-process decision cache (arbor-app `cache`).
//!
//! Every committing write transaction whose triggers recorded change rows
//! (`migrations/*/0002_authz_changes.sql`) bumps `authz_version` once and
//! stamps them; one that changed no authorization fact leaves the version
//! alone. The statement lives next to the commit, in [`crate::tx`]; this
//! module only reads the feed.
//!
//! Each read here returns the version its facts belong to, taken in the same
//! statement (or the same read transaction), so a cache can tell whether a
//! fact it loaded is exactly as of the version it holds.
//!
//! Why PostgreSQL needs nothing more: the version row is locked by the bump
//! until the transaction commits, so versions commit in order. A reader that
//! sees version C therefore also sees every change row of versions <= C.

use crate::accounts::SessionRecord;
use crate::error::StoreError;
use crate::rows::SessionId;
use crate::store::Store;
use crate::tx::Tx;
use crate::users::{PRINCIPAL_COLUMNS, PRINCIPAL_JOINS, principals_from_rows};
use arbor_core::{DeviceId, OrgId, OrgPath, Principal, UserId};
use sqlx::{AssertSqlSafe, Row};

/// A version of the authorization facts: it grows with every committed write
/// that changed one.
pub type AuthzVersion = i64;

/// One recorded change: which cached facts it makes stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthzChange {
    /// The user's status or memberships.
    User(UserId),
    /// The org's path or parent, or a role's permission set in it.
    Org(OrgId),
    /// The device's org or owner.
    Device(DeviceId),
    /// The session's revocation or expiry.
    Session(SessionId),
}

/// The changes after some version, and the floor below which changes have
/// been pruned (a cache older than the floor cannot catch up: it starts afresh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzChanges {
    pub floor: AuthzVersion,
    pub changes: Vec<AuthzChange>,
}

/// The facts of a device a decision reads: its org and its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAccess {
    pub id: DeviceId,
    pub org: OrgId,
    pub owner: Option<UserId>,
}

/// A database that breaks the schema's promises (reported as a database error).
fn corrupt(message: String) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(message))
}

fn change_from(kind: &str, id: i64) -> Result<AuthzChange, StoreError> {
    Ok(match kind {
        "user" => AuthzChange::User(UserId(id)),
        "org" => AuthzChange::Org(OrgId(id)),
        "device" => AuthzChange::Device(DeviceId(id)),
        "session" => AuthzChange::Session(SessionId(id)),
        other => {
            return Err(corrupt(format!(
                "unknown authorization change kind {other:?}"
            )));
        }
    })
}

impl Store {
    /// The current version (one statement).
    pub async fn authz_version(&self) -> Result<AuthzVersion, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM authz_version WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// The changes of versions `after < v <= upto`, in one statement.
    pub async fn authz_changes(
        &self,
        after: AuthzVersion,
        upto: AuthzVersion,
    ) -> Result<AuthzChanges, StoreError> {
        let rows = sqlx::query(
            "SELECT v.floor, c.kind, c.id FROM authz_version v \
             LEFT JOIN authz_changes c ON c.version > $1 AND c.version <= $2 WHERE v.id = 1",
        )
        .bind(after)
        .bind(upto)
        .fetch_all(self.pool())
        .await?;
        let mut floor = 0;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            floor = row.try_get(0)?;
            if let Some(kind) = row.try_get::<Option<String>, _>(1)? {
                changes.push(change_from(&kind, row.try_get(2)?)?);
            }
        }
        Ok(AuthzChanges { floor, changes })
    }

    /// Deletes the change rows older than the newest `keep` versions and
    /// raises the floor to match, in one transaction (bookkeeping, not a
    /// user's action: not audited). Returns the rows deleted.
    pub async fn prune_authz_changes(&self, keep: AuthzVersion) -> Result<u64, StoreError> {
        let mut tx = self.begin(self.dialect().begin_write()).await?;
        let floor: Option<i64> = sqlx::query_scalar(
            "UPDATE authz_version SET floor = value - $1 WHERE id = 1 AND value - $1 > floor \
             RETURNING floor",
        )
        .bind(keep)
        .fetch_optional(&mut *tx)
        .await?;
        let deleted = match floor {
            Some(floor) => sqlx::query("DELETE FROM authz_changes WHERE version <= $1")
                .bind(floor)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            None => 0,
        };
        tx.commit().await?;
        Ok(deleted)
    }

    /// A session by token hash, with the version it is as of (one statement).
    pub async fn session_at(
        &self,
        token_hash: &str,
    ) -> Result<(AuthzVersion, Option<SessionRecord>), StoreError> {
        let row = sqlx::query(
            "SELECT v.value, s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, \
             s.revoked_at FROM authz_version v LEFT JOIN sessions s ON s.token_hash = $1 \
             WHERE v.id = 1",
        )
        .bind(token_hash.to_owned())
        .fetch_one(self.pool())
        .await?;
        let version = row.try_get(0)?;
        let Some(id) = row.try_get::<Option<i64>, _>(1)? else {
            return Ok((version, None));
        };
        Ok((
            version,
            Some(SessionRecord {
                id: SessionId(id),
                user: UserId(row.try_get(2)?),
                created_at: row.try_get(3)?,
                last_seen_at: row.try_get(4)?,
                expires_at: row.try_get(5)?,
                revoked: row.try_get::<Option<i64>, _>(6)?.is_some(),
            }),
        ))
    }

    /// A user's principal, with the version it is as of (one statement).
    pub async fn principal_at(
        &self,
        user: UserId,
    ) -> Result<(AuthzVersion, Option<Principal>), StoreError> {
        let sql = format!(
            "SELECT v.value, {PRINCIPAL_COLUMNS} FROM authz_version v \
             LEFT JOIN users u ON u.id = $1 {PRINCIPAL_JOINS} WHERE v.id = 1 ORDER BY m.org_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user.0)
            .fetch_all(self.pool())
            .await?;
        let version = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => return Err(corrupt("the authz_version row is missing".into())),
        };
        Ok((version, principals_from_rows(&rows, 1)?.pop()))
    }

    /// An org's path, with the version it is as of (one statement).
    pub async fn org_path_at(
        &self,
        org: OrgId,
    ) -> Result<(AuthzVersion, Option<OrgPath>), StoreError> {
        let row = sqlx::query(
            "SELECT v.value, o.path FROM authz_version v \
             LEFT JOIN organizations o ON o.id = $1 WHERE v.id = 1",
        )
        .bind(org.0)
        .fetch_one(self.pool())
        .await?;
        let path = row
            .try_get::<Option<String>, _>(1)?
            .map(|p| OrgPath::decode(&p))
            .transpose()?;
        Ok((row.try_get(0)?, path))
    }

    /// A device's facts and its org's path, with the version they are as of
    /// (one statement).
    pub async fn device_at(
        &self,
        device: DeviceId,
    ) -> Result<(AuthzVersion, Option<(DeviceAccess, OrgPath)>), StoreError> {
        let row = sqlx::query(
            "SELECT v.value, d.id, d.org_id, d.owner_id, o.path FROM authz_version v \
             LEFT JOIN devices d ON d.id = $1 LEFT JOIN organizations o ON o.id = d.org_id \
             WHERE v.id = 1",
        )
        .bind(device.0)
        .fetch_one(self.pool())
        .await?;
        let version = row.try_get(0)?;
        let (Some(id), Some(path)) = (
            row.try_get::<Option<i64>, _>(1)?,
            row.try_get::<Option<String>, _>(4)?,
        ) else {
            return Ok((version, None));
        };
        let access = DeviceAccess {
            id: DeviceId(id),
            org: OrgId(row.try_get(2)?),
            owner: row.try_get::<Option<i64>, _>(3)?.map(UserId),
        };
        Ok((version, Some((access, OrgPath::decode(&path)?))))
    }
}

impl<M> Tx<M> {
    /// The version this transaction reads (in a read transaction: the
    /// version of its whole snapshot).
    pub async fn authz_version(&mut self) -> Result<AuthzVersion, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM authz_version WHERE id = 1")
                .fetch_one(self.conn())
                .await?,
        )
    }

    /// Every org's path, for warming a cache.
    pub async fn all_org_paths(&mut self) -> Result<Vec<OrgPath>, StoreError> {
        let paths: Vec<String> = sqlx::query_scalar("SELECT path FROM organizations")
            .fetch_all(self.conn())
            .await?;
        paths
            .iter()
            .map(|p| OrgPath::decode(p).map_err(StoreError::from))
            .collect()
    }

    /// The principals of the users with `after < id <= after + span`, and
    /// the greatest user id there is (to know when to stop).
    pub async fn principals_in_range(
        &mut self,
        after: UserId,
        span: i64,
    ) -> Result<(Vec<Principal>, UserId), StoreError> {
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM users u {PRINCIPAL_JOINS} \
             WHERE u.id > $1 AND u.id <= $2 ORDER BY u.id, m.org_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after.0)
            .bind(after.0.saturating_add(span))
            .fetch_all(self.conn())
            .await?;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM users")
            .fetch_one(self.conn())
            .await?;
        Ok((principals_from_rows(&rows, 0)?, UserId(max.unwrap_or(0))))
    }

    /// Up to `limit` devices with ids above `after`, in id order.
    pub async fn devices_after(
        &mut self,
        after: DeviceId,
        limit: i64,
    ) -> Result<Vec<DeviceAccess>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, org_id, owner_id FROM devices WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.0)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeviceAccess {
                    id: DeviceId(row.try_get(0)?),
                    org: OrgId(row.try_get(1)?),
                    owner: row.try_get::<Option<i64>, _>(2)?.map(UserId),
                })
            })
            .collect()
    }
}
