//! Mail goes out over SMTP when configured: a minimal SMTP peer on loopback
//! receives the invitation the API queued.

use crate::support::{Client, World, json};
use arbor_server::config::{SmtpConfig, SmtpSecurity};
use arbor_server::mail;
use arbor_testkit::{Engine, TestApp, both_engines};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Accepts SMTP sessions and sends each message's text down the channel.
async fn smtp_peer(listener: TcpListener, received: mpsc::UnboundedSender<String>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let received = received.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 test ESMTP\r\n").await.unwrap();
            let mut data = None::<String>;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(body) = data.as_mut() {
                    if line == "." {
                        received.send(data.take().unwrap_or_default()).unwrap();
                        write.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        body.push_str(&line);
                        body.push('\n');
                    }
                    continue;
                }
                let verb = line
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 test\r\n",
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    }
                    _ => b"250 ok\r\n",
                };
                write.write_all(reply).await.unwrap();
            }
        });
    }
}

async fn invitations_are_delivered_over_smtp_and_marked_sent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let w = World::build(app.app()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(smtp_peer(listener, tx));

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
}

both_engines!(invitations_are_delivered_over_smtp_and_marked_sent);
