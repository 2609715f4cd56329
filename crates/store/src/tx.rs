//! Transactions: fact loaders (both modes) and mutations (write mode only).
//!
//! A write transaction is used in one order: lock what the decision depends on
//! (PostgreSQL `FOR UPDATE`; SQLite already holds the write lock), load the
//! facts, let arbor-core decide, write, and [`Tx::commit`] with the audit event.
//! Facts are never carried over from an earlier transaction, so there is no
//! check-then-act race. Mutations take an [`Allowed`], which only an allowing
//! decision yields.

use crate::audit::{AuditEvent, AuditOutcome};
use crate::dialect::Dialect;
use crate::error::{StoreError, found};
use crate::rows::{
    DeviceRecord, DeviceTemplateId, HierarchySettings, NewDatastream, NewDevice, NewOrg, NewUser,
    OrgRecord, SessionId, SignupMode, UserRecord, parse_status,
};
use arbor_core::{
    BuiltinRole, Decision, DepthLimit, DeviceId, Membership, OrgId, OrgPath, OrgType, Permission,
    PermissionMatrix, PermissionSet, Principal, Role, RoleId, UserId, UserStatus,
};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};
use std::marker::PhantomData;

/// Marker: a read-only transaction.
#[derive(Debug)]
pub struct Read;
/// Marker: a write transaction.
#[derive(Debug)]
pub struct Write;

pub type ReadTx = Tx<Read>;
pub type WriteTx = Tx<Write>;

/// Proof that a mutation was allowed. Obtained only from an allowing
/// [`Decision`], or — for server-level bootstrap operations that have no actor
/// (`arbor init`, demo data, the data generator) — from [`Allowed::bootstrap`].
#[derive(Clone, Debug)]
pub struct Allowed {
    decision: Option<Decision>,
}

impl Allowed {
    pub fn from_decision(decision: &Decision) -> Option<Self> {
        decision.is_allowed().then_some(Self {
            decision: Some(*decision),
        })
    }

    /// For operations performed by the server itself, not on behalf of a user.
    pub fn bootstrap() -> Self {
        Self { decision: None }
    }

    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
}

/// One database transaction. Dropped without commit, it rolls back.
pub struct Tx<M> {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    now: i64,
    _mode: PhantomData<M>,
}

impl<M> std::fmt::Debug for Tx<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("engine", &self.dialect.engine())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_permissions(text: &str) -> PermissionSet {
    // Unknown ids (a permission removed from the catalog) grant nothing.
    text.split_whitespace()
        .filter_map(|id| id.parse::<Permission>().ok())
        .collect()
}

pub(crate) fn format_permissions(set: PermissionSet) -> String {
    set.ids().join(" ")
}

pub(crate) fn normalize_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(StoreError::invalid("email", "not a valid email address"));
    }
    Ok(email.to_lowercase())
}

pub(crate) const ORG_COLUMNS: &str = "o.id, o.parent_id, o.path, o.org_type, o.name, o.description, \
     o.timezone, o.unit_system, o.contact, o.created_at";

pub(crate) fn org_from_row(row: &AnyRow) -> Result<OrgRecord, StoreError> {
    let org_type: String = row.try_get(3)?;
    let path: String = row.try_get(2)?;
    Ok(OrgRecord {
        id: OrgId(row.try_get(0)?),
        parent: row.try_get::<Option<i64>, _>(1)?.map(OrgId),
        path: OrgPath::decode(&path)?,
        org_type: OrgType::parse(&org_type)?,
        name: row.try_get(4)?,
        description: row.try_get(5)?,
        timezone: row.try_get(6)?,
        unit_system: row.try_get(7)?,
        contact: row.try_get(8)?,
        created_at: row.try_get(9)?,
    })
}

pub(crate) const DEVICE_COLUMNS: &str =
    "d.id, o.path, d.template_id, d.owner_id, d.name, d.created_at";

