//! Mail delivery from the outbox.
//!
//! Use cases queue mail in the `outbox` table inside their own transaction, so a
//! mail exists exactly when the change that caused it was committed. This
//! worker delivers it: through SMTP when configured; otherwise the mail stays in
//! the outbox (`arbor outbox` lists it) and is printed to the log once, so a
//! single-machine operator can still follow invitation and reset links.

use crate::config::{SmtpConfig, SmtpSecurity};
use arbor_app::App;
use arbor_app::model::MailRecord;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Wakes the worker when a use case queued mail.
#[derive(Clone, Default)]
pub struct MailSignal(Arc<Notify>);

impl MailSignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn smtp(config: &SmtpConfig) -> Result<Smtp, String> {
    let builder = match config.security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
        }
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &config.host,
        )),
    }
    .map_err(|e| format!("smtp: {e}"))?;
    let mut builder = builder
        .port(config.port)
        .timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let from = config
        .from
        .parse::<Mailbox>()
        .map_err(|e| format!("smtp.from: {e}"))?;
    Ok(Smtp {
        transport: builder.build(),
        from,
    })
}

async fn deliver(smtp: &Smtp, mail: &MailRecord) -> Result<(), String> {
    let to = mail
        .to
        .parse::<Mailbox>()
        .map_err(|e| format!("recipient: {e}"))?;
    let message = Message::builder()
        .from(smtp.from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .body(mail.body.clone())
        .map_err(|e| format!("message: {e}"))?;
    smtp.transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("send: {e}"))
}

/// Checks the SMTP settings without sending anything.
pub fn check_config(config: Option<&SmtpConfig>) -> Result<(), String> {
    config.map(smtp).transpose().map(|_| ())
}

/// Runs until the process ends.
pub async fn run(app: App, config: Option<SmtpConfig>, signal: MailSignal) {
    let smtp = match config.as_ref().map(smtp).transpose() {
        Ok(smtp) => smtp,
        Err(e) => {
            tracing::error!("mail delivery disabled: {e}");
            None
        }
    };
    let mut logged_up_to = 0i64;
    loop {
        if let Err(e) = pass(&app, smtp.as_ref(), &mut logged_up_to).await {
            tracing::warn!("mail delivery pass failed: {e}");
        }
        tokio::select! {
            _ = signal.0.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

async fn pass(
    app: &App,
    smtp: Option<&Smtp>,
    logged_up_to: &mut i64,
) -> Result<(), arbor_app::AppError> {
    let mut pending = app.outbox(true, 100).await?;
    pending.reverse();
    for mail in pending {
        match smtp {
            Some(smtp) => {
                if mail.attempts >= 10 {
                    continue;
                }
                let result = deliver(smtp, &mail).await;
                match result {
                    Ok(()) => app.mark_mail_sent(mail.id).await?,
                    Err(e) => {
                        tracing::warn!(mail = mail.id, "mail delivery failed: {e}");
                        app.mark_mail_failed(mail.id, &e).await?;
                    }
                }
            }
            None if mail.id > *logged_up_to => {
                tracing::info!(
                    mail = mail.id,
                    to = %mail.to,
                    subject = %mail.subject,
                    "no SMTP configured; the mail stays in the outbox (arbor outbox):\n{}",
                    mail.body
                );
                *logged_up_to = mail.id;
            }
            None => {}
        }
    }
    Ok(())
}
