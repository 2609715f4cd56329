//! Accounts: credentials, sessions, invitations, password resets, the mail
//! outbox and the audit log as read by people. Queries only; the decisions are
//! made by the caller (arbor-app) with arbor-core.

use crate::error::{StoreError, found};
use crate::rows::{SessionId, UserRecord};
use crate::tx::{Allowed, Tx, USER_COLUMNS, Write, normalize_email, user_from_row};
use arbor_core::{DeviceId, OrgId, OrgPath, RoleId, UserId};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

/// A login session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user: UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

/// A pending invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: i64,
    pub email: String,
    pub user: Option<UserId>,
    pub org: OrgId,
    pub role: RoleId,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

/// A one-time password reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordResetRecord {
    pub id: i64,
    pub user: UserId,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// One membership of a user, with its org's path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MembershipRecord {
    pub org: OrgId,
    pub org_name: String,
    pub path: OrgPath,
    pub role: RoleId,
    pub home: bool,
}

/// A queued mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailRecord {
    pub id: i64,
    pub created_at: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
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

const INVITATION_COLUMNS: &str =
    "id, email, user_id, org_id, role_id, created_at, expires_at, accepted_at";

fn invitation_from_row(row: &sqlx::any::AnyRow) -> Result<InvitationRecord, StoreError> {
    Ok(InvitationRecord {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        user: row.try_get::<Option<i64>, _>(2)?.map(UserId),
        org: OrgId(row.try_get(3)?),
        role: RoleId(row.try_get(4)?),
        created_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        accepted_at: row.try_get(7)?,
    })
}

const SESSION_QUERY: &str = "SELECT id, user_id, created_at, last_seen_at, expires_at, revoked_at \
     FROM sessions WHERE token_hash = $1";

fn session_from_row(row: &sqlx::any::AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: SessionId(row.try_get(0)?),
        user: UserId(row.try_get(1)?),
        created_at: row.try_get(2)?,
        last_seen_at: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        revoked: row.try_get::<Option<i64>, _>(5)?.is_some(),
    })
}

