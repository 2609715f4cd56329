//! A login flood against the real binary leaves its memory bounded: 200
//! failing logins at once (each would hold 19 MiB of argon2 memory if they
//! all ran) keep `arbor serve` well under 300 MB resident. The bound is read
//! from the server's own `process_resident_memory_bytes` on `/metrics` when
//! it serves that metric, and always from the kernel's peak (`VmHWM` in
//! `/proc/<pid>/status`). A bound, not a timing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const LIMIT_BYTES: u64 = 300 * 1024 * 1024;

/// `arbor serve` on a free port over a fresh SQLite file, with the per-client
/// throttle out of the way (every attempt must reach the hashing queue) and
/// its base URL once it listens.
fn serve(url: &str) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ARBOR_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(["--database-url", url, "serve", "--bind", "127.0.0.1:0"])
        .env("ARBOR_LOG", "info")
        .env("ARBOR_THROTTLE__CLIENT_FREE_FAILURES", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("arbor serve ended before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `process_resident_memory_bytes` from the server's `/metrics`, if served.
async fn metric_bytes(http: &reqwest::Client, base: &str) -> Option<u64> {
    let response = http.get(format!("{base}/metrics")).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response.text().await.ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes"))?;
    let value: f64 = line.split_whitespace().last()?.parse().ok()?;
    Some(value as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failing_logins_keeps_the_server_under_300_mb() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
    let (mut server, base) = serve(&url);
    let pid = server.id();
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (http, base) = (http.clone(), base.clone());
        tasks.spawn(async move {
            let response = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": format!("flood{i}@x.test"), "password": "not the password"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry = response.headers().contains_key("retry-after");
            (status, retry)
        });
    }
    let answers = tasks.join_all().await;
    let peak = status_bytes(pid, "VmHWM").expect("no /proc/<pid>/status");
    let metric = metric_bytes(&http, &base).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let count = |status| answers.iter().filter(|(s, _)| *s == status).count();
    eprintln!(
        "200 failing logins at once: {} answered 401, {} answered 503; peak resident {} MiB",
        count(401),
        count(503),
        peak / 1024 / 1024
    );
    // Every attempt was verified (401) or refused at once (503, Retry-After).
    for (status, retry) in &answers {
        assert!(
            *status == 401 || (*status == 503 && *retry),
            "unexpected answer {status}"
        );
    }
    assert!(
        answers.iter().any(|(s, _)| *s == 401),
        "nothing was verified"
    );
    assert!(
        peak < LIMIT_BYTES,
        "peak resident memory {} MiB",
        peak / 1024 / 1024
    );
    if let Some(resident) = metric {
        assert!(
            resident < LIMIT_BYTES,
            "process_resident_memory_bytes {resident}"
        );
    }
}
