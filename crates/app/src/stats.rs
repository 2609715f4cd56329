//! What the server reports about itself in its metrics: the connection pool
//! and the decision cache. Read-only bookkeeping, nothing audited.

use crate::{App, AppError};
use arbor_store::PoolStats;

/// The decision cache's counters and how far it is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheReport {
    pub stats: crate::cache::CacheStats,
    /// Committed authorization changes the cache has not caught up with yet
    /// (it catches up at the start of the next request); `None` before it
    /// served its first request.
    pub version_lag: Option<i64>,
}

impl App {
    /// The connection pool's current use (no database round trip).
    pub fn pool_stats(&self) -> PoolStats {
        self.store.pool_stats()
    }

    /// The decision cache's counters and lag (one statement: the store's
    /// current version); `None` when the cache is off.
    pub async fn cache_report(&self) -> Result<Option<CacheReport>, AppError> {
        let Some(cache) = self.cache() else {
            return Ok(None);
        };
        let stats = cache.stats();
        let cached = cache.version();
        let current = self.store.authz_version().await?;
        Ok(Some(CacheReport {
            stats,
            version_lag: cached.map(|v| current.saturating_sub(v).max(0)),
        }))
    }
}
