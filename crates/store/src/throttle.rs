//! Failed-login counters (migrations/*/0004), shared by every server node.
//!
//! Each login attempt is keyed by its (account, client) pair and by its client
//! alone. [`crate::Store::reserve_login_attempt`] reads and locks both counters,
//! lets the caller's policy decide, and writes what it decided, in one
//! transaction — before the password is verified, so that a burst of
//! concurrent attempts is counted one by one. Bookkeeping, not a user's
//! action: the attempt itself is audited by the login use case.

use crate::error::StoreError;
use crate::tx::{Tx, Write};
use arbor_core::Allowed;
use arbor_core::policy::{Permits, writes};
use sqlx::{AssertSqlSafe, Row};

/// One counter: failures reserved so far, the last one's time and the time
/// before which no attempt may run (unix ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginCounter {
    pub failures: i64,
    pub last_failure_at: i64,
    pub blocked_until: i64,
}

/// The two counters a login attempt is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginKey {
    account: String,
    client: String,
}

/// The account part of a [`LoginKey`]: SHA-256 (hex) of the email as the
/// store normalizes it (or, for text that is no email, trimmed and lower
/// case), so that every spelling of one address counts together, an unknown
/// address counts like a known one, and no typed text is stored.
pub fn login_account_key(email: &str) -> String {
    use sha2::Digest as _;
    let normalized = crate::users::parse_email(email)
        .map(|e| e.normalized().to_owned())
        .unwrap_or_else(|_| email.trim().to_lowercase());
    sha2::Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Longest stored client key (an IPv6 address with a zone fits easily).
const MAX_CLIENT_LEN: usize = 100;

impl LoginKey {
    /// `client` is the client's address as text (the server resolves it).
    pub fn new(email: &str, client: &str) -> Self {
        Self {
            account: login_account_key(email),
            client: client.chars().take(MAX_CLIENT_LEN).collect(),
        }
    }
}

/// The account column of a client's own counter.
const CLIENT_ONLY: &str = "";

async fn locked_counter(
    tx: &mut Tx<Write>,
    account: &str,
    client: &str,
) -> Result<LoginCounter, StoreError> {
    // Make sure the row exists, so that concurrent attempts queue on its lock.
    sqlx::query(
        "INSERT INTO login_failures (account, client, failures, last_failure_at, blocked_until) \
         VALUES ($1, $2, 0, 0, 0) ON CONFLICT (account, client) DO NOTHING",
    )
    .bind(account.to_owned())
    .bind(client.to_owned())
    .execute(tx.conn())
    .await?;
    let sql = format!(
        "SELECT failures, last_failure_at, blocked_until FROM login_failures \
         WHERE account = $1 AND client = $2{}",
        tx.dialect().for_update()
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(account.to_owned())
        .bind(client.to_owned())
        .fetch_one(tx.conn())
        .await?;
    Ok(LoginCounter {
        failures: row.try_get(0)?,
        last_failure_at: row.try_get(1)?,
        blocked_until: row.try_get(2)?,
    })
}

async fn read_counter<M>(
    tx: &mut Tx<M>,
    account: &str,
    client: &str,
) -> Result<LoginCounter, StoreError> {
    let row = sqlx::query(
        "SELECT failures, last_failure_at, blocked_until FROM login_failures \
         WHERE account = $1 AND client = $2",
    )
    .bind(account.to_owned())
    .bind(client.to_owned())
    .fetch_optional(tx.conn())
    .await?;
    Ok(match row {
        Some(row) => LoginCounter {
            failures: row.try_get(0)?,
            last_failure_at: row.try_get(1)?,
            blocked_until: row.try_get(2)?,
        },
        None => LoginCounter::default(),
    })
}

async fn write_counter(
    tx: &mut Tx<Write>,
    account: &str,
    client: &str,
    counter: LoginCounter,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE login_failures SET failures = $1, last_failure_at = $2, blocked_until = $3 \
         WHERE account = $4 AND client = $5",
    )
    .bind(counter.failures)
    .bind(counter.last_failure_at)
    .bind(counter.blocked_until)
    .bind(account.to_owned())
    .bind(client.to_owned())
    .execute(tx.conn())
    .await?;
    Ok(())
}

impl crate::Store {
    /// Reads and locks the pair's and the client's counters, and writes the
    /// ones `decide` returns (nothing when it returns `None`), in one
    /// transaction. `decide` gets the transaction's time and both counters
    /// (zero when absent).
    pub async fn reserve_login_attempt<T>(
        &self,
        key: &LoginKey,
        decide: impl FnOnce(
            i64,
            LoginCounter,
            LoginCounter,
        ) -> (T, Option<(LoginCounter, LoginCounter)>),
    ) -> Result<T, StoreError> {
        let mut tx = self.write().await?;
        // Always the pair first, then the client: one lock order for everyone.
        let pair = locked_counter(&mut tx, &key.account, &key.client).await?;
        let client = locked_counter(&mut tx, CLIENT_ONLY, &key.client).await?;
        let (answer, write) = decide(tx.now(), pair, client);
        if let Some((pair, client)) = write {
            write_counter(&mut tx, &key.account, &key.client, pair).await?;
            write_counter(&mut tx, CLIENT_ONLY, &key.client, client).await?;
        }
        tx.commit_bookkeeping().await?;
        Ok(answer)
    }

    /// A correct password: the pair's counter is deleted and the client's
    /// reservation given back (its other failures stay: the client may be
    /// shared with whoever made them).
    pub async fn release_login_attempt(&self, key: &LoginKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM login_failures WHERE account = $1 AND client = $2")
            .bind(key.account.clone())
            .bind(key.client.clone())
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 \
             WHERE account = $1 AND client = $2 AND failures > 0",
        )
        .bind(CLIENT_ONLY)
        .bind(key.client.clone())
        .execute(tx.conn())
        .await?;
        tx.commit_bookkeeping().await
    }

    /// The counters of an email (pair rows) and of a client, for tests and
    /// diagnostics: (pair, client), zero when absent.
    pub async fn login_counters(
        &self,
        key: &LoginKey,
    ) -> Result<(LoginCounter, LoginCounter), StoreError> {
        let mut tx = self.read().await?;
        let pair = read_counter(&mut tx, &key.account, &key.client).await?;
        let client = read_counter(&mut tx, CLIENT_ONLY, &key.client).await?;
        tx.finish().await?;
        Ok((pair, client))
    }

    /// Deletes the counters whose last failure is older than `before` and
    /// that no longer block (bookkeeping: not audited). Returns the rows
    /// deleted.
    pub async fn prune_login_failures(&self, before: i64) -> Result<u64, StoreError> {
        let now = self.now_ms();
        let deleted = sqlx::query(
            "DELETE FROM login_failures WHERE last_failure_at < $1 AND blocked_until <= $2",
        )
        .bind(before)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(deleted)
    }
}

impl Tx<Write> {
    /// Forgets every failed-login counter of `email` (from every client), as
    /// a completed password reset does.
    pub async fn clear_login_failures<A: Permits<writes::ClearLoginFailures>>(
        &mut self,
        _by: &Allowed<A>,
        email: &str,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM login_failures WHERE account = $1")
            .bind(login_account_key(email))
            .execute(self.conn())
            .await?
            .rows_affected();
        Ok(deleted)
    }
}
