//! The history pruner while the server runs: every
//! `device_api.prune_interval_secs` (the first time at start) it deletes
//! the device values and events older than their template's retention
//! ([`arbor_app::App::prune_history`]), in short batches that device writes
//! interleave with, and logs what it removed. Not audited: expired device
//! data is bookkeeping, not anyone's action.

use arbor_app::App;
use std::time::{Duration, Instant};

/// Prunes every `every` until the server stops; a failed run is logged and
/// the next one tries again.
pub async fn run(app: App, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    // A run longer than the interval is followed by the next one, not by a
    // burst of the missed ones.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        match app.prune_history().await {
            Ok(pruned) if pruned.rows() == 0 => tracing::debug!(
                devices = pruned.devices,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "history pruner: nothing past retention"
            ),
            Ok(pruned) => tracing::info!(
                values = pruned.values,
                events = pruned.events,
                devices = pruned.devices,
                transactions = pruned.transactions,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "history pruner: deleted device data past retention"
            ),
            Err(e) => tracing::warn!(error = %e, "history pruner failed; retrying next interval"),
        }
    }
}
