//! Members shared between orgs (multi-org membership): an action on the
//! whole account is decided on the member's home membership too.

use crate::support::*;
use arbor_core::{BuiltinRole, UserId};
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::json;

both_engines!(
    user_wide_actions_on_a_shared_member_need_its_home_membership,
    a_member_already_in_the_parent_keeps_that_membership_when_its_org_goes,
);

/// Defect 4: an Admin of one org could suspend, delete, log out or rename an
/// account whose home is another org, through a second membership in its own.
async fn user_wide_actions_on_a_shared_member_need_its_home_membership(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let h = Shared::build(&app).await;
    // M lives in West and also belongs to East; P was invited to West and
    // belongs to East as well.
    let m = h.add(&app, h.west, BuiltinRole::User, "m@west.test").await;
    h.add(&app, h.east, BuiltinRole::User, "m@west.test").await;
    let a = app.login("a@heat.test", PASSWORD).await;
    let invited = post(
        &app,
        "/api/v1/users/invitations",
        &a,
        json!({ "email": "p@west.test", "name": "P", "org_id": h.west.0,
                "role_id": h.role(BuiltinRole::User).0 }),
    )
    .await;
    assert_eq!(invited.status, 201, "{invited:?}");
    let p = UserId(invited.body["user_id"].as_i64().unwrap());
    h.add(&app, h.east, BuiltinRole::User, "p@west.test").await;
    let link = app.mailed_token("p@west.test").await;
    let e = app.login("e@east.test", PASSWORD).await;
    let e_id = user_id(&app, "e@east.test").await.0;
    let w = app.login("w@west.test", PASSWORD).await;
    let m_session = app.login("m@west.test", PASSWORD).await;

    // East's Admin sees both (through East) but may not act on the accounts.
    for user in [m, p] {
        let seen = get(&app, &format!("/api/v1/users/{}", user.0), &e).await;
        assert_eq!(seen.status, 200, "{seen:?}");
    }
    let (mu, pu) = (m.0, p.0);
    let attempts = [
        (
            Method::PATCH,
            format!("/api/v1/users/{mu}"),
            Some(json!({ "name": "Renamed" })),
            "user.edit",
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{mu}"),
            Some(json!({ "locale": "de-AT" })),
            "user.edit",
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/password-reset"),
            None,
            "user.request_password_reset",
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/logout"),
            None,
            "user.force_logout",
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/suspend"),
            None,
            "user.suspend",
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{mu}"),
            None,
            "user.delete",
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{pu}/invitation"),
            None,
            "user.revoke_invitation",
        ),
        (
            Method::POST,
            format!("/api/v1/users/{pu}/invitation/resend"),
            None,
            "user.resend_invitation",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, action) in &attempts {
        let mark = audit_mark(&app).await;
        let reply = call(&app, method.clone(), path, &e, None, body.clone()).await;
        let rows = audit_since(&app, mark).await;
        let audited = rows.len() == 1
            && rows[0].action == *action
            && rows[0].outcome == "forbidden"
            && rows[0].actor == Some(e_id)
            && rows[0].actor_home_org == Some(h.east.0);
        if reply.status != 403 || !audited {
            failures.push(format!("{method} {path}: {reply:?}, audit {rows:?}"));
        }
    }
    assert_eq!(
        get(&app, "/api/v1/me", &m_session).await.status,
        200,
        "M's session survived East's force logout"
    );
    // Unsuspending too, once the root Admin has suspended M.
    let suspended = post(&app, &format!("/api/v1/users/{mu}/suspend"), &a, json!({})).await;
    assert_eq!(suspended.status, 204, "{suspended:?}");
    let reply = post(
        &app,
        &format!("/api/v1/users/{mu}/unsuspend"),
        &e,
        json!({}),
    )
    .await;
    if reply.status != 403 {
        failures.push(format!("unsuspend by East's Admin: {reply:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let reply = post(
        &app,
        &format!("/api/v1/users/{mu}/unsuspend"),
        &a,
        json!({}),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    // Nothing East's Admin tried took effect.
    let seen = get(&app, &format!("/api/v1/users/{mu}"), &a).await.body;
    assert_eq!(
        (&seen["name"], &seen["locale"]),
        (&json!("m"), &json!("en"))
    );
    assert_eq!(
        get(&app, &format!("/api/v1/users/{pu}"), &a).await.body["status"],
        "pending"
    );
    assert_eq!(app.mailed_token("p@west.test").await, link);
    // A change to East's own membership is East's Admin's to make.
    let staff = h.role(BuiltinRole::Staff).0;
    let reply = patch(
        &app,
        &format!("/api/v1/users/{mu}"),
        &e,
        json!({ "role_id": staff }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");

    // West's Admin acts on the home membership: allowed, as for the root Admin.
    for (method, path, body, want) in [
        (
            Method::PATCH,
            format!("/api/v1/users/{mu}"),
            Some(json!({ "name": "Em", "locale": "de-AT" })),
            204,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/password-reset"),
            None,
            202,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/logout"),
            None,
            200,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/suspend"),
            None,
            204,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{mu}/unsuspend"),
            None,
            204,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{pu}/invitation/resend"),
            None,
            200,
        ),
    ] {
        let reply = call(&app, method.clone(), &path, &w, None, body).await;
        assert_eq!(reply.status, want, "{method} {path}: {reply:?}");
    }
    let seen = get(&app, &format!("/api/v1/users/{mu}"), &a).await.body;
    assert_eq!(
        (&seen["name"], &seen["locale"]),
        (&json!("Em"), &json!("de-AT"))
    );
    let reply = delete(&app, &format!("/api/v1/users/{pu}/invitation"), &a).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let reply = delete(&app, &format!("/api/v1/users/{mu}"), &w).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        get(&app, &format!("/api/v1/users/{mu}"), &a).await.status,
        404
    );
}

/// Defect 1, the case of a member the parent already has: deleting its
/// other org moves nothing of its, and the answer says so (no new role).
async fn a_member_already_in_the_parent_keeps_that_membership_when_its_org_goes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let h = Shared::build(&app).await;
    let a = app.login("a@heat.test", PASSWORD).await;
    let reply = post(
        &app,
        "/api/v1/orgs",
        &a,
        json!({ "parent_id": h.west.0, "name": "West Shop" }),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let shop = arbor_core::OrgId(reply.body["id"].as_i64().unwrap());
    let m = h.add(&app, h.west, BuiltinRole::User, "m@west.test").await;
    h.add(&app, shop, BuiltinRole::Admin, "m@west.test").await;
    let newcomer = h.add(&app, shop, BuiltinRole::Staff, "n@shop.test").await;
    let reply = delete(
        &app,
        &format!("/api/v1/orgs/{}?move_contents_to_parent=true", shop.0),
        &a,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let [admin, staff, user] = h.roles.map(|r| r.0);
    let mut members: Vec<(i64, i64, Option<i64>)> = reply.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_i64().unwrap(),
                m["old_role_id"].as_i64().unwrap(),
                m["new_role_id"].as_i64(),
            )
        })
        .collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [(m.0, admin, None), (newcomer.0, staff, Some(user))]
    );
    let session = app.login("m@west.test", PASSWORD).await;
    let me = get(&app, "/api/v1/me", &session).await.body;
    let kept: Vec<(i64, &str)> = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["org_id"].as_i64().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(kept, [(h.west.0, "User")], "{me}");
}
