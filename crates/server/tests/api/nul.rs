//! A NUL character in any text a request carries — a JSON string, a query
//! value, a path segment, a form field, a CSV row — answers 400 naming the
//! field, on both engines, and changes nothing (PostgreSQL cannot store a NUL
//! in text, SQLite would store it).

use crate::support::{Client, World, json, problem};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

/// What the requests below could have changed.
async fn state(admin: &Client<'_>) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/v1/orgs?limit=500",
        "/api/v1/users?limit=500",
        "/api/v1/audit?limit=500",
        "/api/v1/roles",
    ] {
        state.push(json(admin.get(path).await, 200).await);
    }
    state
}

async fn refused(response: reqwest::Response, field: &str) {
    let body = problem(response, 400).await;
    assert_eq!(body["type"], "urn:arbor:problem:invalid-request", "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert_eq!(body["detail"], "must not contain a NUL character", "{body}");
}

async fn a_nul_character_anywhere_is_refused_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    // A pending invitation, to try its link with a NUL.
    let invite =
        json!({"email": "web@root.test", "name": "Web", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    let token = app.mailed_token("web@root.test").await;
    let before = state(&admin).await;

    let bodies = [
        (
            Method::POST,
            "/api/v1/orgs".to_owned(),
            json!({"parent_id": w.root.0, "name": "Evil\u{0}Corp"}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/orgs".to_owned(),
            json!({"parent_id": w.root.0, "name": "Fine", "admin": {"email": "boss@root.test", "name": "\u{0}"}}),
            "admin.name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{}", w.child.0),
            json!({"name": "Child\u{0}"}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{}", w.child.0),
            json!({"description": "ok", "contact": "\u{0}"}),
            "contact",
        ),
        (
            Method::POST,
            "/api/v1/users/invitations".to_owned(),
            json!({"email": "x\u{0}@root.test", "name": "X", "org_id": w.child.0, "role_id": w.user.0}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/users/invitations".to_owned(),
            json!({"email": "x@root.test", "name": "X\u{0}", "org_id": w.child.0, "role_id": w.user.0}),
            "name",
        ),
        (
            Method::PATCH,
            "/api/v1/me".to_owned(),
            json!({"locale": "en\u{0}"}),
            "locale",
        ),
        (
            Method::POST,
            "/api/v1/roles".to_owned(),
            json!({"name": "\u{0}"}),
            "name",
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{}/roles/{}/permissions", w.child.0, w.staff.0),
            json!({"permissions": ["users.view", "users.edit\u{0}"]}),
            "permissions[1]",
        ),
        (
            Method::POST,
            "/api/v1/access/check".to_owned(),
            json!({"questions": [{"user_id": w.root_admin.0, "permission": "\u{0}", "org_id": w.root.0}]}),
            "questions[0].permission",
        ),
    ];
    for (method, path, body, field) in bodies {
        let text = serde_json::to_string(&body).unwrap();
        assert!(text.contains("\\u0000"), "the NUL travels escaped: {text}");
        let response = admin
            .request(method, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        refused(response, field).await;
    }
    for (path, field) in [
        ("/api/v1/orgs?q=%00".to_owned(), "q"),
        ("/api/v1/orgs?q=Chi%00ld".to_owned(), "q"),
        ("/api/v1/users?q=%00".to_owned(), "q"),
        ("/api/v1/orgs?limit=%00".to_owned(), "limit"),
        ("/api/v1/orgs/%00".to_owned(), "id"),
        (format!("/api/v1/orgs/{}%00", w.child.0), "id"),
        (
            format!(
                "/api/v1/access/who-can?permission=users.view%00&org_id={}",
                w.root.0
            ),
            "permission",
        ),
    ] {
        refused(admin.get(&path).await, field).await;
    }
    let delete = admin
        .delete(&format!("/api/v1/orgs/{}%00", w.sibling.0))
        .await;
    refused(delete, "id").await;
    let put = admin
        .request(
            Method::PUT,
            &format!("/api/v1/orgs/{}/roles/%00/permissions", w.child.0),
        )
        .json(&json!({"permissions": []}))
        .send()
        .await
        .unwrap();
    refused(put, "role_id").await;
    // The CSV import names the line.
    let csv = format!(
        "email,name,role,org\nann@root.test,A\0nn,User,{}\n",
        w.child.0
    );
    let bulk = admin
        .request(Method::POST, "/api/v1/users/invitations/bulk")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let body = problem(bulk, 400).await;
    assert_eq!(body["field"], "body");
    assert_eq!(body["detail"], "line 2 must not contain a NUL character");
    // Endpoints without a session refuse it just the same.
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "root-admin@root.test\u{0}", "password": "x"}))
        .send()
        .await
        .unwrap();
    refused(login, "email").await;
    let accept = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": token, "password": "a long enough password", "name": "W\u{0}"}))
        .send()
        .await
        .unwrap();
    refused(accept, "name").await;
    // The link page answers a person in HTML, with the same refusal.
    let form = app
        .http
        .post(app.url("/invitations/accept"))
        .form(&[
            ("token", token.as_str()),
            ("password", "a long enough password"),
            ("name", "Web\0Person"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let html = form.text().await.unwrap();
    assert!(html.contains("must not contain a NUL character"), "{html}");
    let link = app
        .http
        .get(app.url("/invitations/accept?token=%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 400);

    assert_eq!(state(&admin).await, before, "nothing changed");
    // The invitation is still open: none of the attempts used it.
    let accepted = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": token, "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    json(accepted, 200).await;
}

both_engines!(a_nul_character_anywhere_is_refused_and_changes_nothing);
