//! Users and their memberships: reads (with the principals decisions are made
//! on), credentials, row locks, and the mutations of accounts and memberships.

use crate::error::{StoreError, found};
use crate::roles::parse_permissions;
use crate::rows::{NewUser, UserRecord, parse_status};
use crate::text::{checked_name, fold};
use crate::tx::{Tx, Write, placeholders};
use arbor_core::policy::{Permits, writes};
use arbor_core::text::limits;
use arbor_core::{Allowed, Email};
use arbor_core::{
    Membership, OrgId, OrgPath, PermissionSet, Principal, RoleId, UserId, UserStatus,
};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// One membership of a user, with its org's path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MembershipRecord {
    pub org: OrgId,
    pub org_name: String,
    pub path: OrgPath,
    pub role: RoleId,
    pub home: bool,
}

/// The address as Arbor accepts it (arbor_core::text::Email), refused with
/// the reason otherwise.
pub(crate) fn parse_email(email: &str) -> Result<Email, StoreError> {
    Ok(Email::parse(email)?)
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

impl<M> Tx<M> {
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

    pub async fn user(&mut self, id: UserId) -> Result<UserRecord, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound { what: "user" })?;
        user_from_row(&row)
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

    pub async fn user_by_email(&mut self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let normalized = parse_email(email)?.normalized().to_owned();
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_normalized = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(normalized)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// A user and the stored password hash, by email (any case).
    pub async fn credentials(
        &mut self,
        email: &str,
    ) -> Result<Option<(UserRecord, Option<String>)>, StoreError> {
        // A malformed address fails like an unknown one: no oracle.
        let Ok(email) = parse_email(email) else {
            return Ok(None);
        };
        let normalized = email.normalized().to_owned();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email_normalized = $1"
        )))
        .bind(normalized)
        .fetch_optional(self.conn())
        .await?;
        row.map(|row| Ok((user_from_row(&row)?, row.try_get(6)?)))
            .transpose()
    }

    /// The stored password hash of a user.
    pub async fn password_hash(&mut self, user: UserId) -> Result<Option<String>, StoreError> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user.0)
                .fetch_optional(self.conn())
                .await?;
        hash.ok_or(StoreError::NotFound { what: "user" })
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

    /// Every membership of a user, home first.
    pub async fn memberships(&mut self, user: UserId) -> Result<Vec<MembershipRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.org_id, o.name, o.path, m.role_id, m.home FROM memberships m \
             JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 \
             ORDER BY m.home DESC, m.org_id",
        )
        .bind(user.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                let path: String = row.try_get(2)?;
                Ok(MembershipRecord {
                    org: OrgId(row.try_get(0)?),
                    org_name: row.try_get(1)?,
                    path: OrgPath::decode(&path)?,
                    role: RoleId(row.try_get(3)?),
                    home: row.try_get::<i64, _>(4)? == 1,
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

    /// The active Admins of an org, earliest member first.
    pub async fn admins(&mut self, org: OrgId) -> Result<Vec<UserId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT m.user_id FROM memberships m \
             JOIN roles r ON r.id = m.role_id \
             JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND r.builtin = 'admin' AND u.status = 'active' \
             ORDER BY m.created_at, m.user_id",
        )
        .bind(org.0)
        .fetch_all(self.conn())
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}

/// A language tag such as `en` or `de-AT`.
fn check_locale(locale: &str) -> Result<(), StoreError> {
    let ok = (2..=limits::LOCALE).contains(&locale.len())
        && locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "locale",
            format!(
                "a language tag such as en or de-AT, 2 to {} characters",
                limits::LOCALE
            ),
        ))
    }
}

impl Tx<Write> {
    /// Locks a user's row (status and session changes).
    pub async fn lock_user(&mut self, user: UserId) -> Result<(), StoreError> {
        self.lock("SELECT id FROM users WHERE id = $1", user.0, "user")
            .await
    }

    /// Inserts a user; the email must be new to the server (ignoring case).
    pub async fn insert_user<A: Permits<writes::InsertUser>>(
        &mut self,
        _by: &Allowed<A>,
        user: &NewUser,
    ) -> Result<UserId, StoreError> {
        let email = parse_email(&user.email)?;
        let name = checked_name(&user.name, limits::USER_NAME)?;
        check_locale(&user.locale)?;
        // Which rule a taken address breaks, asked first for the message
        // (on PostgreSQL a violated constraint aborts the transaction, and
        // either unique index may report an exact duplicate); the indexes
        // still decide under concurrent inserts.
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT email_normalized FROM users \
             WHERE email_normalized = $1 OR email_skeleton = $2 LIMIT 1",
        )
        .bind(email.normalized().to_owned())
        .bind(email.skeleton().to_owned())
        .fetch_optional(self.conn())
        .await?;
        match taken {
            Some(other) if other == email.normalized() => {
                return Err(StoreError::conflict(
                    "a user with this email already exists",
                ));
            }
            Some(_) => {
                return Err(StoreError::conflict(
                    "an account with a look-alike email exists",
                ));
            }
            None => {}
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, email_normalized, email_skeleton, name, password_hash, \
             status, locale, created_at, name_folded) \
             VALUES ($1, $2, $9, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(email.as_str().to_owned())
        .bind(email.normalized().to_owned())
        .bind(name.clone())
        .bind(user.password_hash.clone())
        .bind(user.status.as_str())
        .bind(user.locale.clone())
        .bind(self.now())
        .bind(fold(&name))
        .bind(email.skeleton().to_owned())
        .fetch_one(self.conn())
        .await?;
        Ok(UserId(id))
    }