pub(crate) fn device_from_row(row: &AnyRow) -> Result<DeviceRecord, StoreError> {
    let path: String = row.try_get(1)?;
    Ok(DeviceRecord {
        id: DeviceId(row.try_get(0)?),
        org: OrgPath::decode(&path)?,
        template: DeviceTemplateId(row.try_get(2)?),
        owner: row.try_get::<Option<i64>, _>(3)?.map(UserId),
        name: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.name, u.status, u.locale, u.created_at";

pub(crate) fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let status: String = row.try_get(3)?;
    Ok(UserRecord {
        id: UserId(row.try_get(0)?),
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        status: parse_status(&status),
        locale: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

fn builtin_from(text: Option<String>) -> Option<BuiltinRole> {
    match text.as_deref() {
        Some("admin") => Some(BuiltinRole::Admin),
        Some("staff") => Some(BuiltinRole::Staff),
        Some("user") => Some(BuiltinRole::User),
        _ => None,
    }
}

fn builtin_str(role: BuiltinRole) -> &'static str {
    match role {
        BuiltinRole::Admin => "admin",
        BuiltinRole::Staff => "staff",
        BuiltinRole::User => "user",
    }
}

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

impl<M> Tx<M> {
    pub(crate) fn new(tx: Transaction<'static, Any>, dialect: Dialect, now: i64) -> Self {
        Self {
            tx,
            dialect,
            now,
            _mode: PhantomData,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The transaction's time (unix ms), read once from the store's clock.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The user with every membership and, for each, the role's permission set
    /// as configured in that membership's org. `None` if the user does not exist.
    pub async fn principal(&mut self, user: UserId) -> Result<Option<Principal>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.status, o.path, m.role_id, m.home, rp.permissions \
             FROM users u \
             LEFT JOIN memberships m ON m.user_id = u.id \
             LEFT JOIN organizations o ON o.id = m.org_id \
             LEFT JOIN role_permissions rp ON rp.org_id = m.org_id AND rp.role_id = m.role_id \
             WHERE u.id = $1",
        )
        .bind(user.0)
        .fetch_all(self.conn())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let status = parse_status(&first.try_get::<String, _>(0)?);
        let mut memberships = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(path) = row.try_get::<Option<String>, _>(1)? else {
                continue;
            };
            let home: i64 = row.try_get(3)?;
            memberships.push(Membership {
                org: OrgPath::decode(&path)?,
                role: RoleId(row.try_get(2)?),
                permissions: row
                    .try_get::<Option<String>, _>(4)?
                    .map(|p| parse_permissions(&p))
                    .unwrap_or(PermissionSet::EMPTY),
                home: home == 1,
            });
        }
        Ok(Some(Principal {
            user,
            status,
            session_revoked: false,
            memberships,
        }))
    }

    /// The principal behind a session token hash; revoked or expired sessions
    /// yield a principal with `session_revoked` set (denied by rule 1).
    pub async fn session_principal(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(SessionId, Principal)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, revoked_at, expires_at FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = SessionId(row.try_get(0)?);
        let user = UserId(row.try_get(1)?);
        let revoked =
            row.try_get::<Option<i64>, _>(2)?.is_some() || row.try_get::<i64, _>(3)? <= self.now;
        Ok(self.principal(user).await?.map(|mut p| {
            p.session_revoked = revoked;
            (session, p)
        }))
    }

    pub async fn org(&mut self, id: OrgId) -> Result<OrgRecord, StoreError> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound {
                what: "organization",
            })?;
        org_from_row(&row)
    }

    pub async fn org_path(&mut self, id: OrgId) -> Result<OrgPath, StoreError> {
        let path: Option<String> =
            sqlx::query_scalar("SELECT path FROM organizations WHERE id = $1")
                .bind(id.0)
                .fetch_optional(self.conn())
                .await?;
        let path = path.ok_or(StoreError::NotFound {
            what: "organization",
        })?;
        Ok(OrgPath::decode(&path)?)
    }

    pub async fn hierarchy_settings(
        &mut self,
        hierarchy: OrgId,
    ) -> Result<HierarchySettings, StoreError> {
        let row = sqlx::query(
            "SELECT depth_limit, multi_org_membership, signup_mode, allowed_email_domains \
             FROM hierarchies WHERE root_org_id = $1",
        )
        .bind(hierarchy.0)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound { what: "hierarchy" })?;
        let depth: i64 = row.try_get(0)?;
        let multi: i64 = row.try_get(1)?;
        let signup: String = row.try_get(2)?;
        let domains: String = row.try_get(3)?;
        Ok(HierarchySettings {
            depth_limit: DepthLimit::new(u8::try_from(depth).unwrap_or(u8::MAX))?,
            multi_org_membership: multi == 1,
            signup_mode: SignupMode::parse(&signup),
            allowed_email_domains: domains.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// The greatest depth in the subtree at `path`, and whether any org in it
    /// is not PERSONAL (the facts `arbor_core::org::check_transfer_org` needs).
    pub async fn subtree_shape(&mut self, path: &OrgPath) -> Result<(usize, bool), StoreError> {
        let (lo, hi) = path.subtree_range();
        let row = sqlx::query(
            "SELECT MAX(depth), COUNT(CASE WHEN org_type <> 'PERSONAL' THEN 1 END) \
             FROM organizations WHERE path >= $1 AND path < $2",
        )
        .bind(lo)
        .bind(hi)
        .fetch_one(self.conn())
        .await?;
        let deepest: Option<i64> = row.try_get(0)?;
        let non_personal: i64 = row.try_get(1)?;
        Ok((
            usize::try_from(deepest.unwrap_or(0)).unwrap_or(0),
            non_personal > 0,
        ))
    }

    pub async fn device(&mut self, id: DeviceId) -> Result<DeviceRecord, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.id = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound { what: "device" })?;
        device_from_row(&row)
    }

    /// Every device, for tests and the reference model (small worlds only).
    pub async fn all_devices(&mut self) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             ORDER BY d.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// Every organization, ordered by id (small worlds only).
    pub async fn all_orgs(&mut self) -> Result<Vec<OrgRecord>, StoreError> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organizations o ORDER BY o.id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    pub async fn user(&mut self, id: UserId) -> Result<UserRecord, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound { what: "user" })?;
        user_from_row(&row)
    }

    pub async fn user_by_email(&mut self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let normalized = normalize_email(email)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_normalized = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(normalized)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user's role in `org` and that role's set there, if a member.
    pub async fn member_role(
        &mut self,
        user: UserId,
        org: OrgId,
    ) -> Result<Option<(RoleId, PermissionSet)>, StoreError> {
        let row = sqlx::query(
            "SELECT m.role_id, rp.permissions FROM memberships m \
             LEFT JOIN role_permissions rp ON rp.org_id = m.org_id AND rp.role_id = m.role_id \
             WHERE m.user_id = $1 AND m.org_id = $2",
        )
        .bind(user.0)
        .bind(org.0)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let permissions = row
            .try_get::<Option<String>, _>(1)?
            .map(|p| parse_permissions(&p))
            .unwrap_or(PermissionSet::EMPTY);
        Ok(Some((RoleId(row.try_get(0)?), permissions)))
    }

    /// `perms(org, role)`.
    pub async fn role_permissions(
        &mut self,
        org: OrgId,
        role: RoleId,
    ) -> Result<PermissionSet, StoreError> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT permissions FROM role_permissions WHERE org_id = $1 AND role_id = $2",
        )
        .bind(org.0)
        .bind(role.0)
        .fetch_optional(self.conn())
        .await?;
        Ok(text
            .map(|t| parse_permissions(&t))
            .unwrap_or(PermissionSet::EMPTY))
    }

    /// The org's whole role → permission set table.
    pub async fn permission_matrix(&mut self, org: OrgId) -> Result<PermissionMatrix, StoreError> {
        let rows =
            sqlx::query("SELECT role_id, permissions FROM role_permissions WHERE org_id = $1")
                .bind(org.0)
                .fetch_all(self.conn())
                .await?;
        let mut matrix = PermissionMatrix::default();
        for row in rows {
            let text: String = row.try_get(1)?;
            matrix.set(RoleId(row.try_get(0)?), parse_permissions(&text));
        }
        Ok(matrix)
    }

    /// The hierarchy's roles, in display order.
    pub async fn roles(&mut self, hierarchy: OrgId) -> Result<Vec<Role>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, builtin FROM roles WHERE hierarchy_id = $1 ORDER BY position, id",
        )
        .bind(hierarchy.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Role {
                    id: RoleId(row.try_get(0)?),
                    name: row.try_get(1)?,
                    builtin: builtin_from(row.try_get(2)?),
                })
            })
            .collect()
    }

    /// Active members of `org` holding the Admin role.
    pub async fn admin_count(&mut self, org: OrgId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memberships m \
             JOIN roles r ON r.id = m.role_id \
             JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND r.builtin = 'admin' AND u.status = 'active'",
        )
        .bind(org.0)
        .fetch_one(self.conn())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn is_role_admin(&mut self, role: RoleId) -> Result<bool, StoreError> {
        let builtin: Option<Option<String>> =
            sqlx::query_scalar("SELECT builtin FROM roles WHERE id = $1")
                .bind(role.0)
                .fetch_optional(self.conn())
                .await?;
        let builtin = builtin.ok_or(StoreError::NotFound { what: "role" })?;
        Ok(builtin.as_deref() == Some("admin"))
    }

    pub async fn template_enabled(
        &mut self,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM org_templates WHERE org_id = $1 AND template_id = $2",
        )
        .bind(org.0)
        .bind(template.0)
        .fetch_one(self.conn())
        .await?;
        Ok(n > 0)
    }

    pub async fn device_metafields(
        &mut self,
        device: DeviceId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, value FROM device_metafields WHERE device_id = $1 ORDER BY name",
        )
        .bind(device.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

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

    /// Number of rows of `table` (tests, generator reports).
    pub async fn count_rows(&mut self, table: Table) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(self.conn())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Tables whose rows can be counted with [`Tx::count_rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Organizations,
    Users,
    Memberships,
    Devices,
    DeviceMetafields,
    AuditEvents,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Organizations => "organizations",
            Self::Users => "users",
            Self::Memberships => "memberships",
            Self::Devices => "devices",
            Self::DeviceMetafields => "device_metafields",
            Self::AuditEvents => "audit_events",
        }
    }
}

impl Tx<Read> {
    /// Ends the read transaction.
    pub async fn finish(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Tx<Write> {
    /// Writes the audit event and commits: the only way to make a write
    /// transaction's changes durable. A denied attempt commits its audit row
    /// alone.
    pub async fn commit(mut self, event: AuditEvent) -> Result<(), StoreError> {
        let details = serde_json::to_string(&event.details).unwrap_or_else(|_| "{}".into());
        sqlx::query(
            "INSERT INTO audit_events (at, actor_user_id, actor_home_org_id, target_org_id, \
             client_kind, action, target, outcome, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.now)
        .bind(event.actor.map(|u| u.0))
        .bind(event.actor_home_org.map(|o| o.0))
        .bind(event.target_org.map(|o| o.0))
        .bind(event.client.as_str())
        .bind(event.action)
        .bind(event.target)
        .bind(event.outcome.as_str())
        .bind(details)
        .execute(self.conn())
        .await?;
        // The authorization change feed (migrations/*/0002): a new version,
        // stamped on the change rows this transaction's triggers recorded.
        // Last, so the version row stays locked only until the commit.
        sqlx::raw_sql(crate::authz::STAMP_CHANGES)
            .execute(self.conn())
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    async fn lock(
        &mut self,
        sql: &'static str,
        id: i64,
        what: &'static str,
    ) -> Result<(), StoreError> {
        let sql = format!("{sql}{}", self.dialect.for_update());
        let found: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound { what })
    }

    /// Locks an organization's row: membership and role changes of that org
    /// queue on it (PostgreSQL; SQLite writers are serialised already).
    pub async fn lock_org(&mut self, org: OrgId) -> Result<(), StoreError> {
        self.lock(
            "SELECT id FROM organizations WHERE id = $1",
            org.0,
            "organization",
        )
        .await
    }

    /// Locks a device's row: transfers and edits of that device queue on it.
    pub async fn lock_device(&mut self, device: DeviceId) -> Result<(), StoreError> {
        self.lock("SELECT id FROM devices WHERE id = $1", device.0, "device")
            .await
    }

    /// Locks a user's row (status and session changes).
    pub async fn lock_user(&mut self, user: UserId) -> Result<(), StoreError> {
        self.lock("SELECT id FROM users WHERE id = $1", user.0, "user")
            .await
    }

    /// Locks every org of the subtree at `path` (re-parenting). Sub-org
    /// creation locks the parent first, so once this returns no child can
    /// appear in the subtree until commit; read the subtree's facts (e.g.
    /// [`Tx::subtree_shape`]) *after* this call, in a new statement, so they
    /// include children committed while it waited.
    pub async fn lock_subtree(&mut self, path: &OrgPath) -> Result<u64, StoreError> {
        let (lo, hi) = path.subtree_range();
        let sql = format!(
            "SELECT id FROM organizations WHERE path >= $1 AND path < $2{}",
            self.dialect.for_update()
        );
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(lo)
            .bind(hi)
            .fetch_all(self.conn())
            .await?;
        Ok(ids.len() as u64)
    }

    /// Locks a hierarchy (role list changes, re-parenting).
    pub async fn lock_hierarchy(&mut self, hierarchy: OrgId) -> Result<(), StoreError> {
        self.lock(
            "SELECT root_org_id FROM hierarchies WHERE root_org_id = $1",
            hierarchy.0,
            "hierarchy",
        )
        .await
    }

    /// Inserts an organization under `parent` (or a root when `None`) and
    /// returns it with its path.
    pub async fn insert_org(
        &mut self,
        _by: &Allowed,
        parent: Option<&OrgPath>,
        org: &NewOrg,
    ) -> Result<OrgRecord, StoreError> {
        let name = org.name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(StoreError::invalid("name", "1 to 128 characters"));
        }
        let depth = parent.map_or(1, |p| p.depth() + 1);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO organizations (parent_id, path, depth, org_type, name, description, \
             timezone, unit_system, contact, created_at) \
             VALUES ($1, '', $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(parent.map(|p| p.id().0))
        .bind(i64::try_from(depth).unwrap_or(i64::MAX))
        .bind(org.org_type.as_str())
        .bind(name.to_owned())
        .bind(org.description.clone())
        .bind(org.timezone.clone())
        .bind(org.unit_system.clone())
        .bind(org.contact.clone())
        .bind(self.now)
        .fetch_one(self.conn())
        .await?;
        let path = match parent {
            Some(p) => p.child(OrgId(id)),
            None => OrgPath::root(OrgId(id)),
        };
        sqlx::query("UPDATE organizations SET path = $1 WHERE id = $2")
            .bind(path.encode())
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(OrgRecord {
            id: OrgId(id),
            parent: parent.map(OrgPath::id),
            path,
            org_type: org.org_type,
            name: name.to_owned(),
            description: org.description.clone(),
            timezone: org.timezone.clone(),
            unit_system: org.unit_system.clone(),
            contact: org.contact.clone(),
            created_at: self.now,
        })
    }

    pub async fn insert_hierarchy(
        &mut self,
        _by: &Allowed,
        root: OrgId,
        settings: &HierarchySettings,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hierarchies (root_org_id, depth_limit, multi_org_membership, signup_mode, \
             allowed_email_domains, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(root.0)
        .bind(i64::from(u8::from(settings.depth_limit)))
        .bind(i16::from(settings.multi_org_membership))
        .bind(settings.signup_mode.as_str())
        .bind(settings.allowed_email_domains.join(" "))
        .bind(self.now)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn insert_role(
        &mut self,
        _by: &Allowed,
        hierarchy: OrgId,
        name: &str,
        builtin: Option<BuiltinRole>,
        position: i64,
    ) -> Result<Role, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO roles (hierarchy_id, name, name_lower, builtin, position) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name.to_owned())
        .bind(name.to_lowercase())
        .bind(builtin.map(builtin_str))
        .bind(position)
        .fetch_one(self.conn())
        .await?;
        Ok(Role {
            id: RoleId(id),
            name: name.to_owned(),
            builtin,
        })
    }

    /// Sets `perms(org, role)`, stored as permission string ids.
    pub async fn set_role_permissions(
        &mut self,
        _by: &Allowed,
        org: OrgId,
        role: RoleId,
        permissions: PermissionSet,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO role_permissions (org_id, role_id, permissions) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, role_id) DO UPDATE SET permissions = excluded.permissions",
        )
        .bind(org.0)
        .bind(role.0)
        .bind(format_permissions(permissions))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Copies every role's set of `from` to `to` (a new sub-org inherits its parent's).
    pub async fn copy_role_permissions(
        &mut self,
        _by: &Allowed,
        from: OrgId,
        to: OrgId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO role_permissions (org_id, role_id, permissions) \
             SELECT $1, role_id, permissions FROM role_permissions WHERE org_id = $2",
        )
        .bind(to.0)
        .bind(from.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Inserts a user; the email must be new to the server (ignoring case).
    pub async fn insert_user(
        &mut self,
        _by: &Allowed,
        user: &NewUser,
    ) -> Result<UserId, StoreError> {
        let normalized = normalize_email(&user.email)?;
        let name = user.name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(StoreError::invalid("name", "1 to 128 characters"));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, email_normalized, name, password_hash, status, locale, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(user.email.trim().to_owned())
        .bind(normalized)
        .bind(name.to_owned())
        .bind(user.password_hash.clone())
        .bind(user.status.as_str())
        .bind(user.locale.clone())
        .bind(self.now)
        .fetch_one(self.conn())
        .await?;
        Ok(UserId(id))
    }

    pub async fn set_user_status(
        &mut self,
        _by: &Allowed,
        user: UserId,
        status: UserStatus,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(user.0)
            .execute(self.conn())
            .await?;
        found(&done, "user")?;
        Ok(())
    }

    pub async fn insert_membership(
        &mut self,
        _by: &Allowed,
        user: UserId,
        org: OrgId,
        role: RoleId,
        home: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO memberships (user_id, org_id, role_id, home, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.0)
        .bind(org.0)
        .bind(role.0)
        .bind(i16::from(home))
        .bind(self.now)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_member_role(
        &mut self,
        _by: &Allowed,
        user: UserId,
        org: OrgId,
        role: RoleId,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE memberships SET role_id = $1 WHERE user_id = $2 AND org_id = $3")
                .bind(role.0)
                .bind(user.0)
                .bind(org.0)
                .execute(self.conn())
                .await?;
        found(&done, "member")?;
        Ok(())
    }

    /// Inserts a device template with its datastreams.
    pub async fn insert_device_template(
        &mut self,
        _by: &Allowed,
        hierarchy: OrgId,
        name: &str,
        datastreams: &[NewDatastream],
    ) -> Result<DeviceTemplateId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO device_templates (hierarchy_id, name, created_at) VALUES ($1, $2, $3) \
             RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name.to_owned())
        .bind(self.now)
        .fetch_one(self.conn())
        .await?;
        for ds in datastreams {
            sqlx::query(
                "INSERT INTO template_datastreams (template_id, pin, name, value_type, min_value, \
                 max_value, units) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(i64::from(ds.pin))
            .bind(ds.name.clone())
            .bind(ds.value_type.clone())
            .bind(ds.min)
            .bind(ds.max)
            .bind(ds.units.clone())
            .execute(self.conn())
            .await?;
        }
        Ok(DeviceTemplateId(id))
    }

    pub async fn enable_template(
        &mut self,
        _by: &Allowed,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO org_templates (org_id, template_id) VALUES ($1, $2) \
             ON CONFLICT (org_id, template_id) DO NOTHING",
        )
        .bind(org.0)
        .bind(template.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Inserts a device with its metafields into `org`.
    pub async fn insert_device(
        &mut self,
        _by: &Allowed,
        org: &OrgPath,
        device: &NewDevice,
    ) -> Result<DeviceId, StoreError> {
        let name = device.name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(StoreError::invalid("name", "1 to 128 characters"));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (hierarchy_id, org_id, template_id, owner_id, name, \
             auth_token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(org.root_id().0)
        .bind(org.id().0)
        .bind(device.template.0)
        .bind(device.owner.map(|u| u.0))
        .bind(name.to_owned())
        .bind(device.auth_token_hash.clone())
        .bind(self.now)
        .fetch_one(self.conn())
        .await?;
        for (key, value) in &device.metafields {
            sqlx::query(
                "INSERT INTO device_metafields (device_id, name, value) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(key.clone())
            .bind(value.clone())
            .execute(self.conn())
            .await?;
        }
        Ok(DeviceId(id))
    }

    /// Moves a device to `org` with `owner`. History stays with the device.
    pub async fn move_device(
        &mut self,
        _by: &Allowed,
        device: DeviceId,
        org: OrgId,
        owner: Option<UserId>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE devices SET org_id = $1, owner_id = $2 WHERE id = $3")
            .bind(org.0)
            .bind(owner.map(|u| u.0))
            .bind(device.0)
            .execute(self.conn())
            .await?;
        found(&done, "device")?;
        Ok(())
    }

    /// Re-parents the subtree at `old` so that its root's path becomes `new`:
    /// one UPDATE rewrites every path of the subtree.
    pub async fn move_subtree(
        &mut self,
        _by: &Allowed,
        old: &OrgPath,
        new: &OrgPath,
    ) -> Result<u64, StoreError> {
        let (lo, hi) = old.subtree_range();
        let old_len = i64::try_from(lo.len()).unwrap_or(i64::MAX);
        let delta =
            i64::try_from(new.depth()).unwrap_or(0) - i64::try_from(old.depth()).unwrap_or(0);
        let moved = sqlx::query(
            "UPDATE organizations SET path = $1 || substr(path, CAST($2 AS INTEGER)), \
             depth = depth + $3 WHERE path >= $4 AND path < $5",
        )
        .bind(new.encode())
        .bind(old_len + 1)
        .bind(delta)
        .bind(lo)
        .bind(hi)
        .execute(self.conn())
        .await?
        .rows_affected();
        sqlx::query("UPDATE organizations SET parent_id = $1 WHERE id = $2")
            .bind(new.parent_id().map(|p| p.0))
            .bind(old.id().0)
            .execute(self.conn())
            .await?;
        Ok(moved)
    }

    /// Creates a session for `user`, valid until `expires_at`.
    pub async fn insert_session(
        &mut self,
        _by: &Allowed,
        user: UserId,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<SessionId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $3, $4) RETURNING id",
        )
        .bind(token_hash.to_owned())
        .bind(user.0)
        .bind(self.now)
        .bind(expires_at)
        .fetch_one(self.conn())
        .await?;
        Ok(SessionId(id))
    }

    /// Revokes every live session of `user` at once (logout everywhere,
    /// suspension, password change). Returns how many were revoked.
    pub async fn revoke_sessions(
        &mut self,
        _by: &Allowed,
        user: UserId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now)
        .bind(user.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    /// Queues a mail in the outbox; it is sent after commit by the outbox worker.
    pub async fn enqueue_mail(
        &mut self,
        _by: &Allowed,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (created_at, to_address, subject, body) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(self.now)
        .bind(to.to_owned())
        .bind(subject.to_owned())
        .bind(body.to_owned())
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }
}
