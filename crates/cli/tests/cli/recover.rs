//! `arbor admin recover`, end to end with the real binary: a hierarchy made
//! with `arbor init` is locked out in SQL (the root Admin set cut down, its
//! only Admin suspended), and after the recovery that Admin logs in over
//! HTTP and edits a role's set again.

use serde_json::{Value, json};
use sqlx::Connection as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const PASSWORD: &str = "a long recovery password";

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

fn succeeded(output: Output) -> String {
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `arbor serve` on a free port, and its base URL once it listens (the
/// address is read from its log, so no waiting on a guess).
fn serve(url: &str) -> (Child, String) {
    let mut child = arbor(url, &["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("arbor serve ended before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> reqwest::Response {
    http.post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn recover_restores_a_locked_out_root_admin_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
    let created = succeeded(
        arbor(
            &url,
            &[
                "init",
                "--org-name",
                "Heat Co",
                "--admin-email",
                "a@heat.test",
                "--admin-name",
                "A",
            ],
        )
        .output()
        .unwrap(),
    );
    assert!(created.contains("Heat Co"), "{created}");

    // The lockout, straight in the database.
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (root, admin_role, staff_role): (i64, i64, i64) = sqlx::query_as(
        "SELECT h.root_org_id, a.id, s.id FROM hierarchies h \
         JOIN roles a ON a.hierarchy_id = h.root_org_id AND a.builtin = 'admin' \
         JOIN roles s ON s.hierarchy_id = h.root_org_id AND s.builtin = 'staff'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let cut = sqlx::query(
        "UPDATE role_permissions SET permissions = 'org_devices.view' \
         WHERE org_id = $1 AND role_id = $2",
    )
    .bind(root)
    .bind(admin_role)
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(cut.rows_affected(), 1);
    sqlx::query("UPDATE users SET status = 'suspended' WHERE email = 'a@heat.test'")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let http = reqwest::Client::new();
    let (mut server, base) = serve(&url);
    assert_eq!(login(&http, &base, "a@heat.test").await.status(), 401);
    server.kill().unwrap();
    server.wait().unwrap();

    let report = succeeded(
        arbor(&url, &["admin", "recover", "--admin-email", "a@heat.test"])
            .output()
            .unwrap(),
    );
    assert!(report.contains("Admin set restored: yes"), "{report}");
    assert!(report.contains("account re-activated: yes"), "{report}");

    let (mut server, base) = serve(&url);
    let logged_in = login(&http, &base, "a@heat.test").await;
    assert_eq!(logged_in.status(), 200);
    let token = logged_in.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = http
        .put(format!(
            "{base}/api/v1/orgs/{root}/roles/{staff_role}/permissions"
        ))
        .bearer_auth(&token)
        .json(&json!({ "permissions": ["org_devices.view", "users.view"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    let matrix: Value = http
        .get(format!("{base}/api/v1/orgs/{root}/permissions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_set = matrix["sets"][admin_role.to_string()].as_array().unwrap();
    assert!(admin_set.contains(&json!("roles.edit")), "{matrix}");
    assert!(admin_set.len() > 60, "{matrix}");
    server.kill().unwrap();
    server.wait().unwrap();

    // The recovery is in the audit log, by the operator's tool.
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (client, target_org, details): (String, i64, String) = sqlx::query_as(
        "SELECT client_kind, target_org_id, details FROM audit_events \
         WHERE action = 'hierarchy.recover'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    assert_eq!((client.as_str(), target_org), ("cli", root));
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["previous_status"], "suspended", "{details}");
    assert!(
        details["restored_permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("roles.edit")),
        "{details}"
    );
}
