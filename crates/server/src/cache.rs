//! Upkeep while the server runs: the decision cache's warm-up at start, the
//! pruning of the store's authorization change feed and of idle failed-login
//! counters.

use crate::AppState;
use std::time::Duration;

/// How often the change feed is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Warms the cache (if configured), then prunes the change feed every five
/// minutes. Runs until the server stops; failures are logged and retried.
pub async fn run(state: AppState) {
    let config = state.config.authz_cache.clone();
    if let Some(cache) = state.app.cache()
        && config.warm
    {
        let started = std::time::Instant::now();
        match cache.warm().await {
            Ok(entries) => tracing::info!(
                entries,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "decision cache warmed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "decision cache warm-up failed; it fills as requests come")
            }
        }
    }
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        match state.app.prune_authz_changes(config.keep_versions).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned the authorization change feed"),
            Err(e) => tracing::warn!(error = %e, "pruning the authorization change feed failed"),
        }
        match state.app.prune_login_failures().await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned idle failed-login counters"),
            Err(e) => tracing::warn!(error = %e, "pruning failed-login counters failed"),
        }
    }
}
