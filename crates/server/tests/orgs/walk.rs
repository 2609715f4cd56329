//! The route walk: every operation of the served OpenAPI document under
//! `/api/v1`, called by the Admin of Sibling with the ids of objects of its
//! neighbour Child, answers 404 problem details and writes exactly one audit
//! row — with Sibling as the target org and the actor's home, never in
//! Child's log — and changes nothing of Child's.
//!
//! An operation that names no foreign object (setup, login, the caller's own
//! account, lists over the caller's own scope) is listed with the reason it
//! is exempt; where it answers with data, that data is shown to hold nothing
//! of Child's and, as an allowed read, to write no audit row. An operation of
//! the document in neither table fails the walk, so a new route is covered
//! the day it is added.

use crate::support::*;
use arbor_core::BuiltinRole;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

both_engines!(every_route_hides_a_neighbours_objects_and_audits_in_the_callers_home);

enum Body {
    None,
    Json(Value),
    Csv(String),
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
    text: String,
}

/// What an exempt or per-item answer must show; `Err` says what is wrong.
type Check = Box<dyn Fn(&Answer) -> Result<(), String>>;

enum Expect {
    /// 404 problem details and one audit row in the caller's home org.
    Hidden,
    /// A batch that answers per item: 200, each item answered as if its
    /// target did not exist (the check), one audit row in the home org.
    HiddenItems(Check),
    /// Exempt, called: a 2xx answer holding nothing of Child's (the check);
    /// an allowed read writes no audit row.
    Own(&'static str, Check),
    /// Exempt, not called.
    Exempt(&'static str),
}

struct Probe {
    method: Method,
    /// The operation's path as the document names it.
    route: &'static str,
    url: String,
    body: Body,
    expect: Expect,
}

fn hidden(method: Method, route: &'static str, url: String, body: Body) -> Probe {
    Probe {
        method,
        route,
        url,
        body,
        expect: Expect::Hidden,
    }
}

fn own(route: &'static str, url: String, reason: &'static str, check: Check) -> Probe {
    Probe {
        method: Method::GET,
        route,
        url,
        body: Body::None,
        expect: Expect::Own(reason, check),
    }
}

fn exempt(method: Method, route: &'static str, reason: &'static str) -> Probe {
    Probe {
        method,
        route,
        url: String::new(),
        body: Body::None,
        expect: Expect::Exempt(reason),
    }
}

async fn send(app: &TestApp, token: &str, method: Method, url: &str, body: &Body) -> Answer {
    let request = app.http.request(method, app.url(url)).bearer_auth(token);
    let request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Csv(text) => request
            .header("content-type", "text/csv")
            .body(text.clone()),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
        text,
    }
}

/// Whether `url` (its path) is an instance of the document's `route`.
fn matches_route(route: &str, url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    let (route, path): (Vec<&str>, Vec<&str>) =
        (route.split('/').collect(), path.split('/').collect());
    route.len() == path.len()
        && route
            .iter()
            .zip(&path)
            .all(|(r, p)| r == p || (r.starts_with('{') && !p.is_empty()))
}

fn ids(items: &Value) -> Vec<i64> {
    items
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect())
        .unwrap_or_default()
}

/// The bulk invitation of one row into `org`.
fn one_row_csv(email: &str, org: i64) -> Body {
    Body::Csv(format!("email,name,role,org\n{email},New,User,{org}\n"))
}

/// Everything of Child's a refused request could have changed, as the root
/// Admin reads it.
async fn child_snapshot(app: &TestApp, root: &str, w: &World, pending: i64) -> Vec<Value> {
    let (c, gc) = (w.child.0, w.grandchild.0);
    let mut seen = Vec::new();
    for path in [
        format!("/api/v1/orgs/{c}"),
        format!("/api/v1/orgs/{gc}"),
        format!("/api/v1/orgs/tree?root={c}"),
        format!("/api/v1/orgs/{c}/permissions"),
        format!("/api/v1/users?org_id={c}&limit=500"),
        format!("/api/v1/users?org_id={gc}&limit=500"),
        format!("/api/v1/users/{pending}"),
        "/api/v1/roles".into(),
        "/api/v1/permission-templates".into(),
        "/api/v1/locations?limit=500".into(),
        format!("/api/v1/tags?org_id={c}"),
        format!("/api/v1/devices?org_id={c}&include_suborgs=true&limit=500"),
    ] {
        let reply = get(app, &path, root).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        seen.push(reply.body);
    }
    seen
}

