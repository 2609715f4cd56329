//! What a run counts: requests sent, answers by status, failures without an
//! answer, latencies in a small log-linear histogram (about 3 % precision,
//! constant memory however long the run), and the first distinct error
//! bodies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Below this many microseconds every value has a bucket of its own; above,
/// each power of two is split into `SUB_BUCKETS` buckets.
const EXACT: u64 = 64;
const SUB_BUCKETS: u64 = 32;

/// How many distinct error bodies are kept to show.
pub const KEPT_ERRORS: usize = 5;

#[derive(Clone, Debug, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

fn bucket(us: u64) -> usize {
    if us < EXACT {
        return us as usize;
    }
    let exponent = u64::from(63 - us.leading_zeros());
    let shift = exponent - 5;
    (EXACT + (shift - 1) * SUB_BUCKETS + ((us >> shift) - SUB_BUCKETS)) as usize
}

/// The middle of bucket `index`, in microseconds.
fn bucket_value(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let k = index - EXACT;
    let shift = k / SUB_BUCKETS + 1;
    let low = (k % SUB_BUCKETS + SUB_BUCKETS) << shift;
    low + (1 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX >> 1);
        let index = bucket(us);
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency below which a share `q` (0..=1) of the recorded ones lie.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max();
        }
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let us = bucket_value(index).min(self.max_us);
                return Some(Duration::from_micros(us));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }
}

/// Why a request did not store its values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Answered, but not with 200.
    Status(u16),
    /// No answer: refused connection, reset, timeout.
    NoAnswer,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(status) => write!(f, "{status}"),
            Failure::NoAnswer => f.write_str("no answer"),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sent: u64,
    pub ok: u64,
    pub failed: BTreeMap<Failure, u64>,
    /// Requests not sent on time because `--concurrency` were in flight.
    pub missed: u64,
    /// Latencies of every answer, 200 or not, over the whole run ...
    pub latency: Histogram,
    /// ... and since the last progress line.
    pub recent: Histogram,
    /// The first distinct error bodies (or causes), each with its failure.
    pub first_errors: Vec<(Failure, String)>,
}

impl Stats {
    pub fn answered(&mut self, status: u16, latency: Duration, body: Option<String>) {
        self.latency.record(latency);
        self.recent.record(latency);
        if status == 200 {
            self.ok += 1;
        } else {
            self.fail(Failure::Status(status), body.unwrap_or_default());
        }
    }

    pub fn unanswered(&mut self, cause: String) {
        self.fail(Failure::NoAnswer, cause);
    }

    fn fail(&mut self, failure: Failure, said: String) {
        *self.failed.entry(failure.clone()).or_default() += 1;
        let said: String = said.trim().chars().take(200).collect();
        if self.first_errors.len() < KEPT_ERRORS
            && !self
                .first_errors
                .iter()
                .any(|(f, s)| *f == failure && *s == said)
        {
            self.first_errors.push((failure, said));
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    pub fn done(&self) -> u64 {
        self.ok + self.failed_total()
    }

    /// `429 ×3, no answer ×1`, or `none`.
    pub fn failures(&self) -> String {
        if self.failed.is_empty() {
            return "none".into();
        }
        let mut text = String::new();
        for (failure, count) in &self.failed {
            if !text.is_empty() {
                text.push_str(", ");
            }
            let _ = write!(text, "{failure} ×{count}");
        }
        text
    }

    /// The progress line: totals, the rate of answers since the last line
    /// (`window` long) and its latencies.
    pub fn progress_line(&self, elapsed: Duration, window: Duration) -> String {
        let rate = self.recent.count() as f64 / window.as_secs_f64().max(1e-3);
        let mut line = format!(
            "{:>3.0}s  sent {}  ok {}  errors {}  {rate:.0}/s",
            elapsed.as_secs_f64(),
            self.sent,
            self.ok,
            self.failed_total(),
        );
        if !self.failed.is_empty() {
            let _ = write!(line, " ({})", self.failures());
        }
        if let (Some(p50), Some(p99)) = (self.recent.quantile(0.5), self.recent.quantile(0.99)) {
            let _ = write!(line, "  p50 {}  p99 {}", millis(p50), millis(p99));
        }
        if self.missed > 0 {
            let _ = write!(line, "  missed {}", self.missed);
        }
        line
    }
}

/// `1.25 ms`.
pub fn millis(latency: Duration) -> String {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_each_holds_its_values() {
        let mut previous = 0;
        for us in 1..100_000u64 {
            let index = bucket(us);
            assert!(index == previous || index == previous + 1, "{us}");
            previous = index;
            let middle = bucket_value(index) as f64;
            assert!(
                (middle - us as f64).abs() <= us as f64 * 0.032 + 0.5,
                "{us} -> {middle}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for ms in 1..=100 {
            histogram.record(Duration::from_millis(ms));
        }
        let p50 = histogram.quantile(0.5).unwrap().as_secs_f64() * 1000.0;
        let p99 = histogram.quantile(0.99).unwrap().as_secs_f64() * 1000.0;
        assert!((48.0..=52.0).contains(&p50), "{p50}");
        assert!((97.0..=100.0).contains(&p99), "{p99}");
        assert_eq!(histogram.max(), Some(Duration::from_millis(100)));
        assert_eq!(histogram.quantile(1.0), Some(Duration::from_millis(100)));
    }

    #[test]
    fn failures_are_counted_by_status_and_distinct_bodies_kept() {
        let mut stats = Stats::default();
        let busy = r#"{"error":{"message":"Too many requests."}}"#;
        for _ in 0..3 {
            stats.answered(429, Duration::from_millis(1), Some(busy.into()));
        }
        stats.answered(200, Duration::from_millis(1), None);
        stats.unanswered("cannot connect: Connection refused".into());
        assert_eq!((stats.ok, stats.failed_total(), stats.done()), (1, 4, 5));
        assert_eq!(stats.failures(), "429 ×3, no answer ×1");
        assert_eq!(stats.first_errors.len(), 2);
        for n in 0..10 {
            stats.answered(400, Duration::from_millis(1), Some(format!("body {n}")));
        }
        assert_eq!(stats.first_errors.len(), KEPT_ERRORS);
    }
}
