//! The mail outbox: mail is queued inside the transaction that decides to send
//! it and delivered after commit by the outbox worker.

use crate::error::StoreError;
use crate::tx::{Tx, Write};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, writes};
use serde::Serialize;
use sqlx::Row;

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

impl<M> Tx<M> {
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
}

impl crate::Store {
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
            .bind(
                // Driver and server messages are not ours: keep them storable.
                error
                    .chars()
                    .filter(|c| *c != '\0')
                    .take(500)
                    .collect::<String>(),
            )
            .bind(mail)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Tx<Write> {
    /// Queues a mail in the outbox; it is sent after commit by the outbox worker.
    pub async fn enqueue_mail<A: Permits<writes::EnqueueMail>>(
        &mut self,
        _by: &Allowed<A>,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (created_at, to_address, subject, body) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(self.now())
        .bind(to.to_owned())
        .bind(subject.to_owned())
        .bind(body.to_owned())
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }
}
