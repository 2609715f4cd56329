//! The mail outbox: mail is queued inside the transaction that decides to send
//! it and delivered after commit by the outbox worker (arbor-server `mail`).
//!
//! **Links at rest.** Invitation and reset tokens are stored only as hashes
//! (`invitations.token_hash`, `password_resets.token_hash`); the one place a
//! live link exists is the body of its unsent mail, because an operator
//! without SMTP must be able to read it (`arbor outbox`). So the body lives
//! exactly as long as the link can still be delivered:
//! - delivered mail keeps no body ([`crate::Store::mark_mail_sent`] clears it;
//!   migration 0005 cleared the bodies sent before it);
//! - revoking or resending an invitation, asking for a new reset link, and
//!   using a link delete the unsent mail of that link in the same transaction
//!   ([`Tx::cancel_mail`], keyed by the mail's [`MailLink`]).
//!
//! **Several nodes.** Every node runs a worker over the same table. A worker
//! takes rows with [`crate::Store::claim_mail`]: one conditional `UPDATE`
//! that sets `claimed_by` and `lease_until` on the oldest due rows nobody
//! holds. The rows are picked in a `MATERIALIZED` CTE — evaluated once; as a
//! plain `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may run
//! the subquery again per row and take more than n — and the outer `WHERE`
//! is re-checked on the newest row version (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED` passes over rows another claim is taking; SQLite: the statement
//! runs under the database's single write lock). Only the holder may mark a
//! row sent or failed; a row whose holder died is claimable again once its
//! lease ran out. A failure backs off exponentially; after the maximum number
//! of attempts the row stays, undelivered and listed, for the operator.
//! A node without SMTP announces each unsent mail once
//! ([`crate::Store::announce_mail`]), never with its body.

use crate::error::StoreError;
use crate::tx::{Tx, Write};
use arbor_core::policy::{Permits, writes};
use arbor_core::{Allowed, UserId};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

/// What a mail's link is for, so that it can be cancelled with its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    Invitation,
    PasswordReset,
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::PasswordReset => "password_reset",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "invitation" => Some(Self::Invitation),
            "password_reset" => Some(Self::PasswordReset),
            _ => None,
        }
    }
}

/// The one-time link a mail carries: its kind and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailLink {
    pub kind: MailKind,
    pub user: UserId,
}

/// A queued mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailRecord {
    pub id: i64,
    pub created_at: i64,
    pub to: String,
    pub subject: String,
    /// Empty once the mail was sent (it carried a one-time link).
    pub body: String,
    pub kind: Option<MailKind>,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
    /// When a node without SMTP logged its notice about this mail.
    pub announced_at: Option<i64>,
    /// A failed delivery is not tried again before this time.
    pub next_attempt_at: i64,
}

const COLUMNS: &str = "id, created_at, to_address, subject, body, kind, attempts, sent_at, \
     last_error, announced_at, next_attempt_at";

fn record(row: &sqlx::any::AnyRow) -> Result<MailRecord, StoreError> {
    let kind: Option<String> = row.try_get(5)?;
    Ok(MailRecord {
        id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        to: row.try_get(2)?,
        subject: row.try_get(3)?,
        body: row.try_get(4)?,
        kind: kind.as_deref().and_then(MailKind::parse),
        attempts: row.try_get(6)?,
        sent_at: row.try_get(7)?,
        last_error: row.try_get(8)?,
        announced_at: row.try_get(9)?,
        next_attempt_at: row.try_get(10)?,
    })
}

/// How a worker takes rows: up to `batch` of them, held for `lease_ms`,
/// never one that already failed `max_attempts` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub node: &'a str,
    pub batch: i64,
    pub lease_ms: i64,
    pub max_attempts: i64,
}

/// How a delivery ended, for [`crate::Store::mark_mail_failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure<'a> {
    pub node: &'a str,
    pub error: &'a str,
    /// Not tried again for this long.
    pub retry_in_ms: i64,
}

impl<M> Tx<M> {
    /// Queued mail, newest first; `unsent_only` leaves out what was delivered.
    pub async fn outbox(
        &mut self,
        unsent_only: bool,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 = 0 OR sent_at IS NULL) \
             ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(unsent_only))
            .bind(limit)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(record).collect()
    }
}

/// Driver and server messages are not ours: keep them storable and short.
fn storable(error: &str) -> String {
    error.chars().filter(|c| *c != '\0').take(500).collect()
}

