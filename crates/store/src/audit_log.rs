//! The audit log as read back: by target, and as an actions log of a subtree
//! or an org. Rows are written by [`crate::WriteTx::commit`] only.

use crate::audit::AuditOutcome;
use crate::error::StoreError;
use crate::tx::Tx;
use arbor_core::{OrgId, OrgPath, UserId};
use serde::Serialize;
use sqlx::Row;

/// One audit row as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: Option<UserId>,
    pub action: String,
    pub target: String,
    pub target_org: Option<OrgId>,
    pub outcome: AuditOutcome,
}

/// One audit row as shown in an actions log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: Option<UserId>,
    pub actor_home_org: Option<OrgId>,
    pub target_org: Option<OrgId>,
    pub client: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: serde_json::Value,
}

/// Which target orgs an audit query covers.
#[derive(Clone, Copy, Debug)]
pub enum AuditScope<'a> {
    /// The org and every org below it.
    Subtree(&'a OrgPath),
    /// That org alone.
    Org(OrgId),
}

impl<M> Tx<M> {
    /// Audit rows naming `target` (e.g. `device:42`), oldest first.
    pub async fn audit_for_target(&mut self, target: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor_user_id, action, target, target_org_id, outcome \
             FROM audit_events WHERE target = $1 ORDER BY id",
        )
        .bind(target.to_owned())
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                let outcome: String = r.try_get(6)?;
                Ok(AuditRecord {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get::<Option<i64>, _>(2)?.map(UserId),
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    target_org: r.try_get::<Option<i64>, _>(5)?.map(OrgId),
                    outcome: AuditOutcome::parse(&outcome),
                })
            })
            .collect()
    }

    /// Audit rows whose target org lies in `[lo, hi)` of the path range (a
    /// subtree) or equals `org` (a single org), optionally of one actor or about
    /// one target, newest first, before the cursor id.
    pub async fn audit_entries(
        &mut self,
        scope: AuditScope<'_>,
        actor: Option<UserId>,
        target: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (lo, hi, single) = match scope {
            AuditScope::Subtree(path) => {
                let (lo, hi) = path.subtree_range();
                (lo, hi, -1)
            }
            AuditScope::Org(org) => (String::new(), String::new(), org.0),
        };
        let rows = sqlx::query(
            "SELECT a.id, a.at, a.actor_user_id, a.actor_home_org_id, a.target_org_id, \
                    a.client_kind, a.action, a.target, a.outcome, a.details \
             FROM audit_events a JOIN organizations o ON o.id = a.target_org_id \
             WHERE (($3 = -1 AND o.path >= $1 AND o.path < $2) OR a.target_org_id = $3) \
               AND ($4 = -1 OR a.actor_user_id = $4) \
               AND ($5 = '' OR a.target = $5) \
               AND ($6 = -1 OR a.id < $6) \
             ORDER BY a.id DESC LIMIT $7",
        )
        .bind(lo)
        .bind(hi)
        .bind(single)
        .bind(actor.map_or(-1, |u| u.0))
        .bind(target.unwrap_or("").to_owned())
        .bind(before.unwrap_or(-1))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                let details: String = row.try_get(9)?;
                Ok(AuditEntry {
                    id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    actor: row.try_get::<Option<i64>, _>(2)?.map(UserId),
                    actor_home_org: row.try_get::<Option<i64>, _>(3)?.map(OrgId),
                    target_org: row.try_get::<Option<i64>, _>(4)?.map(OrgId),
                    client: row.try_get(5)?,
                    action: row.try_get(6)?,
                    target: row.try_get(7)?,
                    outcome: row.try_get(8)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }
}
