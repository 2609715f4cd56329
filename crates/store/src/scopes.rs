//! The subtree indexes: for each device (`device_scopes`, migration 0014)
//! and each membership (`member_scopes`, 0015), the org subtrees it lies in.
//! A subtree Admin's device or user list reads its page from these keys,
//! `(ancestor_id, device_id)` and `(ancestor_id, user_id, org_id)`, in id
//! order, so a first page costs the same however big the subtree is.
//! Devices are indexed under their org's ancestors at depth 2 or deeper (the
//! org itself included; depth 1 is `devices.hierarchy_id`), memberships
//! under all of them, the root included.
//!
//! Both tables are derived data: [`DEVICE_SCOPES_DEFINITION`] and
//! [`MEMBER_SCOPES_DEFINITION`] are what they must equal at every commit.
//! They are kept so here, by every write that gives a device or a membership
//! an org or an org a new place in the tree; rows go with their device or
//! membership (`ON DELETE CASCADE`).

use crate::error::StoreError;
use crate::tx::{Tx, Write};
use arbor_core::{DeviceId, OrgId, OrgPath, UserId};
use sqlx::AssertSqlSafe;

/// The rows `device_scopes` must hold, as a query of `(ancestor_id,
/// device_id)`: the orgs of depth ≥ 2 whose subtree range holds the device's
/// org. The migration that made the table filled it with this, the data
/// generator does the same after its bulk load, and the tests compare the
/// table with it.
pub const DEVICE_SCOPES_DEFINITION: &str = "SELECT a.id AS ancestor_id, d.id AS device_id \
     FROM organizations a \
     JOIN organizations o \
       ON o.path >= a.path AND o.path < substr(a.path, 1, length(a.path) - 1) || '0' \
     JOIN devices d ON d.org_id = o.id \
     WHERE a.depth >= 2";

/// The rows `member_scopes` must hold, as a query of `(ancestor_id,
/// user_id, org_id)`: every org whose subtree range holds the membership's.
pub const MEMBER_SCOPES_DEFINITION: &str = "SELECT a.id AS ancestor_id, m.user_id AS user_id, \
     m.org_id AS org_id \
     FROM organizations a \
     JOIN organizations o \
       ON o.path >= a.path AND o.path < substr(a.path, 1, length(a.path) - 1) || '0' \
     JOIN memberships m ON m.org_id = o.id \
     WHERE a.depth >= 1";

/// The ancestors a device of the org at `org` is listed under.
fn scope_ids(org: &OrgPath) -> &[OrgId] {
    org.ids().get(1..).unwrap_or(&[])
}

impl<M> Tx<M> {
    /// Rows of `device_scopes` and `member_scopes` that differ from their
    /// definitions, each as `"<table> stored|missing (<key>)"`. Empty when
    /// both are consistent.
    pub async fn scope_drift(&mut self) -> Result<Vec<String>, StoreError> {
        let mut drift = Vec::new();
        for (table, definition, key) in [
            (
                "device_scopes",
                DEVICE_SCOPES_DEFINITION,
                "ancestor_id, device_id",
            ),
            (
                "member_scopes",
                MEMBER_SCOPES_DEFINITION,
                "ancestor_id, user_id, org_id",
            ),
        ] {
            let text = |alias: &str| {
                key.split(", ")
                    .map(|c| format!("CAST({alias}.{c} AS TEXT)"))
                    .collect::<Vec<_>>()
                    .join(" || ',' || ")
            };
            let (stored, defined) = (text("s"), text("x"));
            let sql = format!(
                "SELECT 'stored', {stored} FROM {table} s \
                 WHERE {stored} NOT IN (SELECT {defined} FROM ({definition}) x) \
                 UNION ALL \
                 SELECT 'missing', {defined} FROM ({definition}) x \
                 WHERE {defined} NOT IN (SELECT {stored} FROM {table} s)"
            );
            let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_all(self.conn())
                .await?;
            drift.extend(
                rows.into_iter()
                    .map(|(what, row)| format!("{table} {what} ({row})")),
            );
        }
        Ok(drift)
    }
}

