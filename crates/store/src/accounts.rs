//! Sessions, invitations and password resets: the tokens a user signs in or
//! joins with. Queries only; the decisions are made by the caller (arbor-app)
//! with arbor-core.

use crate::error::StoreError;
use crate::rows::SessionId;
use crate::text::refuse_nul;
use crate::tx::{Tx, Write};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, writes};
use arbor_core::{OrgId, Principal, RoleId, UserId};
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
            row.try_get::<Option<i64>, _>(2)?.is_some() || row.try_get::<i64, _>(3)? <= self.now();
        Ok(self.principal(user).await?.map(|mut p| {
            p.session_revoked = revoked;
            (session, p)
        }))
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
}

impl Tx<Write> {
    /// Creates a session for `user`, valid until `expires_at`.
    pub async fn insert_session<A: Permits<writes::InsertSession>>(
        &mut self,
        _by: &Allowed<A>,
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
        .bind(self.now())
        .bind(expires_at)
        .fetch_one(self.conn())
        .await?;
        Ok(SessionId(id))
    }

    /// Revokes every live session of `user` at once (logout everywhere,
    /// suspension, password change). Returns how many were revoked.
    pub async fn revoke_sessions<A: Permits<writes::RevokeSessions>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(user.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    /// Revokes one session (logout).
    pub async fn revoke_session<A: Permits<writes::RevokeSessions>>(
        &mut self,
        _by: &Allowed<A>,
        session: SessionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.now())
            .bind(session.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Revokes every live session of a user but one (password change).
    pub async fn revoke_other_sessions<A: Permits<writes::RevokeSessions>>(
        &mut self,
        _by: &Allowed<A>,
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

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_invitation<A: Permits<writes::InsertInvitation>>(
        &mut self,
        _by: &Allowed<A>,
        token_hash: &str,
        email: &str,
        user: UserId,
        org: OrgId,
        role: RoleId,
        invited_by: Option<UserId>,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        refuse_nul("email", email)?;
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
    pub async fn accept_invitation<A: Permits<writes::AcceptInvitation>>(
        &mut self,
        _by: &Allowed<A>,
        invitation: i64,
    ) -> Result<(), StoreError> {
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
    pub async fn withdraw_invitations<A: Permits<writes::WithdrawInvitations>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM invitations WHERE user_id = $1 AND accepted_at IS NULL")
                .bind(user.0)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_password_reset<A: Permits<writes::InsertPasswordReset>>(
        &mut self,
        _by: &Allowed<A>,
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
    /// Ends every outstanding reset link of `user` (its password changed).
    pub async fn use_password_resets_of<A: Permits<writes::UsePasswordResets>>(
        &mut self,
        _by: &Allowed<A>,
        user: UserId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(self.now())
        .bind(user.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn use_password_reset<A: Permits<writes::UsePasswordResets>>(
        &mut self,
        _by: &Allowed<A>,
        reset: i64,
    ) -> Result<(), StoreError> {
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
}
