//! Test support shared by the integration suites.
//!
//! - [`TestDb`]: a fresh database per test — a temporary SQLite file, or a
//!   PostgreSQL schema of its own (from `ARBOR_TEST_DATABASE_URL`, dropped when
//!   the test ends) — with a [`ManualClock`].
//! - [`TestApp`]: the real HTTP server on a random port over a [`TestDb`],
//!   ready when `spawn` returns (the listener is bound first; no sleeps).
//! - [`TestNode`]: a second server over a [`TestApp`]'s database, with its
//!   own pool and decision cache (`TestApp::second_node`).
//! - [`both_engines!`]: runs one test body on SQLite and on PostgreSQL.
//! - [`smtp::sink`]: an SMTP relay on loopback that hands on what it receives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use arbor_app::App;
use arbor_server::AppState;
use arbor_server::config::Config;
use arbor_store::{ManualClock, Store, StoreConfig};
use sqlx::Connection as _;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The tests' deterministic random numbers (SplitMix64).
pub use arbor_store::generate::Rng;

pub const PG_ENV: &str = "ARBOR_TEST_DATABASE_URL";

/// The device token key of every test server and of [`TestApp::app`], so
/// tokens made through either show alike.
pub const TEST_DEVICE_TOKEN_KEY: &str = "arbor test device token key: not a secret";

/// [`TEST_DEVICE_TOKEN_KEY`] as the key the app uses.
pub fn test_device_token_key() -> arbor_app::DeviceTokenKey {
    arbor_app::DeviceTokenKey::derive(TEST_DEVICE_TOKEN_KEY.as_bytes())
}

/// The password of every user made by [`new_user`].
pub const PASSWORD: &str = "a long test password";

/// One argon2 hash of [`PASSWORD`], shared by every test user (hashing is
/// deliberately slow).
pub fn password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| arbor_app::password::hash(PASSWORD).unwrap())
        .clone()
}

/// An active user with password [`PASSWORD`], named after the email's local part.
pub fn new_user(email: &str) -> arbor_store::NewUser {
    let mut user = arbor_store::NewUser::active(email, email.split('@').next().unwrap_or(email));
    user.password_hash = Some(password_hash());
    user
}

/// The org tree both HTTP suites test against, built through the use cases
/// by the hierarchies' Admins:
///
/// ```text
/// Root ─┬─ Child ── Grandchild
///       └─ Sibling
/// Other (a second hierarchy)
/// ```
pub struct Tree {
    /// The "Root" hierarchy, with its Admin (email `root_admin`).
    pub root: arbor_app::HierarchyCreated,
    /// The "Other" hierarchy, with its Admin (email `other_admin`).
    pub other: arbor_app::HierarchyCreated,
    pub child: arbor_core::OrgId,
    pub grandchild: arbor_core::OrgId,
    pub sibling: arbor_core::OrgId,
}

impl Tree {
    pub async fn build(app: &App, root_admin: &str, other_admin: &str) -> Tree {
        use arbor_store::{ClientKind, NewOrg};
        let hierarchy = async |name: &str, admin: &str| {
            app.create_hierarchy(&arbor_app::NewHierarchy {
                root: NewOrg::named(name, arbor_core::OrgType::Root),
                settings: Default::default(),
                admin: new_user(admin),
                client: ClientKind::Cli,
            })
            .await
            .unwrap()
        };
        let root = hierarchy("Root", root_admin).await;
        let other = hierarchy("Other", other_admin).await;
        let by = arbor_app::Caller::new(root.admin, ClientKind::Cli);
        let suborg = async |parent, name: &str| {
            let org = NewOrg::named(name, arbor_core::OrgType::Business);
            app.create_suborg(&by, parent, &org).await.unwrap().id
        };
        let child = suborg(root.root.id, "Child").await;
        let grandchild = suborg(child, "Grandchild").await;
        let sibling = suborg(root.root.id, "Sibling").await;
        Tree {
            root,
            other,
            child,
            grandchild,
            sibling,
        }
    }
}

/// The two storage engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh database for one test.
pub struct TestDb {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub fn store(&self) -> &Store {
        self.app.store()
    }

