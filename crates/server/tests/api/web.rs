//! The pages that mailed links open.

use crate::support::{Client, World, json};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

async fn the_invitation_link_opens_a_form_that_activates_the_account(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let invite =
        json!({"email": "web@root.test", "name": "Web", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    let token = app.mailed_token("web@root.test").await;

    let page = app
        .http
        .get(app.url(&format!("/invitations/accept?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/invitations/accept\">"),
        "{html}"
    );
    assert!(html.contains(&format!("value=\"{token}\"")));

    let submit = |password: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.http
                .post(app.url("/invitations/accept"))
                .form(&[
                    ("token", token.as_str()),
                    ("password", password),
                    ("name", "Web Person"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let weak = submit("short").await;
    assert_eq!(weak.status(), 400);
    assert!(
        weak.text()
            .await
            .unwrap()
            .contains("at least 12 characters")
    );
    let done = submit("a web chosen password").await;
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Your account is active")
    );
    let again = submit("a web chosen password").await;
    assert_eq!(again.status(), 409);
    let me = Client {
        app: &app,
        token: app.login("web@root.test", "a web chosen password").await,
    };
    assert_eq!(
        json(me.get("/api/v1/me").await, 200).await["name"],
        "Web Person"
    );
}

async fn link_pages_escape_what_they_echo_and_explain_bad_links(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let hostile = app
        .http
        .get(app.url("/password-reset?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E"))
        .send()
        .await
        .unwrap();
    let html = hostile.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&#34;&#62;&#60;script&#62;") || html.contains("&quot;&gt;&lt;script&gt;"),
        "{html}"
    );
    let missing = app
        .http
        .get(app.url("/invitations/accept"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = app
        .http
        .post(app.url("/password-reset"))
        .form(&[
            ("token", "no-such-token"),
            ("password", "whatever it is now"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("This link is not valid")
    );
}

both_engines!(
    the_invitation_link_opens_a_form_that_activates_the_account,
    link_pages_escape_what_they_echo_and_explain_bad_links,
);
