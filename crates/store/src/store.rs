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
            // Create the file when it does not exist yet, if allowed.
            Engine::Sqlite if !config.url.contains("mode=") => {
                let sep = if config.url.contains('?') { '&' } else { '?' };
                let mode = if config.create_if_missing {
                    "rwc"
                } else {
                    "rw"
                };
                format!("{}{sep}mode={mode}", config.url)
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
        let mut conn = self.pool.acquire().await?;
        let result = migrator.run(&mut *conn).await;
        if self.dialect.engine() == Engine::Sqlite {
            // A `no-transaction` migration turns foreign keys off for its
            // rebuild and on again at its end; a failed one may leave them
            // off, or its transaction open. That connection must not serve
            // anyone: a failure closes it, and a success makes sure.
            if result.is_err() {
                conn.close_on_drop();
            } else {
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
            }
        }
        result?;
        drop(conn);
        self.upkeep().await
    }

    /// The newest migration applied to this database, or `None` when it holds
    /// no Arbor schema at all (an empty SQLite file, an empty PostgreSQL
    /// schema): the commands that need an existing database refuse those.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists_sql = match self.dialect.engine() {
            Engine::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name = '_sqlx_migrations'"
            }
            // The table as the connection's search path finds it.
            Engine::Postgres => {
                "SELECT COUNT(*) FROM pg_catalog.pg_class c \
                 WHERE c.oid = to_regclass('_sqlx_migrations')"
            }
        };
        let exists: i64 = sqlx::query_scalar(exists_sql).fetch_one(&self.pool).await?;
        if exists == 0 {
            return Ok(None);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(version.unwrap_or(0)))
    }

    /// The newest migration this build knows for the store's engine.
    pub fn latest_schema_version(&self) -> i64 {
        let migrator = match self.dialect.engine() {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Writes a consistent copy of a SQLite database to `path` while the
    /// database stays in use (`VACUUM INTO`); the file must not exist yet.
    /// PostgreSQL databases are backed up with `pg_dump`.
    pub async fn backup_into(&self, path: &str) -> Result<(), StoreError> {
        match self.dialect.engine() {
            Engine::Sqlite => {
                sqlx::query("VACUUM INTO $1")
                    .bind(path)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Engine::Postgres => Err(StoreError::invalid(
                "database_url",
                "a PostgreSQL database is backed up with pg_dump",
            )),
        }
    }

    /// Work a migration left for the store to do in Rust (`store_upkeep`),
    /// each task in one transaction with its removal from the table.
    async fn upkeep(&self) -> Result<(), StoreError> {
        let tasks: Vec<String> = sqlx::query_scalar("SELECT task FROM store_upkeep")
            .fetch_all(&self.pool)
            .await?;
        if tasks.iter().any(|t| t == "fold_names") {
            let mut tx = self.begin(self.dialect.begin_write()).await?;
            // The migration filled the folded names with SQL lower(); the
            // rows where Rust folds differently (non-ASCII) are refolded.
            for table in ["organizations", "users", "devices"] {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT id, name, name_folded FROM {table}"
                )))
                .fetch_all(&mut *tx)
                .await?;
                let update = format!("UPDATE {table} SET name_folded = $1 WHERE id = $2");
                for (id, name, folded) in rows {
                    let refolded = crate::text::fold(&name);
                    if refolded != folded {
                        sqlx::query(AssertSqlSafe(update.clone()))
                            .bind(refolded)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            sqlx::query("DELETE FROM store_upkeep WHERE task = 'fold_names'")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        if tasks.iter().any(|t| t == "email_forms") {
            self.fill_email_forms().await?;
        }
        Ok(())
    }

    /// The `email_forms` task (migration 0006): every user's normalized
    /// email (NFKC + lower case, arbor_core::text::Email) and its confusable
    /// skeleton, computed in Rust, in id order. A row whose new normalized
    /// form or skeleton an earlier account already has keeps what it had
    /// (its skeleton NULL), so existing accounts never collide; it is
    /// logged, and new look-alikes of either are still refused.
    async fn fill_email_forms(&self) -> Result<(), StoreError> {
        let mut tx = self.begin(self.dialect.begin_write()).await?;
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, email, email_normalized FROM users ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        let mut normalized: std::collections::HashSet<String> =
            rows.iter().map(|(_, _, n)| n.clone()).collect();
        let mut skeletons = std::collections::HashSet::new();
        for (id, email, old) in rows {
            let Some((new, skeleton)) = arbor_core::text::stored_email_forms(&email) else {
                tracing::warn!(
                    user = id,
                    "stored email no longer parses; left without a skeleton"
                );
                continue;
            };
            let normal = if new == old || !normalized.contains(&new) {
                new
            } else {
                tracing::warn!(
                    user = id,
                    "re-normalized email would equal another account's; kept"
                );
                old.clone()
            };
            if !skeletons.insert(skeleton.clone()) {
                tracing::warn!(
                    user = id,
                    "email is a look-alike of an earlier account's; left without a skeleton"
                );
                if normal != old {
                    normalized.insert(normal.clone());
                }
                sqlx::query("UPDATE users SET email_normalized = $1 WHERE id = $2")
                    .bind(normal)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            normalized.insert(normal.clone());
            sqlx::query(
                "UPDATE users SET email_normalized = $1, email_skeleton = $2 WHERE id = $3",
            )
            .bind(normal)
            .bind(skeleton)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM store_upkeep WHERE task = 'email_forms'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let tx = self.begin(self.dialect.begin_write()).await?;
        Ok(Tx::new(tx, self.dialect, self.clock.now_ms()))
    }

    /// Starts a device data transaction ([`crate::DataTx`]: SQLite `BEGIN
    /// IMMEDIATE`), which writes device data only and commits without an
    /// audit event.
    pub async fn data(&self) -> Result<Tx<crate::data::Data>, StoreError> {
        let tx = self.begin(self.dialect.begin_write()).await?;
        Ok(Tx::new(tx, self.dialect, self.clock.now_ms()))
    }

    /// Starts a read-only transaction: one snapshot for facts and lists.
    pub async fn read(&self) -> Result<Tx<Read>, StoreError> {
        let tx = self.begin(self.dialect.begin_read()).await?;
        Ok(Tx::new(tx, self.dialect, self.clock.now_ms()))
    }

    /// Begins a transaction with `statement`, safe against cancellation.
    /// sqlx (0.9.0) counts a PostgreSQL transaction as open only once the
    /// answer to its `BEGIN` has been read: a request dropped in between (a
    /// client that disconnects mid-request) left the connection inside a
    /// transaction nothing would end, and the pool handed it on — the next
    /// borrower's reads ran in the stale snapshot, its writes in a read-only
    /// transaction, and after the first error every statement on that
    /// connection failed with 25P02 (transact-rs/sqlx#4393; seen here under
    /// `wrk`, whose runs end by closing their connections). So the `BEGIN`
    /// runs in a task of its own that a dropped request cannot cut short:
    /// the task finishes it, and a transaction nobody claims is dropped,
    /// which rolls it back before the connection is used again.
    pub(crate) async fn begin(
        &self,
        statement: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let pool = self.pool.clone();
        let begun = tokio::spawn(async move { pool.begin_with(statement).await })
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?;
        Ok(begun?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::NewOrg;
    use arbor_core::policy::Operator;
    use arbor_core::{OrgPath, OrgType};
    use sqlx::Connection;

    /// A fresh, empty database of each engine (PostgreSQL only with
    /// `ARBOR_TEST_DATABASE_URL`), removed when dropped.
    struct Scratch {
        url: String,
        file: Option<std::path::PathBuf>,
        pg: Option<(String, String)>,
    }

    impl Scratch {
        fn sqlite() -> Self {
            let file = std::env::temp_dir()
                .join(format!("arbor-migrate-{:016x}.db", rand::random::<u64>()));
            Self {
                url: format!("sqlite://{}", file.display()),
                file: Some(file),
                pg: None,
            }
        }

        async fn postgres() -> Option<Self> {
            let base = std::env::var("ARBOR_TEST_DATABASE_URL").ok()?;
            install_default_drivers();
            let schema = format!("m_{:016x}", rand::random::<u64>());
            let mut conn = sqlx::AnyConnection::connect(&base).await.unwrap();
            conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await
                .unwrap();
            conn.close().await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(Self {
                url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                file: None,
                pg: Some((base, schema)),
            })
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if let Some(file) = &self.file {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
            if let Some((base, schema)) = self.pg.take() {
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
                            // A failed test may leave a transaction open in
                            // the schema: do not wait on it for ever.
                            let drop =
                                format!("SET lock_timeout = '5s'; DROP SCHEMA {schema} CASCADE");
                            let _ = conn.execute(sqlx::raw_sql(AssertSqlSafe(drop))).await;
                        }
                    });
                })
                .join();
            }
        }
    }

    async fn count(store: &Store, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    async fn insert(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("{sql} RETURNING id")))
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    /// Every table the migrations after 0002 rebuild or touch.
    const TABLES: [&str; 16] = [
        "organizations",
        "hierarchies",
        "users",
        "roles",
        "role_permissions",
        "memberships",
        "device_templates",
        "template_datastreams",
        "org_templates",
        "devices",
        "device_metafields",
        "sessions",
        "invitations",
        "outbox",
        "audit_events",
        "authz_changes",
    ];

    /// A database with data at version 0002 keeps every row through the
    /// later migrations, keeps its triggers and foreign keys, and hands out
    /// no id that was deleted before migrating.
    async fn migrating_keeps_rows(scratch: Scratch) {
        let config = StoreConfig::new(scratch.url.clone())
            .migrate_on_connect(false)
            .max_connections(1);
        let store = Store::connect(&config).await.unwrap();
        let migrator = match store.engine() {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run_to(2, store.pool()).await.unwrap();

        // The 0002 schema, filled with plain SQL as a 0002 server wrote it.
        let root = insert(
            &store,
            "INSERT INTO organizations (parent_id, path, depth, org_type, name, created_at) \
             VALUES (NULL, '', 1, 'ROOT', 'Ärzte Root', 1)",
        )
        .await;
        let mut orgs = vec![root];
        for name in ["Child", "Doomed"] {
            orgs.push(
                insert(
                    &store,
                    &format!(
                        "INSERT INTO organizations (parent_id, path, depth, org_type, name, \
                         created_at) VALUES ({root}, '', 2, 'BUSINESS', '{name}', 1)"
                    ),
                )
                .await,
            );
        }
        let (child, doomed) = (orgs[1], orgs[2]);
        let sql = format!(
            "UPDATE organizations SET path = '/{root}/' WHERE id = {root}; \
             UPDATE organizations SET path = '/{root}/{child}/' WHERE id = {child}; \
             UPDATE organizations SET path = '/{root}/{doomed}/' WHERE id = {doomed}; \
             INSERT INTO hierarchies (root_org_id, created_at) VALUES ({root}, 1)"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
        let role = insert(
            &store,
            &format!(
                "INSERT INTO roles (hierarchy_id, name, name_lower, builtin, position) \
                 VALUES ({root}, 'Admin', 'admin', 'admin', 0)"
            ),
        )
        .await;
        let mut users = Vec::new();
        for (email, name) in [
            ("a@x.test", "Ärztin"),
            ("b@x.test", "Bob"),
            ("c@x.test", "C"),
            ("admin@x.test", "Admin"),
            ("\u{430}dmin@x.test", "Look-alike"),
            ("\u{ff46}\u{ff55}\u{ff4c}\u{ff4c}@x.test", "Fullwidth"),
        ] {
            users.push(
                insert(
                    &store,
                    &format!(
                        "INSERT INTO users (email, email_normalized, name, status, created_at) \
                         VALUES ('{email}', '{email}', '{name}', 'active', 1)"
                    ),
                )
                .await,
            );
        }
        let template = insert(
            &store,
            &format!(
                "INSERT INTO device_templates (hierarchy_id, name, created_at) \
                 VALUES ({root}, 'Sensor', 1)"
            ),
        )
        .await;
        let (a, b, c) = (users[0], users[1], users[2]);
        let sql = format!(
            "INSERT INTO role_permissions (org_id, role_id, permissions) \
             VALUES ({root}, {role}, 'devices.view'), ({child}, {role}, 'devices.view'); \
             INSERT INTO memberships (user_id, org_id, role_id, home, created_at) \
             VALUES ({a}, {root}, {role}, 1, 1), ({b}, {child}, {role}, 1, 1); \
             INSERT INTO template_datastreams (template_id, pin, name, value_type) \
             VALUES ({template}, 0, 'T', 'double'); \
             INSERT INTO org_templates (org_id, template_id) VALUES ({child}, {template}); \
             INSERT INTO devices (hierarchy_id, org_id, template_id, owner_id, name, \
             auth_token_hash, created_at) VALUES ({root}, {child}, {template}, {b}, 'D', 'h', 1); \
             INSERT INTO device_metafields (device_id, name, value) \
             SELECT id, 'Serial', 'S1' FROM devices; \
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ('s', {a}, 1, 1, 99); \
             INSERT INTO invitations (token_hash, email, user_id, org_id, role_id, created_at, \
             expires_at) VALUES ('i', 'b@x.test', {b}, {child}, {role}, 1, 99); \
             INSERT INTO outbox (created_at, to_address, subject, body) VALUES (1, 'b', 's', 'b'); \
             INSERT INTO audit_events (at, actor_user_id, target_org_id, client_kind, action, \
             target, outcome) VALUES (1, {c}, {doomed}, 'cli', 'org.delete', 'org:{doomed}', \
             'allowed'); \
             DELETE FROM organizations WHERE id = {doomed}; \
             DELETE FROM users WHERE id = {c}; \
             UPDATE authz_changes SET version = 1 WHERE version IS NULL; \
             UPDATE authz_version SET value = 1"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
        let mut before = Vec::new();
        for table in TABLES {
            before.push(count(&store, table).await);
        }

        store.migrate().await.unwrap();

        let mut after = Vec::new();
        for table in TABLES {
            after.push(count(&store, table).await);
        }
        assert_eq!(before, after, "rows per table of {TABLES:?}");
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
        let settings = store.engine_settings().await.unwrap();
        if store.engine() == Engine::Sqlite {
            // The one pooled connection is the one that migrated.
            assert!(
                settings.contains(&("foreign_keys".into(), "1".into())),
                "{settings:?}"
            );
        }
        let mut tx = store.write().await.unwrap();
        let orgs = tx.all_orgs().await.unwrap();
        assert_eq!(
            orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["Ärzte Root", "Child"]
        );
        // Names were refolded in Rust (SQLite's lower() keeps the 'Ä').
        let scope = arbor_core::Scope {
            home: OrgPath::decode(&format!("/{root}/")).unwrap(),
            descendants: true,
        };
        let found = tx.search_orgs(&scope, "ÄRZTE", 0, 10).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let filter = crate::UserFilter {
            search: Some("ärztin".into()),
            ..crate::UserFilter::new(arbor_core::policy::UserList {
                scope: scope.clone(),
                everyone: true,
                me: arbor_core::UserId(0),
            })
        };
        let page = tx
            .list_users(&filter, &crate::PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "{page:?}");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_upkeep")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        assert_eq!(left, 0, "the upkeep ran once and is done");
        // Emails were re-normalized (NFKC) and given skeletons in Rust; the
        // later of two look-alikes keeps no skeleton rather than failing.
        let forms: Vec<(String, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT email_normalized, email_skeleton FROM users WHERE id IN ({}, {}, {}) ORDER BY id",
            users[3], users[4], users[5]
        )))
        .fetch_all(tx.conn())
        .await
        .unwrap();
        let admin = arbor_core::Email::parse("admin@x.test").unwrap();
        assert_eq!(
            forms[0],
            ("admin@x.test".into(), Some(admin.skeleton().into()))
        );
        assert_eq!(forms[1], ("\u{430}dmin@x.test".into(), None));
        assert_eq!(forms[2].0, "full@x.test");
        assert!(forms[2].1.is_some());
        let device = tx.all_devices().await.unwrap().pop().unwrap();
        assert_eq!(device.owner.map(|u| u.0), Some(b));
        // The 0002 triggers still record changes.
        tx.set_user_status(
            &Operator::recovery().recover(arbor_core::OrgId(root), arbor_core::UserId(b)),
            arbor_core::UserId(b),
            arbor_core::UserStatus::Suspended,
        )
        .await
        .unwrap();
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM authz_changes WHERE version IS NULL AND kind = 'user'",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert!(pending >= 1, "{pending}");
        // A new org does not take the deleted one's id (its audit rows stay its own).
        let parent = OrgPath::decode(&format!("/{root}/")).unwrap();
        let new = tx
            .insert_org(
                &Operator::setup().create_hierarchy(),
                Some(&parent),
                &NewOrg::named("New", OrgType::Business),
            )
            .await
            .unwrap();
        assert!(new.id.0 > doomed, "{:?} after deleted {doomed}", new.id);
        // Foreign keys are enforced again.
        let orphan = sqlx::query("INSERT INTO memberships (user_id, org_id, role_id, home, created_at) VALUES (999, 999, 999, 0, 1)")
            .execute(tx.conn())
            .await;
        assert!(orphan.is_err(), "{orphan:?}");
        drop(tx);
        store.close().await;
        drop(scratch);
    }

    /// An empty database holds no schema; a migrated one is at this build's
    /// newest migration.
    async fn schema_version_tells_an_empty_database_from_an_arbor_one(scratch: Scratch) {
        let config = StoreConfig::new(scratch.url.clone()).migrate_on_connect(false);
        let store = Store::connect(&config).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), None);
        store.migrate().await.unwrap();
        let latest = store.latest_schema_version();
        assert!(latest >= 3, "{latest}");
        assert_eq!(store.schema_version().await.unwrap(), Some(latest));
        store.close().await;
        drop(scratch);
    }

    #[tokio::test]
    async fn schema_version_of_sqlite() {
        schema_version_tells_an_empty_database_from_an_arbor_one(Scratch::sqlite()).await;
    }

    #[tokio::test]
    async fn schema_version_of_postgres() {
        if let Some(scratch) = Scratch::postgres().await {
            schema_version_tells_an_empty_database_from_an_arbor_one(scratch).await;
        }
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_is_not_created_when_creation_is_off() {
        let scratch = Scratch::sqlite();
        let config = StoreConfig::new(scratch.url.clone()).create_if_missing(false);
        assert!(Store::connect(&config).await.is_err());
        assert!(!scratch.file.as_ref().unwrap().exists());
    }

    #[tokio::test]
    async fn a_sqlite_backup_is_a_consistent_copy_and_postgres_refuses() {
        let scratch = Scratch::sqlite();
        let store = Store::connect(&StoreConfig::new(scratch.url.clone()))
            .await
            .unwrap();
        insert(
            &store,
            "INSERT INTO organizations (parent_id, path, depth, org_type, name, name_folded, \
             created_at) VALUES (NULL, '', 1, 'ROOT', 'Kept', 'kept', 1)",
        )
        .await;
        let copy = format!("{}.backup", scratch.file.as_ref().unwrap().display());
        store.backup_into(&copy).await.unwrap();
        // Into an existing file it refuses rather than overwrite.
        assert!(store.backup_into(&copy).await.is_err());
        store.close().await;
        let restored =
            Store::connect(&StoreConfig::new(format!("sqlite://{copy}")).create_if_missing(false))
                .await
                .unwrap();
        assert_eq!(count(&restored, "organizations").await, 1);
        assert_eq!(
            restored.schema_version().await.unwrap(),
            Some(restored.latest_schema_version())
        );
        restored.close().await;
        let _ = std::fs::remove_file(&copy);
        if let Some(scratch) = Scratch::postgres().await {
            let store = Store::connect(&StoreConfig::new(scratch.url.clone()))
                .await
                .unwrap();
            let refused = store.backup_into("/tmp/never.db").await.unwrap_err();
            assert!(refused.to_string().contains("pg_dump"), "{refused}");
            store.close().await;
        }
    }

    #[tokio::test]
    async fn migrating_a_sqlite_database_with_data_at_0002_keeps_its_rows() {
        migrating_keeps_rows(Scratch::sqlite()).await;
    }

    #[tokio::test]
    async fn migrating_a_postgres_database_with_data_at_0002_keeps_its_rows() {
        if let Some(scratch) = Scratch::postgres().await {
            migrating_keeps_rows(scratch).await;
        }
    }
}
