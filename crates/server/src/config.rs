//! Server configuration: defaults → optional TOML file → `ARBOR_*` environment
//! → command-line flags, each layer overriding the one before. Secrets are
//! redacted wherever the configuration is printed.

use arbor_app::cache::CacheLimits;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS on the submission port (587).
    #[default]
    Starttls,
    /// TLS from the first byte (465).
    Tls,
    /// Plain text: only for a relay on the same machine.
    None,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `Arbor <arbor@example.com>`.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    587
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    pub idle_timeout_secs: u64,
    /// A session ends this long after login, used or not.
    pub absolute_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 12 * 60 * 60,
            absolute_timeout_secs: 14 * 24 * 60 * 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins per account per window (SPEC: at most 100 an hour).
    pub failures_per_account: usize,
    /// Failed logins per client address per window.
    pub failures_per_client: usize,
    pub window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            failures_per_account: 100,
            failures_per_client: 1000,
            window_secs: 60 * 60,
        }
    }
}

/// The in-process decision cache (arbor-app `cache`): it is checked against
/// the store's change feed on every request, so it never answers from stale
/// facts, on one node or many.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzCacheConfig {
    pub enabled: bool,
    /// Load every org path, principal and device at start (in the
    /// background), instead of as requests ask for them.
    pub warm: bool,
    pub max_sessions: usize,
    pub max_principals: usize,
    pub max_orgs: usize,
    pub max_devices: usize,
    /// The change feed keeps this many versions (committed writes that
    /// changed an authorization fact); a node
    /// further behind starts its cache afresh.
    pub keep_versions: i64,
}

impl Default for AuthzCacheConfig {
    fn default() -> Self {
        let limits = CacheLimits::default();
        Self {
            enabled: true,
            warm: true,
            max_sessions: limits.sessions,
            max_principals: limits.principals,
            max_orgs: limits.orgs,
            max_devices: limits.devices,
            keep_versions: 100_000,
        }
    }
}

impl AuthzCacheConfig {
    /// The cache's bounds when it is enabled (for [`arbor_app::App::configured`]).
    pub fn enabled_limits(&self) -> Option<CacheLimits> {
        self.enabled.then(|| self.limits())
    }

    pub fn limits(&self) -> CacheLimits {
        CacheLimits {
            sessions: self.max_sessions,
            principals: self.max_principals,
            orgs: self.max_orgs,
            devices: self.max_devices,
        }
    }
}

/// Who may read `/metrics` on the main listener. Without a token, only
/// local scrapers: a loopback peer whose request carries no forwarding
/// header (a reverse proxy on the same host adds one, so requests it
/// forwards from elsewhere are refused). Refused scrapes answer 404.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `false`: `/metrics` answers 404 to everyone.
    pub enabled: bool,
    /// Loopback peers (without forwarding headers) may scrape without a token.
    pub loopback: bool,
    /// A scraper presenting `Authorization: Bearer <token>` may scrape from
    /// any address. At least 16 characters.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            loopback: true,
            token: None,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("loopback", &self.loopback)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://…`.
    pub database_url: String,
    pub database_max_connections: Option<u32>,
    /// The base of every link Arbor puts in mail; never taken from a request.
    pub public_url: String,
    pub log_format: LogFormat,
    /// Without SMTP, mail stays in the outbox (`arbor outbox`) and the log.
    pub smtp: Option<SmtpConfig>,
    pub session: SessionConfig,
    pub throttle: ThrottleConfig,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    pub authz_cache: AuthzCacheConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://./arbor-data/arbor.db".into(),
            database_max_connections: None,
            public_url: "http://127.0.0.1:8080".into(),
            log_format: LogFormat::Text,
            smtp: None,
            session: SessionConfig::default(),
            throttle: ThrottleConfig::default(),
            body_limit_bytes: 1024 * 1024,
            authz_cache: AuthzCacheConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("public_url", &self.public_url)
            .field("log_format", &self.log_format)
            .field("smtp", &self.smtp)
            .field("session", &self.session)
            .field("throttle", &self.throttle)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("authz_cache", &self.authz_cache)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// `ARBOR_*` environment variables that are not configuration keys.
const NOT_KEYS: [&str; 3] = ["config", "log", "admin_password"];

