//! The transaction type: one database transaction in read or write mode, its
//! commit (with the audit event and the authorization change stamp) and the
//! helpers every aggregate module shares. The facts and mutations themselves
//! live with their aggregate: [`crate::orgs`], [`crate::users`],
//! [`crate::accounts`], [`crate::roles`], [`crate::devices`], [`crate::mail`],
//! [`crate::audit_log`] and [`crate::authz`].
//!
//! A write transaction is used in one order: lock what the decision depends on
//! (PostgreSQL `FOR UPDATE`; SQLite already holds the write lock), load the
//! facts, let arbor-core decide, write, and [`Tx::commit`] with the audit event.
//! Facts are never carried over from an earlier transaction, so there is no
//! check-then-act race. Mutations take an [`crate::Allowed`], which only an
//! allowing decision yields.

use crate::audit::AuditEvent;
use crate::dialect::Dialect;
use crate::error::StoreError;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};
use std::marker::PhantomData;

/// Marker: a read-only transaction.
#[derive(Debug)]
pub struct Read;

/// Marker: a write transaction.
#[derive(Debug)]
pub struct Write;

pub type ReadTx = Tx<Read>;

pub type WriteTx = Tx<Write>;

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

/// `$n` placeholders for a list of ids, bound in order after `offset` others.
pub(crate) fn placeholders(offset: usize, n: usize) -> String {
    (1..=n)
        .map(|i| format!("${}", offset + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The authorization change feed (migrations/*/0002): if this transaction's
/// triggers recorded change rows, a new version, stamped on them. Run by
/// [`Tx::commit`] just before the commit, in one round trip; read by
/// [`crate::authz`].
///
/// A transaction that changed no authorization fact (a denied attempt's
/// audit row, a profile edit) neither bumps the version nor locks its row,
/// so it does not queue behind, or hold up, the writers that do. Unstamped
/// rows are only ever this transaction's own: every other writer stamps its
/// rows before it commits (PostgreSQL shows no one else's uncommitted rows;
/// SQLite has one writer at a time). The partial index
/// `authz_changes_unstamped` (migrations/*/0003) finds them.
pub(crate) const STAMP_CHANGES: &str = "UPDATE authz_version SET value = value + 1 \
     WHERE id = 1 AND EXISTS (SELECT 1 FROM authz_changes WHERE version IS NULL); \
     UPDATE authz_changes SET version = (SELECT value FROM authz_version WHERE id = 1) \
     WHERE version IS NULL";

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

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The transaction's time (unix ms), read once from the store's clock.
    pub fn now(&self) -> i64 {
        self.now
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

impl<M> Tx<M> {
    /// Commits without an audit row or change stamp: only for what is no
    /// one's authorization-relevant action (bookkeeping, device data).
    pub(crate) async fn commit_unaudited(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Ends the transaction without keeping anything it did (a refused use
    /// case: its audit row is committed on its own afterwards).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Tx<Write> {
    /// Writes the audit event and commits: the only way to make a write
    /// transaction's changes durable. A denied attempt commits its audit row
    /// alone.
    pub async fn commit(mut self, event: AuditEvent) -> Result<(), StoreError> {
        self.insert_audit_row(event).await?;
        // The authorization change feed (see STAMP_CHANGES). Last, so the
        // version row, when bumped, stays locked only until the commit.
        sqlx::raw_sql(STAMP_CHANGES).execute(self.conn()).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// One audit row, inside this transaction (durable only with its commit).
    pub(crate) async fn insert_audit_row(&mut self, event: AuditEvent) -> Result<(), StoreError> {
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
        Ok(())
    }

    /// Commits the store's own bookkeeping (failed-login counters), which is
    /// no one's action and changes no authorization fact: no audit row, no
    /// change stamp. Crate-private, so no use case can commit without its
    /// audit event.
    pub(crate) async fn commit_bookkeeping(self) -> Result<(), StoreError> {
        self.commit_unaudited().await
    }

    pub(crate) async fn lock(
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
}

/// Binding a nullable double the same way on both engines.
///
/// sqlx 0.9's `Any` driver declares a NULL `f64` to PostgreSQL as `float4`
/// (and a NULL `f32` as `float8`: the two arms of its mapping are swapped).
/// A statement is prepared once per connection with the types of its first
/// arguments, so one first run with a NULL double and then with a number
/// failed on PostgreSQL with "incorrect binary data format". Every nullable
/// double is bound through this.
pub(crate) trait BindReal {
    fn bind_real(self, value: Option<f64>) -> Self;
}

impl<'q> BindReal for sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    fn bind_real(self, value: Option<f64>) -> Self {
        match value {
            Some(n) => self.bind(n),
            // Declared as float8 (see above).
            None => self.bind(None::<f32>),
        }
    }
}

impl<'q, O> BindReal for sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    fn bind_real(self, value: Option<f64>) -> Self {
        match value {
            Some(n) => self.bind(n),
            None => self.bind(None::<f32>),
        }
    }
}
