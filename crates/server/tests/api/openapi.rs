//! The OpenAPI document and its reference page.
//!
//! The generated document is compared with the committed snapshot
//! `crates/server/tests/openapi.json`, so every API change shows in review.
//! After an intended change: `ARBOR_UPDATE_SNAPSHOTS=1 cargo test -p arbor-server --test api openapi`.

use arbor_testkit::{Engine, TestApp};

fn snapshot_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.json")
}

#[test]
fn the_openapi_document_matches_the_snapshot() {
    let (_, openapi) = arbor_server::api::router().split_for_parts();
    let generated = openapi.to_pretty_json().unwrap() + "\n";
    let path = snapshot_path();
    if std::env::var("ARBOR_UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "the API changed: review the difference, then run \
         ARBOR_UPDATE_SNAPSHOTS=1 cargo test -p arbor-server --test api openapi"
    );
}

#[tokio::test]
async fn the_document_and_an_offline_reference_page_are_served() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let doc: serde_json::Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/auth/login",
        "/api/v1/users",
        "/api/v1/users/invitations",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let page = app.http.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    // Every asset the page loads is served by Arbor itself (no CDN).
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let response = app
            .http
            .get(app.url(&format!("/api/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }
    assert!(!html.contains("https://"), "no remote assets: {html}");
}
