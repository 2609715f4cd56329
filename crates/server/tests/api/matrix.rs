//! The authorization matrix of user management: every endpoint × every kind
//! of actor, the expected status asserted cell by cell. The target is a member
//! with role User of org "Child"; each cell gets a fresh target.

use crate::support::{Client, World};
use arbor_app::Caller;
use arbor_app::model::ClientKind;
use arbor_app::users::{Invite, Links};
use arbor_core::UserId;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::json;

/// Column order of every row below.
const ACTORS: [&str; 9] = [
    "own Admin",
    "own Staff",
    "own User",
    "parent Admin",
    "parent Staff",
    "parent User",
    "sibling Admin",
    "child Admin",
    "other hierarchy Admin",
];

/// What a cell does to its fresh target.
#[derive(Clone, Copy)]
enum Target {
    /// An active member of Child with role User.
    Member,
    /// A suspended member of Child.
    Suspended,
    /// A pending (invited) member of Child.
    Pending,
    /// No target: the request names a new email.
    NewEmail,
    /// No target: a list over the caller's scope.
    None,
}

struct Row {
    name: &'static str,
    method: Method,
    path: &'static str,
    body: Option<serde_json::Value>,
    target: Target,
    expected: [u16; 9],
}

fn rows(world: &World) -> Vec<Row> {
    let edit = [204, 403, 404, 204, 403, 404, 404, 404, 404];
    vec![
        Row {
            name: "view user",
            method: Method::GET,
            path: "/api/v1/users/{id}",
            body: None,
            target: Target::Member,
            expected: [200, 200, 404, 200, 200, 404, 404, 404, 404],
        },
        Row {
            name: "edit user",
            method: Method::PATCH,
            path: "/api/v1/users/{id}",
            body: Some(json!({"name": "Renamed"})),
            target: Target::Member,
            expected: edit,
        },
        Row {
            name: "delete user",
            method: Method::DELETE,
            path: "/api/v1/users/{id}",
            body: None,
            target: Target::Member,
            expected: edit,
        },
        Row {
            name: "reset password",
            method: Method::POST,
            path: "/api/v1/users/{id}/password-reset",
            body: None,
            target: Target::Member,
            expected: [202, 403, 404, 202, 403, 404, 404, 404, 404],
        },
        Row {
            name: "force logout",
            method: Method::POST,
            path: "/api/v1/users/{id}/logout",
            body: None,
            target: Target::Member,
            expected: [200, 403, 404, 200, 403, 404, 404, 404, 404],
        },
        Row {
            name: "suspend",
            method: Method::POST,
            path: "/api/v1/users/{id}/suspend",
            body: None,
            target: Target::Member,
            expected: edit,
        },
        Row {
            name: "unsuspend",
            method: Method::POST,
            path: "/api/v1/users/{id}/unsuspend",
            body: None,
            target: Target::Suspended,
            expected: edit,
        },
        Row {
            name: "transfer to Grandchild",
            method: Method::POST,
            path: "/api/v1/users/{id}/transfer",
            body: Some(json!({"org_id": world.grandchild.0, "role_id": world.user.0})),
            target: Target::Member,
            expected: edit,
        },
        Row {
            name: "invite into Child",
            method: Method::POST,
            path: "/api/v1/users/invitations",
            body: Some(json!({"name": "New", "org_id": world.child.0, "role_id": world.user.0})),
            target: Target::NewEmail,
            expected: [201, 403, 403, 201, 403, 404, 404, 404, 404],
        },
        Row {
            name: "resend invitation",
            method: Method::POST,
            path: "/api/v1/users/{id}/invitation/resend",
            body: None,
            target: Target::Pending,
            expected: [200, 403, 404, 200, 403, 404, 404, 404, 404],
        },
        Row {
            name: "revoke invitation",
            method: Method::DELETE,
            path: "/api/v1/users/{id}/invitation",
            body: None,
            target: Target::Pending,
            expected: edit,
        },
        Row {
            name: "download list",
            method: Method::GET,
            path: "/api/v1/users.csv",
            body: None,
            target: Target::None,
            expected: [200, 403, 403, 200, 403, 403, 200, 200, 200],
        },
        Row {
            name: "actions log",
            method: Method::GET,
            path: "/api/v1/audit",
            body: None,
            target: Target::None,
            expected: [200, 403, 403, 200, 403, 403, 200, 200, 200],
        },
        Row {
            name: "list users",
            method: Method::GET,
            path: "/api/v1/users",
            body: None,
            target: Target::None,
            expected: [200; 9],
        },
    ]
}

async fn user_management_authorization_matrix(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let a = app.app();
    w.member(a, w.child, w.admin, "child-admin@root.test").await;
    w.member(a, w.child, w.staff, "child-staff@root.test").await;
    w.member(a, w.child, w.user, "child-user@root.test").await;
    w.member(a, w.root, w.staff, "root-staff@root.test").await;
    w.member(a, w.root, w.user, "root-user@root.test").await;
    w.member(a, w.sibling, w.admin, "sibling-admin@root.test")
        .await;
    w.member(a, w.grandchild, w.admin, "grandchild-admin@root.test")
        .await;
    let emails = [
        "child-admin@root.test",
        "child-staff@root.test",
        "child-user@root.test",
        "root-admin@root.test",
        "root-staff@root.test",
        "root-user@root.test",
        "sibling-admin@root.test",
        "grandchild-admin@root.test",
        "other-admin@other.test",
    ];
    let mut clients = Vec::new();
    for email in emails {
        clients.push(Client::login(&app, email).await);
    }
    let root = Caller::new(w.root_admin, ClientKind::Cli);
    let links = Links {
        base_url: "http://arbor.test".into(),
    };
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in rows(&w) {
        for (column, client) in clients.iter().enumerate() {
            cells += 1;
            let n = cells;
            let email = format!("target-{n}@root.test");
            let target: Option<UserId> = match row.target {
                Target::Member | Target::Suspended => {
                    let id = w.member(a, w.child, w.user, &email).await;
                    if matches!(row.target, Target::Suspended) {
                        a.set_suspended(&root, id, true).await.unwrap();
                    }
                    Some(id)
                }
                Target::Pending => {
                    let invite = Invite {
                        email: email.clone(),
                        name: "Pending".into(),
                        org: w.child,
                        role: w.user,
                    };
                    Some(
                        a.invite(&root, &invite, &links, &Default::default())
                            .await
                            .unwrap()
                            .user,
                    )
                }
                Target::NewEmail | Target::None => None,
            };
            let path = row
                .path
                .replace("{id}", &target.map(|t| t.0.to_string()).unwrap_or_default());
            let mut request = client.request(row.method.clone(), &path);
            if let Some(body) = &row.body {
                let mut body = body.clone();
                if matches!(row.target, Target::NewEmail) {
                    body["email"] = json!(email);
                }
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status != row.expected[column] {
                failures.push(format!(
                    "{} by {}: expected {}, got {status}: {text}",
                    row.name, ACTORS[column], row.expected[column]
                ));
            }
            // The list shows the target exactly to those who may view it.
            if row.name == "list users" {
                let probe = w
                    .member(a, w.child, w.user, &format!("probe-{n}@root.test"))
                    .await;
                let page: serde_json::Value = client
                    .get("/api/v1/users?limit=500")
                    .await
                    .json()
                    .await
                    .unwrap();
                let listed = page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u["id"] == probe.0);
                let may_view = [true, true, false, true, true, false, false, false, false][column];
                if listed != may_view {
                    failures.push(format!(
                        "list users by {}: target listed = {listed}",
                        ACTORS[column]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

both_engines!(user_management_authorization_matrix);
