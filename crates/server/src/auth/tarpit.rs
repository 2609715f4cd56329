//! Holding refused login attempts back.
//!
//! The login throttle makes a refused attempt cheap (a read of the stored
//! counters, no hash), but a client that keeps one connection busy sends the
//! next attempt as soon as the 429 arrives: 64 such connections from one
//! address made ~5,000 requests a second and took the CPU from everyone else.
//! So a refused attempt is answered only after a pause (`throttle.hold_ms`,
//! at most its `Retry-After`): a client that waits for its answers is slowed
//! to one attempt per pause per connection, and a held attempt costs a
//! sleeping task, not a core. The number of attempts held at once is bounded
//! (`throttle.hold_slots`); beyond it they are answered at once, so holding
//! cannot be turned into unbounded memory.

use arbor_app::AppError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct Tarpit {
    slots: Arc<Semaphore>,
    hold: Duration,
}

impl Tarpit {
    pub fn new(hold: Duration, slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            hold,
        }
    }

    /// Passes `result` on; a throttled refusal only after the pause, while a
    /// slot is free.
    pub async fn hold<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(AppError::Throttled { retry_after_secs }) = &result
            && !self.hold.is_zero()
            && let Ok(_slot) = self.slots.try_acquire()
        {
            metrics::counter!("arbor_throttled_held_total").increment(1);
            tokio::time::sleep(self.hold.min(Duration::from_secs(*retry_after_secs))).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn throttled(retry_after_secs: u64) -> Result<(), AppError> {
        Err(AppError::Throttled { retry_after_secs })
    }

    #[tokio::test]
    async fn a_throttled_refusal_waits_for_the_pause_at_most_its_retry_after() {
        let tarpit = Tarpit::new(Duration::from_millis(200), 4);
        let start = Instant::now();
        assert!(matches!(
            tarpit.hold(throttled(30)).await,
            Err(AppError::Throttled { .. })
        ));
        assert!(start.elapsed() >= Duration::from_millis(200));
        // Capped by Retry-After: a 10 s hold of a 1 s wait lasts 1 s.
        let tarpit = Tarpit::new(Duration::from_secs(10), 4);
        let start = Instant::now();
        assert!(tarpit.hold(throttled(1)).await.is_err());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn other_answers_and_refusals_beyond_the_slots_pass_at_once() {
        let tarpit = Tarpit::new(Duration::from_secs(30), 1);
        let held = tokio::spawn({
            let tarpit = tarpit.clone();
            async move { tarpit.hold(throttled(60)).await }
        });
        while tarpit.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // The one slot is taken: the next refusal is answered at once, and
        // so is anything that is not a refusal.
        assert!(tarpit.hold(throttled(60)).await.is_err());
        assert_eq!(tarpit.hold(Ok::<u8, AppError>(7)).await.ok(), Some(7));
        assert!(!held.is_finished());
        held.abort();
    }
}
