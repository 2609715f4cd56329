//! First run, login, sessions and their revocation, throttling, and the
//! invitation / reset flows as a newcomer follows them.

use crate::support::{Client, PASSWORD, World, json, problem};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

async fn login_status(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The README's walk: set up, log in, invite, accept from the mailed link, log
/// in as the new user.
async fn a_newcomer_sets_up_invites_and_the_invitee_logs_in(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let wrong = app
        .http
        .post(app.url("/api/v1/setup"))
        .json(
            &json!({"setup_token": "guess", "org_name": "Acme", "admin_email": "boss@acme.test",
                      "admin_name": "Boss", "admin_password": "a very good password"}),
        )
        .send()
        .await
        .unwrap();
    problem(wrong, 401).await;
    let setup = app
        .http
        .post(app.url("/api/v1/setup"))
        .json(&json!({"setup_token": app.setup_token, "org_name": "Acme", "admin_email": "boss@acme.test",
                      "admin_name": "Boss", "admin_password": "a very good password"}))
        .send()
        .await
        .unwrap();
    let created = json(setup, 201).await;
    let org = created["org_id"].as_i64().unwrap();
    // Setup closes once a hierarchy exists.
    let again = app
        .http
        .post(app.url("/api/v1/setup"))
        .json(&json!({"setup_token": app.setup_token, "org_name": "Evil", "admin_email": "x@evil.test",
                      "admin_name": "X", "admin_password": "a very good password"}))
        .send()
        .await
        .unwrap();
    problem(again, 409).await;

    let boss = app.login("boss@acme.test", "a very good password").await;
    let me = json(
        app.http
            .get(app.url("/api/v1/me"))
            .bearer_auth(&boss)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["memberships"][0]["role"], "Admin");
    // A new hierarchy's roles are created in the order Admin, Staff, User.
    let staff_role = me["memberships"][0]["role_id"].as_i64().unwrap() + 1;
    let invited = app
        .http
        .post(app.url("/api/v1/users/invitations"))
        .bearer_auth(&boss)
        .json(
            &json!({"email": "Kim@Acme.test", "name": "Kim", "org_id": org, "role_id": staff_role}),
        )
        .send()
        .await
        .unwrap();
    let invited = json(invited, 201).await;
    // Pending users cannot log in.
    problem(
        login_status(&app, "kim@acme.test", "anything at all").await,
        401,
    )
    .await;

    let token = app.mailed_token("kim@acme.test").await;
    let weak = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": token, "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(weak, 400).await["field"], "password");
    let accepted = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": token, "password": "kim's own passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(accepted, 200).await["user_id"], invited["user_id"]);
    let reused = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": token, "password": "kim's other passphrase"}))
        .send()
        .await
        .unwrap();
    problem(reused, 409).await;

    let kim = app.login("KIM@acme.test", "kim's own passphrase").await;
    let me = json(
        app.http
            .get(app.url("/api/v1/me"))
            .bearer_auth(&kim)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["status"], "active");
    assert_eq!(me["memberships"][0]["org_id"], org);
    assert_eq!(me["memberships"][0]["role"], "Staff");
}

async fn unknown_email_and_wrong_password_answer_alike(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    World::build(app.app()).await;
    let unknown = problem(login_status(&app, "nobody@root.test", PASSWORD).await, 401).await;
    let wrong = problem(
        login_status(&app, "root-admin@root.test", "not the password").await,
        401,
    )
    .await;
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(unknown), strip(wrong));
}

async fn failed_logins_of_a_client_are_delayed_until_the_backoff_passes(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        c.throttle.free_failures = 3;
        c.throttle.base_delay_secs = 60;
    })
    .await;
    World::build(app.app()).await;
    for email in ["root-admin@root.test", "ghost@root.test"] {
        for _ in 0..3 {
            problem(login_status(&app, email, "wrong password!").await, 401).await;
        }
        let throttled = login_status(&app, email, PASSWORD).await;
        let retry: u64 = throttled.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 60);
        problem(throttled, 429).await;
    }
    // An existing and a missing account are throttled the same way.
    app.clock().advance(60_000);
    assert_eq!(
        login_status(&app, "root-admin@root.test", PASSWORD)
            .await
            .status(),
        200
    );
}