    /// `None` (with a printed notice) for PostgreSQL when no database is configured.
    pub async fn new(engine: Engine) -> Option<TestDb> {
        match engine {
            Engine::Sqlite => Some(Self::sqlite().await),
            Engine::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
        Self::open(url, Some(dir), None).await
    }

    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("notice: {PG_ENV} is not set; skipping the PostgreSQL variant of this test");
            return None;
        };
        sqlx::any::install_default_drivers();
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::AnyConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self::open(url, None, Some((base, schema))).await)
    }

    async fn open(
        url: String,
        dir: Option<tempfile::TempDir>,
        pg_schema: Option<(String, String)>,
    ) -> TestDb {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let store = Store::connect_with_clock(&StoreConfig::new(url.clone()), clock.clone())
            .await
            .unwrap();
        TestDb {
            app: App::new(store).with_device_token_key(test_device_token_key()),
            clock,
            url,
            _dir: dir,
            pg_schema,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            // Drop runs outside async context: clean up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA {schema} CASCADE"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs `async fn name(engine: Engine)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Engine::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if std::env::var($crate::PG_ENV).is_err() {
                        eprintln!("notice: {} is not set; skipping the PostgreSQL variant", $crate::PG_ENV);
                        return;
                    }
                    super::$name($crate::Engine::Postgres).await;
                }
            }
        )*
    };
}

/// A server task on 127.0.0.1:<random port>, stopped on drop.
struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds first, so the server is ready when this returns; gives its base URL.
    async fn start(state: AppState) -> (Server, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = arbor_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        let server = Server {
            shutdown: Some(tx),
            task: Some(task),
        };
        (server, base)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The real server on 127.0.0.1:<random port> over a fresh database.
pub struct TestApp {
    /// First, so that it is told to stop before the database goes away
    /// (fields drop in order).
    server: Server,
    pub base: String,
    pub db: TestDb,
    pub http: reqwest::Client,
    pub setup_token: String,
    config: Config,
}

/// Another server node over a [`TestApp`]'s database, with its own pool and
/// its own decision cache, as a second process of a deployment would have.
pub struct TestNode {
    pub base: String,
    server: Server,
}

impl TestNode {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl TestApp {
    /// Panics if PostgreSQL is asked for but not configured: use
    /// [`both_engines!`], which skips that case with a notice.
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, |_| {}).await
    }

    pub async fn spawn_with(engine: Engine, configure: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::new(engine)
            .await
            .expect("PostgreSQL is not configured");
        let mut config = Config {
            database_url: db.url.clone(),
            public_url: "http://arbor.test".into(),
            device_token_key: Some(TEST_DEVICE_TOKEN_KEY.into()),
            ..Config::default()
        };
        configure(&mut config);
        let setup_token = arbor_app::new_token().0;
        let served = App::configured(db.store().clone(), config.authz_cache.enabled_limits());
        let state =
            AppState::new(served, db.clock.clone(), config.clone()).with_setup_token(&setup_token);
        let (server, base) = Server::start(state).await;
        TestApp {
            base,
            db,
            http: reqwest::Client::builder().build().unwrap(),
            setup_token,
            config,
            server,
        }
    }

    /// A second node over the same database and clock, with the same
    /// configuration: its own store pool, its own state and decision cache.
    pub async fn second_node(&self) -> TestNode {
        let store = Store::connect_with_clock(
            &StoreConfig::new(self.db.url.clone()),
            self.db.clock.clone(),
        )
        .await
        .unwrap();
        let served = App::configured(store, self.config.authz_cache.enabled_limits());
        let state = AppState::new(served, self.db.clock.clone(), self.config.clone());
        let (server, base) = Server::start(state).await;
        TestNode { base, server }
    }

    /// The use cases over this app's database through a pool of their own,
    /// as another node's workers would reach it.
    pub async fn app_on_own_pool(&self) -> App {
        let store = Store::connect_with_clock(
            &StoreConfig::new(self.db.url.clone()),
            self.db.clock.clone(),
        )
        .await
        .unwrap();
        App::new(store).with_device_token_key(test_device_token_key())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn clock(&self) -> &ManualClock {
        &self.db.clock
    }

    pub fn app(&self) -> &App {
        &self.db.app
    }

    /// Logs in and returns the bearer token; panics unless the login succeeds.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login of {email} failed");
        let body: serde_json::Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// The token of the newest link mailed to `to` (invitation or reset).
    pub async fn mailed_token(&self, to: &str) -> String {
        let mut tx = self.db.store().read().await.unwrap();
        let mails = tx.outbox(false, 1000).await.unwrap();
        tx.finish().await.unwrap();
        let mail = mails
            .into_iter()
            .find(|m| m.to.eq_ignore_ascii_case(to))
            .unwrap_or_else(|| panic!("no mail to {to}"));
        let link = mail
            .body
            .split_whitespace()
            .find(|w| w.starts_with("http://arbor.test/"))
            .unwrap_or_else(|| panic!("no link in the mail to {to}"));
        link.split("token=").nth(1).unwrap().to_owned()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A minimal SMTP relay on loopback for delivery tests.
pub mod smtp {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// Accepts SMTP sessions and sends each message's text down the channel.
    pub async fn sink(listener: TcpListener, received: mpsc::UnboundedSender<String>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let received = received.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data = None::<String>;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let _ = received.send(data.take().unwrap_or_default());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    }
}
