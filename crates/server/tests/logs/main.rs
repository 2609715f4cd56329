//! No secret reaches the server's log: the real server, with everything
//! logged at TRACE into a buffer, is driven through setup, a failed and a
//! good login (bearer and cookie), an invitation announced without SMTP and
//! opened by its link, a reset link, a mail delivered over SMTP, a device
//! calling the device API with its token in the query, and a logout; then
//! no password, setup token, session token, link token or device token may
//! appear in what was logged.
//!
//! A binary of its own: the subscriber is process-wide (the server's
//! connection tasks do not inherit a scoped one), so it must not slow down
//! or mix with the other suites.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use arbor_server::config::{SmtpConfig, SmtpSecurity};
use arbor_server::mail;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Everything logged by this process so far.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs the capturing subscriber once: every target at TRACE, plus the
/// `log` records of crates that use it — except the test's own HTTP client,
/// which sends the tokens and is not the server.
fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            use tracing_subscriber::util::SubscriberInitExt as _;
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "trace,reqwest=off,hyper_util::client=off",
                ))
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish()
                .try_init()
                .expect("the log capture is the only subscriber");
            capture
        })
        .clone()
}

const ADMIN_PASSWORD: &str = "the admin's log test password";
const WRONG_PASSWORD: &str = "a wrong password for the log";
const INVITEE_PASSWORD: &str = "the invitee chose this one";
const RESET_PASSWORD: &str = "the invitee reset to this";

