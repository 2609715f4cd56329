//! Input hygiene over HTTP: emails parsed and normalized, look-alikes
//! refused, names free of invisible characters and bounded, timezones from
//! the IANA list, unknown enum values answered with the accepted ones, and
//! refusals that name their object. Every refusal changes nothing.

use crate::support::{Client, World, json, problem};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::{Value, json};

async fn user_count(admin: &Client<'_>) -> usize {
    json(admin.get("/api/v1/users?limit=500").await, 200).await["items"]
        .as_array()
        .unwrap()
        .len()
}

fn invite(email: &str, name: &str, w: &World) -> Value {
    json!({"email": email, "name": name, "org_id": w.child.0, "role_id": w.user.0})
}

async fn emails_are_parsed_normalized_and_look_alikes_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    json(
        admin
            .post(
                "/api/v1/users/invitations",
                invite("admin@x.io", "Admin", &w),
            )
            .await,
        201,
    )
    .await;
    let before = user_count(&admin).await;
    for (email, says) in [
        ("Kim <kim@x.io>", "display name"),
        ("kim lee@x.io", "spaces"),
        ("kim\u{0007}@x.io", "control character"),
        ("ki\u{200B}m@x.io", "U+200B"),
        ("kim@x.io\u{202E}", "bidirectional"),
        ("kim@localhost", "not a valid email"),
        ("kim@@x.io", "not a valid email"),
    ] {
        let refused = problem(
            admin
                .post("/api/v1/users/invitations", invite(email, "Kim", &w))
                .await,
            400,
        )
        .await;
        assert_eq!(refused["field"], "email", "{email:?}: {refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains(says),
            "{email:?}: {refused}"
        );
    }
    // Fullwidth letters are NFKC-normalized to the existing address: a duplicate.
    let fullwidth = problem(
        admin
            .post(
                "/api/v1/users/invitations",
                invite("ａｄｍｉｎ@x.io", "Again", &w),
            )
            .await,
        409,
    )
    .await;
    assert!(
        fullwidth["detail"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{fullwidth}"
    );
    // A Cyrillic а makes a different address that looks the same: refused,
    // without naming the other account.
    let look_alike = problem(
        admin
            .post(
                "/api/v1/users/invitations",
                invite("\u{0430}dmin@x.io", "Fake", &w),
            )
            .await,
        409,
    )
    .await;
    let detail = look_alike["detail"].as_str().unwrap();
    assert!(detail.contains("look-alike"), "{look_alike}");
    assert!(!detail.contains("admin@x.io"), "{look_alike}");
    // Upper case is the same account, a look-alike in a CSV row too.
    let csv = "email,name,role,org\nADMIN@X.IO,Upper,User,{child}\n\u{0430}dmin@x.io,Fake,User,{child}\nKim <kim@x.io>,Kim,User,{child}\n"
        .replace("{child}", &w.child.0.to_string());
    let report = admin
        .request(reqwest::Method::POST, "/api/v1/users/invitations/bulk")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let report = json(report, 200).await;
    let errors: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["error"].as_str().unwrap_or(""))
        .collect();
    assert!(errors[0].contains("already exists"), "{report}");
    assert!(errors[1].contains("look-alike"), "{report}");
    assert!(errors[2].contains("display name"), "{report}");
    assert_eq!(
        user_count(&admin).await,
        before,
        "no refusal created a user"
    );
    // A malformed email at login fails exactly like a wrong password.
    let login = |email: &str| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong password here"}))
            .send()
    };
    let malformed = problem(login("Kim <root-admin@root.test>").await.unwrap(), 401).await;
    let wrong = problem(login("root-admin@root.test").await.unwrap(), 401).await;
    assert_eq!(malformed["detail"], wrong["detail"]);
    // The fullwidth spelling of a real account logs in as that account.
    let token = app
        .login("ｒｏｏｔ-ａｄｍｉｎ@root.test", arbor_testkit::PASSWORD)
        .await;
    assert!(!token.is_empty());
}

