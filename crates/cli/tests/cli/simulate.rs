//! `arbor simulate` against a real server: it provisions devices of a
//! template, keeps their tokens, sends each datastream values of its type
//! that the device API stores, and a second run drives the same devices.
//! Bad input ends with one readable line and exit status 1.

use super::first_run::{PASSWORD, Server, arbor, finished, init, sqlite_url};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const ADMIN: &str = "a@heat.test";

/// A server with a hierarchy (`arbor init`), the Admin's session and a
/// Boiler template enabled for the root org.
struct World {
    dir: tempfile::TempDir,
    server: Server,
    http: reqwest::Client,
    session: String,
    template: i64,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir.path().join("arbor.db"));
        init(&url);
        let server = Server::start(arbor(&url, &["serve", "--bind", "127.0.0.1:0"]));
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"email": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = login["token"].as_str().unwrap().to_owned();
        let created = http
            .post(format!("{}/api/v1/device-templates", server.base))
            .bearer_auth(&session)
            .json(&json!({"name": "Boiler", "datastreams": [
                {"pin": 1, "name": "Temperature", "value_type": "double", "min": 0, "max": 120,
                 "units": "°C", "decimals": 1},
                {"pin": 2, "name": "Mode", "value_type": "enum",
                 "enum_values": ["off", "eco", "comfort"]},
                {"pin": 3, "name": "Pressure", "value_type": "integer", "min": 0, "max": 6},
                {"pin": 7, "name": "Status", "value_type": "string"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let template = created.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        let enabled = http
            .put(format!(
                "{}/api/v1/device-templates/{template}/orgs/1",
                server.base
            ))
            .bearer_auth(&session)
            .send()
            .await
            .unwrap();
        assert!(enabled.status().is_success(), "{}", enabled.status());
        World {
            dir,
            server,
            http,
            session,
            template,
        }
    }

    /// `arbor simulate` against this server as the Admin, with `password`.
    async fn simulate(&self, password: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ARBOR_") {
                command.env_remove(key);
            }
        }
        command
            .args(["simulate", "--server", &self.server.base, "--email", ADMIN])
            .args(args)
            .env("ARBOR_PASSWORD", password)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || finished(command, Duration::from_secs(60)))
            .await
            .unwrap()
    }

    async fn device_names(&self) -> Vec<String> {
        let page: Value = self
            .http
            .get(format!("{}/api/v1/devices", self.server.base))
            .bearer_auth(&self.session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn current_values(&self, token: &str) -> Value {
        let answer = self
            .http
            .get(format!(
                "{}/external/api/getAll?token={token}",
                self.server.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }
}

fn out(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The number before `label` in the summary (`90 requests sent`).
fn counted(summary: &str, label: &str) -> u64 {
    let before = summary
        .split(label)
        .next()
        .filter(|b| b.len() < summary.len())
        .unwrap_or_else(|| panic!("no {label:?} in {summary}"));
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

fn tokens_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn simulated_devices_store_values_of_each_type_and_a_second_run_reuses_them() {
    let world = World::new().await;
    let tokens_file = world.dir.path().join("tokens");
    let file = tokens_file.to_str().unwrap();
    let run = |devices: &'static str, secs: &'static str| {
        let template = world.template.to_string();
        let world = &world;
        async move {
            let args = [
                "--template",
                &template,
                "--devices",
                devices,
                "--rate",
                "30",
                "--duration",
                secs,
                "--tokens",
                file,
            ];
            world.simulate(PASSWORD, &args).await
        }
    };

    let output = run("3", "3").await;
    let (summary, said) = out(&output);
    assert!(output.status.success(), "{summary}{said}");
    // 30 requests/s for 3 s: 90 requests, every one stored (a request the
    // schedule could not send on time would be counted as missed instead).
    let (sent, stored) = (
        counted(&summary, " requests sent"),
        counted(&summary, " stored"),
    );
    assert_eq!(sent + counted(&summary, " missed"), 90, "{summary}");
    assert!(sent >= 80 && stored == sent, "{summary}");
    assert_eq!(counted(&summary, " failed"), 0, "{summary}");
    assert!(summary.contains("latency: p50 "), "{summary}");
    assert!(said.contains("provisioned 3 devices"), "{said}");

    let tokens = tokens_in(&tokens_file);
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    for token in &tokens {
        let values = world.current_values(token).await;
        let temperature = values["v1"].as_f64().unwrap_or_else(|| panic!("{values}"));
        assert!((0.0..=120.0).contains(&temperature), "{values}");
        assert_eq!(
            (temperature * 10.0).round() / 10.0,
            temperature,
            "one decimal: {values}"
        );
        assert!(
            ["off", "eco", "comfort"].contains(&values["v2"].as_str().unwrap()),
            "{values}"
        );
        let pressure = values["v3"].as_f64().unwrap();
        assert!(pressure.fract() == 0.0 && (0.0..=6.0).contains(&pressure));
        assert!(!values["v7"].as_str().unwrap().is_empty(), "{values}");
    }
    let mut names = world.device_names().await;
    names.sort();
    assert_eq!(names, ["Boiler sim 1", "Boiler sim 2", "Boiler sim 3"]);

    // Again with the same file: the same three devices, nothing provisioned.
    let output = run("3", "1").await;
    let (summary, said) = out(&output);
    assert!(output.status.success(), "{summary}{said}");
    assert!(said.contains("reusing 3 devices"), "{said}");
    assert!(counted(&summary, " stored") > 0, "{summary}");
    assert_eq!(tokens_in(&tokens_file), tokens);
    assert_eq!(world.device_names().await.len(), 3);

    // One more device than the file holds: the fourth is provisioned and
    // appended after the three.
    let output = run("4", "1").await;
    let (summary, said) = out(&output);
    assert!(output.status.success(), "{summary}{said}");
    assert!(said.contains("provisioned 1 more"), "{said}");
    let four = tokens_in(&tokens_file);
    assert_eq!((four.len(), &four[..3]), (4, &tokens[..]));
    assert_eq!(world.device_names().await.len(), 4);
}

#[tokio::test]
async fn bad_input_ends_with_one_readable_line_and_exit_status_1() {
    let world = World::new().await;
    let template = world.template.to_string();
    let refused = |output: &Output| {
        let (stdout, stderr) = out(output);
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line: {stderr}"));
        error.to_owned()
    };

    let output = world
        .simulate("not the password", &["--template", &template])
        .await;
    let error = refused(&output);
    assert!(
        error.contains(&format!("cannot log in as {ADMIN}"))
            && error.contains("invalid email or password"),
        "{error}"
    );

    let error = refused(&world.simulate(PASSWORD, &["--template", "999"]).await);
    assert!(
        error.contains("device template 999 does not exist"),
        "{error}"
    );

    // A token the server does not know (its device deleted, say).
    let stale = world.dir.path().join("stale");
    std::fs::write(&stale, "not-a-device-token\n").unwrap();
    let args = ["--template", &template, "--tokens", stale.to_str().unwrap()];
    let error = refused(&world.simulate(PASSWORD, &args).await);
    assert!(
        error.contains("refused") && error.contains("Invalid token."),
        "{error}"
    );
    assert!(world.device_names().await.is_empty());

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    command
        .args(["simulate", "--server", &nowhere, "--email", ADMIN])
        .args(["--template", &template])
        .env("ARBOR_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || finished(command, Duration::from_secs(30)))
        .await
        .unwrap();
    let error = refused(&output);
    assert!(
        error.contains(&format!("cannot reach the Arbor server at {nowhere}/")),
        "{error}"
    );
}
