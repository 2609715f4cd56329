//! History retention (issue 12, item 4): the values and events a device
//! sent are kept for its template's `history_retention_days` (migration
//! 0017; unset: the server's default) and deleted afterwards by a pruner
//! that runs in the background.
//!
//! The pruner must not hold up device writes, which on SQLite take the one
//! write lock (`BEGIN IMMEDIATE`) for every request. So it finds what is
//! due without that lock — plain reads, which in WAL mode neither wait for
//! nor block a writer — and deletes it in short write transactions of at
//! most `batch_rows` rows and [`STATEMENTS_PER_TX`] statements each, and
//! after each one it rests [`REST_FACTOR`] times as long as the transaction
//! took. The rest matters as much as the batch: a writer that found the
//! lock taken sleeps in SQLite's busy handler (1, 2, 5, 10, … 100 ms), and
//! a pruner that began its next batch at once would win the lock again
//! before the writer woke — in a debug build, single updates then waited
//! over a second behind a prune of 60,000 rows. With the rest, waiting
//! writers wake while the lock is free, and the pruner holds the write
//! lock at most a quarter of the time. Measured on the release build (2
//! cores, SQLite, 1M rows due over 100 devices × 2 pins, 16 connections
//! updating one device meanwhile, ~3,000 updates/s without a prune):
//! resting as long as each batch, 1,400–1,900 updates/s went on (1M rows
//! in 44 s); resting three times as long, ~2,300 (1M rows in 90 s). The
//! cost per row (~20 µs on SQLite) is that of a row's table page: a
//! (device, pin)'s points lie scattered among every other device's, so
//! each deleted row dirties a page of its own.
//!
//! No new index: every read and delete goes through the indexes the data
//! plane has anyway, datastream_history(device_id, pin, at) and
//! device_events(device_id, at, id). Devices are walked in id order a page
//! at a time; a device's pins are found by seeking the history index
//! (`pin > last`, one probe per pin, so a pin's millions of rows are never
//! scanned to find the next pin), and a (device, pin) is only visited for
//! deleting when its oldest point is older than its cutoff. A run whose
//! data is all within retention takes no write lock at all.
//!
//! Deleting expired device data is the server's bookkeeping, not anyone's
//! action and no authorization fact: it commits without an audit event and
//! without touching the authorization change feed (like a value write,
//! see [`crate::data`]). Several nodes may prune at once: a row is deleted
//! once, and what one node skipped the next run finds.

use crate::error::StoreError;
use crate::store::Store;
use arbor_core::device_data::retention_cutoff;
use sqlx::Row;
use std::time::{Duration, Instant};

/// How a prune runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Days kept for devices whose template sets no retention of its own.
    pub default_days: i64,
    /// Most rows one write transaction deletes.
    pub batch_rows: u32,
}

/// What one prune removed, and what it cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Datastream history rows deleted.
    pub values: u64,
    /// Device events deleted.
    pub events: u64,
    /// Devices looked at.
    pub devices: u64,
    /// Write transactions it took (0 when nothing was due).
    pub transactions: u64,
}

impl Pruned {
    /// Rows deleted, values and events.
    pub fn rows(&self) -> u64 {
        self.values + self.events
    }
}

/// Devices read per page of the walk.
const DEVICES_PER_PAGE: i64 = 500;

/// Most delete statements in one write transaction, so that a batch of
/// many small (device, pin) deletions holds the write lock no longer than
/// one of few large ones.
pub const STATEMENTS_PER_TX: usize = 100;

/// The rest after a write transaction, in multiples of the time it held
/// the lock (see the module docs).
pub const REST_FACTOR: u32 = 3;

/// The shortest rest after a write transaction.
const MIN_REST: Duration = Duration::from_millis(2);

/// Something due for deletion: the rows of one device's pin, or its
/// events, older than `cutoff` (unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Values { device: i64, pin: i64, cutoff: i64 },
    Events { device: i64, cutoff: i64 },
}

impl Store {
    /// Deletes every datastream history row and device event older than its
    /// device's retention (its template's `history_retention_days`, else
    /// `policy.default_days`), as of the store's clock, in batches of at
    /// most `policy.batch_rows` rows per transaction. Not audited.
    pub async fn prune_device_data(&self, policy: PrunePolicy) -> Result<Pruned, StoreError> {
        let now = self.now_ms();
        let batch = i64::from(policy.batch_rows.max(1));
        let mut pruned = Pruned::default();
        let mut after = 0;
        loop {
            let (last, due) = self.due_page(after, policy.default_days, now).await?;
            let Some((last, devices)) = last else {
                break;
            };
            after = last;
            pruned.devices += devices;
            self.delete_due(&due, batch, &mut pruned).await?;
        }
        Ok(pruned)
    }

