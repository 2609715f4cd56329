//! Cross-site requests that the session cookie would authenticate are
//! refused before any handler runs; bearer tokens, safe methods, this
//! server's own pages and non-browser clients are not affected.

use crate::support::{Client, World, json, problem};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

const EVIL: &str = "https://evil.example";

/// A browser holding the session cookie, on whatever page sends the request.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
}

impl<'a> Browser<'a> {
    async fn login(app: &'a TestApp, email: &str) -> Browser<'a> {
        let token = app.login(email, arbor_testkit::PASSWORD).await;
        Browser {
            app,
            cookie: format!("arbor_session={token}"),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .http
            .request(method, self.app.url(path))
            .header("cookie", &self.cookie)
    }
}

/// The ways a browser says that another site sent the request.
fn forged(request: RequestBuilder, how: usize) -> RequestBuilder {
    match how {
        0 => request.header("origin", EVIL),
        1 => request.header("sec-fetch-site", "cross-site"),
        2 => request.header("sec-fetch-site", "same-site"),
        3 => request
            .header("origin", EVIL)
            .header("sec-fetch-site", "cross-site"),
        _ => request.header("origin", "null"),
    }
}
const WAYS: usize = 5;

async fn is_refused(response: Response) {
    let body = problem(response, 403).await;
    assert_eq!(body["type"], "urn:arbor:problem:forbidden", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cross-site request refused"),
        "{body}"
    );
}

/// What a forged request could have changed, read with a bearer token.
async fn state(admin: &Client<'_>) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/v1/orgs?limit=500",
        "/api/v1/users?limit=500",
        "/api/v1/roles",
    ] {
        state.push(json(admin.get(path).await, 200).await);
    }
    state
}

/// The audit rows the actions log shows, oldest first.
async fn audit_rows(admin: &Client<'_>) -> Vec<Value> {
    let mut rows = json(admin.get("/api/v1/audit?limit=500").await, 200)
        .await
        .as_array()
        .unwrap()
        .clone();
    rows.reverse();
    rows
}

async fn cross_site_writes_with_the_cookie_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let victim_user = w
        .member(app.app(), w.child, w.staff, "staff@root.test")
        .await;
    let browser = Browser::login(&app, "root-admin@root.test").await;
    let staff = Browser::login(&app, "staff@root.test").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let before = state(&admin).await;
    let audited_before = audit_rows(&admin).await.len();
    let mut refused_with_live_cookie = 0;

