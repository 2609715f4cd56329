//! For every actor of a generated world, every list equals the set of objects
//! the single check allows — at page sizes 1, 2 and the default.

use crate::support::*;
use arbor_app::{App, AppError, Caller};
use arbor_core::{
    Actor, BuiltinRole, DeviceAction, OrgId, Permission, PermissionSet, Principal, UserId,
};
use arbor_store::{Page, PageRequest};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

both_engines!(every_list_equals_the_single_checks_for_every_actor);

struct World {
    users: Vec<UserId>,
    orgs: Vec<OrgId>,
    template: arbor_store::DeviceTemplateId,
    h: arbor_app::HierarchyCreated,
}

async fn build_world(app: &App, rng: &mut StdRng, name: &str, levels: usize) -> World {
    let h = hierarchy(app, name, &format!("admin@{name}.example")).await;
    let tpl = template(app, &h, "Thing").await;
    let mut orgs = vec![h.root.id];
    let mut frontier = vec![h.root.id];
    for _level in 1..levels {
        let mut next = Vec::new();
        for parent in &frontier {
            for _ in 0..rng.random_range(1..=3) {
                let org = suborg(app, h.admin, *parent, &format!("org {}", orgs.len())).await;
                app.enable_device_template(&web(h.admin), org, tpl)
                    .await
                    .unwrap();
                orgs.push(org);
                next.push(org);
            }
        }
        frontier = next;
    }
    // Vary the per-org sets: Users that own devices may see them in some orgs,
    // Staff may not switch to sub-orgs or see org devices in others.
    for org in &orgs {
        let user_set: PermissionSet = match rng.random_range(0..3) {
            0 => PermissionSet::EMPTY,
            1 => [Permission::OwnDevicesView].into_iter().collect(),
            _ => [Permission::OwnDevicesView, Permission::UsersView]
                .into_iter()
                .collect(),
        };
        app.set_role_permissions(&web(h.admin), *org, h.role(BuiltinRole::User), user_set)
            .await
            .unwrap();
        if rng.random_bool(0.3) {
            let mut staff = BuiltinRole::Staff.default_permissions();
            staff.remove(Permission::OrganizationsSwitchToSuborgs);
            if rng.random_bool(0.5) {
                staff.remove(Permission::OrgDevicesView);
            }
            app.set_role_permissions(&web(h.admin), *org, h.role(BuiltinRole::Staff), staff)
                .await
                .unwrap();
        }
    }
    let mut users = vec![h.admin];
    for org in &orgs {
        let mut members = Vec::new();
        for n in 0..rng.random_range(1..=3) {
            let role =
                [BuiltinRole::Admin, BuiltinRole::Staff, BuiltinRole::User][rng.random_range(0..3)];
            let email = format!("u{n}-{org}@{name}.example");
            let u = member(app, h.admin, *org, &h, role, &email).await;
            members.push(u);
            users.push(u);
        }
        for n in 0..rng.random_range(1..=4) {
            let owner = if rng.random_bool(0.7) {
                Some(members[rng.random_range(0..members.len())])
            } else {
                None
            };
            device(app, h.admin, *org, tpl, &format!("d{n}-{org}"), owner).await;
        }
    }
    World {
        users,
        orgs,
        template: tpl,
        h,
    }
}

/// Follows cursors to the end; checks order and uniqueness on the way.
async fn collect<T, F, Fut>(
    page_size: Option<u32>,
    id_of: impl Fn(&T) -> i64,
    mut fetch: F,
) -> Vec<i64>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, AppError>>,
{
    let mut ids = Vec::new();
    let mut request = PageRequest::after(None, page_size);
    loop {
        let page = fetch(request).await.unwrap();
        if let Some(size) = page_size {
            assert!(page.items.len() <= size as usize);
        }
        ids.extend(page.items.iter().map(&id_of));
        match page.next {
            Some(next) => request = PageRequest::after(Some(next), page_size),
            None => break,
        }
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ordered by id, no repeats"
    );
    ids
}

fn targets(p: &Principal) -> Vec<arbor_core::policy::TargetMembership<'_>> {
    p.memberships
        .iter()
        .map(|m| arbor_core::policy::TargetMembership {
            org: &m.org,
            role: m.role,
            permissions: m.permissions,
            home: m.home,
        })
        .collect()
}

