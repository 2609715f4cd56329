//! Organizations and hierarchies: reads, row locks, insert/update/move/delete,
//! subtrees and name search.

use crate::error::{StoreError, found};
use crate::rows::{HierarchySettings, NewOrg, OrgRecord, SignupMode};
use crate::text::{checked_name, contains_pattern, fold};
use crate::tx::{Tx, Write, placeholders};
use arbor_core::Allowed;
use arbor_core::org::OrgContents;
use arbor_core::policy::MemberMove;
use arbor_core::policy::{Permits, writes};
use arbor_core::text::{self, limits};
use arbor_core::{DepthLimit, OrgId, OrgPath, OrgType, RoleId, Scope, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// New values of an organization's settings (already merged with the old ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSettings {
    pub name: String,
    pub description: String,
    pub timezone: String,
    pub unit_system: String,
    pub contact: String,
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

/// The unit systems an organization can use.
pub const UNIT_SYSTEMS: [&str; 2] = ["metric", "imperial"];

fn check_unit_system(unit_system: &str) -> Result<(), StoreError> {
    if UNIT_SYSTEMS.contains(&unit_system) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "unit_system",
            format!("unknown unit system {unit_system:?}; expected one of: metric, imperial"),
        ))
    }
}

impl<M> Tx<M> {
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

    /// Every organization, ordered by id (small worlds only).
    pub async fn all_orgs(&mut self) -> Result<Vec<OrgRecord>, StoreError> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organizations o ORDER BY o.id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(org_from_row).collect()
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

