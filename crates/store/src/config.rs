use std::fmt;
use std::time::Duration;

/// How to reach the database. Built by the CLI from `--database-url` /
/// `ARBOR_DATABASE_URL`: `sqlite://path/to/arbor.db` or `postgres://…`.
#[derive(Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Pool size. SQLite writes are serialised by the engine anyway; the pool
    /// lets readers run beside the one writer (WAL).
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request may wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for the write lock before failing
    /// with "database is locked".
    pub sqlite_busy_timeout: Duration,
    /// Apply pending migrations when connecting (the default). `arbor migrate`
    /// applies them explicitly with [`crate::Store::migrate`].
    pub migrate_on_connect: bool,
    /// SQLite only: create the database file when it does not exist (the
    /// default). Off for the commands that must find an existing database.
    pub create_if_missing: bool,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let postgres = url.starts_with("postgres");
        Self {
            url,
            max_connections: if postgres { 16 } else { 8 },
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(10),
            migrate_on_connect: true,
            create_if_missing: true,
        }
    }

    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    pub fn migrate_on_connect(mut self, yes: bool) -> Self {
        self.migrate_on_connect = yes;
        self
    }

    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.create_if_missing = yes;
        self
    }

    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl fmt::Debug for StoreConfig {
    /// The URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = match self.url.split_once('@') {
            Some((scheme_and_user, host)) => {
                let scheme = scheme_and_user.split("://").next().unwrap_or("db");
                format!("{scheme}://***@{host}")
            }
            None => self.url.clone(),
        };
        f.debug_struct("StoreConfig")
            .field("url", &redacted)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .field("migrate_on_connect", &self.migrate_on_connect)
            .field("create_if_missing", &self.create_if_missing)
            .finish()
    }
}
