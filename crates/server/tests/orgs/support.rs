//! HTTP helpers and worlds for the org/role/access suite.

use arbor_app::model::{ClientKind, DeviceTemplateId, NewDevice};
use arbor_app::{Caller, NewMember};
use arbor_core::{BuiltinRole, OrgId, RoleId, UserId};
use arbor_testkit::{TestApp, Tree};
use reqwest::Method;
use serde_json::{Value, json};

pub use arbor_testkit::{PASSWORD, new_user};

pub fn cli(user: UserId) -> Caller {
    Caller::new(user, ClientKind::Cli)
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Sends one API request as `token`, optionally acting in `context`.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    context: Option<OrgId>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(context) = context {
        request = request.header("X-Arbor-Org", context.0.to_string());
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply { status, body }
}

pub async fn get(app: &TestApp, path: &str, token: &str) -> Reply {
    call(app, Method::GET, path, token, None, None).await
}

pub async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    call(app, Method::POST, path, token, None, Some(body)).await
}

pub async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    call(app, Method::PATCH, path, token, None, Some(body)).await
}

pub async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    call(app, Method::PUT, path, token, None, Some(body)).await
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> Reply {
    call(app, Method::DELETE, path, token, None, None).await
}

/// Explains "may `user` use `permission` on `org`?" as `token`.
pub async fn explain_org(
    app: &TestApp,
    token: &str,
    user: UserId,
    permission: &str,
    org: OrgId,
) -> Reply {
    post(
        app,
        "/api/v1/access/explain",
        token,
        json!({ "user_id": user.0, "permission": permission, "org_id": org.0 }),
    )
    .await
}

/// Explains "may `user` do `action` on `device`?" as `token`.
pub async fn explain_device(
    app: &TestApp,
    token: &str,
    user: UserId,
    action: &str,
    device: arbor_core::DeviceId,
) -> Reply {
    post(
        app,
        "/api/v1/access/explain",
        token,
        json!({ "user_id": user.0, "action": action, "device_id": device.0 }),
    )
    .await
}

/// The users who-can lists for `query` (e.g. `action=view&device_id=3`).
pub async fn who_can(app: &TestApp, token: &str, query: &str) -> Vec<i64> {
    let reply = get(app, &format!("/api/v1/access/who-can?{query}"), token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut users: Vec<i64> = reply.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["user_id"].as_i64().unwrap())
        .collect();
    users.sort_unstable();
    users
}

/// ```text
/// Root ─┬─ Child ── Grandchild
///       └─ Sibling
/// Other (a second hierarchy)
/// ```
/// with one Admin, Staff and User member in each org, all able to log in.
pub struct World {
    pub root: OrgId,
    pub child: OrgId,
    pub grandchild: OrgId,
    pub sibling: OrgId,
    pub other: OrgId,
    pub roles: [RoleId; 3],
    pub other_roles: [RoleId; 3],
    pub template: DeviceTemplateId,
    pub root_admin: UserId,
}

pub const KINDS: [BuiltinRole; 3] = [BuiltinRole::Admin, BuiltinRole::Staff, BuiltinRole::User];

impl World {
    pub async fn build(app: &TestApp) -> World {
        let app = app.app();
        let tree = Tree::build(app, "admin@root.test", "admin@other.test").await;
        let (created, other) = (&tree.root, &tree.other);
        let by = cli(created.admin);
        let root = created.root.id;
        let (child, grandchild, sibling) = (tree.child, tree.grandchild, tree.sibling);
        let template = app
            .create_device_template(&by, root, "Sensor", &[])
            .await
            .unwrap();
        for org in [child, grandchild, sibling] {
            app.enable_device_template(&by, org, template)
                .await
                .unwrap();
        }
        let world = World {
            root,
            child,
            grandchild,
            sibling,
            other: other.root.id,
            roles: created.roles,
            other_roles: other.roles,
            template,
            root_admin: created.admin,
        };
        for (org, name) in world.places() {
            for kind in KINDS {
                if kind == BuiltinRole::Admin && (org == world.root || org == world.other) {
                    continue;
                }
                let caller = if org == world.other {
                    cli(other.admin)
                } else {
                    cli(created.admin)
                };
                let role = world.role_in(org, kind);
                app.add_member(
                    &caller,
                    org,
                    &NewMember {
                        user: new_user(&email(kind, name)),
                        role,
                    },
                )
                .await
                .unwrap();
            }
        }
        world
    }

