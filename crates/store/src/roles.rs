//! Roles, their permission sets per org (`role_permissions`, the permission
//! matrices) and permission templates.

use crate::error::{StoreError, found};
use crate::text::checked_name;
use crate::tx::{Tx, Write};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, writes};
use arbor_core::role::RoleHolder;
use arbor_core::text::limits;
use arbor_core::{
    BuiltinRole, OrgId, OrgPath, Permission, PermissionMatrix, PermissionSet, PermissionTemplate,
    Role, RoleId, UserId,
};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;

/// A stored permission template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTemplate {
    pub id: i64,
    pub hierarchy: OrgId,
    pub template: PermissionTemplate,
    pub created_at: i64,
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

impl<M> Tx<M> {
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

    pub async fn is_role_admin(&mut self, role: RoleId) -> Result<bool, StoreError> {
        let builtin: Option<Option<String>> =
            sqlx::query_scalar("SELECT builtin FROM roles WHERE id = $1")
                .bind(role.0)
                .fetch_optional(self.conn())
                .await?;
        let builtin = builtin.ok_or(StoreError::NotFound { what: "role" })?;
        Ok(builtin.as_deref() == Some("admin"))
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
}

impl Tx<Write> {
    pub async fn insert_role<A: Permits<writes::InsertRole>>(
        &mut self,
        _by: &Allowed<A>,
        hierarchy: OrgId,
        name: &str,
        builtin: Option<BuiltinRole>,
        position: i64,
    ) -> Result<Role, StoreError> {
        let name = checked_name(name, limits::ROLE_NAME)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO roles (hierarchy_id, name, name_lower, builtin, position) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name.clone())
        .bind(name.to_lowercase())
        .bind(builtin.map(builtin_str))
        .bind(position)
        .fetch_one(self.conn())
        .await?;
        Ok(Role {
            id: RoleId(id),
            name,
            builtin,
        })
    }

    pub async fn rename_role<A: Permits<writes::RenameRole>>(
        &mut self,
        _by: &Allowed<A>,
        role: RoleId,
        name: &str,
    ) -> Result<(), StoreError> {
        let name = checked_name(name, limits::ROLE_NAME)?;
        let done = sqlx::query("UPDATE roles SET name = $1, name_lower = $2 WHERE id = $3")
            .bind(name.clone())
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
    pub async fn delete_role<A: Permits<writes::DeleteRole>>(
        &mut self,
        _by: &Allowed<A>,
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

    /// Sets `perms(org, role)`, stored as permission string ids.
    pub async fn set_role_permissions<A: Permits<writes::SetRolePermissions>>(
        &mut self,
        _by: &Allowed<A>,
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
    pub async fn copy_role_permissions<A: Permits<writes::CopyRolePermissions>>(
        &mut self,
        _by: &Allowed<A>,
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

    /// Stores a permission template (names are unique per hierarchy).
    pub async fn insert_permission_template<A: Permits<writes::InsertPermissionTemplate>>(
        &mut self,
        _by: &Allowed<A>,
        hierarchy: OrgId,
        template: &PermissionTemplate,
    ) -> Result<i64, StoreError> {
        let name = checked_name(&template.name, limits::PERMISSION_TEMPLATE_NAME)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO permission_templates (hierarchy_id, name, created_at) \
             VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(hierarchy.0)
        .bind(name)
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

    pub async fn delete_permission_template<A: Permits<writes::DeletePermissionTemplate>>(
        &mut self,
        _by: &Allowed<A>,
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