impl crate::Store {
    /// Claims the oldest due unsent rows for `claim.node` (see the module
    /// doc), oldest first. Delivery bookkeeping, not a user's action: not
    /// audited.
    pub async fn claim_mail(&self, claim: Claim<'_>) -> Result<Vec<MailRecord>, StoreError> {
        let now = self.now_ms();
        let due = "sent_at IS NULL AND attempts < $3 AND next_attempt_at <= $4 \
             AND (lease_until IS NULL OR lease_until <= $4)";
        let sql = format!(
            "WITH picked AS MATERIALIZED \
             (SELECT id FROM outbox WHERE {due} ORDER BY id LIMIT $5{lock}) \
             UPDATE outbox SET claimed_by = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM picked) AND {due} RETURNING {COLUMNS}",
            lock = self.dialect().skip_locked(),
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(claim.node.to_owned())
            .bind(now.saturating_add(claim.lease_ms))
            .bind(claim.max_attempts)
            .bind(now)
            .bind(claim.batch)
            .fetch_all(self.pool())
            .await?;
        let mut mails = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        // RETURNING keeps no order.
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Records a delivery by the row's holder and drops the body, which
    /// carried a one-time link. False when `node` no longer held the row
    /// (its lease ran out and another node took it, or it was cancelled).
    pub async fn mark_mail_sent(&self, mail: i64, node: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, body = '', \
             last_error = NULL, claimed_by = NULL, lease_until = NULL \
             WHERE id = $2 AND claimed_by = $3 AND sent_at IS NULL",
        )
        .bind(self.now_ms())
        .bind(mail)
        .bind(node.to_owned())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt by the row's holder and releases it until
    /// `failure.retry_in_ms` from now. False when `node` no longer held the row.
    pub async fn mark_mail_failed(
        &self,
        mail: i64,
        failure: Failure<'_>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
             claimed_by = NULL, lease_until = NULL \
             WHERE id = $3 AND claimed_by = $4 AND sent_at IS NULL",
        )
        .bind(storable(failure.error))
        .bind(self.now_ms().saturating_add(failure.retry_in_ms))
        .bind(mail)
        .bind(failure.node.to_owned())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks up to `limit` unsent, not yet announced rows as announced and
    /// returns them, oldest first: each row is returned once, to one node,
    /// ever (the conditional `UPDATE` re-checks `announced_at`).
    pub async fn announce_mail(&self, limit: i64) -> Result<Vec<MailRecord>, StoreError> {
        let pending = "sent_at IS NULL AND announced_at IS NULL";
        let sql = format!(
            "WITH picked AS MATERIALIZED \
             (SELECT id FROM outbox WHERE {pending} ORDER BY id LIMIT $2{lock}) \
             UPDATE outbox SET announced_at = $1 \
             WHERE id IN (SELECT id FROM picked) AND {pending} RETURNING {COLUMNS}",
            lock = self.dialect().skip_locked(),
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(self.now_ms())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut mails = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Unsent rows that will still be tried (fewer than `max_attempts`
    /// failures): the mail queue's depth.
    pub async fn mail_queue_depth(&self, max_attempts: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND attempts < $1",
        )
        .bind(max_attempts)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }
}

impl Tx<Write> {
    /// Queues a mail in the outbox; it is sent after commit by the outbox
    /// worker. `link` names the one-time link it carries, if any, so that
    /// [`Tx::cancel_mail`] can withdraw it.
    pub async fn enqueue_mail<A: Permits<writes::EnqueueMail>>(
        &mut self,
        _by: &Allowed<A>,
        to: &str,
        subject: &str,
        body: &str,
        link: Option<MailLink>,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (created_at, to_address, subject, body, kind, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(self.now())
        .bind(to.to_owned())
        .bind(subject.to_owned())
        .bind(body.to_owned())
        .bind(link.map(|l| l.kind.as_str()))
        .bind(link.map(|l| l.user.0))
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    /// Deletes the unsent mail carrying `link` (its link was revoked,
    /// replaced or used); returns how many rows went.
    pub async fn cancel_mail<A: Permits<writes::CancelMail>>(
        &mut self,
        _by: &Allowed<A>,
        link: MailLink,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM outbox WHERE user_id = $1 AND kind = $2 AND sent_at IS NULL")
                .bind(link.user.0)
                .bind(link.kind.as_str())
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected())
    }
}
