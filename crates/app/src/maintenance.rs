//! What the server does for itself while it runs, not on anyone's behalf:
//! readiness, pruning the authorization change feed and the failed-login
//! counters, pruning device history past its retention, delivering queued
//! mail.
//! Bookkeeping of the store, not users' actions: nothing here is audited.

use crate::{App, AppError};
use arbor_store::{Claim, Failure, MailRecord, PrunePolicy, Pruned};

/// The default of the most rows one write transaction of the history
/// pruner deletes (`device_api.prune_batch_rows`): short enough that a
/// device write waiting for the lock behind it is delayed by milliseconds
/// (docs/device-api.md, "History retention").
pub const PRUNE_BATCH_ROWS: u32 = 1000;

impl App {
    /// The database answers (readiness).
    pub async fn ping(&self) -> Result<(), AppError> {
        self.store.read().await?.finish().await?;
        Ok(())
    }

    /// Keeps the newest `keep` versions of the authorization change feed;
    /// returns the rows deleted.
    pub async fn prune_authz_changes(&self, keep: i64) -> Result<u64, AppError> {
        Ok(self.store.prune_authz_changes(keep).await?)
    }

    /// Deletes the failed-login counters idle longer than the throttle
    /// remembers them (and no longer delaying anyone); returns the rows
    /// deleted.
    pub async fn prune_login_failures(&self) -> Result<u64, AppError> {
        let before = self.store.now_ms() - self.throttle.forget_after_ms;
        Ok(self.store.prune_login_failures(before).await?)
    }

    /// Deletes the datastream history and device events older than their
    /// template's retention (`history_retention_days`; unset: the server's
    /// default, [`crate::device_api::DeviceApiLimits::history_retention_days`]),
    /// as of the store's clock, in short batches that device writes
    /// interleave with. Device data, not an authorization fact: no audit
    /// event. Returns what it deleted.
    pub async fn prune_history(&self) -> Result<Pruned, AppError> {
        let limits = self.device_api_limits();
        let policy = PrunePolicy {
            default_days: limits.history_retention_days,
            batch_rows: limits.prune_batch_rows,
        };
        // Idempotent: rerun whole on contention, as use cases are.
        self.retrying(|| async { Ok(self.store.prune_device_data(policy).await?) })
            .await
    }

    /// Queued mail, newest first: unsent only, or all.
    pub async fn outbox(&self, unsent_only: bool, limit: i64) -> Result<Vec<MailRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let mails = tx.outbox(unsent_only, limit).await?;
        tx.finish().await?;
        Ok(mails)
    }

    /// Claims the oldest due unsent mail for a worker node (the lease in
    /// `arbor_store`'s mail module).
    pub async fn claim_mail(&self, claim: Claim<'_>) -> Result<Vec<MailRecord>, AppError> {
        Ok(self.store.claim_mail(claim).await?)
    }

    /// A delivery by `node`; false when the node no longer held the row.
    pub async fn mark_mail_sent(&self, mail: i64, node: &str) -> Result<bool, AppError> {
        Ok(self.store.mark_mail_sent(mail, node).await?)
    }

    /// A failed attempt by `failure.node`; false when it no longer held the row.
    pub async fn mark_mail_failed(
        &self,
        mail: i64,
        failure: Failure<'_>,
    ) -> Result<bool, AppError> {
        Ok(self.store.mark_mail_failed(mail, failure).await?)
    }

    /// Unsent mail not yet announced in a log, marked announced (each row
    /// once, to one node).
    pub async fn announce_mail(&self, limit: i64) -> Result<Vec<MailRecord>, AppError> {
        Ok(self.store.announce_mail(limit).await?)
    }

    /// Unsent mail that will still be tried.
    pub async fn mail_queue_depth(&self, max_attempts: i64) -> Result<i64, AppError> {
        Ok(self.store.mail_queue_depth(max_attempts).await?)
    }
}
