//! The authorization matrix: every endpoint of issue 5 × actor kind (Admin,
//! Staff, User with the default sets) × where the actor lives relative to the
//! target org Child (own org, parent, sibling, child, other hierarchy), each
//! cell asserted on its own. Objects outside the actor's scope answer 404,
//! visible ones without the permission 403.

use crate::support::*;
use arbor_core::BuiltinRole;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::{Value, json};

both_engines!(every_endpoint_answers_every_actor_as_the_matrix_says);

/// Expected statuses per actor kind (Admin, Staff, User), each over the
/// places own, parent, sibling, child, other.
type Row = [[u16; 5]; 3];

const SCOPED_READ: Row = [
    [200, 200, 404, 404, 404],
    [200, 200, 404, 404, 404],
    [200, 404, 404, 404, 404],
];
/// A permission only Admin holds, on Child.
const ADMIN_ONLY: Row = [
    [200, 200, 404, 404, 404],
    [403, 403, 404, 404, 404],
    [403, 404, 404, 404, 404],
];
const ADMIN_ONLY_CREATED: Row = [
    [201, 201, 404, 404, 404],
    [403, 403, 404, 404, 404],
    [403, 404, 404, 404, 404],
];

/// Builds a request body from a suffix unique to the cell.
type BodyFn = Box<dyn Fn(&str) -> Option<Value>>;

struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    /// Called with a unique suffix per cell.
    body: BodyFn,
    expected: Row,
    /// For `check`: map the per-question answer to a status.
    check_answer: bool,
}

