//! The traps of a first run, one test each: a `public_url` that ignores
//! `--bind`, commands that silently create an empty database, two servers on
//! one SQLite file, unwritable paths, a port in use found only after
//! migrating, and `configtest`.
//!
//! The permission tests must not run as root (root may write anything): when
//! the suite runs as root they run the binary as `nobody` through `setpriv`.

use sqlx::Connection as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const PASSWORD: &str = "a long first-run password";
const PG_ENV: &str = "ARBOR_TEST_DATABASE_URL";

/// `arbor` with `args` over `url`, without the caller's `ARBOR_*` settings.
pub(crate) fn arbor(url: &str, args: &[&str]) -> Command {
    arbor_at(Path::new(env!("CARGO_BIN_EXE_arbor")), url, args)
}

fn arbor_at(binary: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
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
        .env("ARBOR_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end, which must come within `limit` (a retry loop
/// fails the test instead of hanging it).
pub(crate) fn finished(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SHORT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command that must succeed; its standard output and error.
fn ok(command: Command) -> (String, String) {
    let output = finished(command, SHORT);
    let (out, err) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{out}{err}");
    (out, err)
}

/// A command that must fail; its standard output and error.
fn fails(command: Command) -> (String, String) {
    let output = finished(command, SHORT);
    let (out, err) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "succeeded: {out}{err}");
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    (out, err)
}

/// A running `arbor serve`, its address, and the log lines up to "listening".
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    log: Vec<String>,
}

impl Server {
    pub(crate) fn start(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = Vec::new();
        let base = loop {
            let Some(line) = lines.next() else {
                panic!("arbor serve ended before listening: {log:#?}");
            };
            let line = line.unwrap();
            log.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, base, log }
    }

    pub(crate) fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A test that fails half-way leaves no server running behind it.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

pub(crate) fn init(url: &str) -> String {
    let (_, err) = ok(arbor(
        url,
        &[
            "init",
            "--org-name",
            "Heat Co",
            "--admin-email",
            "a@heat.test",
            "--admin-name",
            "A",
        ],
    ));
    err
}

/// A PostgreSQL schema of its own, empty, dropped at the end.
struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    async fn new() -> Option<PgSchema> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("notice: {PG_ENV} is not set; skipping the PostgreSQL variant of this test");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("cli_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(PgSchema { base, name, url })
    }

    async fn tables(&self) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.base).await.unwrap();
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        count
    }

    async fn drop(self) {
        let mut conn = sqlx::PgConnection::connect(&self.base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

#[test]
fn public_url_follows_bind_unless_set_and_a_mismatch_is_warned_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("arbor.db"));
    // Unset: it follows the configured bind address ...
    let mut configtest = arbor(&url, &["configtest"]);
    configtest.env("ARBOR_BIND", "127.0.0.1:9123");
    let (printed, _) = ok(configtest);
    assert!(
        printed.contains("public_url = \"http://127.0.0.1:9123\""),
        "{printed}"
    );
    assert!(printed.contains("follows bind"), "{printed}");

    // ... and the port actually bound, with no warning.
    let server = Server::start(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));
    let log = server.log.join("\n");
    assert!(
        log.contains(&format!("links in mail start with {}", server.base)),
        "{log}"
    );
    assert!(!log.contains("WARN"), "{log}");
    server.stop();

    // Set to this machine on another port: warned, and still served.
    let server = Server::start(arbor(
        &url,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--public-url",
            "http://127.0.0.1:1",
        ],
    ));
    let log = server.log.join("\n");
    assert!(
        log.contains("WARN") && log.contains("names this machine on port 1 "),
        "{log}"
    );
    assert!(
        log.contains("links in mail start with http://127.0.0.1:1"),
        "{log}"
    );
    server.stop();

    // A name in front of the server (a proxy) is the operator's choice.
    let server = Server::start(arbor(
        &url,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--public-url",
            "https://iot.example.com",
        ],
    ));
    assert!(!server.log.join("\n").contains("WARN"), "{:?}", server.log);
    server.stop();
}

