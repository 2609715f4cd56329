//! The API contract at the edge: every malformed request — whatever part of
//! it is malformed and whichever layer notices — answers RFC 9457 problem
//! details (`application/problem+json`) with its status, `type` and, where
//! one field is at fault, that field; the link pages answer HTML instead,
//! never axum's plain text.
//!
//! Requests go over a raw TCP connection so that each can be exactly as
//! malformed as the case needs (no content type, a chunked body, bytes that
//! are not UTF-8).

use crate::support::{Client, World, json};
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body limit the cases are run with.
const LIMIT: usize = 2048;

pub enum Body {
    None,
    /// Sent with its `Content-Length`.
    Sized(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, so no length is announced.
    Chunked(Vec<u8>),
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one HTTP/1.1 request as written and reads the whole answer.
pub async fn send(
    app: &TestApp,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &Body,
) -> Reply {
    let authority = app.base.trim_start_matches("http://");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = match body {
        Body::None => format!("{request}\r\n").into_bytes(),
        Body::Sized(data) => {
            let mut bytes = format!("{request}Content-Length: {}\r\n\r\n", data.len()).into_bytes();
            bytes.extend_from_slice(data);
            bytes
        }
        Body::Chunked(data) => {
            let mut bytes = format!("{request}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
            for chunk in data.chunks(1000) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            bytes
        }
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    // One write, so the server reads the request whole even where it answers
    // without reading the body.
    stream.write_all(&bytes).await.unwrap();
    bytes.clear();
    stream.read_to_end(&mut bytes).await.unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break body;
            }
            body.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

enum Expect {
    /// Problem details of this `type` slug, naming this field (if any).
    Problem(&'static str, Option<&'static str>),
    /// An HTML page (the link pages answer people).
    Html,
}

struct Case {
    what: &'static str,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: Body,
    status: u16,
    expect: Expect,
}

fn json_body(text: &str) -> (Vec<(&'static str, String)>, Body) {
    (
        vec![("Content-Type", "application/json".into())],
        Body::Sized(text.as_bytes().to_vec()),
    )
}

async fn every_malformed_request_answers_problem_details(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.body_limit_bytes = LIMIT).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let bearer = ("Authorization", format!("Bearer {}", admin.token));
    let big_json = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 * LIMIT)).into_bytes();
    let big_csv = format!("email,name,role,org\n{}", "a".repeat(2 * LIMIT)).into_bytes();
    let json_type = ("Content-Type", "application/json".to_owned());
    let csv_type = ("Content-Type", "text/csv".to_owned());
    let form_type = (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    );
    let mut cases = vec![
        // Path parameters that do not parse.
        Case {
            what: "a path id that is not a number",
            method: "GET",
            target: "/api/v1/orgs/abc".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("id")),
        },
        Case {
            what: "a path id out of range",
            method: "GET",
            target: "/api/v1/users/99999999999999999999".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("id")),
        },
        Case {
            what: "the second of two path parameters",
            method: "PUT",
            target: format!("/api/v1/orgs/{}/roles/admin/permissions", w.child.0),
            headers: vec![bearer.clone(), json_type.clone()],
            body: Body::Sized(br#"{"permissions":[]}"#.to_vec()),
            status: 400,
            expect: Expect::Problem("invalid-request", Some("role_id")),
        },
        Case {
            what: "a path parameter that is not UTF-8",
            method: "GET",
            target: "/api/v1/orgs/%FF".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("path")),
        },
        // Query strings.
        Case {
            what: "a query value of the wrong type",
            method: "GET",
            target: "/api/v1/orgs?limit=x".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("limit")),
        },
        Case {
            what: "an unknown query parameter",
            method: "GET",
            target: "/api/v1/users?sort=name".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("sort")),
        },
        Case {
            what: "a query flag that is not a boolean",
            method: "DELETE",
            target: format!(
                "/api/v1/orgs/{}?move_contents_to_parent=perhaps",
                w.sibling.0
            ),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("move_contents_to_parent")),
        },
        Case {
            what: "a required query parameter left out",
            method: "GET",
            target: format!("/api/v1/access/effective-permissions?org_id={}", w.root.0),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 400,
            expect: Expect::Problem("invalid-request", Some("user_id")),
        },
        // Methods a known path does not have.
        Case {
            what: "PUT on a collection",
            method: "PUT",
            target: "/api/v1/orgs".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 405,
            expect: Expect::Problem("method-not-allowed", None),
        },
        Case {
            what: "DELETE on the caller's account",
            method: "DELETE",
            target: "/api/v1/me".into(),
            headers: vec![bearer.clone()],
            body: Body::None,
            status: 405,
            expect: Expect::Problem("method-not-allowed", None),
        },
        Case {
            what: "POST on a health check",
            method: "POST",
            target: "/healthz".into(),
            headers: vec![],
            body: Body::None,
            status: 405,
            expect: Expect::Problem("method-not-allowed", None),
        },
        Case {
            what: "POST on the OpenAPI document",
            method: "POST",
            target: "/api/openapi.json".into(),
            headers: vec![],
            body: Body::None,
            status: 405,
            expect: Expect::Problem("method-not-allowed", None),
        },
        Case {
            what: "DELETE on a link page",
            method: "DELETE",
            target: "/password-reset".into(),
            headers: vec![],
            body: Body::None,
            status: 405,
            expect: Expect::Problem("method-not-allowed", None),
        },
        // Bodies over the limit, read or not.
        Case {
            what: "a JSON body over the limit",
            method: "PATCH",
            target: "/api/v1/me".into(),
            headers: vec![bearer.clone(), json_type.clone()],
            body: Body::Sized(big_json.clone()),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a chunked JSON body over the limit",
            method: "PATCH",
            target: "/api/v1/me".into(),
            headers: vec![bearer.clone(), json_type.clone()],
            body: Body::Chunked(big_json.clone()),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a body over the limit on a route that reads none",
            method: "POST",
            target: "/api/v1/auth/logout".into(),
            headers: vec![bearer.clone(), json_type.clone()],
            body: Body::Sized(big_json.clone()),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a body over the limit before authentication",
            method: "POST",
            target: "/api/v1/orgs".into(),
            headers: vec![json_type.clone()],
            body: Body::Sized(big_json.clone()),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a CSV body over the limit",
            method: "POST",
            target: "/api/v1/users/invitations/bulk".into(),
            headers: vec![bearer.clone(), csv_type.clone()],
            body: Body::Sized(big_csv.clone()),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a chunked CSV body over the limit",
            method: "POST",
            target: "/api/v1/users/invitations/bulk".into(),
            headers: vec![bearer.clone(), csv_type.clone()],
            body: Body::Chunked(big_csv),
            status: 413,
            expect: Expect::Problem("payload-too-large", None),
        },
        Case {
            what: "a chunked form over the limit",
            method: "POST",
            target: "/password-reset".into(),
            headers: vec![form_type.clone()],
            body: Body::Chunked(format!("token=t&password={}", "p".repeat(2 * LIMIT)).into_bytes()),
            status: 413,
            expect: Expect::Html,
        },
        // Content types.
        Case {
            what: "a JSON body sent as text/plain",
            method: "PATCH",
            target: "/api/v1/me".into(),
            headers: vec![bearer.clone(), ("Content-Type", "text/plain".into())],
            body: Body::Sized(br#"{"name":"Ada"}"#.to_vec()),
            status: 415,
            expect: Expect::Problem("unsupported-media-type", None),
        },
        Case {
            what: "a JSON body without a content type",
            method: "PATCH",
            target: "/api/v1/me".into(),
            headers: vec![bearer.clone()],
            body: Body::Sized(br#"{"name":"Ada"}"#.to_vec()),
            status: 415,
            expect: Expect::Problem("unsupported-media-type", None),
        },
        Case {
            what: "a content type that is no media type",
            method: "POST",
            target: "/api/v1/auth/login".into(),
            headers: vec![("Content-Type", "???".into())],
            body: Body::Sized(br#"{"email":"a@b.c","password":"p"}"#.to_vec()),
            status: 415,
            expect: Expect::Problem("unsupported-media-type", None),
        },
        Case {
            what: "a form posted to the JSON API",
            method: "POST",
            target: "/api/v1/auth/login".into(),
            headers: vec![form_type.clone()],
            body: Body::Sized(b"email=a%40b.c&password=p".to_vec()),
            status: 415,
            expect: Expect::Problem("unsupported-media-type", None),
        },
        Case {
            what: "JSON posted to the CSV import",
            method: "POST",
            target: "/api/v1/users/invitations/bulk".into(),
            headers: vec![bearer.clone(), json_type.clone()],
            body: Body::Sized(b"[]".to_vec()),
            status: 415,
            expect: Expect::Problem("unsupported-media-type", None),
        },
        Case {
            what: "JSON posted to a link page",
            method: "POST",
            target: "/invitations/accept".into(),
            headers: vec![json_type.clone()],
            body: Body::Sized(br#"{"token":"t","password":"p"}"#.to_vec()),
            status: 415,
            expect: Expect::Html,
        },
        // Bodies that do not parse.
        Case {
            what: "CSV that is not UTF-8",
            method: "POST",
            target: "/api/v1/users/invitations/bulk".into(),
            headers: vec![bearer.clone(), csv_type.clone()],
            body: Body::Sized(b"email,name,role,org\n\xff\xfe,x,User,1\n".to_vec()),
            status: 400,
            expect: Expect::Problem("invalid-request", Some("body")),
        },
        Case {
            what: "a form without its password",
            method: "POST",
            target: "/password-reset".into(),
            headers: vec![form_type.clone()],
            body: Body::Sized(b"token=t".to_vec()),
            status: 400,
            expect: Expect::Html,
        },
        Case {
            what: "a link with its token twice",
            method: "GET",
            target: "/invitations/accept?token=a&token=b".into(),
            headers: vec![],
            body: Body::None,
            status: 400,
            expect: Expect::Html,
        },
        // Authentication still comes first.
        Case {
            what: "a malformed path without a session",
            method: "GET",
            target: "/api/v1/orgs/abc".into(),
            headers: vec![],
            body: Body::None,
            status: 401,
            expect: Expect::Problem("unauthorized", None),
        },
    ];
    for (what, text, field) in [
        ("data after the JSON value", r#"{"name":"Ada"} x"#, "body"),
        (
            "a second JSON value",
            r#"{"name":"Ada"}{"name":"Bob"}"#,
            "body",
        ),
        ("JSON cut short", r#"{"name":"Ada""#, "body"),
        ("an empty JSON body", "", "body"),
        ("a JSON field of the wrong type", r#"{"name":7}"#, "name"),
        (
            "an unknown JSON field",
            r#"{"name":"Ada","role":"Admin"}"#,
            "role",
        ),
    ] {
        let (mut headers, body) = json_body(text);
        headers.push(bearer.clone());
        cases.push(Case {
            what,
            method: "PATCH",
            target: "/api/v1/me".into(),
            headers,
            body,
            status: 400,
            expect: Expect::Problem("invalid-request", Some(field)),
        });
    }
    for case in &cases {
        let reply = send(&app, case.method, &case.target, &case.headers, &case.body).await;
        let what = case.what;
        let content_type = reply.header("content-type").unwrap_or_default();
        assert_eq!(
            reply.status,
            case.status,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        match case.expect {
            Expect::Problem(slug, field) => {
                assert_eq!(content_type, "application/problem+json", "{what}");
                let problem = reply.json();
                assert_eq!(
                    problem["type"],
                    format!("urn:arbor:problem:{slug}"),
                    "{what}"
                );
                assert_eq!(problem["status"], case.status, "{what}");
                assert!(problem["title"].is_string(), "{what}: {problem}");
                assert!(problem["request_id"].is_string(), "{what}: {problem}");
                if let Some(field) = field {
                    assert_eq!(problem["field"], field, "{what}: {problem}");
                }
                if case.status == 405 {
                    assert!(reply.header("allow").is_some(), "{what}: an Allow header");
                }
            }
            Expect::Html => assert!(
                content_type.starts_with("text/html"),
                "{what}: {content_type}"
            ),
        }
    }
    // Nothing above changed anything: the admin's session and name are intact.
    let me = json(admin.get("/api/v1/me").await, 200).await;
    assert_eq!(me["name"], "root-admin");
    json(
        admin.get(&format!("/api/v1/orgs/{}", w.sibling.0)).await,
        200,
    )
    .await;
}

both_engines!(every_malformed_request_answers_problem_details);