    /// (org, short name) for own (Child), parent (Root), sibling, child
    /// (Grandchild), other hierarchy.
    pub fn places(&self) -> [(OrgId, &'static str); 5] {
        [
            (self.child, "child"),
            (self.root, "root"),
            (self.sibling, "sibling"),
            (self.grandchild, "grandchild"),
            (self.other, "other"),
        ]
    }

    pub fn role_in(&self, org: OrgId, kind: BuiltinRole) -> RoleId {
        let roles = if org == self.other {
            self.other_roles
        } else {
            self.roles
        };
        roles[KINDS.iter().position(|k| *k == kind).unwrap()]
    }

    pub fn role(&self, kind: BuiltinRole) -> RoleId {
        self.role_in(self.root, kind)
    }

    /// A device in `org` owned by `owner`, created through the use case (the
    /// device API is another issue's).
    pub async fn device(
        &self,
        app: &TestApp,
        org: OrgId,
        owner: Option<UserId>,
        name: &str,
    ) -> arbor_core::DeviceId {
        let device = NewDevice {
            name: name.into(),
            template: self.template,
            owner,
            metafields: Vec::new(),
        };
        app.app()
            .create_device(&cli(self.root_admin), org, &device)
            .await
            .unwrap()
    }
}

pub fn email(kind: BuiltinRole, place: &str) -> String {
    if kind == BuiltinRole::Admin && place == "root" {
        return "admin@root.test".into();
    }
    if kind == BuiltinRole::Admin && place == "other" {
        return "admin@other.test".into();
    }
    format!("{}@{place}.test", kind.default_name().to_lowercase())
}

/// The id of the user with `email`.
pub async fn user_id(app: &TestApp, email: &str) -> UserId {
    let mut tx = app.db.store().read().await.unwrap();
    let user = tx.user_by_email(email).await.unwrap().unwrap();
    tx.finish().await.unwrap();
    user.id
}

/// The audit rows naming `target` (e.g. `org:4`), as (action, outcome).
pub async fn audit(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let mut tx = app.db.store().read().await.unwrap();
    let rows = tx.audit_for_target(target).await.unwrap();
    tx.finish().await.unwrap();
    rows.into_iter()
        .map(|r| (r.action, r.outcome.as_str().to_owned()))
        .collect()
}

/// First-run setup over HTTP: the root org and its Admin (password
/// [`PASSWORD`]). Returns their ids.
pub async fn setup_over_http(app: &TestApp, org_name: &str, admin_email: &str) -> (OrgId, UserId) {
    let setup = app
        .http
        .post(app.url("/api/v1/setup"))
        .json(&serde_json::json!({
            "setup_token": app.setup_token, "org_name": org_name,
            "admin_email": admin_email, "admin_name": "A", "admin_password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 201);
    let setup: serde_json::Value = setup.json().await.unwrap();
    (
        OrgId(setup["org_id"].as_i64().unwrap()),
        UserId(setup["admin_user_id"].as_i64().unwrap()),
    )
}

/// The id of the role named `name`, from `GET /api/v1/roles` as `token`.
pub async fn role_id(app: &TestApp, token: &str, name: &str) -> i64 {
    let roles = get(app, "/api/v1/roles", token).await;
    assert_eq!(roles.status, 200, "{roles:?}");
    roles
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name}"))["id"]
        .as_i64()
        .unwrap()
}

/// Invites `email` into `org` with `role` as `token` and accepts the mailed
/// link with [`PASSWORD`].
pub async fn invite_and_accept(
    app: &TestApp,
    token: &str,
    email: &str,
    org: OrgId,
    role: i64,
) -> UserId {
    let reply = post(
        app,
        "/api/v1/users/invitations",
        token,
        json!({ "email": email, "name": email, "org_id": org.0, "role_id": role }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    accept(app, email).await;
    UserId(reply.body["user_id"].as_i64().unwrap())
}

/// Accepts the invitation mailed to `email`, with [`PASSWORD`].
pub async fn accept(app: &TestApp, email: &str) {
    let link = app.mailed_token(email).await;
    let reply = app
        .http
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({ "token": link, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{email} accepts");
}

/// One audit row as stored, every column the tests look at.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub actor: Option<i64>,
    pub actor_home_org: Option<i64>,
    pub target_org: Option<i64>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: Value,
}

/// The id of the newest audit row (0 while there is none): pass it to
/// [`audit_since`] to see what a request wrote.
pub async fn audit_mark(app: &TestApp) -> i64 {
    audit_since(app, 0).await.last().map_or(0, |r| r.id)
}

/// Every audit row newer than `after`, oldest first, straight from the table
/// (rows without a target org too, which the actions log leaves out).
pub async fn audit_since(app: &TestApp, after: i64) -> Vec<AuditRow> {
    use sqlx::{Connection as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT id, actor_user_id, actor_home_org_id, target_org_id, action, target, outcome, \
         details FROM audit_events WHERE id > $1 ORDER BY id",
    )
    .bind(after)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| AuditRow {
        id: r.get(0),
        actor: r.get(1),
        actor_home_org: r.get(2),
        target_org: r.get(3),
        action: r.get(4),
        target: r.get(5),
        outcome: r.get(6),
        details: serde_json::from_str(&r.get::<String, _>(7)).unwrap(),
    })
    .collect();
    conn.close().await.unwrap();
    rows
}

/// A hierarchy with multi-org membership on, built through the use cases:
///
/// ```text
/// Heat ─┬─ East   (Admin e@east.test)
///       └─ West   (Admin w@west.test)
/// ```
/// with `a@heat.test` the root Admin; every password [`PASSWORD`].
pub struct Shared {
    pub east: OrgId,
    pub west: OrgId,
    /// Admin, Staff, User.
    pub roles: [RoleId; 3],
    pub admin: UserId,
}

impl Shared {
    pub async fn build(app: &TestApp) -> Shared {
        let created = app
            .app()
            .create_hierarchy(&arbor_app::NewHierarchy {
                root: arbor_app::model::NewOrg::named("Heat", arbor_core::OrgType::Root),
                settings: arbor_app::model::HierarchySettings {
                    multi_org_membership: true,
                    ..Default::default()
                },
                admin: new_user("a@heat.test"),
                client: ClientKind::Cli,
            })
            .await
            .unwrap();
        let by = cli(created.admin);
        let mut orgs = Vec::new();
        for name in ["East", "West"] {
            let org = arbor_app::model::NewOrg::named(name, arbor_core::OrgType::Business);
            orgs.push(
                app.app()
                    .create_suborg(&by, created.root.id, &org)
                    .await
                    .unwrap()
                    .id,
            );
        }
        let shared = Shared {
            east: orgs[0],
            west: orgs[1],
            roles: created.roles,
            admin: created.admin,
        };
        shared
            .add(app, shared.east, BuiltinRole::Admin, "e@east.test")
            .await;
        shared
            .add(app, shared.west, BuiltinRole::Admin, "w@west.test")
            .await;
        shared
    }

    pub fn role(&self, kind: BuiltinRole) -> RoleId {
        self.roles[KINDS.iter().position(|k| *k == kind).unwrap()]
    }

    /// Adds `email` to `org` as the root Admin would: a new active account
    /// (home there), or another membership of an existing one.
    pub async fn add(&self, app: &TestApp, org: OrgId, kind: BuiltinRole, email: &str) -> UserId {
        app.app()
            .add_member(
                &cli(self.admin),
                org,
                &NewMember {
                    user: new_user(email),
                    role: self.role(kind),
                },
            )
            .await
            .unwrap()
    }
}

/// A datastream on `pin` of `value_type` with nothing else set (the device
/// data suites' templates).
pub fn stream(
    pin: u16,
    name: &str,
    value_type: arbor_core::template::ValueType,
) -> arbor_core::template::Datastream {
    arbor_core::template::Datastream {
        pin,
        name: name.into(),
        value_type,
        enum_values: Vec::new(),
        min: None,
        max: None,
        units: String::new(),
        default_value: None,
        decimals: None,
    }
}