async fn sessions_end_on_logout_force_logout_suspension_and_password_change(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    let id = w.member(a, w.child, w.user, "kim@root.test").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // Logout ends that session only.
    let one = app.login("kim@root.test", PASSWORD).await;
    let two = app.login("kim@root.test", PASSWORD).await;
    let out = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&one)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(me(one).await, 401);
    assert_eq!(me(two.clone()).await, 200);

    // Force logout ends every session at once.
    json(
        admin
            .post(&format!("/api/v1/users/{}/logout", id.0), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(me(two).await, 401);

    // A password change ends every other session and keeps the current one.
    let current = app.login("kim@root.test", PASSWORD).await;
    let other = app.login("kim@root.test", PASSWORD).await;
    let change = app
        .http
        .post(app.url("/api/v1/me/password"))
        .bearer_auth(&current)
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 204);
    assert_eq!(me(other).await, 401);
    assert_eq!(me(current.clone()).await, 200);

    // Suspension ends sessions and blocks login; reinstating allows it again.
    json(
        admin
            .post(&format!("/api/v1/users/{}/suspend", id.0), json!({}))
            .await,
        204,
    )
    .await;
    assert_eq!(me(current).await, 401);
    problem(
        login_status(&app, "kim@root.test", "a brand new passphrase").await,
        401,
    )
    .await;
    json(
        admin
            .post(&format!("/api/v1/users/{}/unsuspend", id.0), json!({}))
            .await,
        204,
    )
    .await;
    app.login("kim@root.test", "a brand new passphrase").await;
}

async fn sessions_expire_when_idle_and_at_their_absolute_limit(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        c.session.idle_timeout_secs = 600;
        c.session.absolute_timeout_secs = 3600;
    })
    .await;
    World::build(app.app()).await;
    let token = app.login("root-admin@root.test", PASSWORD).await;
    let me = || {
        app.http
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
    };
    // Used every 9 minutes, the session survives past the idle limit…
    for _ in 0..5 {
        app.clock().advance(9 * 60_000);
        assert_eq!(me().await.unwrap().status(), 200);
    }
    // …until the absolute limit.
    app.clock().advance(20 * 60_000);
    assert_eq!(me().await.unwrap().status(), 401);
    let token = app.login("root-admin@root.test", PASSWORD).await;
    app.clock().advance(11 * 60_000);
    let idle = app
        .http
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(idle.status(), 401);
}

