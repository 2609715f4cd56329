//! Acting in a sub-org (`X-Arbor-Org`, rule 9) and asking about a context
//! org: switching narrows lists and never widens anything, and an org out of
//! sight answers like one that does not exist.

use crate::support::*;
use arbor_core::{BuiltinRole, OrgId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(
    switching_to_a_sub_org_narrows_lists_but_never_widens,
    check_and_explain_answer_a_context_out_of_sight_like_a_missing_one,
);

async fn in_org(app: &TestApp, token: &str, context: OrgId, path: &str) -> Reply {
    call(app, Method::GET, path, token, Some(context), None).await
}

fn ids(items: &Value) -> Vec<i64> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

/// Defect 10: lists ignored the org switched to (rule 9), and switching
/// must never widen what the home membership allows.
async fn switching_to_a_sub_org_narrows_lists_but_never_widens(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let (c, gc, s) = (w.child.0, w.grandchild.0, w.sibling.0);

    // The root Admin in Child: Child and below only.
    let orgs = in_org(&app, &root, w.child, "/api/v1/orgs").await;
    assert_eq!(orgs.status, 200, "{orgs:?}");
    assert_eq!(ids(&orgs.body["items"]), [c, gc]);
    let tree = in_org(&app, &root, w.child, "/api/v1/orgs/tree").await.body;
    assert_eq!(tree["root"]["id"], c, "{tree}");
    assert_eq!(ids(&tree["root"]["children"]), [gc]);
    let users = in_org(&app, &root, w.child, "/api/v1/users?limit=500").await;
    let mut listed = emails(&users.body);
    listed.sort();
    let mut want: Vec<String> = ["child", "grandchild"]
        .iter()
        .flat_map(|place| KINDS.map(|kind| email(kind, place)))
        .collect();
    want.sort();
    assert_eq!(listed, want);
    let found = in_org(&app, &root, w.child, "/api/v1/orgs?q=sibling").await;
    assert_eq!(found.body["items"], json!([]), "{found:?}");
    // Without the header, the whole scope.
    let orgs = get(&app, "/api/v1/orgs", &root).await;
    assert_eq!(ids(&orgs.body["items"]), [w.root.0, c, gc, s]);
    // Single reads are not narrowed: they decide on the scope.
    let sibling_user = user_id(&app, &email(BuiltinRole::User, "sibling")).await.0;
    for path in [
        format!("/api/v1/orgs/{s}"),
        format!("/api/v1/users/{sibling_user}"),
        format!("/api/v1/orgs/{s}/permissions"),
    ] {
        let reply = in_org(&app, &root, w.child, &path).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }

    // Never wider. Child's Admin cannot switch upwards or sideways.
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    for context in [w.root, w.sibling, w.other] {
        let reply = in_org(&app, &child_admin, context, "/api/v1/orgs").await;
        assert_eq!(reply.status, 404, "Child's Admin in {context}: {reply:?}");
    }
    // Child's User (no organizations.switch_to_suborgs) cannot switch down.
    let child_user = app
        .login(&email(BuiltinRole::User, "child"), PASSWORD)
        .await;
    let reply = in_org(&app, &child_user, w.grandchild, "/api/v1/orgs").await;
    assert_eq!(reply.status, 404, "Child's User in Grandchild: {reply:?}");
    // Decisions use the home org's set: Grandchild's Staff may change its
    // settings, Child's Staff switched to Grandchild still may not.
    let staff = w.role(BuiltinRole::Staff).0;
    let mut set: Vec<&str> = BuiltinRole::Staff.default_permissions().ids();
    set.push("organizations.settings");
    let saved = put(
        &app,
        &format!("/api/v1/orgs/{gc}/roles/{staff}/permissions"),
        &root,
        json!({ "permissions": set }),
    )
    .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let settings = Some(json!({ "contact": "ops@grandchild.test" }));
    let gc_path = format!("/api/v1/orgs/{gc}");
    let gc_staff = app
        .login(&email(BuiltinRole::Staff, "grandchild"), PASSWORD)
        .await;
    let reply = call(
        &app,
        Method::PATCH,
        &gc_path,
        &gc_staff,
        None,
        settings.clone(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let child_staff = app
        .login(&email(BuiltinRole::Staff, "child"), PASSWORD)
        .await;
    for context in [None, Some(w.grandchild)] {
        let reply = call(
            &app,
            Method::PATCH,
            &gc_path,
            &child_staff,
            context,
            settings.clone(),
        )
        .await;
        assert_eq!(reply.status, 403, "Child's Staff in {context:?}: {reply:?}");
    }
    // And the staff member's list in Grandchild holds Grandchild's members only.
    let users = in_org(&app, &child_staff, w.grandchild, "/api/v1/users?limit=500").await;
    let mut listed = emails(&users.body);
    listed.sort();
    let mut want: Vec<String> = KINDS.map(|kind| email(kind, "grandchild")).to_vec();
    want.sort();
    assert_eq!(listed, want);
}

/// The answer without its request id.
fn strip(mut reply: Reply) -> (u16, Value) {
    if let Some(body) = reply.body.as_object_mut() {
        body.remove("request_id");
    }
    (reply.status, reply.body)
}

/// Defect 12: check and explain told an org outside the caller's scope
/// (named as `context_org_id`) from one that does not exist.
async fn check_and_explain_answer_a_context_out_of_sight_like_a_missing_one(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let subject = user_id(&app, &email(BuiltinRole::User, "child")).await.0;
    let question = |context: i64| {
        json!({ "user_id": subject, "context_org_id": context,
                "permission": "roles.view", "org_id": w.child.0 })
    };
    let absent = 999_999;
    let explain_absent = strip(
        post(
            &app,
            "/api/v1/access/explain",
            &child_admin,
            question(absent),
        )
        .await,
    );
    let check_absent = strip(
        post(
            &app,
            "/api/v1/access/check",
            &child_admin,
            json!({ "questions": [question(absent)] }),
        )
        .await,
    );
    assert_eq!(explain_absent.0, 404, "{explain_absent:?}");
    assert_eq!(check_absent.0, 200, "{check_absent:?}");
    for hidden in [w.root, w.sibling, w.other] {
        let explained = strip(
            post(
                &app,
                "/api/v1/access/explain",
                &child_admin,
                question(hidden.0),
            )
            .await,
        );
        assert_eq!(explained, explain_absent, "explain in {hidden}");
        let checked = strip(
            post(
                &app,
                "/api/v1/access/check",
                &child_admin,
                json!({ "questions": [question(hidden.0)] }),
            )
            .await,
        );
        assert_eq!(checked, check_absent, "check in {hidden}");
    }
    // A context in sight is answered.
    let seen = post(
        &app,
        "/api/v1/access/explain",
        &child_admin,
        question(w.grandchild.0),
    )
    .await;
    assert_eq!(seen.status, 200, "{seen:?}");
}