    pub async fn set_user_status<A: Permits<writes::SetUserStatus>>(
        &mut self,
        _by: &Allowed<A>,
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

    pub async fn set_password_hash<A: Permits<writes::SetPasswordHash>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
        hash: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash.to_owned())
            .bind(user.0)
            .execute(self.conn())
            .await?;
        found(&done, "user")?;
        Ok(())
    }

    /// Changes name and locale; `None` keeps the current value.
    pub async fn update_profile<A: Permits<writes::UpdateProfile>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
        name: Option<&str>,
        locale: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = name
            .map(|n| checked_name(n, limits::USER_NAME))
            .transpose()?;
        if let Some(locale) = locale {
            check_locale(locale)?;
        }
        let done = sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), locale = COALESCE($2, locale), \
             name_folded = COALESCE($4, name_folded) WHERE id = $3",
        )
        .bind(name.clone())
        .bind(locale.map(str::to_owned))
        .bind(user.0)
        .bind(name.as_deref().map(fold))
        .execute(self.conn())
        .await?;
        found(&done, "user")?;
        Ok(())
    }

    pub async fn insert_membership<A: Permits<writes::InsertMembership>>(
        &mut self,
        _by: &Allowed<A>,
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
        .bind(self.now())
        .execute(self.conn())
        .await?;
        let path = self.org_path(org).await?;
        self.put_member_scopes(user, &path).await?;
        Ok(())
    }

    pub async fn set_member_role<A: Permits<writes::SetMemberRole>>(
        &mut self,
        _by: &Allowed<A>,
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

    /// Removes a membership (user transfer; the user keeps their other
    /// memberships). Returns whether it was the home membership. Devices the
    /// user owns in that org must have been handed on or moved first.
    pub async fn remove_membership<A: Permits<writes::RemoveMembership>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
        org: OrgId,
    ) -> Result<bool, StoreError> {
        let home: Option<i64> =
            sqlx::query_scalar("SELECT home FROM memberships WHERE user_id = $1 AND org_id = $2")
                .bind(user.0)
                .bind(org.0)
                .fetch_optional(self.conn())
                .await?;
        let home = home.ok_or(StoreError::NotFound { what: "membership" })?;
        sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user.0)
            .bind(org.0)
            .execute(self.conn())
            .await?;
        Ok(home == 1)
    }

    /// Makes `org` the user's home membership.
    pub async fn set_home_membership<A: Permits<writes::SetHomeMembership>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
        org: OrgId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE memberships SET home = 0 WHERE user_id = $1 AND home = 1")
            .bind(user.0)
            .execute(self.conn())
            .await?;
        sqlx::query("UPDATE memberships SET home = 1 WHERE user_id = $1 AND org_id = $2")
            .bind(user.0)
            .bind(org.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes a user with everything that is theirs alone (memberships,
    /// sessions, invitations, resets, tag links, own locations). Devices must have been handed
    /// on first: the foreign key refuses the deletion otherwise.
    pub async fn delete_user<A: Permits<writes::DeleteUser>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
    ) -> Result<(), StoreError> {
        for statement in [
            "DELETE FROM invitations WHERE user_id = $1",
            "UPDATE invitations SET invited_by = NULL WHERE invited_by = $1",
            "DELETE FROM location_users WHERE user_id = $1",
            // The user's own locations go with the account (nobody else
            // may see them); devices there lose their location.
            "UPDATE devices SET location_id = NULL WHERE location_id IN \
             (SELECT id FROM locations WHERE owner_user_id = $1)",
            "DELETE FROM location_users WHERE location_id IN \
             (SELECT id FROM locations WHERE owner_user_id = $1)",
            "DELETE FROM locations WHERE owner_user_id = $1",
            "DELETE FROM memberships WHERE user_id = $1",
        ] {
            sqlx::query(statement)
                .bind(user.0)
                .execute(self.conn())
                .await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.0)
            .execute(self.conn())
            .await?;
        found(&done, "user")?;
        Ok(())
    }
}
