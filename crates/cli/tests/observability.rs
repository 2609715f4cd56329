//! What an operator sees of a running server, end to end with the real
//! binary (its own process, so its metrics recorder and its log are its
//! own): `/metrics` parsed by a Prometheus text-format parser, who may read
//! it, the access log, that no request can forge a log line, and the
//! version. On SQLite, and on PostgreSQL when `ARBOR_TEST_DATABASE_URL` is
//! set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sqlx::Connection as _;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long observability password";
const ADMIN: &str = "admin@example.com";
const PG_ENV: &str = "ARBOR_TEST_DATABASE_URL";

/// A fresh database: a temporary SQLite file, or a PostgreSQL schema of its
/// own (dropped at the end).
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
        Db {
            url,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    async fn postgres() -> Option<Db> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("notice: {PG_ENV} is not set; skipping the PostgreSQL variant");
            return None;
        };
        let schema = format!("t_{:016x}", rand_u64());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(Db {
            url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
            _dir: None,
            pg_schema: Some((base, schema)),
        })
    }

    /// Every engine available: SQLite, and PostgreSQL when configured.
    async fn each() -> Vec<Db> {
        let mut dbs = vec![Db::sqlite()];
        dbs.extend(Db::postgres().await);
        dbs
    }

    /// `arbor init`: the hierarchy "Acme" with its Admin [`ADMIN`].
    fn init(&self) {
        let output = arbor(
            &self.url,
            &[
                "init",
                "--org-name",
                "Acme",
                "--admin-email",
                ADMIN,
                "--admin-name",
                "Admin",
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
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
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

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// `arbor` with `args` over the database `url`, the environment cleared of
/// any `ARBOR_*` setting of the caller's.
fn arbor(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ARBOR_") {
            command.env_remove(key);
        }
    }
    // A PostgreSQL server keeps its device token key file in ./arbor-data
    // by default: the tests give it the key instead.
    if !url.starts_with("sqlite") {
        command.env(
            "ARBOR_DEVICE_TOKEN_KEY",
            "cli test device token key, not a secret",
        );
    }
    command
        .args(["--database-url", url])
        .args(args)
        .env("ARBOR_ADMIN_PASSWORD", PASSWORD)
        .env("ARBOR_LOG", "info");
    command
}

/// `arbor serve` on a free port, its whole log kept for the test.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(db: &Db, log_format: &str, env: &[(&str, &str)]) -> Server {
        let mut command = arbor(
            &db.url,
            &["--log-format", log_format, "serve", "--bind", "127.0.0.1:0"],
        );
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let base = loop {
            let line = lines
                .next()
                .expect("arbor serve ended before listening")
                .unwrap();
            let found = line
                .split("listening on ")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned());
            log.lock().unwrap().push(line);
            if let Some(base) = found {
                break base;
            }
        };
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Server { child, base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log has a line for which `found` holds.
    fn wait_for_line(&self, what: &str, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().iter().any(|l| found(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line {what}:\n{}", self.log().join("\n"));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(http: &reqwest::Client, server: &Server, email: &str, password: &str) -> Value {
    http.post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// --- /metrics -------------------------------------------------------------

use openmetrics_parser::{
    HistogramValue, MetricsExposition, PrometheusType, PrometheusValue, Sample,
};

/// A scrape, parsed by a Prometheus text-format parser.
struct Metrics(MetricsExposition<PrometheusType, PrometheusValue>);

impl Metrics {
    async fn scrape(http: &reqwest::Client, server: &Server) -> Metrics {
        let response = http.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = response.text().await.unwrap();
        let parsed = openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("not the Prometheus text format ({e:?}):\n{text}"));
        Metrics(parsed)
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample<PrometheusValue>> {
        let Some(family) = self.0.families.get(name) else {
            return Vec::new();
        };
        family
            .iter_samples()
            .filter(|s| {
                let set = s.get_labelset().unwrap();
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .collect()
    }

    fn label_sets(&self, name: &str) -> Vec<String> {
        self.samples(name, &[])
            .iter()
            .map(|s| {
                let set = s.get_labelset().unwrap();
                format!("{:?}", set.iter().collect::<Vec<_>>())
            })
            .collect()
    }

    /// A counter or gauge's value summed over the matching series (0 when
    /// there is none: counters start there).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels)
            .iter()
            .map(|s| match &s.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                other => panic!("{name} is not a plain value: {other:?}"),
            })
            .sum()
    }

    fn present(&self, name: &str) -> bool {
        !self.samples(name, &[]).is_empty()
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> &HistogramValue {
        let samples = self.samples(name, labels);
        assert_eq!(samples.len(), 1, "one series {name} {labels:?}");
        match &samples[0].value {
            PrometheusValue::Histogram(h) => h,
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_per_route_and_report_the_server() {
    for db in Db::each().await {
        db.init();
        let server = Server::start(&db, "text", &[]);
        let http = reqwest::Client::new();
        let before = Metrics::scrape(&http, &server).await;
        let healthz = [("route", "/healthz"), ("method", "GET"), ("status", "200")];
        let users = [("route", "/api/v1/users/{id}"), ("method", "GET")];
        let unmatched = [("route", "unmatched"), ("status", "404")];

        for _ in 0..7 {
            let r = http.get(server.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        for _ in 0..2 {
            let failed = login(&http, &server, ADMIN, "not the password at all").await;
            assert_eq!(failed["status"], 401, "{failed}");
        }
        let logged_in = login(&http, &server, ADMIN, PASSWORD).await;
        let token = logged_in["token"].as_str().unwrap();
        let admin = logged_in["user_id"].as_i64().unwrap();
        for (id, status) in [(admin, 200), (admin, 200), (999_999, 404)] {
            let r = http
                .get(server.url(&format!("/api/v1/users/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{logged_in}");
        }
        for path in ["/no/such/path", "/external/api/no-such-endpoint"] {
            let r = http.get(server.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 404);
        }

        let after = Metrics::scrape(&http, &server).await;
        let delta = |name: &str, labels: &[(&str, &str)]| {
            after.value(name, labels) - before.value(name, labels)
        };
        assert_eq!(delta("arbor_http_requests_total", &healthz), 7.0);
        // Two answered 200, the unknown id 404: one route template, not three paths.
        let routes = after.label_sets("arbor_http_requests_total");
        assert_eq!(
            delta("arbor_http_requests_total", &users),
            3.0,
            "{routes:#?}"
        );
        assert_eq!(
            after.value(
                "arbor_http_requests_total",
                &[("route", "/api/v1/users/{id}"), ("status", "404")]
            ),
            1.0
        );
        for raw in [
            format!("/api/v1/users/{admin}"),
            "/api/v1/users/999999".into(),
        ] {
            assert!(
                routes
                    .iter()
                    .all(|labels| !labels.contains(&format!("{raw:?}"))),
                "a raw path became a label: {routes:#?}"
            );
        }
        assert_eq!(delta("arbor_http_requests_total", &unmatched), 2.0);
        assert_eq!(
            delta("arbor_device_api_requests_total", &[("status", "404")]),
            1.0
        );
        assert_eq!(delta("arbor_login_failures_total", &[]), 2.0);
        // The first scrape is counted too, once it was answered.
        assert_eq!(
            after.value(
                "arbor_http_requests_total",
                &[("route", "/metrics"), ("status", "200")]
            ),
            1.0
        );

        // The histogram agrees with the counter, and its buckets are cumulative.
        let histogram = after.histogram("arbor_http_request_duration_seconds", &healthz);
        let buckets: Vec<(f64, f64)> = histogram
            .buckets
            .iter()
            .map(|b| (b.upper_bound, b.count.as_f64()))
            .collect();
        assert!(buckets.len() > 5, "{buckets:?}");
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{buckets:?}"
        );
        let (top, total) = *buckets.last().unwrap();
        assert!(top.is_infinite(), "{buckets:?}");
        assert_eq!(Some(total as u64), histogram.count);
        assert_eq!(total, after.value("arbor_http_requests_total", &healthz));
        assert!(histogram.sum.as_ref().unwrap().as_f64() > 0.0);

        // What the scrape reads of the server itself.
        assert!(after.value("arbor_authz_cache_hits_total", &[]) > 0.0);
        assert!(after.present("arbor_authz_cache_misses_total"));
        assert!(after.value("arbor_authz_cache_version_lag", &[]) >= 0.0);
        assert!(after.present("arbor_authz_cache_version_lag"));
        assert!(after.value("arbor_db_pool_max_connections", &[]) >= 1.0);
        assert!(
            after.value("arbor_db_pool_connections", &[("state", "idle")])
                + after.value("arbor_db_pool_connections", &[("state", "in_use")])
                >= 1.0
        );
        assert!(after.value("process_resident_memory_bytes", &[]) > 1_000_000.0);
        assert_eq!(
            after.value(
                "arbor_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert!(
            !after.0.families["arbor_http_requests_total"]
                .help
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_refused_to_callers_that_are_not_allowed() {
    let db = Db::sqlite();
    let http = reqwest::Client::new();
    let refused = async |request: reqwest::RequestBuilder| {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.text().await.unwrap();
        assert!(!body.contains("arbor_http"), "{body}");
        body
    };
    {
        // By default: local scrapers only; a request forwarded by a proxy on
        // the same host is not local.
        let server = Server::start(&db, "text", &[]);
        let body = refused(
            http.get(server.url("/metrics"))
                .header("x-forwarded-for", "198.51.100.7"),
        )
        .await;
        assert!(body.contains("not-found"), "{body}");
        refused(
            http.get(server.url("/metrics"))
                .header("forwarded", "for=198.51.100.7"),
        )
        .await;
        Metrics::scrape(&http, &server).await;
    }
    {
        // With a token and loopback scrapes off: the token only.
        let token = "a-scrape-token-0123456789";
        let server = Server::start(
            &db,
            "text",
            &[
                ("ARBOR_METRICS__TOKEN", token),
                ("ARBOR_METRICS__LOOPBACK", "false"),
            ],
        );
        refused(http.get(server.url("/metrics"))).await;
        refused(
            http.get(server.url("/metrics"))
                .bearer_auth("a-scrape-token-012345678"),
        )
        .await;
        let response = http
            .get(server.url("/metrics"))
            .bearer_auth(token)
            .header("x-forwarded-for", "198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("arbor_build_info"));
        let log = server.log().join("\n");
        assert!(!log.contains(token), "{log}");
    }
    {
        let server = Server::start(&db, "text", &[("ARBOR_METRICS__ENABLED", "false")]);
        refused(http.get(server.url("/metrics"))).await;
    }
}

// --- the access log ---------------------------------------------------------

/// The access-log events of a JSON log, by request id.
fn access_lines(log: &[String]) -> HashMap<String, Vec<Value>> {
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    for line in log {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not one JSON event ({e}): {line:?}"));
        if event["target"] == "arbor::access" {
            let id = event["fields"]["request_id"].as_str().unwrap().to_owned();
            by_id.entry(id).or_default().push(event);
        }
    }
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_one_line_per_request_and_no_token() {
    for db in Db::each().await {
        db.init();
        let server = Server::start(&db, "json", &[]);
        let http = reqwest::Client::new();
        let send = async |request: reqwest::RequestBuilder, id: &str| {
            request.header("x-request-id", id).send().await.unwrap()
        };
        send(http.get(server.url("/healthz")), "acc-health").await;
        let logged_in: Value = send(
            http.post(server.url("/api/v1/auth/login"))
                .json(&json!({ "email": ADMIN, "password": PASSWORD })),
            "acc-login",
        )
        .await
        .json()
        .await
        .unwrap();
        let token = logged_in["token"].as_str().unwrap().to_owned();
        let admin = logged_in["user_id"].as_i64().unwrap();
        send(
            http.get(server.url("/api/v1/me")).bearer_auth(&token),
            "acc-me",
        )
        .await;
        send(
            http.get(server.url("/api/v1/me"))
                .header("cookie", format!("arbor_session={token}")),
            "acc-cookie",
        )
        .await;
        send(
            http.get(server.url("/invitations/accept?token=SECRETQUERYTOKEN")),
            "acc-query",
        )
        .await;
        send(
            http.get(server.url("/api/v1/me"))
                .bearer_auth("not-a-session-token-at-all"),
            "acc-401",
        )
        .await;
        send(http.get(server.url("/no/such/path")), "acc-404").await;
        let ids = [
            "acc-health",
            "acc-login",
            "acc-me",
            "acc-cookie",
            "acc-query",
            "acc-401",
            "acc-404",
        ];
        server.wait_for_line("for the last request", |l| l.contains("\"acc-404\""));

        let log = server.log();
        let lines = access_lines(&log);
        let line = |id: &str| -> &Value {
            let found = &lines[id];
            assert_eq!(found.len(), 1, "one access line per request: {found:?}");
            assert_eq!(found[0]["level"], "INFO");
            &found[0]["fields"]
        };
        for id in ids {
            let fields = line(id);
            for key in ["method", "route", "status", "latency_ms", "request_id"] {
                assert!(!fields[key].is_null(), "{key} missing: {fields}");
            }
        }
        assert_eq!(line("acc-health")["route"], "/healthz");
        assert_eq!(line("acc-health")["status"], 200);
        assert!(line("acc-health")["user_id"].is_null());
        assert!(line("acc-health")["bytes"].as_u64().unwrap() > 0);
        assert_eq!(line("acc-login")["user_id"], admin);
        let me = line("acc-me");
        assert_eq!(me["method"], "GET");
        assert_eq!(me["route"], "/api/v1/me");
        assert_eq!(me["status"], 200);
        assert_eq!(me["user_id"], admin);
        assert_eq!(me["client"], "api");
        assert_eq!(line("acc-cookie")["user_id"], admin);
        assert_eq!(line("acc-cookie")["client"], "web");
        assert_eq!(line("acc-query")["route"], "/invitations/accept");
        assert_eq!(line("acc-query")["path"], "/invitations/accept");
        assert_eq!(line("acc-401")["status"], 401);
        assert!(line("acc-401")["user_id"].is_null());
        assert_eq!(line("acc-404")["route"], "unmatched");
        assert_eq!(line("acc-404")["path"], "/no/such/path");

        let whole = log.join("\n");
        for secret in [token.as_str(), PASSWORD, "SECRETQUERYTOKEN"] {
            assert!(!whole.contains(secret), "{secret} is in the log:\n{whole}");
        }
    }
}

// --- log-line forging ---------------------------------------------------------

/// What an attacker would like the log to show as a line of its own.
const FORGED: &str = "1999-01-01T00:00:00.000000Z  INFO arbor::access: forged admin login";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_client_sends_forges_a_log_line() {
    for db in Db::each().await {
        db.init();
        let server = Server::start(&db, "text", &[]);
        let http = reqwest::Client::new();
        let evil = format!("Evil\n{FORGED}\r\u{1b}[2J\u{1b}]0;title\u{7}");
        // An email in a JSON body.
        login(
            &http,
            &server,
            &format!("x\n{FORGED}\u{1b}[31m@example.com"),
            "pw",
        )
        .await;
        // A name and an email that would be logged later (the invitation
        // mail to a new org's Admin): refused at input — names and emails
        // may not carry control or line-separator characters — so no stored
        // text can forge a line either.
        let token = login(&http, &server, ADMIN, PASSWORD).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let me: Value = http
            .get(server.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let root = me["memberships"][0]["org_id"].as_i64().unwrap();
        let refused = http
            .post(server.url("/api/v1/orgs"))
            .bearer_auth(&token)
            .json(&json!({
                "parent_id": root,
                "name": evil,
                "admin": { "email": format!("new\n{FORGED}@example.com"), "name": evil },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        // A path and a header with 8-bit bytes (C1 controls in UTF-8: the
        // 8-bit CSI), sent raw; control bytes below 0x20 never get past the
        // HTTP parser.
        let address = server.base.trim_start_matches("http://");
        let mut raw = std::net::TcpStream::connect(address).unwrap();
        raw.write_all(
            b"GET /forged\xc2\x9b2J\xe2\x80\xa8x HTTP/1.1\r\nHost: arbor\r\nUser-Agent: a\xc2\x9b31m\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        // One more request, so that the log is complete up to here.
        http.get(server.url("/healthz"))
            .header("x-request-id", "forge-last")
            .send()
            .await
            .unwrap();
        server.wait_for_line("for the last request", |l| l.contains("forge-last"));

        let log = server.log();
        let timestamp = |line: &str| {
            let b = line.as_bytes();
            b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
        };
        for line in &log {
            assert!(timestamp(line), "a line that is not an event: {line:?}");
            assert!(!line.starts_with("1999-"), "a forged line: {line:?}");
            for c in ['\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{2028}'] {
                assert!(!line.contains(c), "{c:?} reached the log: {line:?}");
            }
        }
        let whole = log.join("\n");
        // The raw request reached the router (the HTTP parser takes 8-bit
        // bytes in a path) and its access line shows the path escaped.
        assert!(
            answer.starts_with(b"HTTP/1.1 404"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        assert!(
            log.iter().any(|l| l.contains("arbor::access")
                && l.contains(r#"route="unmatched""#)
                && l.contains(r#"path="/forged\u{9b}2J\u{2028}x""#)),
            "{whole}"
        );
    }
}

// --- the version ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_is_in_healthz_and_arbor_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("arbor {}\n", env!("CARGO_PKG_VERSION"))
    );
    let db = Db::sqlite();
    let server = Server::start(&db, "text", &[]);
    let health: Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })
    );
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({ "status": "ready" }));
}