    /// The next page of devices after `after`: the last device id and how
    /// many were read (`None` at the end), and what of theirs is due.
    async fn due_page(
        &self,
        after: i64,
        default_days: i64,
        now: i64,
    ) -> Result<(Option<(i64, u64)>, Vec<Due>), StoreError> {
        let mut conn = self.pool().acquire().await?;
        // Per device: its retention, its lowest pin with history and its
        // oldest event, each one probe of an index (the timeline's
        // ownership entries are never pruned: a device's ownership history
        // stays with it).
        let rows = sqlx::query(
            "SELECT d.id, COALESCE(t.history_retention_days, $2), \
             (SELECT MIN(h.pin) FROM datastream_history h WHERE h.device_id = d.id), \
             (SELECT MIN(e.at) FROM device_events e WHERE e.device_id = d.id \
             AND e.code <> 'arbor.ownership') \
             FROM devices d JOIN device_templates t ON t.id = d.template_id \
             WHERE d.id > $1 ORDER BY d.id LIMIT $3",
        )
        .bind(after)
        .bind(default_days)
        .bind(DEVICES_PER_PAGE)
        .fetch_all(&mut *conn)
        .await?;
        let mut due = Vec::new();
        let mut last = None;
        for row in &rows {
            let device: i64 = row.try_get(0)?;
            let days: i64 = row.try_get(1)?;
            let first_pin: Option<i64> = row.try_get(2)?;
            let oldest_event: Option<i64> = row.try_get(3)?;
            last = Some(device);
            let cutoff = retention_cutoff(now, days);
            if oldest_event.is_some_and(|at| at < cutoff) {
                due.push(Due::Events { device, cutoff });
            }
            let Some(mut pin) = first_pin else {
                continue;
            };
            // Each pin's oldest point, then the next pin: one seek each.
            let mut seek = "SELECT pin, at FROM datastream_history \
                 WHERE device_id = $1 AND pin >= $2 ORDER BY pin, at LIMIT 1";
            loop {
                let found = sqlx::query(seek)
                    .bind(device)
                    .bind(pin)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(found) = found else {
                    break;
                };
                pin = found.try_get(0)?;
                let oldest: i64 = found.try_get(1)?;
                if oldest < cutoff {
                    due.push(Due::Values {
                        device,
                        pin,
                        cutoff,
                    });
                }
                seek = "SELECT pin, at FROM datastream_history \
                     WHERE device_id = $1 AND pin > $2 ORDER BY pin, at LIMIT 1";
            }
        }
        let read = u64::try_from(rows.len()).unwrap_or(0);
        Ok((last.map(|last| (last, read)), due))
    }

    /// Deletes what `due` names, in write transactions of at most `batch`
    /// rows and [`STATEMENTS_PER_TX`] statements.
    async fn delete_due(
        &self,
        due: &[Due],
        batch: i64,
        pruned: &mut Pruned,
    ) -> Result<(), StoreError> {
        let mut open: Option<(sqlx::Transaction<'static, sqlx::Any>, Instant)> = None;
        let mut budget = batch;
        let mut statements = 0;
        for item in due {
            loop {
                let (tx, _) = match &mut open {
                    Some(open) => open,
                    None => {
                        pruned.transactions += 1;
                        let tx = self.begin(self.dialect().begin_write()).await?;
                        open.insert((tx, Instant::now()))
                    }
                };
                let query = match *item {
                    Due::Values {
                        device,
                        pin,
                        cutoff,
                    } => sqlx::query(
                        "DELETE FROM datastream_history WHERE id IN (SELECT id \
                         FROM datastream_history WHERE device_id = $1 AND pin = $2 \
                         AND at < $3 ORDER BY at LIMIT $4)",
                    )
                    .bind(device)
                    .bind(pin)
                    .bind(cutoff)
                    .bind(budget),
                    Due::Events { device, cutoff } => sqlx::query(
                        "DELETE FROM device_events WHERE id IN (SELECT id FROM device_events \
                         WHERE device_id = $1 AND at < $2 AND code <> 'arbor.ownership' \
                         ORDER BY at LIMIT $3)",
                    )
                    .bind(device)
                    .bind(cutoff)
                    .bind(budget),
                };
                let deleted = query.execute(&mut **tx).await?.rows_affected();
                match item {
                    Due::Values { .. } => pruned.values += deleted,
                    Due::Events { .. } => pruned.events += deleted,
                }
                statements += 1;
                budget -= i64::try_from(deleted).unwrap_or(budget);
                let more = budget <= 0;
                if more || statements >= STATEMENTS_PER_TX {
                    if let Some(open) = open.take() {
                        commit_and_rest(open).await?;
                    }
                    budget = batch;
                    statements = 0;
                }
                // A full batch may have left more of this item; fewer rows
                // than asked means it is done.
                if !more {
                    break;
                }
            }
        }
        if let Some(open) = open.take() {
            commit_and_rest(open).await?;
        }
        Ok(())
    }
}

/// Commits a prune transaction begun at `began`, then leaves the write
/// lock free [`REST_FACTOR`] times as long as the transaction held it.
async fn commit_and_rest(
    (tx, began): (sqlx::Transaction<'static, sqlx::Any>, Instant),
) -> Result<(), StoreError> {
    tx.commit().await?;
    tokio::time::sleep((began.elapsed() * REST_FACTOR).max(MIN_REST)).await;
    Ok(())
}
