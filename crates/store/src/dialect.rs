//! The few places where SQLite and PostgreSQL really differ. Everything else is
//! one SQL text for both engines.

use crate::error::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::invalid(
                "database_url",
                "expected sqlite://path or postgres://…",
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Engine-specific SQL fragments, chosen once per [`crate::Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    engine: Engine,
}

impl Dialect {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    pub fn engine(self) -> Engine {
        self.engine
    }

    /// How a write transaction starts.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front. A deferred
    /// transaction that reads and then writes must upgrade its lock and fails at
    /// once with SQLITE_BUSY if another writer got there first — the busy timeout
    /// does not apply to an upgrade — so facts read and writes made in one
    /// transaction need the lock from the start. Writers are thus serialised,
    /// which is also what makes "re-read facts, decide, write" race-free.
    ///
    /// PostgreSQL: READ COMMITTED, and every fact a decision depends on is read
    /// with [`Dialect::for_update`] so that conflicting writers queue on it.
    pub fn begin_write(self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }

    /// How a read-only transaction starts: one consistent snapshot for the
    /// principal and the list it reads.
    pub fn begin_read(self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "BEGIN DEFERRED",
            Engine::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// Row-lock suffix for the fact queries of a write transaction. Empty on
    /// SQLite, where `BEGIN IMMEDIATE` already excludes other writers.
    pub fn for_update(self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "",
            // NO KEY UPDATE: excludes other lockers (and writers) of the row,
            // but not the KEY SHARE locks that foreign-key checks of unrelated
            // inserts take (a new device in the org need not wait).
            Engine::Postgres => " FOR NO KEY UPDATE",
        }
    }

    /// Lock suffix of a queue's claim subquery: PostgreSQL locks the rows it
    /// picks and passes over rows another claim holds; SQLite runs the
    /// whole statement under its one write lock.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The statement that serialises first-run setups, if the engine needs one.
    pub(crate) fn first_run_lock(self) -> Option<&'static str> {
        match self.engine {
            Engine::Sqlite => None,
            // An arbitrary key of Arbor's own, released at commit or rollback.
            Engine::Postgres => Some("SELECT pg_advisory_xact_lock(727372657401)"),
        }
    }

    /// Statements run on every new connection.
    pub(crate) fn connection_setup(self, busy_timeout_ms: u128) -> Vec<String> {
        match self.engine {
            Engine::Sqlite => vec![
                // Wait for the write lock instead of failing at once.
                format!("PRAGMA busy_timeout = {busy_timeout_ms}"),
                // Off by default in SQLite; the schema relies on them.
                "PRAGMA foreign_keys = ON".into(),
                // Readers never block the writer and vice versa; the mode is
                // stored in the file, so this is a no-op after the first time.
                "PRAGMA journal_mode = WAL".into(),
                // In WAL mode NORMAL syncs at checkpoints, not at every commit: a
                // committed transaction survives a crash of the process (the
                // crash test kills writers with SIGKILL) and the file is never
                // corrupted, but the last commits before an OS crash or power
                // loss may be rolled back. FULL would cost an fsync per commit.
                "PRAGMA synchronous = NORMAL".into(),
            ],
            Engine::Postgres => vec![],
        }
    }

    /// The first id a bulk load with explicit ids may use: past every id the
    /// table holds and every id it ever handed out (ids are never reused, so
    /// a deleted newest row's id stays retired).
    pub(crate) fn next_free_id(self, table: &str) -> String {
        match self.engine {
            Engine::Sqlite => format!(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM {table}), 0), \
                 COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0)) + 1"
            ),
            Engine::Postgres => format!(
                "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM {table}), 0), \
                 COALESCE(pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id')::regclass), \
                 0)) + 1"
            ),
        }
    }

    /// After a bulk load with explicit ids, moves the id sequence past them
    /// (never back).
    pub(crate) fn reset_id_sequence(self, table: &str) -> Option<String> {
        match self.engine {
            // AUTOINCREMENT keeps sqlite_sequence past explicit ids by itself.
            Engine::Sqlite => None,
            Engine::Postgres => Some(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 GREATEST(COALESCE((SELECT MAX(id) FROM {table}), 0), \
                 COALESCE(pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id')::regclass), \
                 0)) + 1, false)"
            )),
        }
    }
}
