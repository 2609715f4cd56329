//! The login throttle and the bounded password hashing, as clients see them:
//! bursts counted one by one, delays per (account, client) that never lock
//! the real user out, `X-Forwarded-For` believed only from trusted proxies,
//! a reset that unlocks, change-password throttled, 503 when hashing is
//! saturated, and counters shared by two nodes.
//!
//! Clients are told apart by `X-Forwarded-For` from the test's own address,
//! configured as a trusted proxy.

use crate::support::{Client, PASSWORD, World, problem, user_id};
use arbor_server::config::Config;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;

const ATTACKER: &str = "203.0.113.66";
const USER: &str = "198.51.100.7";

fn behind_proxy(c: &mut Config) {
    c.trusted_proxies = vec!["127.0.0.1".into()];
}

async fn login_from(
    app: &TestApp,
    base: &str,
    from: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.http
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `n` logins at once, all from `from`; the statuses, sorted.
async fn burst(app: &TestApp, from: &str, emails: Vec<String>, password: &str) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for email in emails {
        let (http, base, from, password) = (
            app.http.clone(),
            app.base.clone(),
            from.to_owned(),
            password.to_owned(),
        );
        tasks.spawn(async move {
            let response = http
                .post(format!("{base}/api/v1/auth/login"))
                .header("x-forwarded-for", from)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if status != 200 {
                problem(response, status).await;
            }
            status
        });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort_unstable();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn a_concurrent_burst_is_counted_one_by_one_and_the_real_user_still_logs_in(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.free_failures = 10;
    })
    .await;
    World::build(app.app()).await;
    let email = "root-admin@root.test";
    // Ten wrong passwords at once: each is counted before its hash runs.
    let first = burst(
        &app,
        ATTACKER,
        vec![email.to_owned(); 10],
        "wrong password!",
    )
    .await;
    assert_eq!(first, vec![401; 10]);
    let (pair, client) = app.app().login_counters(email, ATTACKER).await.unwrap();
    assert_eq!((pair.failures, client.failures), (10, 10));
    // Ten more at once: the tenth reservation set the delay; none slips past.
    let second = burst(
        &app,
        ATTACKER,
        vec![email.to_owned(); 10],
        "wrong password!",
    )
    .await;
    assert_eq!(
        second,
        vec![429; 10],
        "an attempt slipped past the throttle"
    );
    let (pair, _) = app.app().login_counters(email, ATTACKER).await.unwrap();
    assert_eq!(pair.failures, 10, "refused attempts are not verified");
    // The real user, from a client that has not failed, is not delayed; the
    // attacker, even with the right password, is.
    let real = login_from(&app, &app.base, USER, email, PASSWORD).await;
    assert_eq!(real.status(), 200);
    let attacker = login_from(&app, &app.base, ATTACKER, email, PASSWORD).await;
    assert!(retry_after(&attacker) >= 1);
    problem(attacker, 429).await;
}

async fn a_thousand_failures_from_one_address_only_slow_that_address(engine: Engine) {
    // Answered at once: 900 held refusals would take 45 s (the pause has its
    // own test below).
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.hold_ms = 0;
    })
    .await;
    let w = World::build(app.app()).await;
    w.member(app.app(), w.child, w.staff, "kim@root.test").await;
    let max_client_delay = app_config_client_delay();
    // 1,000 failures from one address, at 1,000 accounts (the real ones
    // among them), 20 at a time.
    let mut statuses = Vec::new();
    for chunk in 0..50 {
        let mut emails: Vec<String> = (0..20)
            .map(|i| format!("guess{}@root.test", chunk * 20 + i))
            .collect();
        if chunk == 0 {
            emails[0] = "root-admin@root.test".into();
            emails[1] = "kim@root.test".into();
        }
        statuses.extend(burst(&app, ATTACKER, emails, "wrong password!").await);
    }
    assert_eq!(statuses.len(), 1000);
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 429),
        1000,
        "{statuses:?}"
    );
    // The coarse per-client limit (100 free) then slowed the address.
    assert_eq!(count(&statuses, 401), 100);
    // No account is locked for anyone else.
    for email in ["root-admin@root.test", "kim@root.test"] {
        let from_elsewhere = login_from(&app, &app.base, USER, email, PASSWORD).await;
        assert_eq!(from_elsewhere.status(), 200, "{email} is locked out");
    }
    // Someone else behind that address is slowed, at most by the client's
    // cap, never locked out.
    let same_address = login_from(&app, &app.base, ATTACKER, "kim@root.test", PASSWORD).await;
    let wait = retry_after(&same_address);
    assert!((1..=max_client_delay).contains(&wait), "{wait}");
    problem(same_address, 429).await;
    app.clock()
        .advance(i64::try_from(max_client_delay * 1000).unwrap());
    let later = login_from(&app, &app.base, ATTACKER, "kim@root.test", PASSWORD).await;
    assert_eq!(later.status(), 200);
}