async fn names_refuse_invisible_characters_and_name_their_bound(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let roles_before = json(admin.get("/api/v1/roles").await, 200).await;
    for name in [
        "St\u{200B}aff",
        "St\u{200D}aff",
        "\u{FEFF}Staff",
        "St\u{2060}aff",
        "St\u{202E}aff",
        "St\u{2066}aff",
        "St\u{0085}aff",
        "St\naff",
    ] {
        let refused = problem(
            admin.post("/api/v1/roles", json!({"name": name})).await,
            400,
        )
        .await;
        assert_eq!(refused["field"], "name", "{name:?}: {refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains("U+"),
            "{name:?}: {refused}"
        );
    }
    let long = problem(
        admin
            .post("/api/v1/roles", json!({"name": "x".repeat(33)}))
            .await,
        400,
    )
    .await;
    assert!(long["detail"].as_str().unwrap().contains("32"), "{long}");
    assert_eq!(
        json(admin.get("/api/v1/roles").await, 200).await,
        roles_before
    );
    // Surrounding whitespace is trimmed.
    let trimmed = json(
        admin
            .post("/api/v1/roles", json!({"name": "  Installer  "}))
            .await,
        201,
    )
    .await;
    assert_eq!(trimmed["name"], "Installer");

    let org_before = json(admin.get(&format!("/api/v1/orgs/{}", w.child.0)).await, 200).await;
    for (body, field, says) in [
        (json!({"name": "Chi\u{202E}ld"}), "name", "U+202E"),
        (json!({"name": "x".repeat(129)}), "name", "128"),
        (
            json!({"description": "d".repeat(2001)}),
            "description",
            "2000",
        ),
        (json!({"contact": "a\u{200B}b"}), "contact", "U+200B"),
        (json!({"contact": "c".repeat(257)}), "contact", "256"),
    ] {
        let refused = problem(
            admin
                .patch(&format!("/api/v1/orgs/{}", w.child.0), body.clone())
                .await,
            400,
        )
        .await;
        assert_eq!(refused["field"], field, "{body}: {refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains(says),
            "{body}: {refused}"
        );
    }
    let created = problem(
        admin
            .post(
                "/api/v1/orgs",
                json!({"parent_id": w.root.0, "name": "New\u{2069}"}),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(created["field"], "name");
    let invited = problem(
        admin
            .post(
                "/api/v1/users/invitations",
                invite("kim@x.io", "Kim\u{200B}", &w),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(invited["field"], "name");
    let me_before = json(admin.get("/api/v1/me").await, 200).await;
    let profile = problem(
        admin
            .patch("/api/v1/me", json!({"name": "Me\u{202D}"}))
            .await,
        400,
    )
    .await;
    assert_eq!(profile["field"], "name");
    assert_eq!(
        json(admin.get(&format!("/api/v1/orgs/{}", w.child.0)).await, 200).await,
        org_before,
        "no refusal changed the org"
    );
    assert_eq!(
        json(admin.get("/api/v1/me").await, 200).await,
        me_before,
        "nor the profile"
    );
}

async fn timezones_come_from_the_iana_list(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let path = format!("/api/v1/orgs/{}", w.child.0);
    for zone in ["Mars/Olympus", "CEST", "Europe/Berlin\u{200B}", ""] {
        let refused = problem(admin.patch(&path, json!({"timezone": zone})).await, 400).await;
        assert_eq!(refused["field"], "timezone", "{zone:?}: {refused}");
        let detail = refused["detail"].as_str().unwrap();
        assert!(detail.contains("e.g. Europe/Berlin"), "{refused}");
        assert!(detail.len() < 120, "no list of every zone: {detail}");
    }
    assert_eq!(json(admin.get(&path).await, 200).await["timezone"], "UTC");
    let created = problem(
        admin
            .post(
                "/api/v1/orgs",
                json!({"parent_id": w.root.0, "name": "Berlin", "timezone": "Berlin"}),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(created["field"], "timezone");
    // Any case is accepted and stored as the database spells it.
    json(
        admin
            .patch(&path, json!({"timezone": "europe/berlin"}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        json(admin.get(&path).await, 200).await["timezone"],
        "Europe/Berlin"
    );
}

async fn unknown_enum_values_list_the_accepted_ones(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let status = problem(admin.get("/api/v1/users?status=gone").await, 400).await;
    assert_eq!(status["field"], "status");
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains("expected one of: pending, active, suspended"),
        "{status}"
    );
    let org_type = problem(
        admin
            .post(
                "/api/v1/orgs",
                json!({"parent_id": w.root.0, "name": "Castle", "type": "castle"}),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(org_type["field"], "type");
    assert!(
        org_type["detail"]
            .as_str()
            .unwrap()
            .contains("BUSINESS, PERSONAL, BRANCH"),
        "{org_type}"
    );
    let units = problem(
        admin
            .patch(
                &format!("/api/v1/orgs/{}", w.child.0),
                json!({"unit_system": "cubits"}),
            )
            .await,
        400,
    )
    .await;
    assert!(
        units["detail"]
            .as_str()
            .unwrap()
            .contains("expected one of: metric, imperial"),
        "{units}"
    );
    let action = problem(
        admin
            .get("/api/v1/access/who-can?action=fly&device_id=1")
            .await,
        400,
    )
    .await;
    assert_eq!(action["field"], "action");
    assert!(
        action["detail"]
            .as_str()
            .unwrap()
            .contains("view, control, edit"),
        "{action}"
    );
    // A JSON field with an unknown name lists the fields there are.
    let field = problem(
        admin
            .post("/api/v1/roles", json!({"name": "X", "kind": "custom"}))
            .await,
        400,
    )
    .await;
    assert!(
        field["detail"].as_str().unwrap().contains("expected"),
        "{field}"
    );
}

async fn conflicts_name_the_object_they_are_about(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let only = w
        .member(app.app(), w.child, w.admin, "only-admin@root.test")
        .await;
    let suspend = problem(
        admin
            .post(&format!("/api/v1/users/{}/suspend", only.0), json!({}))
            .await,
        409,
    )
    .await;
    let expected = format!("organization \"Child\" (id {})", w.child.0);
    assert!(
        suspend["detail"].as_str().unwrap().contains(&expected),
        "{suspend}"
    );
    let unsuspend = problem(
        admin
            .post(&format!("/api/v1/users/{}/unsuspend", only.0), json!({}))
            .await,
        409,
    )
    .await;
    assert!(
        unsuspend["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("(id {}) is active, not suspended", only.0)),
        "{unsuspend}"
    );
    let deleted = problem(
        admin.delete(&format!("/api/v1/orgs/{}", w.child.0)).await,
        409,
    )
    .await;
    assert!(
        deleted["detail"].as_str().unwrap().contains(&expected),
        "{deleted}"
    );
    let admin_role = problem(
        admin
            .delete(&format!(
                "/api/v1/roles/{}?replacement={}",
                w.admin.0, w.user.0
            ))
            .await,
        409,
    )
    .await;
    assert!(
        admin_role["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("role \"Admin\" (id {})", w.admin.0)),
        "{admin_role}"
    );
    let renamed = problem(
        admin
            .patch(
                &format!("/api/v1/roles/{}", w.user.0),
                json!({"name": "staff"}),
            )
            .await,
        409,
    )
    .await;
    assert!(
        renamed["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("role \"User\" (id {})", w.user.0)),
        "{renamed}"
    );
    // Someone outside the hierarchy learns no name: 404 without one.
    let other = Client::login(&app, "other-admin@other.test").await;
    let hidden = problem(
        other
            .post(&format!("/api/v1/users/{}/suspend", only.0), json!({}))
            .await,
        404,
    )
    .await;
    assert!(!hidden.to_string().contains("Child"), "{hidden}");
    assert_eq!(
        json(admin.get(&format!("/api/v1/users/{}", only.0)).await, 200).await["status"],
        "active",
        "nothing changed"
    );
}

both_engines!(
    emails_are_parsed_normalized_and_look_alikes_refused,
    names_refuse_invisible_characters_and_name_their_bound,
    timezones_come_from_the_iana_list,
    unknown_enum_values_list_the_accepted_ones,
    conflicts_name_the_object_they_are_about,
);