    for how in 0..WAYS {
        let writes: Vec<(Method, String, Option<Value>)> = vec![
            (
                Method::PATCH,
                format!("/api/v1/orgs/{}", w.child.0),
                Some(json!({"name": "Forged"})),
            ),
            (
                Method::POST,
                "/api/v1/orgs".into(),
                Some(json!({"parent_id": w.root.0, "name": "Forged"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/orgs/{}", w.sibling.0),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/orgs/{}/roles/{}/permissions", w.child.0, w.staff.0),
                Some(json!({"permissions": []})),
            ),
            (
                Method::POST,
                "/api/v1/users/invitations".into(),
                Some(
                    json!({"email": "spy@evil.example", "name": "Spy", "org_id": w.root.0, "role_id": w.admin.0}),
                ),
            ),
            // Bodyless: the session itself, and another user's sessions.
            (Method::POST, "/api/v1/auth/logout".into(), None),
            (
                Method::POST,
                format!("/api/v1/users/{}/logout", victim_user.0),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/users/{}/suspend", victim_user.0),
                None,
            ),
        ];
        for (method, path, body) in writes {
            let mut request = forged(browser.request(method, &path), how);
            if let Some(body) = body {
                request = request.json(&body);
            }
            is_refused(request.send().await.unwrap()).await;
            refused_with_live_cookie += 1;
        }
        // A form post, as a hostile page's <form> would send it.
        let form =
            forged(browser.request(Method::POST, "/api/v1/auth/logout"), how).form(&[("x", "1")]);
        is_refused(form.send().await.unwrap()).await;
        refused_with_live_cookie += 1;
    }
    // Refused before authentication: an invalid cookie gets the same 403, not 401.
    let stale = Browser {
        app: &app,
        cookie: "arbor_session=not-a-session".into(),
    };
    is_refused(
        forged(stale.request(Method::POST, "/api/v1/auth/logout"), 0)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // And on routes that need no session at all, such as a link page.
    let link_page = forged(browser.request(Method::POST, "/password-reset"), 1)
        .form(&[("token", "t"), ("password", "whatever it is now")]);
    is_refused(link_page.send().await.unwrap()).await;
    refused_with_live_cookie += 1;

    // Nothing changed. Each refusal made with the live cookie is audited
    // once, against the cookie's user in its own home org (the invalid
    // cookie names no one); nothing else was written.
    assert_eq!(state(&admin).await, before);
    let rows = audit_rows(&admin).await;
    let new = &rows[audited_before..];
    assert_eq!(new.len(), refused_with_live_cookie, "{new:#?}");
    let me = json(admin.get("/api/v1/me").await, 200).await;
    for row in new {
        assert_eq!(row["action"], "request.refused", "{row}");
        assert_eq!(row["outcome"], "forbidden", "{row}");
        assert_eq!(row["actor_user_id"], me["id"], "{row}");
        assert_eq!(row["target_org_id"], w.root.0, "{row}");
    }
    // Both sessions are still valid after the forged logouts.
    for session in [&browser, &staff] {
        let me = session
            .request(Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap();
        json(me, 200).await;
    }
}

async fn own_pages_bearer_tokens_safe_methods_and_plain_clients_pass(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let browser = Browser::login(&app, "root-admin@root.test").await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let child = format!("/api/v1/orgs/{}", w.child.0);
    let rename = |request: RequestBuilder, name: &str| request.json(&json!({ "name": name }));

    // Reading cross-site with the cookie is allowed.
    let read = forged(browser.request(Method::GET, &child), 3);
    assert_eq!(json(read.send().await.unwrap(), 200).await["name"], "Child");
    // The server's own pages: by its Host, by its public URL, by Sec-Fetch-Site.
    let cases: [(&str, RequestBuilder); 5] = [
        (
            "own host",
            browser
                .request(Method::PATCH, &child)
                .header("origin", &app.base),
        ),
        (
            "public URL",
            browser
                .request(Method::PATCH, &child)
                .header("origin", "http://arbor.test"),
        ),
        (
            "same-origin",
            browser
                .request(Method::PATCH, &child)
                .header("origin", &app.base)
                .header("sec-fetch-site", "same-origin"),
        ),
        (
            "typed by the user",
            browser
                .request(Method::PATCH, &child)
                .header("sec-fetch-site", "none"),
        ),
        // No Origin, no Sec-Fetch-Site: not a browser.
        ("plain client", browser.request(Method::PATCH, &child)),
    ];
    for (what, request) in cases {
        let name = format!("Child {what}");
        let saved = json(rename(request, &name).send().await.unwrap(), 200).await;
        assert_eq!(saved["name"], name, "{what}");
    }
    // A bearer token is unaffected by whatever Origin it comes with.
    let bearer = forged(admin.request(Method::PATCH, &child), 3);
    let saved = json(rename(bearer, "Child by token").send().await.unwrap(), 200).await;
    assert_eq!(saved["name"], "Child by token");
    // Each allowed change is audited, unlike the refused ones of the test above.
    let log = json(admin.get("/api/v1/audit?limit=500").await, 200).await;
    let updates = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "org.update" && e["outcome"] == "allowed")
        .count();
    assert_eq!(updates, 6, "{log}");
    // A same-origin logout ends the session.
    let logout = browser
        .request(Method::POST, "/api/v1/auth/logout")
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    json(logout, 204).await;
    let me = browser
        .request(Method::GET, "/api/v1/me")
        .send()
        .await
        .unwrap();
    problem(me, 401).await;
}

both_engines!(
    cross_site_writes_with_the_cookie_are_refused_and_change_nothing,
    own_pages_bearer_tokens_safe_methods_and_plain_clients_pass,
);