async fn ok(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Waits until the captured log contains `needle`.
async fn logged(capture: &Capture, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !capture.text().contains(needle) {
        assert!(Instant::now() < deadline, "never logged: {needle}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn no_token_password_or_mail_body_reaches_the_log(engine: Engine) {
    let capture = capture();
    let app = TestApp::spawn(engine).await;
    let http = &app.http;
    let domain = format!("{:?}.logs.test", engine).to_lowercase();
    let admin_email = format!("boss@{domain}");

    // First-run setup with the setup token.
    let setup = http
        .post(app.url("/api/v1/setup"))
        .json(
            &json!({"setup_token": app.setup_token, "org_name": "Logs", "admin_email": admin_email,
                      "admin_name": "Boss", "admin_password": ADMIN_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    let org = ok(setup, 201).await["org_id"].as_i64().unwrap();

    // A failed login, then a good one: bearer token and cookie.
    let wrong = http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": admin_email, "password": WRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    ok(wrong, 401).await;
    let session = app.login(&admin_email, ADMIN_PASSWORD).await;
    let bearer = |method: reqwest::Method, path: &str| {
        http.request(method, app.url(path)).bearer_auth(&session)
    };
    ok(
        bearer(reqwest::Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let by_cookie = http
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("arbor_session={session}"))
        .send()
        .await
        .unwrap();
    ok(by_cookie, 200).await;
    // A careless client putting the session token in a query.
    let careless = bearer(
        reqwest::Method::GET,
        &format!("/api/v1/users?token={session}&password={}", "p%20w"),
    )
    .send()
    .await
    .unwrap();
    assert!(careless.status().is_client_error() || careless.status().is_success());

    // An invitation, announced without SMTP: one line, no body.
    let roles = ok(
        bearer(reqwest::Method::GET, "/api/v1/roles")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let role = roles
        .as_array()
        .and_then(|r| r.iter().find(|r| r["builtin"] == "user"))
        .unwrap_or_else(|| panic!("no User role in {roles}"))["id"]
        .as_i64()
        .unwrap();
    let invitee = format!("invitee@{domain}");
    let invited = bearer(reqwest::Method::POST, "/api/v1/users/invitations")
        .json(&json!({"email": invitee, "name": "Invitee", "org_id": org, "role_id": role}))
        .send()
        .await
        .unwrap();
    let invitee_id = ok(invited, 201).await["user_id"].as_i64().unwrap();
    let announcer = tokio::spawn(mail::run(
        app.app().clone(),
        None,
        mail::MailSignal::default(),
    ));
    logged(&capture, &format!("to=\"{invitee}\"")).await;
    announcer.abort();
    let invitation = app.mailed_token(&invitee).await;

    // The link page, opened and submitted.
    let page = http
        .get(app.url(&format!("/invitations/accept?token={invitation}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let accepted = http
        .post(app.url("/invitations/accept"))
        .form(&[
            ("token", invitation.as_str()),
            ("password", INVITEE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);

    // A reset link for the new member, opened and used.
    let asked = bearer(
        reqwest::Method::POST,
        &format!("/api/v1/users/{invitee_id}/password-reset"),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(asked.status(), 202);
    let reset = app.mailed_token(&invitee).await;
    assert_ne!(reset, invitation);
    let page = http
        .get(app.url(&format!("/password-reset?token={reset}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let done = http
        .post(app.url("/password-reset"))
        .form(&[("token", reset.as_str()), ("password", RESET_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let member_session = app.login(&invitee, RESET_PASSWORD).await;

    // A mail delivered over SMTP: the relay gets the link, the log does not.
    let smtp_invitee = format!("smtp@{domain}");
    let invited = bearer(reqwest::Method::POST, "/api/v1/users/invitations")
        .json(&json!({"email": smtp_invitee, "name": "By Mail", "org_id": org, "role_id": role}))
        .send()
        .await
        .unwrap();
    ok(invited, 201).await;
    let smtp_link = app.mailed_token(&smtp_invitee).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(arbor_testkit::smtp::sink(listener, tx));
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: Some("the relay's password".into()),
        from: "Arbor <arbor@arbor.test>".into(),
    };
    let worker = tokio::spawn(mail::run(
        app.app().clone(),
        Some(smtp),
        mail::MailSignal::default(),
    ));
    let message = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("delivered")
        .unwrap();
    // Quoted-printable: soft line breaks and `=` as `=3D`.
    let decoded = message.replace("=\n", "").replace("=3D", "=");
    assert!(decoded.contains(&smtp_link), "the relay got the live link");
    worker.abort();

    // A device provisioned over the API, then calling the device API with
    // its token in the query (and once with a wrong one).
    let template = bearer(reqwest::Method::POST, "/api/v1/device-templates")
        .json(&json!({"name": "Logged", "datastreams": [{"pin": 1, "name": "T", "value_type": "double"}],
                      "events": [{"code": "hot", "name": "Hot", "level": "info"}]}))
        .send()
        .await
        .unwrap();
    let template = ok(template, 201).await["id"].as_i64().unwrap();
    let device = bearer(reqwest::Method::POST, "/api/v1/devices")
        .json(&json!({"name": "Logged 1", "template_id": template, "org_id": org}))
        .send()
        .await
        .unwrap();
    let device_token = ok(device, 201).await["token"].as_str().unwrap().to_owned();
    for path in [
        format!("update?token={device_token}&V1=21.5"),
        format!("get?token={device_token}&V1"),
        format!("logEvent?token={device_token}&code=hot&description=warm"),
        format!("batch/update?V1=1&token={device_token}"),
        format!("get?token={device_token}x&V1"),
    ] {
        let answer = http
            .get(app.url(&format!("/external/api/{path}")))
            .send()
            .await
            .unwrap();
        assert!(answer.status() == 200 || answer.status() == 400, "{path}");
    }

    // Logout by cookie.
    let out = http
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", format!("arbor_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);

    let log = capture.text();
    // The capture works: requests, their redacted queries and the notice
    // are there.
    for expected in [
        "/invitations/accept?token=[redacted]",
        "/password-reset?token=[redacted]",
        "token=[redacted]&password=[redacted]",
        "read it with `arbor outbox`",
        "/api/v1/auth/login",
        "/external/api/update?token=[redacted]&V1=21.5",
    ] {
        assert!(log.contains(expected), "the log lacks {expected:?}");
    }
    let secrets = [
        ("setup token", app.setup_token.clone()),
        ("admin password", ADMIN_PASSWORD.into()),
        ("wrong password", WRONG_PASSWORD.into()),
        ("invitee password", INVITEE_PASSWORD.into()),
        ("reset password", RESET_PASSWORD.into()),
        ("admin session token", session.clone()),
        ("member session token", member_session),
        ("invitation token", invitation),
        ("reset token", reset),
        ("SMTP-delivered invitation token", smtp_link),
        ("relay password", "the relay's password".into()),
        ("device token", device_token),
        ("mail body", "Set your password and activate".into()),
    ];
    for (what, secret) in secrets {
        // Passwords also as a form encodes them.
        for form in [secret.clone(), secret.replace(' ', "+")] {
            if let Some(at) = log.find(&form) {
                let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = log[at..].find('\n').map_or(log.len(), |i| at + i);
                panic!("the {what} was logged: {}", &log[start..end]);
            }
        }
    }
    eprintln!("captured {} bytes of log without a secret", log.len());
}

both_engines!(no_token_password_or_mail_body_reaches_the_log);
