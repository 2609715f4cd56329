//! A template pushed to a subtree while sub-orgs are created in it: every org
//! ends with the template's sets — a new org either existed when the push read
//! the subtree (and was pushed) or copied its parent's sets after the push.

use crate::support::*;
use arbor_app::model::NewOrg;
use arbor_core::{BuiltinRole, OrgType, Permission, PermissionSet};
use arbor_testkit::{Engine, TestApp, both_engines};

both_engines!(a_push_and_concurrent_suborg_creation_leave_no_org_behind);

async fn a_push_and_concurrent_suborg_creation_leave_no_org_behind(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let core = app.app().clone();
    let admin = cli(w.root_admin);
    let user = w.role(BuiltinRole::User);
    let wanted: PermissionSet = [Permission::OwnDevicesControl].into_iter().collect();
    core.set_role_permissions(&admin, w.sibling, user, wanted)
        .await
        .unwrap();
    let template = core
        .create_permission_template(&admin, w.sibling, "owners control")
        .await
        .unwrap()
        .id;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (app_, admin_) = (core.clone(), admin.clone());
            let parent = if i % 2 == 0 { w.child } else { w.grandchild };
            tasks.push(tokio::spawn(async move {
                let name = format!("New {round}.{i}");
                app_.create_suborg(&admin_, parent, &NewOrg::named(name, OrgType::Business))
                    .await
                    .map(|_| ())
            }));
            if i == 2 {
                let (app_, admin_) = (core.clone(), admin.clone());
                tasks.push(tokio::spawn(async move {
                    app_.push_permission_template(&admin_, template, w.root)
                        .await
                        .map(|_| ())
                }));
            }
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut tx = app.db.store().read().await.unwrap();
        let root = tx.org_path(w.root).await.unwrap();
        let matrices = tx.subtree_matrices(&root).await.unwrap();
        tx.finish().await.unwrap();
        assert_eq!(matrices.len(), 4 + 6 * (round + 1));
        for (path, matrix) in matrices {
            assert_eq!(
                matrix.get(user),
                wanted.closed(),
                "round {round}: org {:?} missed the push",
                path
            );
        }
        // Reset the sets so that the next round's push has work to do.
        for org in [w.root, w.child, w.grandchild] {
            core.set_role_permissions(&admin, org, user, PermissionSet::EMPTY)
                .await
                .unwrap();
        }
    }
}