async fn every_endpoint_answers_every_actor_as_the_matrix_says(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root_token = app.login("admin@root.test", PASSWORD).await;
    let template = post(
        &app,
        "/api/v1/permission-templates",
        &root_token,
        json!({ "name": "defaults", "from_org_id": w.root.0 }),
    )
    .await;
    assert_eq!(template.status, 201, "{template:?}");
    let template = template.body["id"].as_i64().unwrap();
    // A role to delete (only the root org's Admin may; later cells are
    // decided before the role is looked up, so its absence changes nothing).
    let doomed = post(
        &app,
        "/api/v1/roles",
        &root_token,
        json!({ "name": "Doomed" }),
    )
    .await;
    assert_eq!(doomed.status, 201, "{doomed:?}");
    let doomed = doomed.body["id"].as_i64().unwrap();
    let child_user = user_id(&app, &email(BuiltinRole::User, "child")).await;
    let (c, user_role, staff_role) = (
        w.child.0,
        w.role(BuiltinRole::User).0,
        w.role(BuiltinRole::Staff).0,
    );
    let sibling = w.sibling.0;
    let cu = child_user.0;

    let endpoints = vec![
        Endpoint {
            name: "GET org",
            method: Method::GET,
            path: format!("/api/v1/orgs/{c}"),
            body: Box::new(|_| None),
            expected: SCOPED_READ,
            check_answer: false,
        },
        Endpoint {
            name: "PATCH org",
            method: Method::PATCH,
            path: format!("/api/v1/orgs/{c}"),
            body: Box::new(|_| Some(json!({ "contact": "ops@child.test" }))),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "POST org under Child",
            method: Method::POST,
            path: "/api/v1/orgs".into(),
            body: Box::new(move |s| Some(json!({ "parent_id": c, "name": format!("New {s}") }))),
            expected: ADMIN_ONLY_CREATED,
            check_answer: false,
        },
        Endpoint {
            name: "GET matrix",
            method: Method::GET,
            path: format!("/api/v1/orgs/{c}/permissions"),
            body: Box::new(|_| None),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "PUT role set",
            method: Method::PUT,
            path: format!("/api/v1/orgs/{c}/roles/{user_role}/permissions"),
            body: Box::new(|_| Some(json!({ "permissions": ["own_devices.view"] }))),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "transfer Child to Sibling (unconfirmed)",
            method: Method::POST,
            path: format!("/api/v1/orgs/{c}/transfer"),
            body: Box::new(move |_| Some(json!({ "new_parent_id": sibling, "confirm": false }))),
            expected: [
                [404, 400, 404, 404, 404],
                [403, 403, 404, 404, 404],
                [403, 404, 404, 404, 404],
            ],
            check_answer: false,
        },
        Endpoint {
            name: "DELETE Child (not empty)",
            method: Method::DELETE,
            path: format!("/api/v1/orgs/{c}"),
            body: Box::new(|_| None),
            expected: [
                [404, 409, 404, 404, 404],
                [403, 403, 404, 404, 404],
                [403, 404, 404, 404, 404],
            ],
            check_answer: false,
        },
        Endpoint {
            name: "who-can on Child",
            method: Method::GET,
            path: format!("/api/v1/access/who-can?permission=organizations.settings&org_id={c}"),
            body: Box::new(|_| None),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "explain on Child",
            method: Method::POST,
            path: "/api/v1/access/explain".into(),
            body: Box::new(move |_| {
                Some(json!({ "user_id": cu, "permission": "organizations.settings", "org_id": c }))
            }),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "effective permissions in Child",
            method: Method::GET,
            path: format!("/api/v1/access/effective-permissions?user_id={cu}&org_id={c}"),
            body: Box::new(|_| None),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "check on Child",
            method: Method::POST,
            path: "/api/v1/access/check".into(),
            body: Box::new(move |_| {
                Some(json!({ "questions": [
                    { "user_id": cu, "permission": "organizations.settings", "org_id": c }
                ] }))
            }),
            expected: ADMIN_ONLY,
            check_answer: true,
        },
        Endpoint {
            name: "GET orgs (scope-filtered list)",
            method: Method::GET,
            path: "/api/v1/orgs".into(),
            body: Box::new(|_| None),
            expected: [[200; 5], [200; 5], [200; 5]],
            check_answer: false,
        },
        Endpoint {
            name: "GET tree from Child",
            method: Method::GET,
            path: format!("/api/v1/orgs/tree?root={c}"),
            body: Box::new(|_| None),
            expected: SCOPED_READ,
            check_answer: false,
        },
        Endpoint {
            name: "GET templates",
            method: Method::GET,
            path: "/api/v1/permission-templates".into(),
            body: Box::new(|_| None),
            expected: [[200; 5], [403; 5], [403; 5]],
            check_answer: false,
        },
        Endpoint {
            name: "DELETE role",
            method: Method::DELETE,
            path: format!("/api/v1/roles/{doomed}?replacement={user_role}"),
            body: Box::new(|_| None),
            expected: [
                [404, 200, 404, 404, 404],
                [404, 403, 404, 404, 403],
                [404, 403, 404, 404, 403],
            ],
            check_answer: false,
        },
        Endpoint {
            name: "GET roles",
            method: Method::GET,
            path: "/api/v1/roles".into(),
            body: Box::new(|_| None),
            expected: [[200; 5], [403; 5], [403; 5]],
            check_answer: false,
        },
        Endpoint {
            name: "POST role",
            method: Method::POST,
            path: "/api/v1/roles".into(),
            body: Box::new(|s| Some(json!({ "name": format!("R {s}") }))),
            expected: [
                [404, 201, 404, 404, 201],
                [404, 403, 404, 404, 403],
                [404, 403, 404, 404, 403],
            ],
            check_answer: false,
        },
        Endpoint {
            name: "PATCH role Staff",
            method: Method::PATCH,
            path: format!("/api/v1/roles/{staff_role}"),
            body: Box::new(|_| Some(json!({ "name": "Staff" }))),
            expected: [
                [404, 200, 404, 404, 404],
                [404, 403, 404, 404, 403],
                [404, 403, 404, 404, 403],
            ],
            check_answer: false,
        },
        Endpoint {
            name: "POST template from Child",
            method: Method::POST,
            path: "/api/v1/permission-templates".into(),
            body: Box::new(move |s| Some(json!({ "name": format!("T {s}"), "from_org_id": c }))),
            expected: ADMIN_ONLY_CREATED,
            check_answer: false,
        },
        Endpoint {
            name: "apply template to Child",
            method: Method::POST,
            path: format!("/api/v1/permission-templates/{template}/apply"),
            body: Box::new(move |_| Some(json!({ "org_id": c }))),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
        Endpoint {
            name: "push template to Child's subtree",
            method: Method::POST,
            path: format!("/api/v1/permission-templates/{template}/push"),
            body: Box::new(move |_| Some(json!({ "org_id": c }))),
            expected: ADMIN_ONLY,
            check_answer: false,
        },
    ];

    let mut tokens = Vec::new();
    for kind in KINDS {
        let mut row = Vec::new();
        for (_, place) in w.places() {
            row.push(app.login(&email(kind, place), PASSWORD).await);
        }
        tokens.push(row);
    }
    let mut failures = Vec::new();
    let mut cells = 0;
    for endpoint in &endpoints {
        for (k, kind) in KINDS.iter().enumerate() {
            for (p, (_, place)) in w.places().iter().enumerate() {
                let suffix = format!("{:?} {place}", kind);
                let reply = call(
                    &app,
                    endpoint.method.clone(),
                    &endpoint.path,
                    &tokens[k][p],
                    None,
                    (endpoint.body)(&suffix),
                )
                .await;
                let status = if endpoint.check_answer && reply.status == 200 {
                    match reply.body["answers"][0]["error"].as_str() {
                        Some("not_found") => 404,
                        Some("forbidden") => 403,
                        _ => 200,
                    }
                } else {
                    reply.status
                };
                let want = endpoint.expected[k][p];
                cells += 1;
                if status != want {
                    failures.push(format!(
                        "{} as {kind:?} of {place}: got {status}, want {want} ({})",
                        endpoint.name, reply.body
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, endpoints.len() * 15);
}
