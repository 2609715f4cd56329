//! A 200 from the device API means the value is durable (issue 12's design
//! constraint), tested the hard way: the real `arbor serve`, a burst of
//! `update` requests from 32 concurrent clients, SIGKILL in the middle of
//! it, a restart on the same database, and every value whose request was
//! answered 200 must be in the history — on SQLite and, with
//! `ARBOR_TEST_DATABASE_URL`, on PostgreSQL. Several rounds, each killing
//! the server after a few hundred acknowledged values; requests in flight
//! at the kill may or may not have been stored, and are not counted.

use serde_json::{Value, json};
use sqlx::Connection as _;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long durability test password";
const PG_ENV: &str = "ARBOR_TEST_DATABASE_URL";
const ROUNDS: usize = 3;
const CLIENTS: usize = 32;

/// Where the test's database lives, and how the test reads it directly.
enum Db {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
        Db::Sqlite { url, _dir: dir }
    }

    /// A fresh schema of its own, dropped at the end; `None` (with a
    /// notice) without `ARBOR_TEST_DATABASE_URL`.
    async fn postgres() -> Option<Db> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("notice: {PG_ENV} is not set; skipping the PostgreSQL variant of this test");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!("durability_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Db::Postgres { base, schema, url })
    }

    fn url(&self) -> &str {
        match self {
            Db::Sqlite { url, .. } | Db::Postgres { url, .. } => url,
        }
    }

    /// Every V1 value in the history, read straight from the table.
    async fn history(&self) -> BTreeSet<i64> {
        let sql = "SELECT num_value FROM datastream_history WHERE pin = 1";
        let values: Vec<f64> = match self {
            Db::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                let check: String = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(check, "ok");
                let values = sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap();
                conn.close().await.unwrap();
                values
            }
            Db::Postgres { base, schema, .. } => {
                let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
                let sql =
                    format!("SELECT num_value FROM {schema}.datastream_history WHERE pin = 1");
                let values = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                values
            }
        };
        values.into_iter().map(|v| v as i64).collect()
    }

    async fn drop_schema(&self) {
        if let Db::Postgres { base, schema, .. } = self {
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// `arbor` over `url`, without the caller's `ARBOR_*` settings; the device
/// API's per-device rate limit is lifted for the burst.
fn arbor(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ARBOR_") {
            command.env_remove(key);
        }
    }
    command
        .args(["--database-url", url])
        .args(args)
        .env("ARBOR_ADMIN_PASSWORD", PASSWORD)
        .env(
            "ARBOR_DEVICE_TOKEN_KEY",
            "durability test device token key, not secret",
        )
        .env("ARBOR_DEVICE_API__REQUESTS_PER_SECOND", "1000000")
        .env("ARBOR_LOG", "warn,arbor=info")
        .stdin(Stdio::null());
    command
}

/// A running `arbor serve` and its base URL.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(url: &str) -> Server {
        let mut child = arbor(url, &["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = Vec::new();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("arbor serve ended before listening: {log:#?}");
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            log.push(line);
        };
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, base }
    }

    /// SIGKILL: no shutdown, no flush, nothing finished.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn init(url: &str) {
    let output = arbor(
        url,
        &[
            "init",
            "--org-name",
            "Burst Co",
            "--admin-email",
            "admin@burst.test",
            "--admin-name",
            "A",
        ],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A template with an integer datastream on V1 and a device of it; its token.
async fn provision(http: &reqwest::Client, base: &str) -> String {
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@burst.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = login["token"].as_str().unwrap();
    let template: Value = http
        .post(format!("{base}/api/v1/device-templates"))
        .bearer_auth(bearer)
        .json(&json!({ "name": "Counter",
            "datastreams": [{ "pin": 1, "name": "N", "value_type": "integer" }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let template = template["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{template}"));
    let device: Value = http
        .post(format!("{base}/api/v1/devices"))
        .bearer_auth(bearer)
        .json(&json!({ "name": "Burst", "template_id": template }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    device["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{device}"))
        .to_owned()
}

/// What one round's burst did.
struct Burst {
    acknowledged: Vec<i64>,
    sent: i64,
}

/// Fires `update` requests with unique values from [`CLIENTS`] clients,
/// kills the server with SIGKILL once `kill_after` are answered 200 (while
/// the clients keep sending), and returns what was acknowledged.
async fn burst(server: Server, token: &str, next: &Arc<AtomicI64>, kill_after: usize) -> Burst {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let first = next.load(Ordering::SeqCst);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token) = (http.clone(), server.base.clone(), token.to_owned());
        let (next, acknowledged, killed) = (next.clone(), acknowledged.clone(), killed.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let url = format!("{base}/external/api/update?token={token}&V1={n}");
                match http.get(url).send().await {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().push(n);
                    }
                    // Only the kill may end the burst.
                    Ok(response) => {
                        assert!(
                            killed.load(Ordering::SeqCst),
                            "{n}: {} before the kill",
                            response.status()
                        );
                        return;
                    }
                    Err(e) => {
                        assert!(killed.load(Ordering::SeqCst), "{n}: {e} before the kill");
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < kill_after {
        assert!(Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.store(true, Ordering::SeqCst);
    server.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    Burst {
        acknowledged,
        sent: next.load(Ordering::SeqCst) - first,
    }
}

async fn every_acknowledged_value_survives_sigkill(db: Db, engine: &str) {
    let started = Instant::now();
    init(db.url());
    let http = reqwest::Client::new();
    let mut server = Server::start(db.url());
    let token = provision(&http, &server.base).await;
    let next = Arc::new(AtomicI64::new(1));
    let mut acknowledged = BTreeSet::new();
    for round in 0..ROUNDS {
        let kill_after = 300 + 100 * round;
        let done = burst(server, &token, &next, kill_after).await;
        let answered = done.acknowledged.len();
        acknowledged.extend(done.acknowledged);
        // Restart on the same database, and read what it holds.
        server = Server::start(db.url());
        let stored = db.history().await;
        let lost: Vec<&i64> = acknowledged.difference(&stored).collect();
        eprintln!(
            "{engine} round {}: {answered} answered 200 of {} sent before the SIGKILL; \
             {} stored in all, {} acknowledged in all, lost {}",
            round + 1,
            done.sent,
            stored.len(),
            acknowledged.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "acknowledged but lost after round {}: {lost:?}",
            round + 1
        );
        // The restarted server serves the device.
        let get = http
            .get(format!("{}/external/api/get?token={token}&V1", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200);
    }
    server.kill();
    db.drop_schema().await;
    eprintln!("{engine}: {ROUNDS} rounds in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_value_answered_200_when_the_server_is_killed_mid_burst() {
    every_acknowledged_value_survives_sigkill(Db::sqlite(), "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_value_answered_200_when_the_server_is_killed_mid_burst() {
    if let Some(db) = Db::postgres().await {
        every_acknowledged_value_survives_sigkill(db, "PostgreSQL").await;
    }
}
