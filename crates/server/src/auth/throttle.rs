//! Failed-login throttling per account and per client address.
//!
//! Failures are counted in a sliding window (default one hour). Past the limit,
//! logins for that key answer 429 with `Retry-After` until the oldest failure
//! leaves the window. The account key is the normalized email *as typed*,
//! whether or not such an account exists, so throttling reveals nothing about
//! existence. Counters live in memory per server node: with several nodes
//! behind a load balancer each node counts on its own, so the effective limit
//! is at most `nodes × limit`.

use arbor_app::model::Clock;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub per_account: usize,
    pub per_client: usize,
    pub window_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account: 100,
            per_client: 1000,
            window_ms: 60 * 60 * 1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Client(IpAddr),
}

/// Beyond this many tracked keys the oldest-idle ones are dropped, so a flood of
/// distinct emails cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

pub struct Throttle {
    limits: Limits,
    clock: Arc<dyn Clock>,
    failures: Mutex<HashMap<Key, VecDeque<i64>>>,
}

impl Throttle {
    pub fn new(limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Self {
            limits,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, client: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Account(account.trim().to_lowercase())];
        keys.extend(client.map(Key::Client));
        keys
    }

    fn limit(&self, key: &Key) -> usize {
        match key {
            Key::Account(_) => self.limits.per_account,
            Key::Client(_) => self.limits.per_client,
        }
    }

    /// `Err(seconds)` if a login for this account or from this client must wait.
    pub fn check(&self, account: &str, client: Option<IpAddr>) -> Result<(), u64> {
        let now = self.clock.now_ms();
        let window_start = now - self.limits.window_ms;
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait_ms = 0i64;
        for key in Self::keys(account, client) {
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|t| *t <= window_start) {
                    times.pop_front();
                }
                if times.len() >= self.limit(&key)
                    && let Some(oldest) = times.front()
                {
                    wait_ms = wait_ms.max(oldest + self.limits.window_ms - now);
                }
            }
        }
        if wait_ms > 0 {
            Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000))
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&self, account: &str, client: Option<IpAddr>) {
        let now = self.clock.now_ms();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            let window_start = now - self.limits.window_ms;
            failures.retain(|_, times| times.back().is_some_and(|t| *t > window_start));
        }
        for key in Self::keys(account, client) {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Never keep more than the limit needs.
            while times.len() > self.limits.per_account.max(self.limits.per_client) {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_app::model::ManualClock;

    #[test]
    fn an_account_is_throttled_after_the_limit_until_the_window_passes() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let limits = Limits {
            per_account: 3,
            per_client: 100,
            window_ms: 60_000,
        };
        let throttle = Throttle::new(limits, clock.clone());
        for _ in 0..3 {
            assert!(throttle.check("a@x.io", None).is_ok());
            throttle.record_failure("A@x.io", None);
            clock.advance(1_000);
        }
        assert_eq!(throttle.check("a@x.io", None), Err(57));
        assert!(throttle.check("b@x.io", None).is_ok());
        clock.advance(57_000);
        assert!(throttle.check("a@x.io", None).is_ok());
    }

    #[test]
    fn a_client_address_is_throttled_across_accounts() {
        let clock = Arc::new(ManualClock::new(0));
        let limits = Limits {
            per_account: 100,
            per_client: 2,
            window_ms: 10_000,
        };
        let throttle = Throttle::new(limits, clock);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        throttle.record_failure("one@x.io", Some(ip));
        throttle.record_failure("two@x.io", Some(ip));
        assert!(throttle.check("three@x.io", Some(ip)).is_err());
        assert!(
            throttle
                .check("three@x.io", Some("10.0.0.2".parse().unwrap()))
                .is_ok()
        );
    }
}