    /// Whether any hierarchy exists yet (first-run setup is open until one does).
    pub async fn any_hierarchy(&mut self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hierarchies")
            .fetch_one(self.conn())
            .await?;
        Ok(n > 0)
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

    /// What an org still holds: direct sub-orgs, memberships, devices.
    /// The memberships of `org`: user and role, by user.
    pub async fn org_members(&mut self, org: OrgId) -> Result<Vec<(UserId, RoleId)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, role_id FROM memberships WHERE org_id = $1 ORDER BY user_id",
        )
        .bind(org.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((UserId(r.try_get(0)?), RoleId(r.try_get(1)?))))
            .collect()
    }

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

    /// Orgs of the subtree at `path` (itself first, then by path), whose name
    /// contains `name` (ignoring case, wildcards literal), at most `limit`.
    pub async fn subtree_orgs(
        &mut self,
        path: &OrgPath,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrgRecord>, StoreError> {
        let (lo, hi) = path.subtree_range();
        let pattern = name.map(contains_pattern).transpose()?;
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.path >= $1 AND o.path < $2 \
             AND ($3 = '' OR o.name_folded LIKE $3 ESCAPE '\\') ORDER BY o.path LIMIT $4"
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

    /// Orgs in `scope` whose name contains `name` (ignoring case, wildcards
    /// literal), ordered by id after `after`.
    pub async fn search_orgs(
        &mut self,
        scope: &Scope,
        name: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OrgRecord>, StoreError> {
        let pattern = contains_pattern(name)?;
        let rows = if scope.descendants {
            let (lo, hi) = scope.home.subtree_range();
            let sql = format!(
                "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.path >= $1 AND o.path < $2 \
                 AND o.name_folded LIKE $3 ESCAPE '\\' AND o.id > $4 ORDER BY o.id LIMIT $5"
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
                 AND o.name_folded LIKE $2 ESCAPE '\\' AND o.id > $3 ORDER BY o.id LIMIT $4"
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
}

impl Tx<Write> {
    /// Locks an organization's row: membership and role changes of that org
    /// queue on it (PostgreSQL; SQLite writers are serialised already).
    /// Serialises first-run setups: two concurrent setups cannot both see
    /// no hierarchy and create one each (SQLite writers are serialised
    /// already; PostgreSQL takes a transaction-scoped advisory lock).
    pub async fn lock_first_run(&mut self) -> Result<(), StoreError> {
        if let Some(sql) = self.dialect().first_run_lock() {
            sqlx::query(sql).execute(self.conn()).await?;
        }
        Ok(())
    }

    pub async fn lock_org(&mut self, org: OrgId) -> Result<(), StoreError> {
        self.lock(
            "SELECT id FROM organizations WHERE id = $1",
            org.0,
            "organization",
        )
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
            self.dialect().for_update()
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
    pub async fn insert_org<A: Permits<writes::InsertOrg>>(
        &mut self,
        _by: &Allowed<A>,
        parent: Option<&OrgPath>,
        org: &NewOrg,
    ) -> Result<OrgRecord, StoreError> {
        let name = checked_name(&org.name, limits::ORG_NAME)?;
        let description =
            text::free_text("description", &org.description, limits::ORG_DESCRIPTION)?;
        let timezone = text::timezone(&org.timezone)?.to_owned();
        let contact = text::line("contact", &org.contact, limits::ORG_CONTACT)?;
        check_unit_system(&org.unit_system)?;
        let depth = parent.map_or(1, |p| p.depth() + 1);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO organizations (parent_id, path, depth, org_type, name, description, \
             timezone, unit_system, contact, created_at, name_folded) \
             VALUES ($1, '', $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(parent.map(|p| p.id().0))
        .bind(i64::try_from(depth).unwrap_or(i64::MAX))
        .bind(org.org_type.as_str())
        .bind(name.clone())
        .bind(description.clone())
        .bind(timezone.clone())
        .bind(org.unit_system.clone())
        .bind(contact.clone())
        .bind(self.now())
        .bind(fold(&name))
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
            name,
            description,
            timezone,
            unit_system: org.unit_system.clone(),
            contact,
            created_at: self.now(),
        })
    }

    pub async fn insert_hierarchy<A: Permits<writes::InsertHierarchy>>(
        &mut self,
        _by: &Allowed<A>,
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
        .bind(self.now())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn update_org<A: Permits<writes::UpdateOrg>>(
        &mut self,
        _by: &Allowed<A>,
        org: OrgId,
        settings: &OrgSettings,
    ) -> Result<(), StoreError> {
        let name = checked_name(&settings.name, limits::ORG_NAME)?;
        let description = text::free_text(
            "description",
            &settings.description,
            limits::ORG_DESCRIPTION,
        )?;
        let timezone = text::timezone(&settings.timezone)?;
        let contact = text::line("contact", &settings.contact, limits::ORG_CONTACT)?;
        check_unit_system(&settings.unit_system)?;
        let done = sqlx::query(
            "UPDATE organizations SET name = $1, description = $2, timezone = $3, \
             unit_system = $4, contact = $5, name_folded = $7 WHERE id = $6",
        )
        .bind(name.clone())
        .bind(description)
        .bind(timezone.to_owned())
        .bind(settings.unit_system.clone())
        .bind(contact)
        .bind(org.0)
        .bind(fold(&name))
        .execute(self.conn())
        .await?;
        found(&done, "organization")?;
        Ok(())
    }

    /// Re-parents the subtree at `old` so that its root's path becomes `new`:
    /// one UPDATE rewrites every path of the subtree.
    pub async fn move_subtree<A: Permits<writes::MoveSubtree>>(
        &mut self,
        _by: &Allowed<A>,
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
        self.rescope_moved_subtree(old, new).await?;
        Ok(moved)
    }

    /// Deletes the org at `path`. With `move_to` (its parent), sub-orgs
    /// (with their subtrees), memberships, devices, invitations and org
    /// locations move there first; device templates enabled for the org are
    /// enabled for the parent so its devices may live there. Without it, the
    /// org must be empty of sub-orgs, members and devices; invitations into
    /// it may remain (the invited users have since moved on) and must not
    /// block the deletion: an open one follows its user to their home org,
    /// so the link still activates the account; accepted ones go with the
    /// org (the audit log keeps the acceptance). Returns the rows moved
    /// (sub-orgs, memberships, devices).
    pub async fn delete_org<A: Permits<writes::DeleteOrg> + Permits<writes::MoveSubtree>>(
        &mut self,
        by: &Allowed<A>,
        path: &OrgPath,
        move_to: Option<(&OrgPath, &[MemberMove])>,
    ) -> Result<OrgContents, StoreError> {
        let org = path.id().0;
        let mut moved = OrgContents::default();
        if let Some((parent_path, moves)) = move_to {
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
            // Each moved member gets the role its move names (never simply
            // the old one: that could widen its scope); members already in
            // the parent keep that membership.
            for m in moves {
                let Some(role) = m.new_role else { continue };
                let made = sqlx::query(
                    "INSERT INTO memberships (user_id, org_id, role_id, home, created_at) \
                     SELECT user_id, $1, $2, 0, created_at FROM memberships \
                     WHERE org_id = $3 AND user_id = $4",
                )
                .bind(parent)
                .bind(role.0)
                .bind(org)
                .bind(m.user.0)
                .execute(self.conn())
                .await?
                .rows_affected();
                if made > 0 {
                    self.put_member_scopes(m.user, parent_path).await?;
                }
                moved.users += made;
            }
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
            self.drop_org_scope(path.id()).await?;
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
            "UPDATE invitations SET org_id = (SELECT m.org_id FROM memberships m \
             WHERE m.user_id = invitations.user_id AND m.home = 1) \
             WHERE org_id = $1 AND accepted_at IS NULL AND EXISTS (SELECT 1 FROM memberships m \
             WHERE m.user_id = invitations.user_id AND m.home = 1 AND m.org_id <> $1)",
            "DELETE FROM invitations WHERE org_id = $1",
            "DELETE FROM role_permissions WHERE org_id = $1",
            "DELETE FROM org_templates WHERE org_id = $1",
            "DELETE FROM tags WHERE org_id = $1",
            "DELETE FROM organizations WHERE id = $1",
        ] {
            sqlx::query(sql).bind(org).execute(self.conn()).await?;
        }
        Ok(moved)
    }
}