impl Tx<Write> {
    /// Lists `device`, now of the org at `org`, under that org's subtrees
    /// (replacing whatever it was listed under).
    pub(crate) async fn put_device_scopes(
        &mut self,
        device: DeviceId,
        org: &OrgPath,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM device_scopes WHERE device_id = $1")
            .bind(device.0)
            .execute(self.conn())
            .await?;
        for ancestor in scope_ids(org) {
            sqlx::query("INSERT INTO device_scopes (ancestor_id, device_id) VALUES ($1, $2)")
                .bind(ancestor.0)
                .bind(device.0)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    /// Lists the membership of `user` in the org at `org` under that org's
    /// subtrees, the root's included.
    pub(crate) async fn put_member_scopes(
        &mut self,
        user: UserId,
        org: &OrgPath,
    ) -> Result<(), StoreError> {
        for ancestor in org.ids() {
            sqlx::query(
                "INSERT INTO member_scopes (ancestor_id, user_id, org_id) VALUES ($1, $2, $3)",
            )
            .bind(ancestor.0)
            .bind(user.0)
            .bind(org.id().0)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// After the subtree rooted at `old` moved to `new` (same root org id, a
    /// new parent): its devices leave the subtrees of the old ancestors above
    /// it and join those of the new ones. The subtree's own orgs stay their
    /// ancestors, and the moved root (depth ≥ 2 before and after) names
    /// exactly the devices concerned.
    pub(crate) async fn rescope_moved_subtree(
        &mut self,
        old: &OrgPath,
        new: &OrgPath,
    ) -> Result<(), StoreError> {
        let root = old.id().0;
        let above = |p: &OrgPath| {
            let ids = scope_ids(p);
            ids[..ids.len().saturating_sub(1)].to_vec()
        };
        let (old_above, new_above) = (above(old), above(new));
        for gone in old_above.iter().filter(|a| !new_above.contains(a)) {
            sqlx::query(
                "DELETE FROM device_scopes WHERE ancestor_id = $1 AND device_id IN \
                 (SELECT device_id FROM device_scopes WHERE ancestor_id = $2)",
            )
            .bind(gone.0)
            .bind(root)
            .execute(self.conn())
            .await?;
        }
        for joined in new_above.iter().filter(|a| !old_above.contains(a)) {
            sqlx::query(
                "INSERT INTO device_scopes (ancestor_id, device_id) \
                 SELECT $1, device_id FROM device_scopes WHERE ancestor_id = $2",
            )
            .bind(joined.0)
            .bind(root)
            .execute(self.conn())
            .await?;
        }
        // Memberships likewise, under every ancestor (the common root stays).
        let (old_above, new_above) = (&old.ids()[..old.depth() - 1], &new.ids()[..new.depth() - 1]);
        for gone in old_above.iter().filter(|a| !new_above.contains(a)) {
            sqlx::query(
                "DELETE FROM member_scopes WHERE ancestor_id = $1 AND EXISTS \
                 (SELECT 1 FROM member_scopes r WHERE r.ancestor_id = $2 \
                  AND r.user_id = member_scopes.user_id AND r.org_id = member_scopes.org_id)",
            )
            .bind(gone.0)
            .bind(root)
            .execute(self.conn())
            .await?;
        }
        for joined in new_above.iter().filter(|a| !old_above.contains(a)) {
            sqlx::query(
                "INSERT INTO member_scopes (ancestor_id, user_id, org_id) \
                 SELECT $1, user_id, org_id FROM member_scopes WHERE ancestor_id = $2",
            )
            .bind(joined.0)
            .bind(root)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// The org `org` is going away, its devices and members have moved to its
    /// parent: nothing is listed under it any more.
    pub(crate) async fn drop_org_scope(&mut self, org: OrgId) -> Result<(), StoreError> {
        for table in ["device_scopes", "member_scopes"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE ancestor_id = $1"
            )))
            .bind(org.0)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }
}
