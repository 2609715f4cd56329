//! Re-parenting a subtree moves access with it, at once.

use crate::support::*;
use arbor_core::BuiltinRole;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

both_engines!(reparenting_a_subtree_moves_access_at_once);

async fn reparenting_a_subtree_moves_access_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let root = app.login("admin@root.test", PASSWORD).await;
    let child_admin = app
        .login(&email(BuiltinRole::Admin, "child"), PASSWORD)
        .await;
    let sibling_admin = app
        .login(&email(BuiltinRole::Admin, "sibling"), PASSWORD)
        .await;
    let child_admin_id = user_id(&app, &email(BuiltinRole::Admin, "child")).await;
    let sibling_admin_id = user_id(&app, &email(BuiltinRole::Admin, "sibling")).await;
    let gc_user = user_id(&app, &email(BuiltinRole::User, "grandchild")).await;
    let device = w.device(&app, w.grandchild, Some(gc_user), "Meter").await;
    let gc = w.grandchild.0;

    let query = format!("action=view&device_id={}", device.0);
    let viewers = async |app: &TestApp| who_can(app, &root, &query).await;
    let before = viewers(&app).await;
    assert!(before.contains(&child_admin_id.0));
    assert!(!before.contains(&sibling_admin_id.0));
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{gc}"), &child_admin)
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{gc}"), &sibling_admin)
            .await
            .status,
        404
    );

    // Without confirmation nothing moves.
    let reply = post(
        &app,
        &format!("/api/v1/orgs/{gc}/transfer"),
        &root,
        json!({ "new_parent_id": w.sibling.0, "confirm": false }),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body["field"], "confirm");
    assert_eq!(viewers(&app).await, before);

    let reply = post(
        &app,
        &format!("/api/v1/orgs/{gc}/transfer"),
        &root,
        json!({ "new_parent_id": w.sibling.0, "confirm": true }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["path"], json!([w.root.0, w.sibling.0, gc]));

    // The very next requests decide on the new tree.
    let after = viewers(&app).await;
    assert!(after.contains(&sibling_admin_id.0), "{after:?}");
    assert!(!after.contains(&child_admin_id.0), "{after:?}");
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{gc}"), &sibling_admin)
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/api/v1/orgs/{gc}"), &child_admin)
            .await
            .status,
        404
    );
    let why = explain_device(&app, &root, sibling_admin_id, "control", device).await;
    assert_eq!(why.body["allowed"], true, "{why:?}");
    let why = explain_device(&app, &root, child_admin_id, "view", device).await;
    assert_eq!(why.body["decision"]["outcome"], "hidden", "{why:?}");
    // Ownership alone shows nothing: the User role's default set is empty.
    let why = explain_device(&app, &root, gc_user, "view", device).await;
    assert_eq!(
        why.body["allowed"], false,
        "User's default set holds no own_devices.view"
    );
    let tree = get(
        &app,
        &format!("/api/v1/orgs/tree?root={}", w.sibling.0),
        &sibling_admin,
    )
    .await;
    assert_eq!(tree.body["root"]["children"][0]["id"], gc);
    // A move into one's own subtree is refused with 409.
    let reply = post(
        &app,
        &format!("/api/v1/orgs/{}/transfer", w.sibling.0),
        &root,
        json!({ "new_parent_id": gc, "confirm": true }),
    )
    .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    let rows = audit(&app, &format!("org:{gc}")).await;
    assert!(
        rows.iter().any(|(a, o)| a == "org.move" && o == "allowed"),
        "{rows:?}"
    );
}