async fn check_actor(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    devices: &[arbor_store::DeviceRecord],
    orgs: &[arbor_store::OrgRecord],
    principals: &[Principal],
) {
    // Rule 9: with a context org below home, the device list shows only the
    // devices of its subtree; without one, every device the actor may view.
    let viewable = |d: &arbor_store::DeviceRecord| {
        actor
            .decide_device(DeviceAction::View, &d.facts())
            .is_allowed()
    };
    let switched = actor.context_path().id() != actor.home().id();
    let expected_devices: Vec<i64> = devices
        .iter()
        .filter(|d| viewable(d) && (!switched || actor.context_path().contains(&d.org)))
        .map(|d| d.id.0)
        .collect();
    // Rule 9: with a context org, lists show its subtree only; each listed
    // org is also one a single get shows.
    let expected_orgs: Vec<i64> = orgs
        .iter()
        .filter(|o| actor.view_in_list(&o.path).is_allowed())
        .inspect(|o| assert!(actor.view_org(&o.path).is_allowed()))
        .map(|o| o.id.0)
        .collect();
    let expected_users: Vec<i64> = principals
        .iter()
        .filter(|p| {
            let orgs: Vec<&arbor_core::OrgPath> = p.memberships.iter().map(|m| &m.org).collect();
            let listed = actor.user_list().matches(p.user, &orgs);
            if listed {
                // Everyone a list shows, a single get shows too.
                assert!(actor.view_user(p.user, &targets(p)).is_allowed());
            }
            listed
        })
        .map(|p| p.user.0)
        .collect();
    for size in [Some(1), Some(2), None] {
        let listed = collect(
            size,
            |d: &arbor_store::DeviceRecord| d.id.0,
            |page| async move { app.list_devices(caller, &page).await },
        )
        .await;
        assert_eq!(
            listed, expected_devices,
            "devices of {caller:?} at page size {size:?}"
        );
        let listed = collect(
            size,
            |o: &arbor_store::OrgRecord| o.id.0,
            |page| async move { app.list_orgs(caller, &page).await },
        )
        .await;
        assert_eq!(
            listed, expected_orgs,
            "orgs of {caller:?} at page size {size:?}"
        );
        let listed = collect(
            size,
            |u: &arbor_store::UserRecord| u.id.0,
            |page| async move { app.list_users(caller, &page).await },
        )
        .await;
        assert_eq!(
            listed, expected_users,
            "users of {caller:?} at page size {size:?}"
        );
    }
    // And the single gets agree with the lists, both ways (a get decides on
    // the whole scope, a list also narrows to the context's subtree).
    for d in devices {
        let got = app.get_device(caller, d.id).await;
        assert_eq!(got.is_ok(), viewable(d), "get device {}", d.id);
        if !switched {
            assert_eq!(
                got.is_ok(),
                expected_devices.contains(&d.id.0),
                "list equals get, device {}",
                d.id
            );
        }
        if let Err(e) = got {
            assert!(matches!(e, AppError::NotFound { .. }));
        }
    }
    // Narrowing (rule 9) applies to lists only: a single get decides on
    // the whole scope.
    for o in orgs {
        let got = app.get_org(caller, o.id).await;
        assert_eq!(
            got.is_ok(),
            actor.view_org(&o.path).is_allowed(),
            "get org {}",
            o.id
        );
    }
    for p in principals {
        let got = app.get_user(caller, p.user).await;
        let visible = actor.view_user(p.user, &targets(p)).is_allowed();
        if caller.context.is_none() {
            assert_eq!(visible, expected_users.contains(&p.user.0));
        }
        assert_eq!(got.is_ok(), visible, "get user {}", p.user);
    }
}

