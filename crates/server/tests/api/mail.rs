//! Mail goes out over SMTP when configured: a minimal SMTP peer on loopback
//! receives the invitation the API queued; the sent row keeps no link; two
//! workers on one database deliver a backlog once each.

use crate::support::{Client, World, json};
use arbor_server::config::{SmtpConfig, SmtpSecurity};
use arbor_server::mail;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn invitations_are_delivered_over_smtp_and_marked_sent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(arbor_testkit::smtp::sink(listener, tx));

    let admin = Client::login(&app, "root-admin@root.test").await;
    let invite = json!({"email": "mailme@root.test", "name": "Mail Me", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;

    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Arbor <arbor@arbor.test>".into(),
    };
    let worker = tokio::spawn(mail::run(
        app.app().clone(),
        Some(smtp),
        mail::MailSignal::default(),
    ));
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the mail worker delivers within 20 s")
        .unwrap();
    assert!(message.contains("To: mailme@root.test"), "{message}");
    assert!(
        message.contains("Subject: Your invitation to Child"),
        "{message}"
    );
    assert!(
        message.contains("http://arbor.test/invitations/accept?token="),
        "{message}"
    );
    // The delivery is recorded: the outbox no longer lists it as unsent.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut read = app.db.store().read().await.unwrap();
        let unsent = read.outbox(true, 10).await.unwrap();
        read.finish().await.unwrap();
        if unsent.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mail stays unsent"
        );
        tokio::task::yield_now().await;
    }
    worker.abort();
    let mut read = app.db.store().read().await.unwrap();
    let sent = read.outbox(false, 10).await.unwrap();
    read.finish().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].sent_at.is_some());
    assert_eq!(sent[0].body, "", "a sent mail keeps no link at rest");
}

fn sink_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Arbor <arbor@arbor.test>".into(),
    }
}

/// The recipient of a received message.
fn recipient(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_else(|| panic!("no To: in {message}"))
        .trim()
        .to_owned()
}

/// Two nodes (each its own pool, worker and SMTP relay) on one database
/// drain a backlog of `N` mails: every mail reaches exactly one relay, once.
async fn two_workers_on_one_database_deliver_each_mail_once(engine: Engine) {
    const N: usize = 40;
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let by = arbor_app::Caller::new(w.root_admin, arbor_app::model::ClientKind::Cli);
    let links = arbor_app::users::Links {
        base_url: "http://arbor.test".into(),
    };
    let policy = arbor_app::accounts::AccountPolicy::default();
    for i in 0..N {
        let invite = arbor_app::users::Invite {
            email: format!("node-mail-{i:02}@root.test"),
            name: format!("Node Mail {i}"),
            org: w.child,
            role: w.user,
        };
        app.app()
            .invite(&by, &invite, &links, &policy)
            .await
            .unwrap();
    }
    let nodes = [app.app().clone(), app.app_on_own_pool().await];
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, String)>();
    // Each node hands what its relay received on, tagged with the node.
    let mut workers = Vec::new();
    for (node, served) in nodes.into_iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (relay_tx, mut relay_rx) = mpsc::unbounded_channel();
        tokio::spawn(arbor_testkit::smtp::sink(listener, relay_tx));
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(message) = relay_rx.recv().await {
                let _ = tx.send((node, message));
            }
        });
        let delivery = mail::Delivery {
            batch: 3,
            ..mail::Delivery::default()
        };
        workers.push(tokio::spawn(mail::run_with(
            served,
            Some(sink_config(port)),
            delivery,
            mail::MailSignal::default(),
        )));
    }
    let mut received: Vec<(usize, String)> = Vec::new();
    while received.len() < N {
        let (node, message) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {N} mails arrived", received.len()))
            .unwrap();
        received.push((node, recipient(&message)));
    }
    // Every row is recorded sent, each after one attempt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let rows = loop {
        let mut read = app.db.store().read().await.unwrap();
        let rows = read.outbox(false, 1000).await.unwrap();
        read.finish().await.unwrap();
        if rows.iter().all(|m| m.sent_at.is_some()) {
            break rows;
        }
        assert!(std::time::Instant::now() < deadline, "rows stay unsent");
        tokio::task::yield_now().await;
    };
    for worker in workers {
        worker.abort();
    }
    // Nothing arrived after the last row was marked sent.
    while let Ok(extra) = rx.try_recv() {
        received.push((extra.0, recipient(&extra.1)));
    }
    let mut recipients: Vec<&str> = received.iter().map(|(_, to)| to.as_str()).collect();
    recipients.sort_unstable();
    let expected: Vec<String> = (0..N)
        .map(|i| format!("node-mail-{i:02}@root.test"))
        .collect();
    assert_eq!(recipients, expected, "each mail delivered exactly once");
    assert_eq!(rows.len(), N);
    assert!(rows.iter().all(|m| m.attempts == 1 && m.body.is_empty()));
    let per_node = [0, 1].map(|n| received.iter().filter(|(node, _)| *node == n).count());
    eprintln!("delivered per node: {per_node:?}");
}

/// A failing relay: the mail backs off, is tried again once due, and goes
/// out when the relay answers again.
async fn a_failed_delivery_backs_off_and_is_retried(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let admin = Client::login(&app, "root-admin@root.test").await;
    let invite = json!({"email": "retry@root.test", "name": "Retry", "org_id": w.child.0, "role_id": w.user.0});
    json(admin.post("/api/v1/users/invitations", invite).await, 201).await;
    // Nothing listens on this port: the connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let signal = mail::MailSignal::default();
    let worker = tokio::spawn(mail::run_with(
        app.app().clone(),
        Some(sink_config(port)),
        mail::Delivery::default(),
        signal.clone(),
    ));
    let unsent = async || {
        let mut read = app.db.store().read().await.unwrap();
        let rows = read.outbox(true, 10).await.unwrap();
        read.finish().await.unwrap();
        rows
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let failed = loop {
        let rows = unsent().await;
        if rows.first().is_some_and(|m| m.attempts > 0) {
            break rows[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no attempt was made");
        tokio::task::yield_now().await;
    };
    worker.abort();
    assert_eq!(failed.attempts, 1);
    assert!(failed.last_error.is_some());
    assert_eq!(
        failed.next_attempt_at,
        arbor_app::model::Clock::now_ms(app.clock()) + 30_000
    );
    assert!(failed.body.contains("token="), "kept until delivered");

    // Once due, a worker with a working relay delivers it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(arbor_testkit::smtp::sink(listener, tx));
    let worker = tokio::spawn(mail::run_with(
        app.app().clone(),
        Some(sink_config(port)),
        mail::Delivery::default(),
        signal.clone(),
    ));
    // Not before the back-off has passed.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    app.db.clock.advance(30_000);
    signal.wake();
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("delivered once due")
        .unwrap();
    assert_eq!(recipient(&message), "retry@root.test");
    worker.abort();
}

both_engines!(
    invitations_are_delivered_over_smtp_and_marked_sent,
    two_workers_on_one_database_deliver_each_mail_once,
    a_failed_delivery_backs_off_and_is_retried,
);
