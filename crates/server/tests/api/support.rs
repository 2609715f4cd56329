//! A small world for the user-management tests, built through the use cases
//! (fast) and then driven over HTTP.

use arbor_app::model::ClientKind;
use arbor_app::{App, Caller, NewMember};
use arbor_core::{BuiltinRole, OrgId, RoleId, UserId};
use arbor_testkit::{TestApp, Tree};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub use arbor_testkit::{PASSWORD, new_user};

/// ```text
/// Root ─┬─ Child ── Grandchild
///       └─ Sibling
/// Other (a second hierarchy)
/// ```
pub struct World {
    pub root: OrgId,
    pub child: OrgId,
    pub grandchild: OrgId,
    pub sibling: OrgId,
    pub other: OrgId,
    pub admin: RoleId,
    pub staff: RoleId,
    pub user: RoleId,
    pub root_admin: UserId,
}

impl World {
    pub async fn build(app: &App) -> World {
        let tree = Tree::build(app, "root-admin@root.test", "other-admin@other.test").await;
        World {
            root: tree.root.root.id,
            child: tree.child,
            grandchild: tree.grandchild,
            sibling: tree.sibling,
            other: tree.other.root.id,
            admin: tree.root.role(BuiltinRole::Admin),
            staff: tree.root.role(BuiltinRole::Staff),
            user: tree.root.role(BuiltinRole::User),
            root_admin: tree.root.admin,
        }
    }

    /// Adds an active member (password [`PASSWORD`]) as the root Admin would.
    pub async fn member(&self, app: &App, org: OrgId, role: RoleId, email: &str) -> UserId {
        let by = Caller::new(self.root_admin, ClientKind::Cli);
        app.add_member(
            &by,
            org,
            &NewMember {
                user: new_user(email),
                role,
            },
        )
        .await
        .unwrap()
    }
}

/// A logged-in HTTP client.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Client<'a> {
    pub async fn login(app: &'a TestApp, email: &str) -> Client<'a> {
        Client {
            app,
            token: app.login(email, PASSWORD).await,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .http
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.request(Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }
}

/// The JSON body of a response, asserting its status first.
pub async fn json(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// The problem-details `type` slug of an error response, asserting its status.
pub async fn problem(response: Response, status: u16) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = json(response, status).await;
    assert_eq!(content_type, "application/problem+json", "{body}");
    body
}

/// The id of the user with `email`.
pub async fn user_id(app: &TestApp, email: &str) -> UserId {
    let mut tx = app.db.store().read().await.unwrap();
    let user = tx.user_by_email(email).await.unwrap().unwrap();
    tx.finish().await.unwrap();
    user.id
}