async fn every_list_equals_the_single_checks_for_every_actor(db: TestDb) {
    let app = &db.app;
    let mut rng = StdRng::seed_from_u64(0xA2B0);
    let first = build_world(app, &mut rng, "north", 4).await;
    let second = build_world(app, &mut rng, "south", 2).await;
    check_every_actor(app, &first, &second).await;
    // Writes that change which subtrees hold a device (the index the sub-org
    // lists read, `device_scopes`): a subtree moved under another parent, an
    // org deleted with its contents moved up, a device transferred to an org
    // of another branch. The lists must still equal the single checks.
    let root = first.orgs[0];
    let admin = web(first.users[0]);
    let mut branch = vec![root];
    let mut moved_members = Vec::new();
    for level in 2..=4 {
        let org = suborg(
            app,
            first.users[0],
            *branch.last().unwrap(),
            &format!("b{level}"),
        )
        .await;
        app.enable_device_template(&admin, org, first.template)
            .await
            .unwrap();
        device(
            app,
            first.users[0],
            org,
            first.template,
            &format!("bd{level}"),
            None,
        )
        .await;
        // Members too: their memberships are indexed by subtree the same way.
        let m = member(
            app,
            first.users[0],
            org,
            &first.h,
            BuiltinRole::Staff,
            &format!("b{level}@north.example"),
        )
        .await;
        moved_members.push(m);
        branch.push(org);
    }
    let (b2, b3) = (branch[1], branch[2]);
    let drift = || async {
        let mut tx = app.store().read().await.unwrap();
        let drift = tx.scope_drift().await.unwrap();
        tx.finish().await.unwrap();
        drift
    };
    assert_eq!(drift().await, Vec::<String>::new());
    // b3 (with b4) up under the root: their devices leave b2's subtree; then
    // back: they join it again.
    for to in [root, b2] {
        app.move_org(&admin, b3, to, true).await.unwrap();
        assert_eq!(
            drift().await,
            Vec::<String>::new(),
            "after moving under {to}"
        );
    }
    // b3 deleted, its device and b4 moved up into b2.
    let deleted = app
        .delete_org(&admin, b3, true, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        (
            deleted.moved.suborgs,
            deleted.moved.users,
            deleted.moved.devices
        ),
        (1, 1, 1),
        "b4, b3's member and its device moved up: {deleted:?}"
    );
    assert_eq!(drift().await, Vec::<String>::new());
    let mut tx = app.store().read().await.unwrap();
    let devices = tx.all_devices().await.unwrap();
    tx.finish().await.unwrap();
    // From the new branch to the member created last, of a deepest-level
    // org of another branch.
    let receiver = *first.users.last().unwrap();
    let mut tx = app.store().read().await.unwrap();
    let receiver_org = tx.principal(receiver).await.unwrap().unwrap().memberships[0]
        .org
        .clone();
    tx.finish().await.unwrap();
    let travelling = devices
        .iter()
        .find(|d| d.org.id() == b2)
        .expect("a device of the new branch");
    assert!(!receiver_org.ids().contains(&b2));
    app.transfer_device(
        &admin,
        travelling.id,
        &arbor_app::TransferTo::User(receiver),
        false,
    )
    .await
    .unwrap();
    assert_eq!(drift().await, Vec::<String>::new());
    let first = World {
        users: first.users.iter().copied().chain(moved_members).collect(),
        orgs: first.orgs.iter().copied().chain([b2, branch[3]]).collect(),
        ..first
    };
    check_every_actor(app, &first, &second).await;
}

async fn check_every_actor(app: &App, first: &World, second: &World) {
    let mut tx = app.store().read().await.unwrap();
    let devices = tx.all_devices().await.unwrap();
    let orgs = tx.all_orgs().await.unwrap();
    let mut principals = Vec::new();
    for u in first.users.iter().chain(&second.users) {
        principals.push(tx.principal(*u).await.unwrap().unwrap());
    }
    tx.finish().await.unwrap();
    assert!(
        devices.len() >= 10,
        "a world worth checking: {} devices",
        devices.len()
    );
    assert!(orgs.len() == first.orgs.len() + second.orgs.len());
    let mut checked = 0;
    for principal in &principals {
        let caller = web(principal.user);
        let actor = principal.act_at_home().unwrap();
        check_actor(app, &caller, &actor, &devices, &orgs, &principals).await;
        checked += 1;
        // Acting in a sub-org of the home org (rule 2) narrows nothing here
        // but must agree as well; take the deepest reachable org.
        let deeper = orgs
            .iter()
            .filter(|o| actor.home().is_ancestor_of(&o.path))
            .max_by_key(|o| o.path.depth());
        if let Some(org) = deeper
            && let Ok(in_context) = principal.act_in(&org.path)
        {
            let caller = web(principal.user).in_org(org.id);
            check_actor(app, &caller, &in_context, &devices, &orgs, &principals).await;
            checked += 1;
        }
    }
    assert!(checked > principals.len());
}
