//! Secrets a person's browser or the outbox could leak: the token pages'
//! headers, the session cookie's name and attributes over https and http,
//! and mail of a link that was revoked or replaced.

use crate::support::{Client, World, json, user_id};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Response;
use serde_json::json;

fn assert_token_page_headers(response: &Response, what: &str) {
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(
        header("content-security-policy"),
        "frame-ancestors 'none'",
        "{what}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
}

async fn token_pages_are_not_cached_referred_or_framed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let invite = json!({"email": "page@root.test", "name": "Page", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    let token = app.mailed_token("page@root.test").await;

    let get = |path: String| {
        let app = &app;
        async move { app.http.get(app.url(&path)).send().await.unwrap() }
    };
    let opened = get(format!("/invitations/accept?token={token}")).await;
    assert_eq!(opened.status(), 200);
    assert_token_page_headers(&opened, "invitation page");
    let incomplete = get("/invitations/accept".into()).await;
    assert_eq!(incomplete.status(), 400);
    assert_token_page_headers(&incomplete, "incomplete invitation link");
    let accepted = app
        .http
        .post(app.url("/invitations/accept"))
        .form(&[
            ("token", token.as_str()),
            ("password", "a page chosen password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_token_page_headers(&accepted, "accepted invitation");

    let kim = w
        .member(app.app(), w.child, w.staff, "kim-page@root.test")
        .await;
    let asked = admin
        .post(
            &format!("/api/v1/users/{}/password-reset", kim.0),
            json!({}),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let reset = app.mailed_token("kim-page@root.test").await;
    let opened = get(format!("/password-reset?token={reset}")).await;
    assert_eq!(opened.status(), 200);
    assert_token_page_headers(&opened, "reset page");
    let refused = app
        .http
        .post(app.url("/password-reset"))
        .form(&[
            ("token", "no-such-token"),
            ("password", "whatever it is now"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    assert_token_page_headers(&refused, "unknown reset link");
}

/// The `Set-Cookie` of a login and the `name=value` pair to send back.
async fn login_cookie(app: &TestApp, email: &str) -> (String, String, String) {
    let response = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": arbor_testkit::PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = json(response, 200).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    (cookie, pair, token)
}

async fn me_with_cookie(app: &TestApp, cookie: &str) -> u16 {
    app.http
        .get(app.url("/api/v1/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn over_https_the_session_cookie_is_a_host_cookie(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.public_url = "https://arbor.test".into();
    })
    .await;
    World::build(app.app()).await;
    let (cookie, pair, token) = login_cookie(&app, "root-admin@root.test").await;
    assert!(
        cookie.starts_with(&format!("__Host-arbor_session={token}; ")),
        "{cookie}"
    );
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    for required in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(attributes.contains(&required), "{required}: {cookie}");
    }
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{cookie}"
    );
    // Read under the name that applies, and only under it.
    assert_eq!(me_with_cookie(&app, &pair).await, 200);
    assert_eq!(
        me_with_cookie(&app, &format!("arbor_session={token}")).await,
        401
    );
    // A cookie write from another site is refused under the new name too.
    let forged = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(me_with_cookie(&app, &pair).await, 200, "still logged in");
    // Logging out clears the same cookie.
    let out = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("__Host-arbor_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

async fn over_http_the_session_cookie_keeps_its_plain_name(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    World::build(app.app()).await;
    let (cookie, pair, token) = login_cookie(&app, "root-admin@root.test").await;
    assert!(
        cookie.starts_with(&format!("arbor_session={token}; ")),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(me_with_cookie(&app, &pair).await, 200);
    assert_eq!(
        me_with_cookie(&app, &format!("__Host-arbor_session={token}")).await,
        401
    );
}

/// Unsent mail to `to`, newest first, with the token of its link.
async fn unsent_links(app: &TestApp, to: &str) -> Vec<(i64, String)> {
    let mut tx = app.db.store().read().await.unwrap();
    let mails = tx.outbox(true, 1000).await.unwrap();
    tx.finish().await.unwrap();
    mails
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| {
            let token = m.body.split("token=").nth(1).unwrap_or("");
            let token = token.split_whitespace().next().unwrap_or("").to_owned();
            (m.id, token)
        })
        .collect()
}

async fn revoking_an_invitation_drops_its_mail_and_resending_supersedes_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let to = "gone@root.test";
    let invite = json!({"email": to, "name": "Gone", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    let first = unsent_links(&app, to).await;
    assert_eq!(first.len(), 1);
    let id = user_id(&app, to).await;

    // Resending replaces the old unsent mail with one new link.
    let resent = admin
        .post(
            &format!("/api/v1/users/{}/invitation/resend", id.0),
            json!({}),
        )
        .await;
    json(resent, 200).await;
    let second = unsent_links(&app, to).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0].0, first[0].0);
    assert_ne!(second[0].1, first[0].1);
    let old_link = app
        .http
        .get(app.url(&format!("/invitations/accept?token={}", first[0].1)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_link.status(),
        200,
        "the page opens; submitting it fails"
    );

    // Revoking drops it, in the same transaction as the audit row.
    let revoked = admin
        .delete(&format!("/api/v1/users/{}/invitation", id.0))
        .await;
    assert_eq!(revoked.status(), 204);
    assert!(unsent_links(&app, to).await.is_empty());
    let mut tx = app.db.store().read().await.unwrap();
    let everything = tx.outbox(false, 1000).await.unwrap();
    tx.finish().await.unwrap();
    assert!(
        everything.iter().all(|m| m.to != to),
        "no row of the revoked invitation is left"
    );
    let log = json(admin.get("/api/v1/audit?limit=50").await, 200).await;
    let entries = log.as_array().unwrap();
    let revoke = entries
        .iter()
        .find(|e| e["action"] == "user.revoke_invitation")
        .unwrap_or_else(|| panic!("no revoke in {log}"));
    assert_eq!(revoke["details"]["unsent_mail_cancelled"], 1, "{revoke}");
    let resend = entries
        .iter()
        .find(|e| e["action"] == "user.resend_invitation")
        .unwrap();
    assert_eq!(resend["details"]["unsent_mail_superseded"], 1, "{resend}");

    // Using a link drops a copy still waiting too.
    let invite = json!({"email": "quick@root.test", "name": "Quick", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    let token = app.mailed_token("quick@root.test").await;
    let accepted = app
        .http
        .post(app.url("/invitations/accept"))
        .form(&[
            ("token", token.as_str()),
            ("password", "a quick chosen password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(unsent_links(&app, "quick@root.test").await.is_empty());
}

both_engines!(
    token_pages_are_not_cached_referred_or_framed,
    over_https_the_session_cookie_is_a_host_cookie,
    over_http_the_session_cookie_keeps_its_plain_name,
    revoking_an_invitation_drops_its_mail_and_resending_supersedes_it,
);
