//! Explain, check and who-can agree with what the API actually does, on a
//! generated world: a random tree (depth ≤ 4) with random members and roles,
//! random role sets per org (with and without switch_to_suborgs) and random
//! devices. For every user and every org, the status of real requests
//! (`PATCH /orgs/{id}` needs organizations.settings, `GET
//! /orgs/{id}/permissions` needs roles.view) must match the explained outcome
//! (allowed → 2xx, forbidden → 403, hidden → 404), `check` must say the same,
//! and who-can must list exactly the users the API let through (for orgs,
//! devices and `users.edit` on members). Devices are
//! compared with the device-view use case (the device API is another issue's).

use crate::support::*;
use arbor_app::model::NewOrg;
use arbor_core::{DeviceId, OrgId, OrgType, UserId};
use arbor_testkit::Rng;
use arbor_testkit::{Engine, TestApp, both_engines};
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeSet;

both_engines!(explain_check_and_who_can_agree_with_the_api_on_a_generated_world);

const POOL: [&str; 10] = [
    "organizations.settings",
    "organizations.switch_to_suborgs",
    "roles.view",
    "roles.edit",
    "users.view",
    "org_devices.view",
    "own_devices.view",
    "own_devices.control",
    "org_devices.control",
    "templates.view",
];

fn outcome_status(outcome: &str) -> u16 {
    match outcome {
        "allowed" => 200,
        "forbidden" => 403,
        _ => 404,
    }
}

