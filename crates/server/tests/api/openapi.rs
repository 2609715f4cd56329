//! The OpenAPI document and its reference page.
//!
//! The generated document is compared with the committed snapshot
//! `crates/server/tests/openapi.json`, so every API change shows in review.
//! After an intended change: `ARBOR_UPDATE_SNAPSHOTS=1 cargo test -p arbor-server --test api openapi`.
//!
//! The served document is validated against the official OpenAPI 3.1 JSON
//! Schema (vendored in `tests/schemas/`, see its README) and checked for what
//! that schema cannot see: descriptions that say something, problem details on
//! every error, the `X-Arbor-Org` header and 401 on every authenticated
//! operation.

use arbor_testkit::{Engine, TestApp};
use serde_json::{Value, json};

fn snapshot_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.json")
}

#[test]
fn the_openapi_document_matches_the_snapshot() {
    let (_, openapi) = arbor_server::api::split();
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

async fn served_document() -> Value {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn openapi_3_1_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas/openapi-3.1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1() {
    let doc = served_document().await;
    let validator = openapi_3_1_schema();
    let errors = schema_errors(&validator, &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema does check: a response without a description is refused, as
    // every response of the document was before.
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let errors = schema_errors(&validator, &broken);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/paths/~1healthz/get/responses/200")),
        "{errors:#?}"
    );
}

/// `value`, or what its `$ref` (`#/components/…`) points to.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        None => value,
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} is not in the document"))
        }
    }
}

#[tokio::test]
async fn every_operation_keeps_the_edge_contract() {
    let doc = served_document().await;
    let mut operations = 0;
    let mut authenticated = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{at}");
            for (status, response) in responses {
                let response = resolve(&doc, response);
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.trim().is_empty(),
                    "{at} {status}: a description"
                );
                let code: u16 = status.parse().unwrap();
                if code >= 400 {
                    assert_eq!(
                        response["content"],
                        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}),
                        "{at} {status}: problem details"
                    );
                }
            }
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|p| p.iter().map(|p| resolve(&doc, p)).collect())
                .unwrap_or_default();
            let org_header = parameters.iter().find(|p| p["name"] == "X-Arbor-Org");
            if secured {
                authenticated += 1;
                let header = org_header.unwrap_or_else(|| panic!("{at}: X-Arbor-Org"));
                assert_eq!(header["in"], "header", "{at}");
                assert_eq!(header["required"], false, "{at}");
                assert_eq!(header["schema"]["type"], "integer", "{at}");
                for status in ["400", "401"] {
                    assert!(responses.contains_key(status), "{at}: declares {status}");
                }
                if method != "get" {
                    assert!(
                        responses.contains_key("403"),
                        "{at}: declares 403 (cross-site)"
                    );
                }
            } else {
                assert!(org_header.is_none(), "{at}: no session, no org context");
            }
            if operation.get("requestBody").is_some() {
                for status in ["413", "415"] {
                    assert!(responses.contains_key(status), "{at}: declares {status}");
                }
            }
        }
    }
    assert!(operations > 40, "{operations} operations");
    assert!(
        authenticated > 30,
        "{authenticated} authenticated operations"
    );
    // The operations that need no session.
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/setup", "post"),
        ("/api/v1/invitations/accept", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["security"].is_null(),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_reference_page_uses_no_remote_validator_and_no_page_loads_from_elsewhere() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let text = async |path: &str| {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    };
    let initializer = text("/api/docs/swagger-initializer.js").await;
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""url": "/api/openapi.json""#),
        "{initializer}"
    );
    for path in [
        "/api/docs/",
        "/api/docs/swagger-initializer.js",
        "/invitations/accept?token=t",
        "/password-reset?token=t",
    ] {
        let page = text(path).await;
        for remote in ["http://", "https://", "src=\"//", "href=\"//", "url(//"] {
            assert!(!page.contains(remote), "{path} references {remote}: {page}");
        }
    }
}