fn app_config_client_delay() -> u64 {
    Config::default().throttle.client_max_delay_secs
}

async fn forwarded_for_is_believed_only_from_a_trusted_proxy(engine: Engine) {
    let email = "root-admin@root.test";
    // Without trusted proxies the header is ignored: the peer is the client.
    let direct = TestApp::spawn_with(engine, |c| c.throttle.free_failures = 2).await;
    World::build(direct.app()).await;
    for from in ["192.0.2.1", "192.0.2.2"] {
        let r = login_from(&direct, &direct.base, from, email, "wrong password!").await;
        problem(r, 401).await;
    }
    let escaped = login_from(&direct, &direct.base, "192.0.2.3", email, PASSWORD).await;
    problem(escaped, 429).await;
    let (pair, _) = direct
        .app()
        .login_counters(email, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(pair.failures, 2);
    let (forged, _) = direct
        .app()
        .login_counters(email, "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(forged.failures, 0);
    direct.stop().await;

    // Behind a trusted proxy the client it names is the key, and what a
    // client writes to the left of the proxy's entry changes nothing.
    let proxied = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.free_failures = 2;
    })
    .await;
    World::build(proxied.app()).await;
    for _ in 0..2 {
        let r = login_from(&proxied, &proxied.base, ATTACKER, email, "wrong password!").await;
        problem(r, 401).await;
    }
    let prepended = format!("{USER}, {ATTACKER}");
    problem(
        login_from(&proxied, &proxied.base, &prepended, email, PASSWORD).await,
        429,
    )
    .await;
    let other = login_from(&proxied, &proxied.base, USER, email, PASSWORD).await;
    assert_eq!(other.status(), 200);
    let (pair, _) = proxied.app().login_counters(email, ATTACKER).await.unwrap();
    assert_eq!(pair.failures, 2);
}

async fn a_completed_password_reset_clears_the_delay(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.free_failures = 3;
    })
    .await;
    let w = World::build(app.app()).await;
    let kim = w.member(app.app(), w.child, w.staff, "kim@root.test").await;
    for _ in 0..3 {
        let r = login_from(&app, &app.base, USER, "kim@root.test", "wrong password!").await;
        problem(r, 401).await;
    }
    let delayed = login_from(&app, &app.base, USER, "kim@root.test", PASSWORD).await;
    problem(delayed, 429).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let asked = admin
        .post(
            &format!("/api/v1/users/{}/password-reset", kim.0),
            json!({}),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let token = app.mailed_token("kim@root.test").await;
    let done = app
        .http
        .post(app.url("/api/v1/password-reset/complete"))
        .json(&json!({"token": token, "password": "kim's fresh passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let (pair, _) = app
        .app()
        .login_counters("kim@root.test", USER)
        .await
        .unwrap();
    assert_eq!(pair.failures, 0);
    // Without the clock moving, the same client logs in at once.
    let after = login_from(
        &app,
        &app.base,
        USER,
        "kim@root.test",
        "kim's fresh passphrase",
    )
    .await;
    assert_eq!(after.status(), 200);
    assert_eq!(user_id(&app, "kim@root.test").await, kim);
}

async fn wrong_current_passwords_are_throttled_like_logins(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        c.throttle.free_failures = 3;
        c.throttle.base_delay_secs = 30;
    })
    .await;
    let w = World::build(app.app()).await;
    w.member(app.app(), w.child, w.staff, "kim@root.test").await;
    let kim = Client::login(&app, "kim@root.test").await;
    let change = |current: &'static str| {
        let kim = &kim;
        async move {
            kim.post(
                "/api/v1/me/password",
                json!({"current_password": current, "new_password": "kim's very own choice"}),
            )
            .await
        }
    };
    for _ in 0..3 {
        let wrong = problem(change("not my password").await, 400).await;
        assert_eq!(wrong["field"], "current_password");
    }
    let throttled = change(PASSWORD).await;
    assert_eq!(retry_after(&throttled), 30);
    problem(throttled, 429).await;
    // The same counter as the login's: logging in from there waits too.
    problem(
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "kim@root.test", "password": PASSWORD}))
            .send()
            .await
            .unwrap(),
        429,
    )
    .await;
    app.clock().advance(30_000);
    assert_eq!(change(PASSWORD).await.status(), 204);
}

