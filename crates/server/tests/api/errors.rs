//! Every error kind of the API answers with its status and problem details,
//! and changes nothing.

use crate::support::{Client, World, json, problem};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

async fn malformed_input_names_the_field_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let cases = [
        (
            json!({"email": "x@root.test", "name": "X", "org_id": w.child.0, "role_id": w.user.0, "status": "active"}),
            "status",
        ),
        (
            json!({"email": "x@root.test", "name": "X", "org_id": "child", "role_id": w.user.0}),
            "org_id",
        ),
        (
            json!({"name": "X", "org_id": w.child.0, "role_id": w.user.0}),
            "email",
        ),
        (
            json!({"email": "not an email", "name": "X", "org_id": w.child.0, "role_id": w.user.0}),
            "email",
        ),
        (
            json!({"email": "x@root.test", "name": "", "org_id": w.child.0, "role_id": w.user.0}),
            "name",
        ),
        (
            json!({"email": "x@root.test", "name": "X", "org_id": w.child.0, "role_id": 99_999}),
            "role",
        ),
    ];
    for (body, field) in cases {
        let error = problem(admin.post("/api/v1/users/invitations", body).await, 400).await;
        assert_eq!(error["type"], "urn:arbor:problem:invalid-request");
        assert_eq!(error["field"], field, "{error}");
    }
    let page = json(admin.get("/api/v1/users?limit=500").await, 200).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    let bad_limit = problem(admin.get("/api/v1/users?limit=0").await, 400).await;
    assert_eq!(bad_limit["field"], "limit");
    let bad_header = admin
        .request(reqwest::Method::GET, "/api/v1/users")
        .header("x-arbor-org", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad_header, 400).await["field"], "X-Arbor-Org");
}

async fn requests_without_a_valid_session_are_unauthorized(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    World::build(app.app()).await;
    let none = app.http.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(
        problem(none, 401).await["type"],
        "urn:arbor:problem:unauthorized"
    );
    let forged = app
        .http
        .get(app.url("/api/v1/users"))
        .bearer_auth("forged-token")
        .send()
        .await
        .unwrap();
    problem(forged, 401).await;
}

async fn unknown_paths_and_objects_outside_scope_are_not_found(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let other = Client::login(&app, "other-admin@other.test").await;
    problem(other.get("/api/v1/nothing-here").await, 404).await;
    // Same answer for a user of another hierarchy and for a user that does not exist.
    let foreign = problem(
        other
            .get(&format!("/api/v1/users/{}", w.root_admin.0))
            .await,
        404,
    )
    .await;
    let missing = problem(other.get("/api/v1/users/987654").await, 404).await;
    assert_eq!(foreign["detail"], missing["detail"]);
    // Acting in an org of another hierarchy looks like a missing org.
    let context = other
        .request(reqwest::Method::GET, "/api/v1/users")
        .header("x-arbor-org", w.child.0.to_string())
        .send()
        .await
        .unwrap();
    problem(context, 404).await;
}

async fn rule_conflicts_answer_409(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    // Duplicate email, in any case.
    let duplicate = admin
        .post("/api/v1/users/invitations", json!({"email": "ROOT-ADMIN@root.test", "name": "Again", "org_id": w.child.0, "role_id": w.user.0}))
        .await;
    problem(duplicate, 409).await;
    // The last Admin of an org cannot be demoted, suspended or deleted.
    let only = w
        .member(app.app(), w.child, w.admin, "only-admin@root.test")
        .await;
    for (method, path, body) in [
        (
            reqwest::Method::PATCH,
            format!("/api/v1/users/{}", only.0),
            Some(json!({"role_id": w.staff.0})),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/users/{}/suspend", only.0),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/users/{}", only.0),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/users/{}/transfer", only.0),
            Some(json!({"org_id": w.sibling.0, "role_id": w.admin.0})),
        ),
    ] {
        let mut request = admin.request(method, &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let conflict = problem(request.send().await.unwrap(), 409).await;
        assert!(
            conflict["detail"].as_str().unwrap().contains("Admin"),
            "{conflict}"
        );
    }
    let me = Client::login(&app, "only-admin@root.test").await;
    let body = json(me.get("/api/v1/me").await, 200).await;
    assert_eq!(body["memberships"][0]["role"], "Admin", "nothing changed");
    // With a second Admin, the first may go.
    w.member(app.app(), w.child, w.admin, "second-admin@root.test")
        .await;
    json(
        admin
            .patch(
                &format!("/api/v1/users/{}", only.0),
                json!({"role_id": w.staff.0}),
            )
            .await,
        204,
    )
    .await;
}

async fn concurrent_suspensions_never_leave_an_org_without_an_admin(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let first = w
        .member(app.app(), w.child, w.admin, "first@root.test")
        .await;
    let second = w
        .member(app.app(), w.child, w.admin, "second@root.test")
        .await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let attempts = (0..32).map(|i| {
        let target = if i % 2 == 0 { first } else { second };
        admin
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/users/{}/suspend", target.0),
            )
            .send()
    });
    let statuses: Vec<u16> = futures_statuses(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 409),
        "{statuses:?}"
    );
    let active = json(
        admin
            .get(&format!("/api/v1/users?org_id={}&status=active", w.child.0))
            .await,
        200,
    )
    .await;
    assert_eq!(active["items"].as_array().unwrap().len(), 1);
}

async fn futures_statuses(
    requests: impl Iterator<
        Item = impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<u16> {
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap().unwrap().status().as_u16());
    }
    statuses
}

async fn oversized_bodies_answer_413_and_other_media_types_415(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.body_limit_bytes = 2048).await;
    World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let big = json!({"name": "x".repeat(4096)});
    problem(admin.patch("/api/v1/me", big).await, 413).await;
    let text = admin
        .request(reqwest::Method::PATCH, "/api/v1/me")
        .header("content-type", "text/plain")
        .body("{\"name\":\"Ada\"}")
        .send()
        .await
        .unwrap();
    problem(text, 415).await;
}

async fn every_response_carries_a_request_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ok = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(ok.headers().contains_key("x-request-id"));
    let given = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    assert_eq!(problem(given, 404).await["request_id"], "abc-123");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(json(ready, 200).await["status"], "ready");
}

both_engines!(
    malformed_input_names_the_field_and_changes_nothing,
    requests_without_a_valid_session_are_unauthorized,
    unknown_paths_and_objects_outside_scope_are_not_found,
    rule_conflicts_answer_409,
    concurrent_suspensions_never_leave_an_org_without_an_admin,
    oversized_bodies_answer_413_and_other_media_types_415,
    every_response_carries_a_request_id,
);