impl<M> Tx<M> {
    /// A session by the hash of its token.
    pub async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(SESSION_QUERY)
            .bind(token_hash.to_owned())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// A user and the stored password hash, by email (any case).
    pub async fn credentials(
        &mut self,
        email: &str,
    ) -> Result<Option<(UserRecord, Option<String>)>, StoreError> {
        let Ok(normalized) = normalize_email(email) else {
            return Ok(None);
        };
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

    pub async fn invitation_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"
        )))
        .bind(token_hash.to_owned())
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(invitation_from_row).transpose()
    }

    /// The newest unaccepted invitation of a pending user.
    pub async fn open_invitation(
        &mut self,
        user: UserId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE user_id = $1 AND accepted_at IS NULL ORDER BY id DESC LIMIT 1"
        )))
        .bind(user.0)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(invitation_from_row).transpose()
    }

    pub async fn password_reset_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<PasswordResetRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.conn())
        .await?;
        row.map(|row| {
            Ok(PasswordResetRecord {
                id: row.try_get(0)?,
                user: UserId(row.try_get(1)?),
                expires_at: row.try_get(2)?,
                used_at: row.try_get(3)?,
            })
        })
        .transpose()
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

    /// The devices a user owns.
    pub async fn owned_devices(
        &mut self,
        user: UserId,
    ) -> Result<Vec<(DeviceId, OrgId)>, StoreError> {
        let rows = sqlx::query("SELECT id, org_id FROM devices WHERE owner_id = $1 ORDER BY id")
            .bind(user.0)
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|row| Ok((DeviceId(row.try_get(0)?), OrgId(row.try_get(1)?))))
            .collect()
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

    /// Whether any hierarchy exists yet (first-run setup is open until one does).
    pub async fn any_hierarchy(&mut self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hierarchies")
            .fetch_one(self.conn())
            .await?;
        Ok(n > 0)
    }

    /// Queued mail, newest first; `unsent_only` leaves out what was delivered.
    pub async fn outbox(
        &mut self,
        unsent_only: bool,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, to_address, subject, body, attempts, sent_at, last_error \
             FROM outbox WHERE ($1 = 0 OR sent_at IS NULL) ORDER BY id DESC LIMIT $2",
        )
        .bind(i64::from(unsent_only))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MailRecord {
                    id: row.try_get(0)?,
                    created_at: row.try_get(1)?,
                    to: row.try_get(2)?,
                    subject: row.try_get(3)?,
                    body: row.try_get(4)?,
                    attempts: row.try_get(5)?,
                    sent_at: row.try_get(6)?,
                    last_error: row.try_get(7)?,
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

impl crate::Store {
    /// A session by the hash of its token, read by one statement outside any
    /// transaction: authentication of every request costs one round trip
    /// instead of three (begin, select, commit). Use cases still re-read the
    /// session inside their own transaction, so a revocation is never missed.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(SESSION_QUERY)
            .bind(token_hash.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Records that a session was used, at most once a minute per session so
    /// that reads do not turn every request into a write. Session bookkeeping,
    /// not a user's action: one statement, committed on its own, not audited.
    pub async fn touch_session(&self, session: SessionId) -> Result<(), StoreError> {
        let now = self.now_ms();
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3")
            .bind(now)
            .bind(session.0)
            .bind(now - 60_000)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Delivery bookkeeping of the outbox (not a user's action: not audited).
    pub async fn mark_mail_sent(&self, mail: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(self.now_ms())
            .bind(mail)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn mark_mail_failed(&self, mail: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id = $2")
            .bind(error.chars().take(500).collect::<String>())
            .bind(mail)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Which target orgs an audit query covers.
#[derive(Clone, Copy, Debug)]
pub enum AuditScope<'a> {
    /// The org and every org below it.
    Subtree(&'a OrgPath),
    /// That org alone.
    Org(OrgId),
}

impl Tx<Write> {
    /// Revokes one session (logout).
    pub async fn revoke_session(&mut self, session: SessionId) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(session.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Revokes every live session of a user but one (password change).
    pub async fn revoke_other_sessions(
        &mut self,
        user: UserId,
        keep: SessionId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(user.0)
        .bind(keep.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn set_password_hash(
        &mut self,
        _by: &Allowed,
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
    pub async fn update_profile(
        &mut self,
        _by: &Allowed,
        user: UserId,
        name: Option<&str>,
        locale: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(name) = name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 128 {
                return Err(StoreError::invalid("name", "1 to 128 characters"));
            }
        }
        if let Some(locale) = locale {
            let ok = (2..=16).contains(&locale.len())
                && locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(StoreError::invalid(
                    "locale",
                    "a language tag such as en or de-AT",
                ));
            }
        }
        let done = sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), locale = COALESCE($2, locale) WHERE id = $3",
        )
        .bind(name.map(|n| n.trim().to_owned()))
        .bind(locale.map(str::to_owned))
        .bind(user.0)
        .execute(self.conn())
        .await?;
        found(&done, "user")?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_invitation(
        &mut self,
        _by: &Allowed,
        token_hash: &str,
        email: &str,
        user: UserId,
        org: OrgId,
        role: RoleId,
        invited_by: Option<UserId>,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO invitations (token_hash, email, user_id, org_id, role_id, invited_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(token_hash.to_owned())
        .bind(email.to_owned())
        .bind(user.0)
        .bind(org.0)
        .bind(role.0)
        .bind(invited_by.map(|u| u.0))
        .bind(self.now())
        .bind(expires_at)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    /// Marks an invitation used. Fails with a conflict if it already was, so a
    /// token is single-use even under concurrent acceptance.
    pub async fn accept_invitation(&mut self, invitation: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL",
        )
        .bind(self.now())
        .bind(invitation)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::conflict("this invitation was already used"));
        }
        Ok(())
    }

    /// Withdraws every open invitation of a user (resend replaces them).
    pub async fn withdraw_invitations(&mut self, user: UserId) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM invitations WHERE user_id = $1 AND accepted_at IS NULL")
                .bind(user.0)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_password_reset(
        &mut self,
        _by: &Allowed,
        token_hash: &str,
        user: UserId,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        // A new link replaces the open ones.
        sqlx::query("DELETE FROM password_resets WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.0)
            .execute(self.conn())
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(token_hash.to_owned())
        .bind(user.0)
        .bind(self.now())
        .bind(expires_at)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    /// Marks a reset link used; single-use like invitations.
    pub async fn use_password_reset(&mut self, reset: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
        )
        .bind(self.now())
        .bind(reset)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::conflict("this reset link was already used"));
        }
        Ok(())
    }

    /// Gives a device a new owner within its org.
    pub async fn set_device_owner(
        &mut self,
        _by: &Allowed,
        device: DeviceId,
        owner: Option<UserId>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET owner_id = $1 WHERE id = $2")
            .bind(owner.map(|u| u.0))
            .bind(device.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Removes a membership (user transfer; the user keeps their other
    /// memberships). Returns whether it was the home membership. Devices the
    /// user owns in that org must have been handed on or moved first.
    pub async fn remove_membership(
        &mut self,
        _by: &Allowed,
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
    pub async fn set_home_membership(
        &mut self,
        _by: &Allowed,
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
    /// sessions, invitations, resets, tag links). Devices must have been handed
    /// on first: the foreign key refuses the deletion otherwise.
    pub async fn delete_user(&mut self, _by: &Allowed, user: UserId) -> Result<(), StoreError> {
        for statement in [
            "DELETE FROM invitations WHERE user_id = $1",
            "UPDATE invitations SET invited_by = NULL WHERE invited_by = $1",
            "DELETE FROM location_users WHERE user_id = $1",
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
