//! Facts and mutations for managing the org tree, roles and permission
//! templates, and for access insight (who-can): org settings, deletion with
//! contents moved to the parent, role rename/delete with replacement, template
//! storage, subtree matrices, and principals of the members above an org.

use crate::error::{StoreError, found};
use crate::rows::{DeviceRecord, OrgRecord, UserRecord};
use crate::tx::{
    Allowed, DEVICE_COLUMNS, ORG_COLUMNS, Tx, USER_COLUMNS, Write, device_from_row,
    format_permissions, org_from_row, parse_permissions, user_from_row,
};
use arbor_core::org::OrgContents;
use arbor_core::role::RoleHolder;
use arbor_core::{
    DeviceId, Membership, OrgId, OrgPath, PermissionMatrix, PermissionSet, PermissionTemplate,
    Principal, RoleId, Scope, UserId,
};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;

/// New values of an organization's settings (already merged with the old ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSettings {
    pub name: String,
    pub description: String,
    pub timezone: String,
    pub unit_system: String,
    pub contact: String,
}

/// A stored permission template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTemplate {
    pub id: i64,
    pub hierarchy: OrgId,
    pub template: PermissionTemplate,
    pub created_at: i64,
}

/// `$n` placeholders for a list of ids, bound in order after `offset` others.
fn placeholders(offset: usize, n: usize) -> String {
    (1..=n)
        .map(|i| format!("${}", offset + i))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<M> Tx<M> {
    /// What an org still holds: direct sub-orgs, memberships, devices.
    pub async fn org_contents(&mut self, org: OrgId) -> Result<OrgContents, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM organizations WHERE parent_id = $1), \
             (SELECT COUNT(*) FROM memberships WHERE org_id = $1), \
             (SELECT COUNT(*) FROM devices WHERE org_id = $1)",
        )
        .bind(org.0)
        .fetch_one(self.conn())
        .await?;
        let count = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        Ok(OrgContents {
            suborgs: count(0)?,
            users: count(1)?,
            devices: count(2)?,
        })
    }

    /// The roles held by members of `org` (to check what moving them grants).
    pub async fn member_roles_of(&mut self, org: OrgId) -> Result<Vec<RoleId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT role_id FROM memberships WHERE org_id = $1 ORDER BY role_id",
        )
        .bind(org.0)
        .fetch_all(self.conn())
        .await?;
        Ok(ids.into_iter().map(RoleId).collect())
    }

    /// Orgs of the subtree at `path` (itself first, then by path), whose name
    /// contains `name` (case-insensitive), at most `limit`.
    pub async fn subtree_orgs(
        &mut self,
        path: &OrgPath,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrgRecord>, StoreError> {
        let (lo, hi) = path.subtree_range();
        let pattern = name.map(|n| format!("%{}%", n.trim().to_lowercase()));
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.path >= $1 AND o.path < $2 \
             AND ($3 = '' OR LOWER(o.name) LIKE $3) ORDER BY o.path LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(lo)
            .bind(hi)
            .bind(pattern.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    /// Orgs in `scope` whose name contains `name`, ordered by id after `after`.
    pub async fn search_orgs(
        &mut self,
        scope: &Scope,
        name: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OrgRecord>, StoreError> {
        let pattern = format!("%{}%", name.trim().to_lowercase());
        let rows = if scope.descendants {
            let (lo, hi) = scope.home.subtree_range();
            let sql = format!(
                "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.path >= $1 AND o.path < $2 \
                 AND LOWER(o.name) LIKE $3 AND o.id > $4 ORDER BY o.id LIMIT $5"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(lo)
                .bind(hi)
                .bind(pattern)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.conn())
                .await?
        } else {
            let sql = format!(
                "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = $1 \
                 AND LOWER(o.name) LIKE $2 AND o.id > $3 ORDER BY o.id LIMIT $4"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(scope.home.id().0)
                .bind(pattern)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.conn())
                .await?
        };
        rows.iter().map(org_from_row).collect()
    }

    /// Every membership holding `role`, in the whole hierarchy.
    pub async fn role_holders(&mut self, role: RoleId) -> Result<Vec<RoleHolder>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, org_id FROM memberships WHERE role_id = $1 ORDER BY org_id, user_id",
        )
        .bind(role.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoleHolder {
                    user: UserId(r.try_get(0)?),
                    org: OrgId(r.try_get(1)?),
                    role,
                })
            })
            .collect()
    }

    /// The union of `role`'s sets over every org: all it grants anywhere.
    pub async fn role_permissions_everywhere(
        &mut self,
        role: RoleId,
    ) -> Result<PermissionSet, StoreError> {
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT permissions FROM role_permissions WHERE role_id = $1")
                .bind(role.0)
                .fetch_all(self.conn())
                .await?;
        Ok(texts.iter().fold(PermissionSet::EMPTY, |acc, t| {
            acc.union(parse_permissions(t))
        }))
    }

    /// The matrices of every org of the subtree at `path`, by path.
    pub async fn subtree_matrices(
        &mut self,
        path: &OrgPath,
    ) -> Result<Vec<(OrgPath, PermissionMatrix)>, StoreError> {
        let (lo, hi) = path.subtree_range();
        let rows = sqlx::query(
            "SELECT o.path, rp.role_id, rp.permissions FROM organizations o \
             LEFT JOIN role_permissions rp ON rp.org_id = o.id \
             WHERE o.path >= $1 AND o.path < $2 ORDER BY o.path",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(self.conn())
        .await?;
        let mut out: Vec<(OrgPath, PermissionMatrix)> = Vec::new();
        for row in &rows {
            let text: String = row.try_get(0)?;
            let path = OrgPath::decode(&text)?;
            if out.last().is_none_or(|(p, _)| p.id() != path.id()) {
                out.push((path, PermissionMatrix::default()));
            }
            if let (Some(role), Some(set)) = (
                row.try_get::<Option<i64>, _>(1)?,
                row.try_get::<Option<String>, _>(2)?,
            ) && let Some((_, matrix)) = out.last_mut()
            {
                matrix.set(RoleId(role), parse_permissions(&set));
            }
        }
        Ok(out)
    }

    pub async fn permission_template(&mut self, id: i64) -> Result<StoredTemplate, StoreError> {
        let row = sqlx::query(
            "SELECT hierarchy_id, name, created_at FROM permission_templates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound {
            what: "permission template",
        })?;
        let hierarchy = OrgId(row.try_get(0)?);
        let name: String = row.try_get(1)?;
        let created_at: i64 = row.try_get(2)?;
        let rows = sqlx::query(
            "SELECT role_id, permissions FROM permission_template_sets WHERE template_id = $1",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?;
        let mut sets = BTreeMap::new();
        for r in &rows {
            let text: String = r.try_get(1)?;
            sets.insert(RoleId(r.try_get(0)?), parse_permissions(&text));
        }
        Ok(StoredTemplate {
            id,
            hierarchy,
            template: PermissionTemplate { name, sets },
            created_at,
        })
    }

    /// The templates of a hierarchy, by name.
    pub async fn permission_templates(
        &mut self,
        hierarchy: OrgId,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM permission_templates WHERE hierarchy_id = $1 ORDER BY name",
        )
        .bind(hierarchy.0)
        .fetch_all(self.conn())
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.permission_template(id).await?);
        }
        Ok(out)
    }

    /// Every principal that could act on something in the org at `path`: the
    /// members of the org and of its ancestors, plus `extra` (a device owner),
    /// each with all their memberships (rule 8 may pick any of them).
    pub async fn principals_above(
        &mut self,
        path: &OrgPath,
        extra: Option<UserId>,
    ) -> Result<Vec<Principal>, StoreError> {
        // Two index-friendly steps (memberships by org, then by user): one
        // query with `IN (…) OR user_id = …` makes PostgreSQL scan them all.
        let ids = path.ids();
        let sql = format!(
            "SELECT DISTINCT user_id FROM memberships WHERE org_id IN ({})",
            placeholders(0, ids.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        let mut users = query.fetch_all(self.conn()).await?;
        if let Some(extra) = extra
            && !users.contains(&extra.0)
        {
            users.push(extra.0);
        }
        self.principals(&users.into_iter().map(UserId).collect::<Vec<_>>())
            .await
    }

    /// The principals of `users` (those that exist), each with every
    /// membership, in one query — the batch form of [`Tx::principal`].
    pub async fn principals(&mut self, users: &[UserId]) -> Result<Vec<Principal>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM users u {PRINCIPAL_JOINS} \
             WHERE u.id IN ({}) ORDER BY u.id, m.org_id",
            placeholders(0, users.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for user in users {
            query = query.bind(user.0);
        }
        let rows = query.fetch_all(self.conn()).await?;
        principals_from_rows(&rows, 0)
    }

    /// The devices of `ids` that exist, in one query.
    pub async fn devices(&mut self, ids: &[DeviceId]) -> Result<Vec<DeviceRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.id IN ({})",
            placeholders(0, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        let rows = query.fetch_all(self.conn()).await?;
        rows.iter().map(device_from_row).collect()
    }

    /// The users of `ids` that exist, in one query.
    pub async fn users(&mut self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN ({}) ORDER BY u.id",
            placeholders(0, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        let rows = query.fetch_all(self.conn()).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The paths of the orgs of `ids` that exist, in one query.
    pub async fn org_paths(&mut self, ids: &[OrgId]) -> Result<Vec<OrgPath>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT path FROM organizations WHERE id IN ({})",
            placeholders(0, ids.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        let paths = query.fetch_all(self.conn()).await?;
        paths
            .iter()
            .map(|p| OrgPath::decode(p).map_err(StoreError::from))
            .collect()
    }
}

impl Tx<Write> {
    pub async fn update_org(
        &mut self,
        _by: &Allowed,
        org: OrgId,
        settings: &OrgSettings,
    ) -> Result<(), StoreError> {
        let name = settings.name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(StoreError::invalid("name", "1 to 128 characters"));
        }
        if !matches!(settings.unit_system.as_str(), "metric" | "imperial") {
            return Err(StoreError::invalid("unit_system", "metric or imperial"));
        }
        let done = sqlx::query(
            "UPDATE organizations SET name = $1, description = $2, timezone = $3, \
             unit_system = $4, contact = $5 WHERE id = $6",
        )
        .bind(name.to_owned())
        .bind(settings.description.clone())
        .bind(settings.timezone.clone())
        .bind(settings.unit_system.clone())
        .bind(settings.contact.clone())
        .bind(org.0)
        .execute(self.conn())
        .await?;
        found(&done, "organization")?;
        Ok(())
    }

    /// Deletes the org at `path`. With `move_to` (its parent), sub-orgs
    /// (with their subtrees), memberships, devices, invitations and org
    /// locations move there first; device templates enabled for the org are
    /// enabled for the parent so its devices may live there. Without it, the
    /// org must be empty. Returns the rows moved (sub-orgs, memberships,
    /// devices).
    pub async fn delete_org(
        &mut self,
        by: &Allowed,
        path: &OrgPath,
        move_to: Option<&OrgPath>,
    ) -> Result<OrgContents, StoreError> {
        let org = path.id().0;
        let mut moved = OrgContents::default();
        if let Some(parent_path) = move_to {
            let parent = parent_path.id().0;
            let children: Vec<String> =
                sqlx::query_scalar("SELECT path FROM organizations WHERE parent_id = $1")
                    .bind(org)
                    .fetch_all(self.conn())
                    .await?;
            for child in children {
                let child = OrgPath::decode(&child)?;
                self.move_subtree(by, &child, &parent_path.child(child.id()))
                    .await?;
                moved.suborgs += 1;
            }
            moved.users = sqlx::query(
                "INSERT INTO memberships (user_id, org_id, role_id, home, created_at) \
                 SELECT user_id, $1, role_id, 0, created_at FROM memberships \
                 WHERE org_id = $2 AND user_id NOT IN \
                 (SELECT user_id FROM memberships WHERE org_id = $1)",
            )
            .bind(parent)
            .bind(org)
            .execute(self.conn())
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO org_templates (org_id, template_id) \
                 SELECT $1, template_id FROM org_templates WHERE org_id = $2 \
                 ON CONFLICT (org_id, template_id) DO NOTHING",
            )
            .bind(parent)
            .bind(org)
            .execute(self.conn())
            .await?;
            moved.devices = sqlx::query("UPDATE devices SET org_id = $1 WHERE org_id = $2")
                .bind(parent)
                .bind(org)
                .execute(self.conn())
                .await?
                .rows_affected();
            let homes: Vec<i64> = sqlx::query_scalar(
                "SELECT user_id FROM memberships WHERE org_id = $1 AND home = 1",
            )
            .bind(org)
            .fetch_all(self.conn())
            .await?;
            sqlx::query("DELETE FROM memberships WHERE org_id = $1")
                .bind(org)
                .execute(self.conn())
                .await?;
            for user in homes {
                sqlx::query("UPDATE memberships SET home = 1 WHERE user_id = $1 AND org_id = $2")
                    .bind(user)
                    .bind(parent)
                    .execute(self.conn())
                    .await?;
            }
            for table in ["invitations", "locations"] {
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {table} SET org_id = $1 WHERE org_id = $2"
                )))
                .bind(parent)
                .bind(org)
                .execute(self.conn())
                .await?;
            }
        }
        for sql in [
            "DELETE FROM role_permissions WHERE org_id = $1",
            "DELETE FROM org_templates WHERE org_id = $1",
            "DELETE FROM tags WHERE org_id = $1",
            "DELETE FROM organizations WHERE id = $1",
        ] {
            sqlx::query(sql).bind(org).execute(self.conn()).await?;
        }
        Ok(moved)
    }

    pub async fn rename_role(
        &mut self,
        _by: &Allowed,
        role: RoleId,
        name: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE roles SET name = $1, name_lower = $2 WHERE id = $3")
            .bind(name.to_owned())
            .bind(name.to_lowercase())
            .bind(role.0)
            .execute(self.conn())
            .await?;
        found(&done, "role")?;
        Ok(())
    }

    /// The next display position for a new role of the hierarchy.
    pub async fn next_role_position(&mut self, hierarchy: OrgId) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM roles WHERE hierarchy_id = $1",
        )
        .bind(hierarchy.0)
        .fetch_one(self.conn())
        .await?;
        Ok(n)
    }

    /// Deletes `role`, moving its memberships and open invitations to
    /// `replacement`; its sets and template entries go with it.
    pub async fn delete_role(
        &mut self,
        _by: &Allowed,
        role: RoleId,
        replacement: RoleId,
    ) -> Result<(), StoreError> {
        for table in ["memberships", "invitations"] {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {table} SET role_id = $1 WHERE role_id = $2"
            )))
            .bind(replacement.0)
            .bind(role.0)
            .execute(self.conn())
            .await?;
        }
        for sql in [
            "DELETE FROM role_permissions WHERE role_id = $1",
            "DELETE FROM permission_template_sets WHERE role_id = $1",
            "DELETE FROM roles WHERE id = $1",
        ] {
            sqlx::query(sql).bind(role.0).execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Stores a permission template (names are unique per hierarchy).
    pub async fn insert_permission_template(
        &mut self,
        _by: &Allowed,
        hierarchy: OrgId,
        template: &PermissionTemplate,
    ) -> Result<i64, StoreError> {
        let name = template.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(StoreError::invalid("name", "1 to 64 characters"));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO permission_templates (hierarchy_id, name, created_at) \
             VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name.to_owned())
        .bind(self.now())
        .fetch_one(self.conn())
        .await?;
        for (role, set) in &template.sets {
            sqlx::query(
                "INSERT INTO permission_template_sets (template_id, role_id, permissions) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(role.0)
            .bind(format_permissions(*set))
            .execute(self.conn())
            .await?;
        }
        Ok(id)
    }

    pub async fn delete_permission_template(
        &mut self,
        _by: &Allowed,
        id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM permission_template_sets WHERE template_id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        sqlx::query("DELETE FROM permission_templates WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

/// Columns of [`principals_from_rows`], starting at its `offset`.
pub(crate) const PRINCIPAL_COLUMNS: &str =
    "u.id, u.status, o.path, m.role_id, m.home, rp.permissions";
/// The joins [`PRINCIPAL_COLUMNS`] read from, after `users u`.
pub(crate) const PRINCIPAL_JOINS: &str = "LEFT JOIN memberships m ON m.user_id = u.id \
     LEFT JOIN organizations o ON o.id = m.org_id \
     LEFT JOIN role_permissions rp ON rp.org_id = m.org_id AND rp.role_id = m.role_id";

/// Principals from rows ordered by user, one row per membership (or one row
/// with NULL membership columns); rows whose user id is NULL are skipped.
pub(crate) fn principals_from_rows(
    rows: &[AnyRow],
    offset: usize,
) -> Result<Vec<Principal>, StoreError> {
    let mut principals: Vec<Principal> = Vec::new();
    for row in rows {
        let Some(user) = row.try_get::<Option<i64>, _>(offset)? else {
            continue;
        };
        let user = UserId(user);
        if principals.last().is_none_or(|p| p.user != user) {
            let status: String = row.try_get(offset + 1)?;
            principals.push(Principal {
                user,
                status: crate::rows::parse_status(&status),
                session_revoked: false,
                memberships: Vec::new(),
            });
        }
        let Some(path) = row.try_get::<Option<String>, _>(offset + 2)? else {
            continue;
        };
        let membership = Membership {
            org: OrgPath::decode(&path)?,
            role: RoleId(row.try_get(offset + 3)?),
            home: row.try_get::<i64, _>(offset + 4)? == 1,
            permissions: row
                .try_get::<Option<String>, _>(offset + 5)?
                .map(|p| parse_permissions(&p))
                .unwrap_or(PermissionSet::EMPTY),
        };
        if let Some(p) = principals.last_mut() {
            p.memberships.push(membership);
        }
    }
    Ok(principals)
}