#[test]
fn one_shot_commands_refuse_a_missing_database_and_init_says_it_created_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("arbor.db");
    let url = sqlite_url(&db);
    let backup = dir.path().join("copy.db");
    for args in [
        vec!["outbox"],
        vec!["admin", "recover", "--admin-email", "a@heat.test"],
        vec!["backup", "--to", backup.to_str().unwrap()],
    ] {
        let (_, err) = fails(arbor(&url, &args));
        assert!(
            err.contains(&format!("no database at {}", db.display())),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("arbor serve") && err.contains("arbor migrate"),
            "{err}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
    assert!(!backup.exists());

    // The first-run command may create it, and says so.
    let said = init(&url);
    assert!(
        said.contains(&format!("created a new SQLite database {}", db.display())),
        "{said}"
    );
    let (out, err) = ok(arbor(&url, &["outbox"]));
    assert!(
        err.contains(&format!("using the SQLite database {}", db.display())),
        "{err}"
    );
    assert!(!out.contains("no database"), "{out}");

    // An empty file is no Arbor database either, and stays empty.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (_, err) = fails(arbor(&sqlite_url(&empty), &["outbox"]));
    assert!(err.contains("holds no Arbor schema"), "{err}");
}

#[tokio::test]
async fn an_empty_postgres_schema_counts_as_no_database() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let url = schema.url.clone();
    let (_, err) = tokio::task::spawn_blocking(move || fails(arbor(&url, &["outbox"])))
        .await
        .unwrap();
    assert!(
        err.contains("no database at postgres://") && err.contains("no Arbor tables"),
        "{err}"
    );
    assert!(
        !err.contains("postgres@"),
        "the user name is redacted: {err}"
    );
    assert_eq!(schema.tables().await, 0, "the refusal created tables");
    let url = schema.url.clone();
    let (out, _) = tokio::task::spawn_blocking(move || ok(arbor(&url, &["migrate"])))
        .await
        .unwrap();
    assert!(out.contains("created the PostgreSQL database"), "{out}");
    let url = schema.url.clone();
    let (_, err) = tokio::task::spawn_blocking(move || ok(arbor(&url, &["outbox"])))
        .await
        .unwrap();
    assert!(err.contains("using the PostgreSQL database"), "{err}");
    schema.drop().await;
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused_but_one_shot_commands_run_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("arbor.db");
    let url = sqlite_url(&db);
    let first = Server::start(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));

    let (_, err) = fails(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));
    assert!(
        err.contains(&format!(
            "another Arbor server is using the database {}",
            db.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{}.lock", db.display())), "{err}");
    assert!(!err.contains("setup_token"), "{err}");

    // One-shot commands are not locked out, and the server still answers.
    init(&url);
    let (_, err) = ok(arbor(&url, &["outbox"]));
    assert!(err.contains("using the SQLite database"), "{err}");
    let health = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    first.stop();

    // The lock ends with its server.
    let again = Server::start(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));
    again.stop();
}

#[test]
fn a_port_in_use_stops_the_start_before_the_database_or_a_setup_token() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = sqlite_url(&data.join("arbor.db"));
    let (_, err) = fails(arbor(&url, &["serve", "--bind", &addr]));
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("uses this port"),
        "{err}"
    );
    assert!(!err.contains("setup_token"), "{err}");
    assert!(!data.exists(), "the database was created: {err}");
    drop(taken);
}

#[tokio::test]
async fn a_port_in_use_leaves_a_postgres_schema_unmigrated() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let url = schema.url.clone();
    let (_, err) =
        tokio::task::spawn_blocking(move || fails(arbor(&url, &["serve", "--bind", &addr])))
            .await
            .unwrap();
    assert!(err.contains("cannot listen on"), "{err}");
    assert_eq!(
        schema.tables().await,
        0,
        "migrated before the port was checked"
    );
    drop(taken);
    schema.drop().await;
}

