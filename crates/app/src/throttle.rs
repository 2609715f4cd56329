//! Failed-login throttling: growing delays per (account, client), and a
//! coarse per-client limit that only slows.
//!
//! An attempt is *reserved* — counted as a failure — before its password is
//! verified, in one transaction over the stored counters (arbor-store
//! `throttle`, shared by every node), so that a burst of concurrent attempts
//! cannot slip past the limit: each sees the reservations of those before it.
//! A correct password deletes its pair's counter and gives its client's
//! reservation back.
//!
//! Not a lockout weapon:
//! - the delay is per (account, client): failures from one client delay only
//!   that client's attempts at that account, so a correct password from a
//!   client that has not failed passes while the account is attacked from
//!   elsewhere;
//! - the per-client limit (every account from one address, e.g. everyone
//!   behind one NAT) only spaces attempts out, by at most
//!   `client_max_delay_ms`;
//! - a completed password reset forgets every counter of its account.
//!
//! Delays grow exponentially past a number of free failures, up to a cap;
//! counters idle for `forget_after_ms` start again from zero (and are pruned).

use arbor_store::LoginCounter;

/// The throttle's parameters (the server's `[throttle]` configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one (account, client) pair before delays start.
    pub free_failures: i64,
    /// The first delay; each further failure doubles it.
    pub base_delay_ms: i64,
    /// The longest delay of a pair.
    pub max_delay_ms: i64,
    /// Failures from one client (any accounts) before it is slowed.
    pub client_free_failures: i64,
    /// The longest delay of a client (small: it may be many people).
    pub client_max_delay_ms: i64,
    /// A counter whose last failure is this old starts from zero again.
    pub forget_after_ms: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 15 * 60 * 1000,
            client_free_failures: 100,
            client_max_delay_ms: 5_000,
            forget_after_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// Why an attempt must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// This client failed at this account too often.
    Backoff { ms: i64 },
    /// This client failed at too many accounts.
    Client { ms: i64 },
}

impl Wait {
    pub fn ms(self) -> i64 {
        match self {
            Self::Backoff { ms } | Self::Client { ms } => ms,
        }
    }

    /// The reason label of `arbor_throttled_requests_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Backoff { .. } => "login_backoff",
            Self::Client { .. } => "login_client",
        }
    }
}

/// `base × 2^(failures − free)` once `failures` reaches `free`, capped.
fn delay(failures: i64, free: i64, base: i64, max: i64) -> i64 {
    if failures < free {
        return 0;
    }
    let doublings = u32::try_from((failures - free).min(40)).unwrap_or(40);
    base.saturating_mul(1i64 << doublings.min(62)).min(max)
}

impl ThrottlePolicy {
    /// What the stored counter means now: forgotten when idle long enough.
    fn live(&self, now: i64, counter: LoginCounter) -> LoginCounter {
        if counter.failures > 0 && now - counter.last_failure_at >= self.forget_after_ms {
            LoginCounter::default()
        } else {
            counter
        }
    }

    /// Whether an attempt must wait, by the counters of its pair and its
    /// client as they are now.
    pub fn wait(&self, now: i64, pair: LoginCounter, client: LoginCounter) -> Result<(), Wait> {
        let pair = self.live(now, pair);
        let client = self.live(now, client);
        if pair.blocked_until > now {
            return Err(Wait::Backoff {
                ms: pair.blocked_until - now,
            });
        }
        if client.blocked_until > now {
            return Err(Wait::Client {
                ms: client.blocked_until - now,
            });
        }
        Ok(())
    }

    /// Decides one attempt over the counters of its pair and its client: a
    /// wait (nothing written), or the counters with this attempt reserved.
    pub fn reserve(
        &self,
        now: i64,
        pair: LoginCounter,
        client: LoginCounter,
    ) -> (Result<(), Wait>, Option<(LoginCounter, LoginCounter)>) {
        if let Err(wait) = self.wait(now, pair, client) {
            return (Err(wait), None);
        }
        let pair = self.live(now, pair);
        let client = self.live(now, client);
        let reserve = |counter: LoginCounter, free: i64, max: i64| {
            let failures = counter.failures + 1;
            let wait = delay(failures, free, self.base_delay_ms, max);
            LoginCounter {
                failures,
                last_failure_at: now,
                blocked_until: if wait > 0 { now + wait } else { 0 },
            }
        };
        let pair = reserve(pair, self.free_failures, self.max_delay_ms);
        let client = reserve(client, self.client_free_failures, self.client_max_delay_ms);
        (Ok(()), Some((pair, client)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        policy: &ThrottlePolicy,
        now: i64,
        state: &mut (LoginCounter, LoginCounter),
    ) -> Result<(), Wait> {
        let (answer, write) = policy.reserve(now, state.0, state.1);
        if let Some(next) = write {
            *state = next;
        }
        answer
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        let policy = ThrottlePolicy {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 8_000,
            ..ThrottlePolicy::default()
        };
        let mut state = Default::default();
        let mut now = 1_000_000;
        // Failures 1 and 2 are free; the third reserved one sets 1 s.
        for _ in 0..2 {
            assert_eq!(run(&policy, now, &mut state), Ok(()));
            assert_eq!(state.0.blocked_until, 0);
        }
        let mut waits = Vec::new();
        for _ in 0..6 {
            assert_eq!(run(&policy, now, &mut state), Ok(()));
            let wait = state.0.blocked_until - now;
            waits.push(wait);
            // Until then the pair waits, and nothing is counted.
            assert_eq!(
                run(&policy, now + wait - 1, &mut state),
                Err(Wait::Backoff { ms: 1 })
            );
            now += wait;
        }
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(state.0.failures, 8);
    }

    #[test]
    fn a_client_is_slowed_for_at_most_its_cap_and_idle_counters_are_forgotten() {
        let policy = ThrottlePolicy {
            client_free_failures: 2,
            client_max_delay_ms: 3_000,
            forget_after_ms: 60_000,
            ..ThrottlePolicy::default()
        };
        let now = 5_000_000;
        let client = LoginCounter {
            failures: 1_000,
            last_failure_at: now - 1,
            blocked_until: 0,
        };
        let (answer, write) = policy.reserve(now, LoginCounter::default(), client);
        assert_eq!(answer, Ok(()));
        let (pair, client) = write.unwrap();
        assert_eq!((pair.failures, pair.blocked_until), (1, 0));
        assert_eq!(client.blocked_until, now + 3_000);
        let (answer, write) = policy.reserve(now + 1, pair, client);
        assert_eq!(answer, Err(Wait::Client { ms: 2_999 }));
        assert!(write.is_none());
        // A day later, nothing is remembered.
        let later = now + 60_000;
        let (_, write) = policy.reserve(later, pair, client);
        assert_eq!(write.unwrap().1.failures, 1);
    }
}