async fn a_full_hash_queue_answers_503_with_retry_after(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.password_hashing.workers = 1;
        c.password_hashing.queue = 0;
        c.password_hashing.retry_after_secs = 2;
    })
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (http, base) = (app.http.clone(), app.base.clone());
        tasks.spawn(async move {
            let response = http
                .post(format!("{base}/api/v1/auth/login"))
                .header("x-forwarded-for", ATTACKER)
                .json(&json!({"email": format!("u{i}@flood.test"), "password": "wrong password!"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = problem(response, status).await;
            (status, retry, body)
        });
    }
    let answers = tasks.join_all().await;
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !refused.is_empty(),
        "24 logins at once on one worker, none refused"
    );
    for (_, retry, body) in &refused {
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(body["type"], "urn:arbor:problem:service-unavailable");
    }
    let verified = answers.iter().filter(|(s, _, _)| *s == 401).count();
    assert_eq!(verified + refused.len(), 24, "{answers:?}");
    // A refused request reserved nothing: the client counted only the
    // attempts whose password was verified.
    let (_, client) = app
        .app()
        .login_counters("u0@flood.test", ATTACKER)
        .await
        .unwrap();
    assert_eq!(usize::try_from(client.failures).unwrap(), verified);
}

async fn two_nodes_share_the_counters(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.free_failures = 3;
    })
    .await;
    World::build(app.app()).await;
    let node = app.second_node().await;
    let email = "root-admin@root.test";
    for base in [&app.base, &node.base, &node.base] {
        problem(
            login_from(&app, base, ATTACKER, email, "wrong password!").await,
            401,
        )
        .await;
    }
    for base in [&app.base, &node.base] {
        problem(login_from(&app, base, ATTACKER, email, PASSWORD).await, 429).await;
    }
    assert_eq!(
        login_from(&app, &node.base, USER, email, PASSWORD)
            .await
            .status(),
        200
    );
    node.stop().await;
}

both_engines!(
    a_concurrent_burst_is_counted_one_by_one_and_the_real_user_still_logs_in,
    a_thousand_failures_from_one_address_only_slow_that_address,
    forwarded_for_is_believed_only_from_a_trusted_proxy,
    a_completed_password_reset_clears_the_delay,
    wrong_current_passwords_are_throttled_like_logins,
    a_full_hash_queue_answers_503_with_retry_after,
    two_nodes_share_the_counters,
    a_refused_attempt_is_answered_after_the_pause,
);

async fn a_refused_attempt_is_answered_after_the_pause(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| {
        behind_proxy(c);
        c.throttle.free_failures = 1;
        c.throttle.base_delay_secs = 30;
        c.throttle.hold_ms = 400;
    })
    .await;
    let failed = login_from(
        &app,
        &app.base,
        ATTACKER,
        "nobody@root.test",
        "wrong password!",
    )
    .await;
    assert_eq!(failed.status(), 401);
    let start = std::time::Instant::now();
    let refused = login_from(
        &app,
        &app.base,
        ATTACKER,
        "nobody@root.test",
        "wrong password!",
    )
    .await;
    assert!(start.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(retry_after(&refused), 30);
    problem(refused, 429).await;
}