/// How to run the binary where file permissions hold: as `nobody` when the
/// suite runs as root (with a copy of the binary `nobody` can execute if the
/// build directory is closed to it), as the suite's own user otherwise.
/// `None` when running as root without `setpriv`.
fn unprivileged(dir: &Path) -> Option<(PathBuf, Vec<&'static str>)> {
    let uid = text(&Command::new("id").arg("-u").output().ok()?.stdout);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_arbor"));
    if uid.trim() != "0" {
        return Some((binary, vec![]));
    }
    let prefix = vec![
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let runs = |binary: &Path| {
        Command::new(prefix[0])
            .args(&prefix[1..])
            .arg(binary)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs(&binary) {
        return Some((binary, prefix));
    }
    let copy = dir.join("arbor");
    std::fs::copy(&binary, &copy).ok()?;
    runs(&copy).then_some((copy, prefix))
}

fn as_user(runner: &(PathBuf, Vec<&'static str>), url: &str, args: &[&str]) -> Command {
    let inner = arbor_at(&runner.0, url, args);
    if runner.1.is_empty() {
        return inner;
    }
    let mut command = Command::new(runner.1[0]);
    command.args(&runner.1[1..]).arg(inner.get_program());
    command.args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.stdin(Stdio::null());
    command
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unwritable_paths_get_one_clear_message_and_no_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory that is a file (faithful as any user).
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let url = sqlite_url(&file.join("arbor.db"));
    for args in [vec!["serve", "--bind", "127.0.0.1:0"], vec!["migrate"]] {
        let (_, err) = fails(arbor(&url, &args));
        assert!(
            err.contains(&format!(
                "the data directory {} is not a directory",
                file.display()
            )),
            "{err}"
        );
        assert!(!err.contains("setup_token"), "{err}");
    }
    // A database URL that opens the file read-only.
    let db = dir.path().join("arbor.db");
    ok(arbor(&sqlite_url(&db), &["migrate"]));
    let (_, err) = fails(arbor(
        &format!("{}?mode=ro", sqlite_url(&db)),
        &["serve", "--bind", "127.0.0.1:0"],
    ));
    assert!(err.contains("read-only (mode=ro)"), "{err}");

    // Permissions, where they hold.
    chmod(dir.path(), 0o755);
    let Some(runner) = unprivileged(dir.path()) else {
        eprintln!(
            "notice: running as root without setpriv; the permission checks of this test \
             cannot be made (root writes read-only files)"
        );
        return;
    };
    // A database file this user may only read.
    chmod(&db, 0o444);
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        if side.exists() {
            chmod(&side, 0o444);
        }
    }
    let started = Instant::now();
    let (_, err) = fails(as_user(
        &runner,
        &sqlite_url(&db),
        &["serve", "--bind", "127.0.0.1:0"],
    ));
    assert!(
        err.contains(&format!(
            "the database file {} cannot be opened for writing (permission denied",
            db.display()
        )),
        "{err}"
    );
    assert!(!err.contains("setup_token"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
    // A data directory this user may not write.
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    chmod(&closed, 0o555);
    let (_, err) = fails(as_user(
        &runner,
        &sqlite_url(&closed.join("arbor.db")),
        &["serve", "--bind", "127.0.0.1:0"],
    ));
    assert!(
        err.contains(&format!(
            "the data directory {} is not writable (permission denied",
            closed.display()
        )),
        "{err}"
    );
    // One it may not create.
    let (_, err) = fails(as_user(
        &runner,
        &sqlite_url(&closed.join("sub").join("arbor.db")),
        &["migrate"],
    ));
    assert!(
        err.contains("cannot create the data directory") && err.contains("permission denied"),
        "{err}"
    );
    let (_, err) = fails(as_user(
        &runner,
        &sqlite_url(&closed.join("sub").join("arbor.db")),
        &["configtest"],
    ));
    assert!(err.contains("is not writable (permission denied"), "{err}");
}

#[test]
fn configtest_prints_toml_with_secrets_redacted_and_checks_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("arbor.db");
    let url = sqlite_url(&db);
    let file = dir.path().join("arbor.toml");
    std::fs::write(
        &file,
        "public_url = \"https://iot.example.com\"\n\
         [smtp]\nhost = \"smtp.example.com\"\nusername = \"arbor\"\n\
         password = \"s3cret-smtp\"\nfrom = \"Arbor <arbor@example.com>\"\n",
    )
    .unwrap();
    let configtest = || {
        let mut command = arbor(&url, &["configtest"]);
        command.arg("--config").arg(&file);
        command
    };
    // No database yet: reachable, since it can be created; nothing created.
    let (out, err) = ok(configtest());
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "{out}");
    let printed: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(printed["smtp"]["password"].as_str(), Some("***"), "{out}");
    assert_eq!(printed["smtp"]["host"].as_str(), Some("smtp.example.com"));
    assert_eq!(
        printed["public_url"].as_str(),
        Some("https://iot.example.com")
    );
    assert_eq!(printed["database_url"].as_str(), Some(url.as_str()));
    assert!(printed.contains_key("authz_cache"), "{out}");
    assert!(
        err.contains(&format!("no SQLite database {}", db.display())),
        "{err}"
    );
    assert!(err.contains("configuration ok"), "{err}");
    assert!(!db.parent().unwrap().exists());

    // A database: which one, and its schema.
    ok(arbor(&url, &["migrate"]));
    let (_, err) = ok(configtest());
    assert!(
        err.contains(&format!(
            "SQLite database {} is reachable, schema at migration",
            db.display()
        )) && err.contains("up to date"),
        "{err}"
    );

    // A database server that does not answer: an error, soon.
    let started = Instant::now();
    let (_, err) = fails(arbor(
        "postgres://arbor:hunter2@127.0.0.1:1/arbor",
        &["configtest"],
    ));
    assert!(
        err.contains("cannot reach the database postgres://***@127.0.0.1:1/arbor"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn configtest_reaches_postgres_and_says_which_database() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let url = schema.url.clone();
    let (out, err) = tokio::task::spawn_blocking(move || ok(arbor(&url, &["configtest"])))
        .await
        .unwrap();
    assert!(
        err.contains("PostgreSQL database") && err.contains("holds no Arbor schema yet"),
        "{err}"
    );
    assert!(out.contains("database_url = \"postgres"), "{out}");
    assert_eq!(schema.tables().await, 0);
    let url = schema.url.clone();
    let (_, err) = tokio::task::spawn_blocking(move || {
        ok(arbor(&url, &["migrate"]));
        ok(arbor(&url, &["configtest"]))
    })
    .await
    .unwrap();
    assert!(err.contains("is reachable, schema at migration"), "{err}");
    schema.drop().await;
}

#[tokio::test]
async fn backup_writes_a_consistent_copy_of_a_live_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("arbor.db"));
    init(&url);
    let server = Server::start(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));
    let copy = dir.path().join("backup.db");
    let (out, _) = ok(arbor(&url, &["backup", "--to", copy.to_str().unwrap()]));
    assert!(out.contains(&format!("to {}", copy.display())), "{out}");
    server.stop();

    let mut db = sqlx::SqliteConnection::connect(&format!("{}?mode=ro", sqlite_url(&copy)))
        .await
        .unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM organizations")
        .fetch_all(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    assert_eq!(names, ["Heat Co"]);
    // The copy is a database the server opens as it is.
    let restored = Server::start(arbor(
        &sqlite_url(&copy),
        &["serve", "--bind", "127.0.0.1:0"],
    ));
    assert!(
        !restored.log.join("\n").contains("no hierarchy exists yet"),
        "{:?}",
        restored.log
    );
    restored.stop();

    let (_, err) = fails(arbor(&url, &["backup", "--to", copy.to_str().unwrap()]));
    assert!(err.contains("exists already"), "{err}");
    let (_, err) = fails(arbor(
        "postgres://arbor@127.0.0.1:1/arbor",
        &["backup", "--to", dir.path().join("pg.db").to_str().unwrap()],
    ));
    assert!(err.contains("pg_dump"), "{err}");
}