impl Config {
    /// Loads the layers. `overrides` are the command-line flags that were given
    /// (a serializable struct whose `None` fields are skipped).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Self, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!(
                    "configuration file {} does not exist",
                    file.display()
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(
                Env::prefixed("ARBOR_")
                    .split("__")
                    // Variables that are not configuration keys: the test
                    // suite's, this loader's, the log filter, `arbor init`'s.
                    .filter(|key| {
                        let key = key.as_str().to_ascii_lowercase();
                        !key.starts_with("test_") && !NOT_KEYS.contains(&key.as_str())
                    }),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.authz_cache.keep_versions < 1 {
            return Err(
                "invalid configuration: authz_cache.keep_versions must be at least 1".into(),
            );
        }
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            return Err(
                "invalid configuration: metrics.token must be at least 16 characters".into(),
            );
        }
        let url = url::Url::parse(&self.public_url)
            .map_err(|e| format!("invalid configuration: public_url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("invalid configuration: public_url must be http or https".into());
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(
                "invalid configuration: database_url must start with sqlite:// or postgres://"
                    .into(),
            );
        }
        Ok(())
    }

    /// The database URL with any password hidden, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// The public URL without a trailing slash, for building links.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// True when cookies must be marked `Secure`.
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        bind: Option<String>,
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080() {
        let config = Config::load(None, Flags { bind: None }).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://./arbor-data/arbor.db");
    }

    #[test]
    fn file_then_flags_override_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(
            &file,
            "public_url = \"https://iot.example.com\"\nbind = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            Flags {
                bind: Some("127.0.0.1:7000".into()),
            },
        )
        .unwrap();
        assert_eq!(config.public_url, "https://iot.example.com");
        assert_eq!(config.bind.to_string(), "127.0.0.1:7000");
        assert!(config.https());
        std::fs::write(&file, "pubilc_url = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file), Flags { bind: None }).is_err());
        assert!(
            Config::load(Some(&dir.path().join("missing.toml")), Flags { bind: None }).is_err()
        );
    }

    #[test]
    // The closure's error type is figment's, fixed by `Jail::expect_with`.
    #[allow(clippy::result_large_err)]
    fn arbor_variables_that_are_not_keys_are_ignored() {
        // figment's Jail scopes environment changes to this closure.
        figment::Jail::expect_with(|jail| {
            jail.set_env("ARBOR_ADMIN_PASSWORD", "x");
            jail.set_env("ARBOR_LOG", "debug");
            jail.set_env("ARBOR_TEST_DATABASE_URL", "postgres://x");
            jail.set_env("ARBOR_PUBLIC_URL", "https://env.example");
            let config = Config::load(None, Flags { bind: None }).map_err(|e| e.to_string())?;
            assert_eq!(config.public_url, "https://env.example");
            Ok(())
        });
    }

    #[test]
    fn the_decision_cache_is_configured_by_file_with_bounds_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(&file, "[authz_cache]\nwarm = false\nmax_devices = 10\n").unwrap();
        let config = Config::load(Some(&file), Flags { bind: None }).unwrap();
        assert!(config.authz_cache.enabled && !config.authz_cache.warm);
        assert_eq!(config.authz_cache.limits().devices, 10);
        std::fs::write(&file, "[authz_cache]\nkeep_versions = 0\n").unwrap();
        let error = Config::load(Some(&file), Flags { bind: None }).unwrap_err();
        assert!(error.contains("keep_versions"), "{error}");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let config = Config {
            database_url: "postgres://arbor:hunter2@db:5432/arbor".into(),
            smtp: Some(SmtpConfig {
                host: "smtp".into(),
                port: 587,
                security: SmtpSecurity::Starttls,
                username: Some("u".into()),
                password: Some("s3cret".into()),
                from: "a@b.c".into(),
            }),
            metrics: MetricsConfig {
                token: Some("scrape-token-0123456789".into()),
                ..MetricsConfig::default()
            },
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("scrape-token"), "{text}");
        assert!(text.contains("postgres://***@db:5432/arbor"));
    }

    #[test]
    fn metrics_are_local_by_default_and_a_short_token_is_refused() {
        let config = Config::load(None, Flags { bind: None }).unwrap();
        assert!(config.metrics.enabled && config.metrics.loopback);
        assert_eq!(config.metrics.token, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(&file, "[metrics]\ntoken = \"short\"\n").unwrap();
        let error = Config::load(Some(&file), Flags { bind: None }).unwrap_err();
        assert!(error.contains("metrics.token"), "{error}");
    }
}
