use crate::clock::{Clock, SystemClock};
use crate::config::StoreConfig;
use crate::dialect::{Dialect, Engine};
use crate::error::StoreError;
use crate::tx::{Read, Tx, Write};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};
use std::sync::Arc;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool to one database, SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.dialect.engine())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with the wall clock.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        Self::connect_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Connects, and applies pending migrations unless the config says not to.
    pub async fn connect_with_clock(
        config: &StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        install_default_drivers();
        let engine = Engine::from_url(&config.url)?;
        let dialect = Dialect::new(engine);
        let url = match engine {
            // Create the file when it does not exist yet.
            Engine::Sqlite if !config.url.contains("mode=") => {
                let sep = if config.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}mode=rwc", config.url)
            }
            _ => config.url.clone(),
        };
        let setup = Arc::new(dialect.connection_setup(config.sqlite_busy_timeout.as_millis()));
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let setup = Arc::clone(&setup);
                Box::pin(async move {
                    for statement in setup.iter() {
                        conn.execute(AssertSqlSafe(statement.clone())).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(crate::error::map_sqlx)?;
        let store = Self {
            pool,
            dialect,
            clock,
        };
        if config.migrate_on_connect {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies every pending migration of this engine (`arbor migrate`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect.engine() {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        self.dialect.engine()
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`). Dropping it
    /// without [`Tx::commit`] rolls it back.
    pub async fn write(&self) -> Result<Tx<Write>, StoreError> {
        let tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        Ok(Tx::new(tx, self.dialect, self.clock.now_ms()))
    }

    /// Starts a read-only transaction: one snapshot for facts and lists.
    pub async fn read(&self) -> Result<Tx<Read>, StoreError> {
        let tx = self.pool.begin_with(self.dialect.begin_read()).await?;
        Ok(Tx::new(tx, self.dialect, self.clock.now_ms()))
    }

    /// The engine settings in effect on a pooled connection, for diagnostics
    /// (`arbor configtest`) and tests: SQLite's journal mode, synchronous level,
    /// foreign keys and busy timeout; PostgreSQL's version, isolation level and
    /// search path.
    pub async fn engine_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let queries: &[(&str, &str)] = match self.dialect.engine() {
            Engine::Sqlite => &[
                ("journal_mode", "PRAGMA journal_mode"),
                ("synchronous", "PRAGMA synchronous"),
                ("foreign_keys", "PRAGMA foreign_keys"),
                ("busy_timeout", "PRAGMA busy_timeout"),
            ],
            Engine::Postgres => &[
                ("server_version", "SHOW server_version"),
                (
                    "transaction_isolation",
                    "SHOW default_transaction_isolation",
                ),
                ("search_path", "SHOW search_path"),
            ],
        };
        let mut settings = Vec::new();
        for (name, sql) in queries {
            let row = sqlx::query(*sql).fetch_one(&mut *conn).await?;
            // SQLite answers numbers for most pragmas, PostgreSQL text.
            let value = match row.try_get::<String, _>(0) {
                Ok(text) => text,
                Err(_) => row.try_get::<i64, _>(0)?.to_string(),
            };
            settings.push(((*name).to_owned(), value));
        }
        Ok(settings)
    }

    /// SQLite's `PRAGMA integrity_check` (PostgreSQL: always "ok").
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        match self.dialect.engine() {
            Engine::Sqlite => {
                let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(&self.pool)
                    .await?;
                let fk: Vec<sqlx::any::AnyRow> = sqlx::query("PRAGMA foreign_key_check")
                    .fetch_all(&self.pool)
                    .await?;
                if !fk.is_empty() {
                    return Ok(format!("{} foreign key violations", fk.len()));
                }
                Ok(rows.join("; "))
            }
            Engine::Postgres => Ok("ok".into()),
        }
    }

    /// The pool, for the data generator and benchmarks of this crate.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
