//! Mail delivery from the outbox.
//!
//! Use cases queue mail in the `outbox` table inside their own transaction, so a
//! mail exists exactly when the change that caused it was committed. This
//! worker, one per node, delivers it through SMTP when configured: it claims
//! the oldest due rows with a lease (arbor-store's `mail` module), so with
//! several nodes on one database each mail goes out once; the whole backlog
//! drains, oldest first, in one pass; a failed attempt backs off
//! exponentially, up to [`Delivery::max_attempts`].
//!
//! **Secrets.** A mail body carries a one-time link, so it never reaches the
//! log. The store drops the body once the mail is sent. Without SMTP the
//! mail stays in the outbox for `arbor outbox` (the single-machine
//! operator's way to read an invitation link) and the log gets one line per
//! mail — id, recipient, subject — once, by whichever node saw it first, not
//! again at every start (`outbox.announced_at`).
//!
//! Each pass sets the `arbor_mail_queue_depth` gauge (unsent mail that will
//! still be tried).

use crate::config::{SmtpConfig, SmtpSecurity};
use arbor_app::App;
use arbor_app::model::{Claim, Failure, MailRecord};
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

/// How a worker takes and retries mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Rows claimed at a time.
    pub batch: i64,
    /// How long a claim holds its rows: long enough to deliver a batch
    /// (20 s SMTP timeout each); a node that dies releases them after it.
    pub lease_ms: i64,
    /// After this many failed attempts a mail stays undelivered (listed by
    /// `arbor outbox` with its last error).
    pub max_attempts: i64,
    /// The wait after the first failure; it doubles with each further one.
    pub first_retry_ms: i64,
    /// The longest wait between attempts.
    pub max_retry_ms: i64,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            batch: 10,
            lease_ms: 10 * 60 * 1000,
            max_attempts: 10,
            first_retry_ms: 30 * 1000,
            max_retry_ms: 60 * 60 * 1000,
        }
    }
}

impl Delivery {
    /// The wait before the next attempt of a mail that failed `failures`
    /// times (this one included).
    pub fn backoff_ms(&self, failures: i64) -> i64 {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_retry_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_retry_ms)
    }
}

/// This worker's name in `outbox.claimed_by`: unique per process.
fn node_name() -> String {
    format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple())
}

/// Runs until the process ends.
pub async fn run(app: App, config: Option<SmtpConfig>, signal: MailSignal) {
    run_with(app, config, Delivery::default(), signal).await;
}

/// [`run`] with its delivery settings given.
pub async fn run_with(
    app: App,
    config: Option<SmtpConfig>,
    delivery: Delivery,
    signal: MailSignal,
) {
    let smtp = match config.as_ref().map(smtp).transpose() {
        Ok(smtp) => smtp,
        Err(e) => {
            tracing::error!("mail delivery disabled: {e}");
            None
        }
    };
    let node = node_name();
    loop {
        if let Err(e) = pass(&app, smtp.as_ref(), &node, &delivery).await {
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
    node: &str,
    delivery: &Delivery,
) -> Result<(), arbor_app::AppError> {
    match smtp {
        Some(smtp) => deliver_backlog(app, smtp, node, delivery).await?,
        None => announce_backlog(app).await?,
    }
    let depth = app.mail_queue_depth(delivery.max_attempts).await?;
    metrics::gauge!("arbor_mail_queue_depth").set(depth as f64);
    Ok(())
}

/// Claims and delivers until nothing is due.
async fn deliver_backlog(
    app: &App,
    smtp: &Smtp,
    node: &str,
    delivery: &Delivery,
) -> Result<(), arbor_app::AppError> {
    loop {
        let claimed = app
            .claim_mail(Claim {
                node,
                batch: delivery.batch,
                lease_ms: delivery.lease_ms,
                max_attempts: delivery.max_attempts,
            })
            .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        for mail in claimed {
            let held = match deliver(smtp, &mail).await {
                Ok(()) => app.mark_mail_sent(mail.id, node).await?,
                Err(e) => {
                    let failures = mail.attempts + 1;
                    tracing::warn!(
                        mail = mail.id,
                        attempt = failures,
                        "mail delivery failed: {e}"
                    );
                    let failure = Failure {
                        node,
                        error: &e,
                        retry_in_ms: delivery.backoff_ms(failures),
                    };
                    app.mark_mail_failed(mail.id, failure).await?
                }
            };
            if !held {
                tracing::warn!(
                    mail = mail.id,
                    "the mail's lease ran out or it was cancelled while being delivered"
                );
            }
        }
    }
}

/// Without SMTP: one line per mail not yet announced, never its body.
async fn announce_backlog(app: &App) -> Result<(), arbor_app::AppError> {
    loop {
        let mails = app.announce_mail(100).await?;
        if mails.is_empty() {
            return Ok(());
        }
        for mail in mails {
            tracing::info!(
                mail = mail.id,
                to = ?mail.to,
                subject = ?mail.subject,
                "no SMTP configured: mail {} stays in the outbox; read it with `arbor outbox`",
                mail.id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Delivery;

    #[test]
    fn retries_back_off_doubling_up_to_the_cap() {
        let d = Delivery::default();
        assert_eq!(d.backoff_ms(1), 30_000);
        assert_eq!(d.backoff_ms(2), 60_000);
        assert_eq!(d.backoff_ms(3), 120_000);
        assert_eq!(d.backoff_ms(9), 3_600_000);
        assert_eq!(d.backoff_ms(i64::MAX), 3_600_000);
        assert_eq!(d.backoff_ms(0), 30_000);
    }
}
