//! The single-machine operator's mail flow with the real binary: without
//! SMTP an invitation is announced in the log once — one line, no link — and
//! `arbor outbox` shows the link; a restart does not announce it again; once
//! delivered over SMTP the outbox shows the mail without its body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long outbox test password";

fn arbor(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ARBOR_") {
            command.env_remove(key);
        }
    }
    command
        .args(["--database-url", url, "--public-url", "http://arbor.test"])
        .args(args)
        .env("ARBOR_ADMIN_PASSWORD", PASSWORD)
        .env("ARBOR_LOG", "debug");
    command
}

fn stdout_of(output: Output) -> String {
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A running `arbor serve`, its base URL and everything it logged so far.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(url: &str, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = arbor(url, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("arbor serve listens");
        Server { child, base, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn logged(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never logged {needle:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
    }
}

async fn invite(http: &reqwest::Client, server: &Server, email: &str) {
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": "boss@mail.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let me: Value = http
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles: Value = http
        .get(format!("{}/api/v1/roles", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let role = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["builtin"] == "user")
        .unwrap()["id"]
        .clone();
    let org = me["home_org_id"]
        .as_i64()
        .or_else(|| me["memberships"][0]["org_id"].as_i64())
        .unwrap_or_else(|| panic!("no org in {me}"));
    let invited = http
        .post(format!("{}/api/v1/users/invitations", server.base))
        .bearer_auth(token)
        .json(&json!({"email": email, "name": "Invitee", "org_id": org, "role_id": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), 201, "{}", invited.text().await.unwrap());
}

#[tokio::test]
async fn without_smtp_mail_is_announced_once_and_read_with_arbor_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
    stdout_of(
        arbor(
            &url,
            &[
                "init",
                "--org-name",
                "Mail Co",
                "--admin-email",
                "boss@mail.test",
                "--admin-name",
                "Boss",
            ],
        )
        .output()
        .unwrap(),
    );
    let http = reqwest::Client::new();

    let server = Server::start(&url, &[]);
    invite(&http, &server, "first@mail.test").await;
    server.logged("read it with `arbor outbox`").await;
    let first_run = server.stop();
    let notices: Vec<&str> = first_run
        .lines()
        .filter(|l| l.contains("arbor outbox"))
        .collect();
    assert_eq!(notices.len(), 1, "{first_run}");
    assert!(notices[0].contains("first@mail.test"), "{}", notices[0]);

    // The operator reads the link with `arbor outbox`.
    let listed = stdout_of(arbor(&url, &["outbox"]).output().unwrap());
    let link = listed
        .split_whitespace()
        .find(|w| w.starts_with("http://arbor.test/invitations/accept?token="))
        .unwrap_or_else(|| panic!("no link in {listed}"))
        .to_owned();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(!first_run.contains(&token), "the link reached the log");

    // A restart announces only what is new.
    let server = Server::start(&url, &[]);
    invite(&http, &server, "second@mail.test").await;
    server.logged("\"second@mail.test\"").await;
    let second_run = server.stop();
    assert!(
        !second_run.contains("\"first@mail.test\""),
        "announced again at start:\n{second_run}"
    );

    // Delivered over SMTP, the mail keeps no body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(arbor_testkit::smtp::sink(listener, tx));
    let server = Server::start(
        &url,
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
            "--smtp-security",
            "none",
            "--smtp-from",
            "Arbor <arbor@mail.test>",
        ],
    );
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("both mails are delivered")
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let unsent = loop {
        let unsent = stdout_of(arbor(&url, &["outbox"]).output().unwrap());
        if unsent.contains("the outbox is empty") || Instant::now() > deadline {
            break unsent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let third_run = server.stop();
    assert!(unsent.contains("the outbox is empty"), "{unsent}");
    let all = stdout_of(arbor(&url, &["outbox", "--all"]).output().unwrap());
    assert_eq!(all.matches("(sent)").count(), 2, "{all}");
    assert!(
        all.contains("(delivered; the body is not kept once sent)"),
        "{all}"
    );
    assert!(!all.contains("token="), "{all}");
    for log in [&first_run, &second_run, &third_run] {
        assert!(!log.contains(&token), "{log}");
        let unredacted = log.replace("token=[redacted]", "");
        assert!(!unredacted.contains("token="), "{log}");
    }
}