async fn every_route_hides_a_neighbours_objects_and_audits_in_the_callers_home(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let (c, gc, s) = (w.child.0, w.grandchild.0, w.sibling.0);
    let user_role = w.role(BuiltinRole::User).0;
    let staff_role = w.role(BuiltinRole::Staff).0;
    let actor = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await.0;
    let sibling_user = user_id(&app, &email(BuiltinRole::User, "sibling")).await.0;
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let child_admin = user_id(&app, &email(BuiltinRole::Admin, "child")).await.0;
    let suspended = user_id(&app, &email(BuiltinRole::Staff, "child")).await;
    app.app()
        .set_suspended(&cli(w.root_admin), suspended, true)
        .await
        .unwrap();
    let (suspended, cu) = (suspended.0, child_user.0);
    let device = w
        .device(&app, w.child, Some(child_user), "Child's meter")
        .await
        .0;
    let pending = post(
        &app,
        "/api/v1/users/invitations",
        &root,
        json!({ "email": "pending@child.test", "name": "Pending", "org_id": c, "role_id": user_role }),
    )
    .await;
    assert_eq!(pending.status, 201, "{pending:?}");
    let pending = pending.body["user_id"].as_i64().unwrap();
    // A permission template made by the root Admin and applied to Child.
    let template = post(
        &app,
        "/api/v1/permission-templates",
        &root,
        json!({ "name": "the root's", "from_org_id": w.root.0 }),
    )
    .await;
    assert_eq!(template.status, 201, "{template:?}");
    let template = template.body["id"].as_i64().unwrap();
    let applied = post(
        &app,
        &format!("/api/v1/permission-templates/{template}/apply"),
        &root,
        json!({ "org_id": c }),
    )
    .await;
    assert_eq!(applied.status, 200, "{applied:?}");
    let doomed = post(&app, "/api/v1/roles", &root, json!({ "name": "Doomed" })).await;
    assert_eq!(doomed.status, 201, "{doomed:?}");
    let doomed = doomed.body["id"].as_i64().unwrap();
    let shop = post(
        &app,
        "/api/v1/orgs",
        &root,
        json!({ "parent_id": s, "name": "Sibling's shop" }),
    )
    .await;
    assert_eq!(shop.status, 201, "{shop:?}");
    let shop = shop.body["id"].as_i64().unwrap();
    // A device template enabled for Child only.
    let meter = post(
        &app,
        "/api/v1/device-templates",
        &root,
        json!({ "name": "Child's meter" }),
    )
    .await;
    assert_eq!(meter.status, 201, "{meter:?}");
    let meter = meter.body["id"].as_i64().unwrap();
    let enabled = call(
        &app,
        Method::PUT,
        &format!("/api/v1/device-templates/{meter}/orgs/{c}"),
        &root,
        None,
        None,
    )
    .await;
    assert_eq!(enabled.status, 204, "{enabled:?}");
    let token = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;
    // What a bulk row about an org that does not exist answers.
    let absent_row = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/users/invitations/bulk",
        &one_row_csv("nobody@sibling.test", 999_999),
    )
    .await;
    assert_eq!(absent_row.status, 200, "{}", absent_row.text);
    let absent_row = absent_row.body["rows"][0].clone();
    assert!(absent_row["error"].is_string(), "{absent_row}");
    // Child's location (with the device there) and tag (on the device).
    let location = post(
        &app,
        "/api/v1/locations",
        &root,
        json!({ "org_id": c, "name": "Child's plant" }),
    )
    .await;
    assert_eq!(location.status, 201, "{location:?}");
    let location = location.body["id"].as_i64().unwrap();
    let tag = post(
        &app,
        "/api/v1/tags",
        &root,
        json!({ "org_id": c, "name": "Child's" }),
    )
    .await;
    assert_eq!(tag.status, 201, "{tag:?}");
    let tag = tag.body["id"].as_i64().unwrap();
    for (path, body) in [
        (
            format!("/api/v1/devices/{device}/location"),
            json!({ "location_id": location }),
        ),
        (
            format!("/api/v1/devices/{device}/tags"),
            json!({ "tags": ["Child's"] }),
        ),
    ] {
        let reply = put(&app, &path, &root, body).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    let before = child_snapshot(&app, &root, &w, pending).await;

    let child_ids: BTreeSet<i64> = [c, gc].into();
    let theirs = |emails: &str| emails.contains("child.test");
    let probes = vec![
        // Access insight.
        Probe {
            method: Method::POST,
            route: "/api/v1/access/check",
            url: "/api/v1/access/check".into(),
            body: Body::Json(json!({ "questions": [
                { "user_id": cu, "permission": "organizations.settings", "org_id": c },
                { "user_id": cu, "action": "view", "device_id": device },
                { "user_id": sibling_user, "permission": "users.edit", "target_user_id": cu },
                { "user_id": sibling_user, "context_org_id": c, "permission": "roles.view", "org_id": s },
            ] })),
            expect: Expect::HiddenItems(Box::new(|a| {
                let answers = a.body["answers"].as_array().ok_or("no answers")?;
                let all = answers
                    .iter()
                    .all(|q| q["error"] == "not_found" && q["allowed"] == false);
                (answers.len() == 4 && all)
                    .then_some(())
                    .ok_or_else(|| format!("each question answers not_found: {}", a.body))
            })),
        },
        hidden(
            Method::POST,
            "/api/v1/access/explain",
            "/api/v1/access/explain".into(),
            Body::Json(
                json!({ "user_id": cu, "permission": "organizations.settings", "org_id": c }),
            ),
        ),
        hidden(
            Method::POST,
            "/api/v1/access/explain",
            "/api/v1/access/explain".into(),
            Body::Json(json!({ "user_id": cu, "action": "view", "device_id": device })),
        ),
        hidden(
            Method::POST,
            "/api/v1/access/explain",
            "/api/v1/access/explain".into(),
            Body::Json(
                json!({ "user_id": sibling_user, "permission": "users.edit", "target_user_id": cu }),
            ),
        ),
        hidden(
            Method::POST,
            "/api/v1/access/explain",
            "/api/v1/access/explain".into(),
            Body::Json(
                json!({ "user_id": sibling_user, "context_org_id": c, "permission": "roles.view", "org_id": s }),
            ),
        ),
        hidden(
            Method::GET,
            "/api/v1/access/who-can",
            format!("/api/v1/access/who-can?permission=organizations.settings&org_id={c}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/access/who-can",
            format!("/api/v1/access/who-can?action=view&device_id={device}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/access/who-can",
            format!("/api/v1/access/who-can?permission=users.edit&target_user_id={cu}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/access/effective-permissions",
            format!("/api/v1/access/effective-permissions?user_id={cu}&org_id={c}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/access/effective-permissions",
            format!("/api/v1/access/effective-permissions?user_id={cu}&org_id={s}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/access/effective-permissions",
            format!("/api/v1/access/effective-permissions?user_id={sibling_user}&org_id={c}"),
            Body::None,
        ),
        // The actions log.
        hidden(
            Method::GET,
            "/api/v1/audit",
            format!("/api/v1/audit?user_id={cu}"),
            Body::None,
        ),
        own(
            "/api/v1/audit",
            "/api/v1/audit?limit=500".into(),
            "the caller's own scope's log; takes no foreign id",
            Box::new({
                let child_ids = child_ids.clone();
                move |a| {
                    let rows = a.body.as_array().ok_or("not a list")?;
                    match rows.iter().find(|r| {
                        r["target_org_id"]
                            .as_i64()
                            .is_some_and(|o| child_ids.contains(&o))
                    }) {
                        Some(row) => Err(format!("a row of Child's: {row}")),
                        None => Ok(()),
                    }
                }
            }),
        ),
        // Accounts.
        exempt(
            Method::POST,
            "/api/v1/setup",
            "first-run setup: no session and no scope (closed once a hierarchy exists)",
        ),
        exempt(
            Method::POST,
            "/api/v1/auth/login",
            "no session yet: takes credentials, names no object",
        ),
        exempt(
            Method::POST,
            "/api/v1/auth/logout",
            "ends the caller's own session",
        ),
        exempt(
            Method::POST,
            "/api/v1/invitations/accept",
            "no session: the link's token is the only key",
        ),
        exempt(
            Method::POST,
            "/api/v1/password-reset/complete",
            "no session: the link's token is the only key",
        ),
        own(
            "/api/v1/me",
            "/api/v1/me".into(),
            "the caller's own account",
            Box::new(move |a| {
                let orgs: Vec<i64> = a.body["memberships"]
                    .as_array()
                    .ok_or("no memberships")?
                    .iter()
                    .filter_map(|m| m["org_id"].as_i64())
                    .collect();
                (orgs == [s])
                    .then_some(())
                    .ok_or_else(|| format!("memberships: {}", a.body))
            }),
        ),
        exempt(
            Method::PATCH,
            "/api/v1/me",
            "edits the caller's own profile; takes no id",
        ),
        exempt(
            Method::POST,
            "/api/v1/me/password",
            "changes the caller's own password; takes no id",
        ),
        // Organizations.
        own(
            "/api/v1/orgs",
            "/api/v1/orgs?limit=500".into(),
            "the orgs of the caller's own scope; takes no id",
            Box::new(move |a| {
                let got = ids(&a.body["items"]);
                (got == [s, shop])
                    .then_some(())
                    .ok_or_else(|| format!("listed {got:?}"))
            }),
        ),
        own(
            "/api/v1/orgs",
            "/api/v1/orgs?q=child".into(),
            "a search over the caller's own scope",
            Box::new(|a| {
                let got = ids(&a.body["items"]);
                got.is_empty()
                    .then_some(())
                    .ok_or_else(|| format!("found {got:?}"))
            }),
        ),
        hidden(
            Method::POST,
            "/api/v1/orgs",
            "/api/v1/orgs".into(),
            Body::Json(json!({ "parent_id": c, "name": "Mine now" })),
        ),
        hidden(
            Method::POST,
            "/api/v1/orgs",
            "/api/v1/orgs".into(),
            Body::Json(json!({ "parent_id": gc, "name": "Mine now",
                               "admin": { "email": "spy@sibling.test", "name": "Spy" } })),
        ),
        hidden(
            Method::GET,
            "/api/v1/orgs/tree",
            format!("/api/v1/orgs/tree?root={c}"),
            Body::None,
        ),
        own(
            "/api/v1/orgs/tree",
            "/api/v1/orgs/tree".into(),
            "the tree from the caller's own org",
            Box::new(move |a| {
                let root = a.body["root"]["id"].as_i64();
                let children = ids(&a.body["root"]["children"]);
                (root == Some(s) && children == [shop])
                    .then_some(())
                    .ok_or_else(|| format!("tree {}", a.body))
            }),
        ),
        // Devices.
        hidden(
            Method::GET,
            "/api/v1/devices/{id}",
            format!("/api/v1/devices/{device}"),
            Body::None,
        ),
        hidden(
            Method::PATCH,
            "/api/v1/devices/{id}",
            format!("/api/v1/devices/{device}"),
            Body::Json(json!({ "name": "Mine now" })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/devices/{id}",
            format!("/api/v1/devices/{device}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/auth-token",
            format!("/api/v1/devices/{device}/auth-token"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/devices/{id}/auth-token",
            format!("/api/v1/devices/{device}/auth-token"),
            Body::None,
        ),
        // A device's data (issue 12).
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/datastreams",
            format!("/api/v1/devices/{device}/datastreams"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/datastreams/{pin}/history",
            format!("/api/v1/devices/{device}/datastreams/V1/history?granularity=hour"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/devices/{id}/datastreams/{pin}",
            format!("/api/v1/devices/{device}/datastreams/V1"),
            Body::Json(json!({ "value": 1 })),
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/timeline",
            format!("/api/v1/devices/{device}/timeline"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/report.csv",
            format!("/api/v1/devices/{device}/report.csv"),
            Body::None,
        ),
        hidden(
            Method::DELETE,
            "/api/v1/devices/{id}/data",
            format!("/api/v1/devices/{device}/data"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/service",
            format!("/api/v1/devices/{device}/service"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/devices/{id}/stream",
            format!("/api/v1/devices/{device}/stream"),
            Body::None,
        ),
        exempt(
            Method::GET,
            "/api/v1/devices/stream",
            "an endless event stream of the devices the caller may view, each \
             change decided when it happens (tests/orgs/device_data.rs, live updates)",
        ),
        hidden(
            Method::POST,
            "/api/v1/devices",
            "/api/v1/devices".into(),
            Body::Json(json!({ "name": "Planted", "template_id": w.template.0, "org_id": c })),
        ),
        hidden(
            Method::GET,
            "/api/v1/devices",
            format!("/api/v1/devices?org_id={c}&include_suborgs=true"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/devices/{id}/transfer",
            format!("/api/v1/devices/{device}/transfer"),
            Body::Json(json!({ "org_id": s })),
        ),
        hidden(
            Method::POST,
            "/api/v1/devices/{id}/transfer",
            format!("/api/v1/devices/{device}/transfer?dry_run=true"),
            Body::Json(json!({ "org_id": s })),
        ),
        own(
            "/api/v1/devices",
            "/api/v1/devices".into(),
            "the devices of the caller's own scope",
            Box::new(move |a| {
                let items = a.body["items"].as_array().ok_or("no items")?;
                items
                    .iter()
                    .all(|d| {
                        d["id"] != device && !d["org_path"].to_string().contains(&c.to_string())
                    })
                    .then_some(())
                    .ok_or_else(|| format!("devices {}", a.body))
            }),
        ),
        // Device templates.
        hidden(
            Method::GET,
            "/api/v1/device-templates/{id}",
            format!("/api/v1/device-templates/{meter}"),
            Body::None,
        ),
        hidden(
            Method::PATCH,
            "/api/v1/device-templates/{id}",
            format!("/api/v1/device-templates/{meter}"),
            Body::Json(json!({ "name": "Mine now" })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/device-templates/{id}",
            format!("/api/v1/device-templates/{meter}"),
            Body::None,
        ),
        hidden(
            Method::PUT,
            "/api/v1/device-templates/{id}/orgs/{org_id}",
            format!("/api/v1/device-templates/{meter}/orgs/{s}"),
            Body::None,
        ),
        hidden(
            Method::DELETE,
            "/api/v1/device-templates/{id}/orgs/{org_id}",
            format!("/api/v1/device-templates/{meter}/orgs/{c}"),
            Body::None,
        ),
        own(
            "/api/v1/device-templates",
            "/api/v1/device-templates".into(),
            "the templates enabled for the caller's own org",
            Box::new(move |a| {
                let items = a.body["items"].as_array().ok_or("no items")?;
                items
                    .iter()
                    .all(|t| t["id"] != meter)
                    .then_some(())
                    .ok_or_else(|| format!("templates {}", a.body))
            }),
        ),
        exempt(
            Method::POST,
            "/api/v1/device-templates",
            "creates in the caller's own hierarchy, naming no object (below the root org: 403)",
        ),
        hidden(
            Method::GET,
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{c}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{gc}"),
            Body::None,
        ),
        hidden(
            Method::PATCH,
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{c}"),
            Body::Json(json!({ "contact": "spy@sibling.test" })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/orgs/{id}",
            format!("/api/v1/orgs/{gc}?move_contents_to_parent=true"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/orgs/{id}/permissions",
            format!("/api/v1/orgs/{c}/permissions"),
            Body::None,
        ),
        hidden(
            Method::PUT,
            "/api/v1/orgs/{id}/roles/{role_id}/permissions",
            format!("/api/v1/orgs/{c}/roles/{user_role}/permissions"),
            Body::Json(json!({ "permissions": ["own_devices.view"] })),
        ),
        hidden(
            Method::POST,
            "/api/v1/orgs/{id}/transfer",
            format!("/api/v1/orgs/{c}/transfer"),
            Body::Json(json!({ "new_parent_id": s, "confirm": true })),
        ),
        hidden(
            Method::POST,
            "/api/v1/orgs/{id}/transfer",
            format!("/api/v1/orgs/{shop}/transfer"),
            Body::Json(json!({ "new_parent_id": c, "confirm": true })),
        ),
        // Roles, permission sets and templates. The role list and the
        // templates are the hierarchy's; changing the role list is decided
        // on the root, outside the sibling's scope.
        own(
            "/api/v1/roles",
            "/api/v1/roles".into(),
            "the hierarchy's role names, on roles.view in the caller's own org",
            Box::new(|a| {
                let n = a.body.as_array().map_or(0, Vec::len);
                (n == 4).then_some(()).ok_or_else(|| format!("{}", a.body))
            }),
        ),
        hidden(
            Method::POST,
            "/api/v1/roles",
            "/api/v1/roles".into(),
            Body::Json(json!({ "name": "Sibling's" })),
        ),
        hidden(
            Method::PATCH,
            "/api/v1/roles/{id}",
            format!("/api/v1/roles/{staff_role}"),
            Body::Json(json!({ "name": "Sibling's staff" })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/roles/{id}",
            format!("/api/v1/roles/{doomed}?replacement={user_role}"),
            Body::None,
        ),
        own(
            "/api/v1/permission-templates",
            "/api/v1/permission-templates".into(),
            "the hierarchy's templates, on roles.view in the caller's own org",
            Box::new(move |a| {
                let got = ids(&a.body);
                (got == [template])
                    .then_some(())
                    .ok_or_else(|| format!("{}", a.body))
            }),
        ),
        hidden(
            Method::POST,
            "/api/v1/permission-templates",
            "/api/v1/permission-templates".into(),
            Body::Json(json!({ "name": "Child's table", "from_org_id": c })),
        ),
        hidden(
            Method::POST,
            "/api/v1/permission-templates/{id}/apply",
            format!("/api/v1/permission-templates/{template}/apply"),
            Body::Json(json!({ "org_id": c })),
        ),
        hidden(
            Method::POST,
            "/api/v1/permission-templates/{id}/push",
            format!("/api/v1/permission-templates/{template}/push"),
            Body::Json(json!({ "org_id": c })),
        ),
        // Users.
        hidden(
            Method::GET,
            "/api/v1/users",
            format!("/api/v1/users?org_id={c}"),
            Body::None,
        ),
        own(
            "/api/v1/users",
            "/api/v1/users?limit=500".into(),
            "the members of the caller's own scope; takes no id",
            Box::new(move |a| {
                let items = a.body["items"].as_array().ok_or("no items")?;
                let emails: Vec<&str> = items.iter().filter_map(|u| u["email"].as_str()).collect();
                (emails.len() == 3 && !emails.iter().any(|e| theirs(e)))
                    .then_some(())
                    .ok_or_else(|| format!("listed {emails:?}"))
            }),
        ),
        own(
            "/api/v1/users",
            "/api/v1/users?q=child".into(),
            "a search over the caller's own scope",
            Box::new(|a| {
                let got = ids(&a.body["items"]);
                got.is_empty()
                    .then_some(())
                    .ok_or_else(|| format!("found {got:?}"))
            }),
        ),
        own(
            "/api/v1/users.csv",
            "/api/v1/users.csv".into(),
            "the members of the caller's own scope, as CSV",
            Box::new(move |a| {
                (a.text.lines().count() == 4 && !theirs(&a.text))
                    .then_some(())
                    .ok_or_else(|| a.text.clone())
            }),
        ),
        hidden(
            Method::POST,
            "/api/v1/users/invitations",
            "/api/v1/users/invitations".into(),
            Body::Json(
                json!({ "email": "spy@sibling.test", "name": "Spy", "org_id": c, "role_id": user_role }),
            ),
        ),
        Probe {
            method: Method::POST,
            route: "/api/v1/users/invitations/bulk",
            url: "/api/v1/users/invitations/bulk".into(),
            body: one_row_csv("spy@sibling.test", c),
            expect: Expect::HiddenItems(Box::new(move |a| {
                let row = &a.body["rows"][0];
                let alike = row["error"] == absent_row["error"]
                    && row["user_id"].is_null()
                    && a.body["invited"] == 0;
                alike.then_some(()).ok_or_else(|| {
                    format!(
                        "the row answers like an absent org's ({absent_row}): {}",
                        a.body
                    )
                })
            })),
        },
        hidden(
            Method::GET,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{cu}"),
            Body::None,
        ),
        hidden(
            Method::GET,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{child_admin}"),
            Body::None,
        ),
        hidden(
            Method::PATCH,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{cu}"),
            Body::Json(json!({ "name": "Renamed by a neighbour" })),
        ),
        hidden(
            Method::PATCH,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{cu}"),
            Body::Json(json!({ "role_id": staff_role })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{cu}"),
            Body::None,
        ),
        hidden(
            Method::DELETE,
            "/api/v1/users/{id}/invitation",
            format!("/api/v1/users/{pending}/invitation"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/invitation/resend",
            format!("/api/v1/users/{pending}/invitation/resend"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/logout",
            format!("/api/v1/users/{cu}/logout"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/password-reset",
            format!("/api/v1/users/{cu}/password-reset"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/suspend",
            format!("/api/v1/users/{cu}/suspend"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/unsuspend",
            format!("/api/v1/users/{suspended}/unsuspend"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/transfer",
            format!("/api/v1/users/{cu}/transfer"),
            Body::Json(json!({ "org_id": s, "role_id": user_role })),
        ),
        hidden(
            Method::POST,
            "/api/v1/users/{id}/transfer",
            format!("/api/v1/users/{sibling_user}/transfer"),
            Body::Json(json!({ "org_id": c, "role_id": user_role })),
        ),
        // Locations and tags.
        hidden(
            Method::GET,
            "/api/v1/locations/{id}",
            format!("/api/v1/locations/{location}"),
            Body::None,
        ),
        hidden(
            Method::PATCH,
            "/api/v1/locations/{id}",
            format!("/api/v1/locations/{location}"),
            Body::Json(json!({ "name": "Mine now", "user_ids": [actor] })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/locations/{id}",
            format!("/api/v1/locations/{location}"),
            Body::None,
        ),
        hidden(
            Method::POST,
            "/api/v1/locations",
            "/api/v1/locations".into(),
            Body::Json(json!({ "org_id": c, "name": "Mine now" })),
        ),
        own(
            "/api/v1/locations",
            "/api/v1/locations".into(),
            "the locations of the caller's own scope",
            Box::new(move |a| {
                let got = ids(&a.body["items"]);
                (!got.contains(&location))
                    .then_some(())
                    .ok_or_else(|| format!("locations {got:?}"))
            }),
        ),
        hidden(
            Method::PUT,
            "/api/v1/devices/{id}/location",
            format!("/api/v1/devices/{device}/location"),
            Body::Json(json!({ "location_id": null })),
        ),
        hidden(
            Method::PUT,
            "/api/v1/devices/{id}/tags",
            format!("/api/v1/devices/{device}/tags"),
            Body::Json(json!({ "tags": [] })),
        ),
        hidden(
            Method::GET,
            "/api/v1/tags",
            format!("/api/v1/tags?org_id={c}"),
            Body::None,
        ),
        own(
            "/api/v1/tags",
            "/api/v1/tags".into(),
            "the catalog of the caller's own org",
            Box::new(move |a| {
                let got = ids(&a.body);
                (!got.contains(&tag))
                    .then_some(())
                    .ok_or_else(|| format!("tags {got:?}"))
            }),
        ),
        hidden(
            Method::POST,
            "/api/v1/tags",
            "/api/v1/tags".into(),
            Body::Json(json!({ "org_id": c, "name": "Mine now" })),
        ),
        hidden(
            Method::DELETE,
            "/api/v1/tags/{id}",
            format!("/api/v1/tags/{tag}"),
            Body::None,
        ),
        hidden(
            Method::PUT,
            "/api/v1/users/{id}/tags",
            format!("/api/v1/users/{cu}/tags"),
            Body::Json(json!({ "tags": [] })),
        ),
    ];

    // Every operation of the document is walked or exempted, and the tables
    // name only operations the document has.
    let doc: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(operations.len() > 40, "{} operations", operations.len());
    let tabled: BTreeSet<(String, String)> = probes
        .iter()
        .map(|p| (p.method.to_string(), p.route.to_owned()))
        .collect();
    let mut failures = Vec::new();
    for (method, path) in operations.difference(&tabled) {
        failures.push(format!(
            "{method} {path}: neither walked nor exempted (add it to the walk)"
        ));
    }
    for (method, path) in tabled.difference(&operations) {
        failures.push(format!("{method} {path}: tabled, but not in the document"));
    }

    let mut walked = 0;
    let mut exempted = Vec::new();
    for probe in &probes {
        let at = format!("{} {}", probe.method, probe.url);
        if let Expect::Exempt(reason) | Expect::Own(reason, _) = &probe.expect {
            exempted.push(format!("{} {}: {reason}", probe.method, probe.route));
        }
        if matches!(probe.expect, Expect::Exempt(_)) {
            continue;
        }
        if !matches_route(probe.route, &probe.url) {
            failures.push(format!("{at}: not an instance of {}", probe.route));
            continue;
        }
        let mark = audit_mark(&app).await;
        let answer = send(&app, &token, probe.method.clone(), &probe.url, &probe.body).await;
        let rows = audit_since(&app, mark).await;
        let mut problems = Vec::new();
        match &probe.expect {
            Expect::Hidden | Expect::HiddenItems(_) => {
                walked += 1;
                if let Expect::HiddenItems(check) = &probe.expect {
                    if answer.status != 200 {
                        problems.push(format!("status {}", answer.status));
                    } else if let Err(e) = check(&answer) {
                        problems.push(e);
                    }
                } else if answer.status != 404
                    || answer.content_type != "application/problem+json"
                    || answer.body["type"] != "urn:arbor:problem:not-found"
                {
                    problems.push(format!(
                        "want 404 problem details, got {} {}",
                        answer.status, answer.content_type
                    ));
                }
                let at_home = |r: &AuditRow| {
                    r.actor == Some(actor)
                        && r.actor_home_org == Some(s)
                        && r.target_org == Some(s)
                        && r.outcome == "hidden"
                };
                if rows.len() != 1 || !at_home(&rows[0]) {
                    problems.push(format!(
                        "want one hidden audit row by {actor} in Sibling ({s}), got {rows:?}"
                    ));
                }
            }
            Expect::Own(_, check) => {
                if !(200..300).contains(&answer.status) {
                    problems.push(format!("status {}", answer.status));
                } else if let Err(e) = check(&answer) {
                    problems.push(e);
                }
                if !rows.is_empty() {
                    problems.push(format!("an allowed read wrote {rows:?}"));
                }
            }
            Expect::Exempt(_) => {}
        }
        if let Some(row) = rows
            .iter()
            .find(|r| r.target_org.is_some_and(|o| child_ids.contains(&o)))
        {
            problems.push(format!("wrote into Child's log: {row:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!("{at}: {} ({})", problems.join("; "), answer.text));
        }
    }
    assert_eq!(
        child_snapshot(&app, &root, &w, pending).await,
        before,
        "a refused request changed something of Child's"
    );
    assert!(
        failures.is_empty(),
        "{} of the walk's probes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(walked > 40, "{walked} operations walked");
    println!("walked {walked} requests; exempt:\n{}", exempted.join("\n"));
}