async fn explain_check_and_who_can_agree_with_the_api_on_a_generated_world(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(&app).await;
    let core = app.app();
    let admin = cli(w.root_admin);
    let mut rng = Rng(0x5EED_0005);
    // A random tree under the world's fixed one.
    let mut orgs: Vec<(OrgId, usize)> =
        vec![(w.root, 1), (w.child, 2), (w.grandchild, 3), (w.sibling, 2)];
    for i in 0..6 {
        let candidates: Vec<(OrgId, usize)> =
            orgs.iter().copied().filter(|(_, d)| *d < 4).collect();
        let (parent, depth) = candidates[rng.below(candidates.len())];
        let org = core
            .create_suborg(
                &admin,
                parent,
                &NewOrg::named(format!("Gen {i}"), OrgType::Business),
            )
            .await
            .unwrap();
        core.enable_device_template(&admin, org.id, w.template)
            .await
            .unwrap();
        orgs.push((org.id, depth + 1));
    }
    // Random sets for Staff and User in random orgs (Admin keeps everything).
    for (org, _) in &orgs {
        for kind in [
            arbor_core::BuiltinRole::Staff,
            arbor_core::BuiltinRole::User,
        ] {
            if rng.chance(60) {
                let set: Vec<arbor_core::Permission> = POOL
                    .iter()
                    .filter(|_| rng.chance(40))
                    .map(|id| id.parse().unwrap())
                    .collect();
                core.set_role_permissions(&admin, *org, w.role(kind), set.into_iter().collect())
                    .await
                    .unwrap();
            }
        }
    }
    // Random members of the generated orgs.
    let mut users: Vec<(UserId, String)> = Vec::new();
    for (place_org, place) in w.places() {
        if place_org == w.other {
            continue;
        }
        for kind in KINDS {
            let email = email(kind, place);
            users.push((user_id(&app, &email).await, email));
        }
    }
    for i in 0..8 {
        let (org, _) = orgs[4 + rng.below(orgs.len() - 4)];
        let kind = KINDS[rng.below(3)];
        let email = format!("gen{i}@gen.test");
        let id = core
            .add_member(
                &admin,
                org,
                &arbor_app::NewMember {
                    user: new_user(&email),
                    role: w.role(kind),
                },
            )
            .await
            .unwrap();
        users.push((id, email));
    }
    users.push((w.root_admin, "admin@root.test".into()));
    // Random devices, owned by a member of their org or by nobody.
    let mut devices: Vec<DeviceId> = Vec::new();
    for i in 0..12 {
        let (org, _) = orgs[1 + rng.below(orgs.len() - 1)];
        let mut members = Vec::new();
        for (id, _) in &users {
            let mut tx = app.db.store().read().await.unwrap();
            if tx.member_role(*id, org).await.unwrap().is_some() {
                members.push(*id);
            }
            tx.finish().await.unwrap();
        }
        let owner =
            (!members.is_empty() && rng.chance(70)).then(|| members[rng.below(members.len())]);
        devices.push(w.device(&app, org, owner, &format!("Device {i}")).await);
    }

    let root = app.login("admin@root.test", PASSWORD).await;
    let mut compared = 0;
    // Every kind of answer must occur, or the comparison proves little.
    let mut statuses = BTreeSet::new();
    for (org, _) in &orgs {
        let o = org.0;
        for (permission, method, path) in [
            (
                "organizations.settings",
                Method::PATCH,
                format!("/api/v1/orgs/{o}"),
            ),
            (
                "roles.view",
                Method::GET,
                format!("/api/v1/orgs/{o}/permissions"),
            ),
        ] {
            let mut let_through = BTreeSet::new();
            for (user, email) in &users {
                let token = app.login(email, PASSWORD).await;
                let body = (method == Method::PATCH).then(|| json!({}));
                let actual = call(&app, method.clone(), &path, &token, None, body)
                    .await
                    .status;
                let why = explain_org(&app, &root, *user, permission, *org).await;
                assert_eq!(why.status, 200, "{why:?}");
                let outcome = why.body["decision"]["outcome"].as_str().unwrap().to_owned();
                assert_eq!(
                    actual,
                    outcome_status(&outcome),
                    "{email} {method} {path}: explain says {}",
                    why.body["explanation"]
                );
                let check = post(
                    &app,
                    "/api/v1/access/check",
                    &root,
                    json!({ "questions": [{ "user_id": user.0, "permission": permission, "org_id": o }] }),
                )
                .await;
                assert_eq!(check.body["answers"][0]["outcome"], outcome.as_str());
                if actual == 200 {
                    let_through.insert(user.0);
                }
                statuses.insert((permission, actual));
                compared += 1;
            }
            let listed: BTreeSet<i64> =
                who_can(&app, &root, &format!("permission={permission}&org_id={o}"))
                    .await
                    .into_iter()
                    .collect();
            assert_eq!(listed, let_through, "who can {permission} on org {o}");
        }
    }
    // Acting in another org by header: the request and the explained
    // decision with that context agree (rules 2 and 8 included).
    for (org, _) in &orgs {
        let o = org.0;
        for (user, email) in &users {
            let token = app.login(email, PASSWORD).await;
            let path = format!("/api/v1/orgs/{o}/permissions");
            let actual = call(&app, Method::GET, &path, &token, Some(*org), None)
                .await
                .status;
            let why = post(
                &app,
                "/api/v1/access/explain",
                &root,
                json!({ "user_id": user.0, "context_org_id": o, "permission": "roles.view", "org_id": o }),
            )
            .await;
            let outcome = why.body["decision"]["outcome"].as_str().unwrap();
            assert_eq!(
                actual,
                outcome_status(outcome),
                "{email} in org {o}: {}",
                why.body["explanation"]
            );
            statuses.insert(("context", actual));
            compared += 1;
        }
    }
    // User management: "may U edit V?" against PATCH /users/{V} (same name,
    // so nothing changes), for a few targets.
    for (target, target_email) in users.iter().step_by(3) {
        let name = target_email.split('@').next().unwrap();
        let mut let_through = BTreeSet::new();
        for (user, email) in &users {
            let token = app.login(email, PASSWORD).await;
            let path = format!("/api/v1/users/{}", target.0);
            let actual = call(
                &app,
                Method::PATCH,
                &path,
                &token,
                None,
                Some(json!({ "name": name })),
            )
            .await
            .status;
            let why = post(
                &app,
                "/api/v1/access/explain",
                &root,
                json!({ "user_id": user.0, "permission": "users.edit", "target_user_id": target.0 }),
            )
            .await;
            assert_eq!(why.status, 200, "{why:?}");
            let outcome = why.body["decision"]["outcome"].as_str().unwrap();
            let want = match outcome {
                "allowed" => 204,
                other => outcome_status(other),
            };
            assert_eq!(
                actual, want,
                "{email} edits {target_email}: {}",
                why.body["explanation"]
            );
            statuses.insert(("users.edit", actual));
            if actual == 204 {
                let_through.insert(user.0);
            }
            compared += 1;
        }
        let listed: BTreeSet<i64> = who_can(
            &app,
            &root,
            &format!("permission=users.edit&target_user_id={}", target.0),
        )
        .await
        .into_iter()
        .collect();
        assert_eq!(listed, let_through, "who can edit {target_email}");
    }
    let mut seen_by = Vec::new();
    for device in &devices {
        let mut let_through = BTreeSet::new();
        for (user, email) in &users {
            let seen = core.get_device(&cli(*user), *device).await.is_ok();
            let why = explain_device(&app, &root, *user, "view", *device).await;
            assert_eq!(
                why.body["allowed"], seen,
                "{email} views device {device}: {}",
                why.body["explanation"]
            );
            if seen {
                let_through.insert(user.0);
            }
            seen_by.push((*user, *device, seen));
            compared += 1;
        }
        let listed: BTreeSet<i64> =
            who_can(&app, &root, &format!("action=view&device_id={}", device.0))
                .await
                .into_iter()
                .collect();
        assert_eq!(listed, let_through, "who can view device {device}");
    }
    // One batch of questions (facts prefetched) answers as the single ones did,
    // and questions about what does not exist answer not_found in place.
    let batch: Vec<_> = seen_by.iter().take(98).collect();
    let mut questions: Vec<serde_json::Value> = batch
        .iter()
        .map(|(u, d, _)| json!({ "user_id": u.0, "action": "view", "device_id": d.0 }))
        .collect();
    questions.push(json!({ "user_id": w.root_admin.0, "action": "view", "device_id": 999_999 }));
    questions.push(json!({ "user_id": 999_999, "permission": "roles.view", "org_id": w.root.0 }));
    let reply = post(
        &app,
        "/api/v1/access/check",
        &root,
        json!({ "questions": questions }),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answers = reply.body["answers"].as_array().unwrap();
    assert_eq!(answers.len(), batch.len() + 2);
    for ((user, device, seen), answer) in batch.iter().zip(answers) {
        assert_eq!(
            answer["allowed"], *seen,
            "batch: {user} views {device}: {answer}"
        );
    }
    assert_eq!(answers[batch.len()]["error"], "not_found");
    assert_eq!(answers[batch.len() + 1]["error"], "not_found");
    assert!(compared > 300, "compared {compared}");
    for kind in [
        "organizations.settings",
        "roles.view",
        "context",
        "users.edit",
    ] {
        let want: BTreeSet<u16> = if kind == "users.edit" {
            [204, 403, 404]
        } else {
            [200, 403, 404]
        }
        .into_iter()
        .collect();
        let got: BTreeSet<u16> = statuses
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(got, want, "{kind}: every outcome occurs");
    }
}
