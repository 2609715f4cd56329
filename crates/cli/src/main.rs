//! `arbor`: the server binary.

mod database;
mod demo;
mod logging;
mod simulate;

use anyhow::{Context, Result, bail};
use arbor_app::App;
use arbor_app::accounts::FirstRun;
use arbor_server::config::{Config, LogFormat};
use arbor_server::{AppState, mail};
use arbor_store::{ClientKind, SystemClock};
use clap::{Args, Parser, Subcommand};
use database::Access;
use serde::Serialize;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "arbor",
    version,
    about = "Arbor: a multi-tenant IoT platform server"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalFlags,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command understands; each overrides the config file and the
/// `ARBOR_*` environment.
#[derive(Args, Serialize)]
struct GlobalFlags {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "ARBOR_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// `sqlite://path/to/arbor.db` or `postgres://user@host/db`.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Base URL of every link in mail, e.g. https://iot.example.com
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// `text` or `json`.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (default: 127.0.0.1:8080, ./arbor-data/arbor.db).
    Serve {
        /// Address to listen on.
        #[arg(long)]
        bind: Option<String>,
        #[command(flatten)]
        smtp: SmtpFlags,
        /// Load the demo hierarchy (SPEC.md section 9) into an empty database
        /// and print its logins.
        #[arg(long)]
        demo: bool,
    },
    /// Create the first hierarchy and its Admin. The password is read from
    /// ARBOR_ADMIN_PASSWORD or the first line of standard input.
    Init {
        #[arg(long)]
        org_name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration as TOML (secrets redacted), check it
    /// and whether the database is reachable.
    Configtest,
    /// Copy a SQLite database to a new file while it is in use (`VACUUM
    /// INTO`). PostgreSQL databases are backed up with `pg_dump`.
    Backup {
        /// The copy to write; must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Operator tasks with local access to the database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// List queued mail (invitations, reset links): unsent by default.
    Outbox {
        /// Include delivered mail.
        #[arg(long)]
        all: bool,
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Simulate devices against a running server: provision (or reuse)
    /// devices of a template and send realistic values of its datastreams
    /// over the device HTTP API at a fixed rate, with a progress line.
    Simulate(simulate::SimulateArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// The way out of a lockout: restore the root org's Admin role to the
    /// whole permission catalog and make the named user an active Admin of
    /// the root org (re-activating a suspended account).
    Recover {
        /// Email of a member of the root org.
        #[arg(long)]
        admin_email: String,
        /// The hierarchy's root org id, if the user belongs to several.
        #[arg(long)]
        hierarchy: Option<i64>,
    },
}

/// SMTP settings on the command line. The password is taken from the
/// configuration file or `ARBOR_SMTP__PASSWORD` only: flags show in `ps`.
#[derive(Args, Serialize)]
struct SmtpFlags {
    /// SMTP relay host; without one, mail stays in the outbox.
    #[arg(long = "smtp-host")]
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[arg(long = "smtp-port")]
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    #[arg(long = "smtp-security")]
    #[serde(skip_serializing_if = "Option::is_none")]
    security: Option<String>,
    #[arg(long = "smtp-username")]
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// Sender, e.g. "Arbor <arbor@example.com>".
    #[arg(long = "smtp-from")]
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

impl SmtpFlags {
    fn is_empty(&self) -> bool {
        self.host.is_none()
            && self.port.is_none()
            && self.security.is_none()
            && self.username.is_none()
            && self.from.is_none()
    }
}

#[derive(Serialize)]
struct ServeFlags {
    #[serde(flatten)]
    global: GlobalFlags,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(skip_serializing_if = "SmtpFlags::is_empty")]
    smtp: SmtpFlags,
}

fn init_logging(format: LogFormat) {
    logging::init(format);
}

fn read_password() -> Result<String> {
    if let Ok(password) = std::env::var("ARBOR_ADMIN_PASSWORD") {
        return Ok(password);
    }
    eprintln!("Admin password (12–128 characters), then Enter:");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: set ARBOR_ADMIN_PASSWORD or type it on standard input");
    }
    Ok(password)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Starts the server. The order matters for a first run: the port is bound
/// before anything touches the database, so a port in use ends the start
/// before a database is created or migrated and before a setup token is
/// printed; then the database is locked (SQLite), migrated, and served on the
/// listener already bound.
async fn serve(mut config: Config, demo: bool) -> Result<()> {
    mail::check_config(config.smtp.as_ref()).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|error| {
            let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
                ": another program (perhaps another Arbor server) uses this port; stop it or \
                 choose another with --bind"
            } else {
                ""
            };
            anyhow::anyhow!("cannot listen on {}: {error}{hint}", config.bind)
        })?;
    let bound = listener.local_addr()?;
    config.follow_listener(bound);
    for warning in config.address_warnings(bound) {
        tracing::warn!("{warning}");
    }
    let opened = database::open(&config, Access::Serve, true).await?;
    if opened.created {
        tracing::info!("created a new {}", opened.described);
    }
    let store = opened.store.clone();
    let data_dir = database::sqlite_path(&config.database_url)
        .and_then(|path| path.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| {
            let sqlite = database::sqlite_path(&config.database_url).is_some();
            std::path::PathBuf::from(if sqlite { "." } else { "./arbor-data" })
        });
    let token_key = config
        .device_token_key(&data_dir)
        .map_err(anyhow::Error::msg)?;
    if config.device_token_key.is_none() && database::sqlite_path(&config.database_url).is_none() {
        tracing::warn!(
            "device_token_key is not set: device tokens derive from a key file of this node; \
             with several nodes set device_token_key, the same on every node"
        );
    }
    let app = App::new(store.clone()).with_device_token_key(token_key.clone());
    if demo {
        if app.needs_first_run().await? {
            demo::load(&app).await?;
        } else {
            tracing::warn!("--demo ignored: the database already holds a hierarchy");
        }
    }
    let served = App::configured(store.clone(), config.authz_cache.enabled_limits())
        .with_device_token_key(token_key);
    let mut state = AppState::new(served, Arc::new(SystemClock), config.clone());
    if app.needs_first_run().await? {
        let token = arbor_app::new_token().0;
        tracing::info!(
            "no hierarchy exists yet. Create the first one with `arbor init`, or over HTTP: \
             POST /api/v1/setup with setup_token {token:?} (valid until this process ends)"
        );
        state = state.with_setup_token(&token);
    }
    tokio::spawn(mail::run(
        state.app.clone(),
        config.smtp.clone(),
        state.mail.clone(),
    ));
    tokio::spawn(arbor_server::cache::run(state.clone()));
    let prune_every = std::time::Duration::from_secs(config.device_api.prune_interval_secs);
    tokio::spawn(arbor_server::retention::run(state.app.clone(), prune_every));
    tracing::info!(
        "Arbor listening on http://{bound} (API docs at /api/docs, links in mail start with {}, {})",
        config.public_base(),
        opened.described
    );
    arbor_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    drop(opened);
    Ok(())
}

/// Opens an existing database for a one-shot command and says which.
async fn open_existing(config: &Config, migrate: bool) -> Result<database::Opened> {
    let opened = database::open(config, Access::Existing, migrate).await?;
    eprintln!("using the {}", opened.described);
    Ok(opened)
}

async fn run(cli: Cli) -> Result<()> {
    let file = cli.global.config.clone();
    match cli.command {
        // A client of a running server: no configuration or database.
        Command::Simulate(args) => simulate::run(args).await,
        Command::Serve { bind, smtp, demo } => {
            let flags = ServeFlags {
                global: cli.global,
                bind,
                smtp,
            };
            let config = Config::load(file.as_deref(), flags).map_err(anyhow::Error::msg)?;
            init_logging(config.log_format);
            serve(config, demo).await
        }
        Command::Init {
            org_name,
            admin_email,
            admin_name,
        } => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            init_logging(config.log_format);
            let password = read_password()?;
            // The first-run command may create the database; it says so.
            let opened = database::open(&config, Access::Create, true).await?;
            if opened.created {
                eprintln!("created a new {}", opened.described);
            } else {
                eprintln!("using the {}", opened.described);
            }
            let app = App::new(opened.store.clone());
            let created = app
                .first_run(
                    &FirstRun {
                        org_name,
                        admin_email: admin_email.clone(),
                        admin_name,
                        admin_password: password,
                    },
                    ClientKind::Cli,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Created organization {:?} (id {}) with Admin {} (user id {}). Log in with POST /api/v1/auth/login.",
                created.root.name, created.root.id, admin_email, created.admin
            );
            Ok(())
        }
        Command::Migrate => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            init_logging(config.log_format);
            let opened = database::open(&config, Access::Create, true).await?;
            let verb = if opened.created {
                "created"
            } else {
                "migrated"
            };
            println!(
                "{verb} the {}: schema at migration {}",
                opened.described,
                opened.store.latest_schema_version()
            );
            opened.store.close().await;
            Ok(())
        }
        Command::Configtest => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            mail::check_config(config.smtp.as_ref()).map_err(anyhow::Error::msg)?;
            print!("{}", config.to_toml_redacted().map_err(anyhow::Error::msg)?);
            for warning in config.address_warnings(config.bind) {
                eprintln!("warning: {warning}");
            }
            let database = database::check(&config).await?;
            eprintln!("{database}");
            eprintln!("configuration ok");
            Ok(())
        }
        Command::Backup { to } => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            if database::sqlite_path(&config.database_url).is_none() {
                bail!(
                    "arbor backup copies SQLite databases; back up PostgreSQL with pg_dump \
                     (docs/operations.md)"
                );
            }
            if to.exists() {
                bail!(
                    "{} exists already: a backup is written to a new file",
                    to.display()
                );
            }
            let target = to
                .to_str()
                .context("the backup path must be valid UTF-8")?
                .to_owned();
            let opened = open_existing(&config, false).await?;
            opened
                .store
                .backup_into(&target)
                .await
                .map_err(|e| anyhow::anyhow!("cannot write the backup {}: {e:#}", to.display()))?;
            opened.store.close().await;
            let bytes = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
            println!(
                "backed up the {} to {} ({bytes} bytes)",
                opened.described,
                to.display()
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Recover {
                    admin_email,
                    hierarchy,
                },
        } => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            init_logging(config.log_format);
            let opened = open_existing(&config, true).await?;
            let app = App::new(opened.store.clone());
            let done = app
                .recover(&admin_email, hierarchy.map(arbor_core::OrgId))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Recovered hierarchy {:?} (root org {}): {} is an active Admin of the root org.",
                done.root_name, done.hierarchy, admin_email
            );
            println!(
                "  Admin set restored: {}; account re-activated: {}; role set to Admin: {}",
                yes_no(done.admin_set_restored),
                yes_no(done.reactivated),
                yes_no(done.promoted)
            );
            Ok(())
        }
        Command::Outbox { all, limit } => {
            let config = Config::load(file.as_deref(), cli.global).map_err(anyhow::Error::msg)?;
            let opened = open_existing(&config, true).await?;
            let mut tx = opened.store.read().await?;
            let mails = tx.outbox(!all, limit.clamp(1, 1000)).await?;
            tx.finish().await?;
            if mails.is_empty() {
                println!("the outbox is empty");
            }
            for mail in mails {
                let state = match mail.sent_at {
                    Some(_) => "sent".to_owned(),
                    None if mail.attempts > 0 => format!(
                        "unsent, {} failed attempts; last error: {}",
                        mail.attempts,
                        mail.last_error.as_deref().unwrap_or("none recorded")
                    ),
                    None => "unsent".to_owned(),
                };
                // A sent mail's body is not kept: it carried a one-time link.
                let body = match mail.sent_at {
                    Some(_) => "(delivered; the body is not kept once sent)",
                    None => mail.body.as_str(),
                };
                println!(
                    "--- mail {} to {} ({state})\nSubject: {}\n\n{body}",
                    mail.id, mail.to, mail.subject
                );
            }
            Ok(())
        }
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no (already so)" }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