async fn the_session_cookie_is_http_only_and_works_like_a_bearer_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    World::build(app.app()).await;
    let response = login_status(&app, "root-admin@root.test", PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = app
        .http
        .get(app.url("/api/v1/me"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(json(me, 200).await["email"], "root-admin@root.test");
}

async fn an_admin_resets_a_password_by_link_without_ever_choosing_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let id = w.member(app.app(), w.child, w.staff, "kim@root.test").await;
    let before = app.login("kim@root.test", PASSWORD).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let asked = admin
        .post(&format!("/api/v1/users/{}/password-reset", id.0), json!({}))
        .await;
    assert_eq!(asked.status(), 202);
    assert_eq!(
        asked.text().await.unwrap(),
        "",
        "the link is never shown to the admin"
    );
    let token = app.mailed_token("kim@root.test").await;
    let done = app
        .http
        .post(app.url("/api/v1/password-reset/complete"))
        .json(&json!({"token": token, "password": "kim chose this one"}))
        .send()
        .await
        .unwrap();
    json(done, 200).await;
    assert_eq!(
        app.http
            .get(app.url("/api/v1/me"))
            .bearer_auth(before)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.login("kim@root.test", "kim chose this one").await;
    let again = app
        .http
        .post(app.url("/api/v1/password-reset/complete"))
        .json(&json!({"token": token, "password": "and another one!"}))
        .send()
        .await
        .unwrap();
    problem(again, 409).await;
}

async fn invitations_expire_after_thirty_days_and_can_be_resent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let invited = admin
        .post("/api/v1/users/invitations", json!({"email": "late@root.test", "name": "Late", "org_id": w.child.0, "role_id": w.user.0}))
        .await;
    let user = json(invited, 201).await["user_id"].as_i64().unwrap();
    let old = app.mailed_token("late@root.test").await;
    app.clock().advance(31 * 24 * 3600 * 1000);
    let accept = |token: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/api/v1/invitations/accept"))
                .json(&json!({"token": token, "password": "finally joining in"}))
                .send()
                .await
                .unwrap()
        }
    };
    assert!(
        problem(accept(old.clone()).await, 409).await["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let admin = Client::login(&app, "root-admin@root.test").await;
    json(
        admin
            .post(
                &format!("/api/v1/users/{user}/invitation/resend"),
                json!({}),
            )
            .await,
        200,
    )
    .await;
    let new = app.mailed_token("late@root.test").await;
    assert_ne!(new, old);
    problem(accept(old).await, 404).await;
    json(accept(new).await, 200).await;
}

async fn the_caller_edits_their_own_profile(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    World::build(app.app()).await;
    let me = Client::login(&app, "root-admin@root.test").await;
    json(
        me.patch("/api/v1/me", json!({"name": "Ada", "locale": "de-AT"}))
            .await,
        204,
    )
    .await;
    let body = json(me.get("/api/v1/me").await, 200).await;
    assert_eq!(
        (body["name"].as_str(), body["locale"].as_str()),
        (Some("Ada"), Some("de-AT"))
    );
    let bad = me.patch("/api/v1/me", json!({"locale": "<script>"})).await;
    assert_eq!(problem(bad, 400).await["field"], "locale");
}

/// Defect 9: several first-run setups at once could each find no hierarchy
/// and create one.
async fn concurrent_setups_create_exactly_one_hierarchy(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (http, url, token) = (
            app.http.clone(),
            app.url("/api/v1/setup"),
            app.setup_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"setup_token": token, "org_name": format!("Org {i}"),
                              "admin_email": format!("boss{i}@setup.test"), "admin_name": "Boss",
                              "admin_password": PASSWORD});
            let response = http.post(url).json(&body).send().await.unwrap();
            (i, response.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let winners: Vec<usize> = statuses
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, s)| [201, 409].contains(s)),
        "{statuses:?}"
    );
    // One hierarchy, one Admin: the losers left no account behind.
    let boss = Client {
        app: &app,
        token: app
            .login(&format!("boss{}@setup.test", winners[0]), PASSWORD)
            .await,
    };
    let orgs = json(boss.get("/api/v1/orgs").await, 200).await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1, "{orgs}");
    let users = json(boss.get("/api/v1/users").await, 200).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "{users}");
    for (i, _) in statuses.iter().filter(|(i, _)| *i != winners[0]) {
        problem(
            login_status(&app, &format!("boss{i}@setup.test"), PASSWORD).await,
            401,
        )
        .await;
    }
}

/// Defect 12: a reset link an administrator had sent stayed valid after the
/// user chose a new password themselves, so whoever held the mail could
/// still take the account over.
async fn a_users_own_password_change_ends_the_reset_links_an_admin_sent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let id = w.member(app.app(), w.child, w.staff, "kim@root.test").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let asked = admin
        .post(&format!("/api/v1/users/{}/password-reset", id.0), json!({}))
        .await;
    assert_eq!(asked.status(), 202);
    let link = app.mailed_token("kim@root.test").await;
    let kim = Client::login(&app, "kim@root.test").await;
    let changed = kim
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "kim's very own choice"}),
        )
        .await;
    assert_eq!(changed.status(), 204);
    let used = app
        .http
        .post(app.url("/api/v1/password-reset/complete"))
        .json(&json!({"token": link, "password": "whoever holds the mail"}))
        .send()
        .await
        .unwrap();
    let status = used.status().as_u16();
    assert!(
        [404, 409].contains(&status),
        "the old link still works: {status}"
    );
    problem(used, status).await;
    problem(
        login_status(&app, "kim@root.test", "whoever holds the mail").await,
        401,
    )
    .await;
    app.login("kim@root.test", "kim's very own choice").await;
}

both_engines!(
    a_newcomer_sets_up_invites_and_the_invitee_logs_in,
    concurrent_setups_create_exactly_one_hierarchy,
    a_users_own_password_change_ends_the_reset_links_an_admin_sent,
    unknown_email_and_wrong_password_answer_alike,
    failed_logins_of_a_client_are_delayed_until_the_backoff_passes,
    sessions_end_on_logout_force_logout_suspension_and_password_change,
    sessions_expire_when_idle_and_at_their_absolute_limit,
    the_session_cookie_is_http_only_and_works_like_a_bearer_token,
    an_admin_resets_a_password_by_link_without_ever_choosing_it,
    invitations_expire_after_thirty_days_and_can_be_resent,
    the_caller_edits_their_own_profile,
);
