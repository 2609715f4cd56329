//! `device_scopes`: for each device, the org subtrees it lies in (its org's
//! ancestors at depth 2 or deeper, the org itself included; depth 1 is
//! `devices.hierarchy_id`). A sub-org Admin's device list reads its page from
//! this table's key `(ancestor_id, device_id)` in id order, so a first page
//! costs the same however big the subtree is (see migration 0014).
//!
//! The table is derived data: [`DEVICE_SCOPES_DEFINITION`] is what it must
//! equal at every commit. It is kept so here, by every write that gives a
//! device an org or an org a new place in the tree; rows go with their
//! device (`ON DELETE CASCADE`).

use crate::error::StoreError;
use crate::tx::{Tx, Write};
use arbor_core::{DeviceId, OrgId, OrgPath};
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

/// The ancestors a device of the org at `org` is listed under.
fn scope_ids(org: &OrgPath) -> &[OrgId] {
    org.ids().get(1..).unwrap_or(&[])
}

impl<M> Tx<M> {
    /// Rows of `device_scopes` that differ from [`DEVICE_SCOPES_DEFINITION`]:
    /// `(ancestor_id, device_id, present)` — `present` true for a stored row
    /// the definition lacks, false for a missing one. Empty when consistent.
    pub async fn device_scope_drift(&mut self) -> Result<Vec<(i64, i64, bool)>, StoreError> {
        let sql = format!(
            "SELECT s.ancestor_id, s.device_id, CAST(1 AS BIGINT) FROM device_scopes s \
             WHERE NOT EXISTS (SELECT 1 FROM ({DEVICE_SCOPES_DEFINITION}) x \
               WHERE x.ancestor_id = s.ancestor_id AND x.device_id = s.device_id) \
             UNION ALL \
             SELECT x.ancestor_id, x.device_id, CAST(0 AS BIGINT) FROM ({DEVICE_SCOPES_DEFINITION}) x \
             WHERE NOT EXISTS (SELECT 1 FROM device_scopes s \
               WHERE s.ancestor_id = x.ancestor_id AND s.device_id = x.device_id)"
        );
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        Ok(rows.into_iter().map(|(a, d, p)| (a, d, p != 0)).collect())
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
        Ok(())
    }

    /// The org `org` is going away and its devices have moved to its parent:
    /// nothing is listed under it any more.
    pub(crate) async fn drop_org_scope(&mut self, org: OrgId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM device_scopes WHERE ancestor_id = $1")
            .bind(org.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
