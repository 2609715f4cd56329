//! Server configuration: defaults → optional TOML file → `ARBOR_*` environment
//! → command-line flags, each layer overriding the one before. Secrets are
//! redacted wherever the configuration is printed.

use arbor_app::DeviceTokenKey;
use arbor_app::cache::CacheLimits;
use arbor_app::hashing::HashLimits;
use arbor_app::throttle::ThrottlePolicy;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Failed-login throttling (arbor-app `throttle`; docs/operations/login-throttle.md).
/// Counters are stored, so every node of a deployment shares them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed attempts of one client at one account before delays start.
    pub free_failures: u32,
    /// The first delay; each further failure of the pair doubles it.
    pub base_delay_secs: u64,
    /// The longest delay of one (account, client) pair.
    pub max_delay_secs: u64,
    /// Failed attempts from one client, at any accounts, before that client
    /// is slowed.
    pub client_free_failures: u32,
    /// The longest delay of a client (it may be many people behind one
    /// address: it only slows them).
    pub client_max_delay_secs: u64,
    /// Counters whose last failure is older than this start from zero and
    /// are pruned.
    pub forget_after_secs: u64,
    /// A refused (429) attempt is answered only after this pause (at most
    /// its `Retry-After`), so that a client hammering the login costs the
    /// server a sleeping task, not a busy core; 0 answers at once.
    pub hold_ms: u64,
    /// How many refused attempts may be held at once; beyond that they are
    /// answered at once (the bound on held connections' memory).
    pub hold_slots: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let policy = ThrottlePolicy::default();
        let secs = |ms: i64| u64::try_from(ms / 1000).unwrap_or(0);
        Self {
            free_failures: u32::try_from(policy.free_failures).unwrap_or(5),
            base_delay_secs: secs(policy.base_delay_ms),
            max_delay_secs: secs(policy.max_delay_ms),
            client_free_failures: u32::try_from(policy.client_free_failures).unwrap_or(100),
            client_max_delay_secs: secs(policy.client_max_delay_ms),
            forget_after_secs: secs(policy.forget_after_ms),
            hold_ms: 1_000,
            hold_slots: 512,
        }
    }
}

impl ThrottleConfig {
    pub fn policy(&self) -> ThrottlePolicy {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        ThrottlePolicy {
            free_failures: i64::from(self.free_failures),
            base_delay_ms: ms(self.base_delay_secs),
            max_delay_ms: ms(self.max_delay_secs),
            client_free_failures: i64::from(self.client_free_failures),
            client_max_delay_ms: ms(self.client_max_delay_secs),
            forget_after_ms: ms(self.forget_after_secs),
        }
    }
}

/// The bounded password-hashing service (arbor-app `hashing`): each running
/// hash holds 19 MiB, so `workers` bounds that memory; requests beyond
/// `workers + queue` are answered 503 with `Retry-After`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashingConfig {
    /// Hashes running at once; 0 means one less than the CPU cores (at
    /// least one), leaving a core to everything else.
    pub workers: usize,
    /// Requests waiting for a worker before further ones are refused.
    pub queue: usize,
    /// The `Retry-After` of a refused request.
    pub retry_after_secs: u64,
}

impl Default for PasswordHashingConfig {
    fn default() -> Self {
        let limits = HashLimits::default();
        Self {
            workers: 0,
            queue: limits.queue,
            retry_after_secs: limits.retry_after_secs,
        }
    }
}

impl PasswordHashingConfig {
    pub fn limits(&self) -> HashLimits {
        let defaults = HashLimits::default();
        HashLimits {
            workers: if self.workers == 0 {
                defaults.workers
            } else {
                self.workers
            },
            queue: self.queue,
            retry_after_secs: self.retry_after_secs.max(1),
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

/// The device HTTP API under `/external/api/` (docs/device-api.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceApiConfig {
    /// Largest accepted device API request body (a timestamped batch), in
    /// bytes.
    pub body_limit_bytes: usize,
    /// Requests per second one device may make, per server node; beyond it
    /// the device is answered 429.
    pub requests_per_second: u32,
    /// Bytes of one string value.
    pub string_value_bytes: usize,
    /// Days the values and events a device sends are kept when its
    /// template sets no `history_retention_days` of its own (1–3650).
    pub history_retention_days: u32,
    /// Seconds between two runs of the history pruner (the first runs at
    /// start).
    pub prune_interval_secs: u64,
    /// Most rows one of the pruner's write transactions deletes.
    pub prune_batch_rows: u32,
}

impl Default for DeviceApiConfig {
    fn default() -> Self {
        let limits = arbor_app::device_api::DeviceApiLimits::default();
        Self {
            body_limit_bytes: 2 * 1024 * 1024,
            requests_per_second: limits.requests_per_second,
            string_value_bytes: limits.string_value_bytes,
            history_retention_days: u32::try_from(limits.history_retention_days).unwrap_or(30),
            prune_interval_secs: 3600,
            prune_batch_rows: limits.prune_batch_rows,
        }
    }
}

impl DeviceApiConfig {
    pub fn limits(&self) -> arbor_app::device_api::DeviceApiLimits {
        arbor_app::device_api::DeviceApiLimits {
            requests_per_second: self.requests_per_second,
            string_value_bytes: self.string_value_bytes,
            history_retention_days: i64::from(self.history_retention_days),
            prune_batch_rows: self.prune_batch_rows,
        }
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
    /// When no layer sets it, it follows `bind` (see [`Config::load`]).
    pub public_url: String,
    /// True when `public_url` was not configured and was derived from `bind`.
    #[serde(skip)]
    pub public_url_follows_bind: bool,
    pub log_format: LogFormat,
    /// Without SMTP, mail stays in the outbox (`arbor outbox`); the log
    /// announces each mail once, without its body.
    pub smtp: Option<SmtpConfig>,
    pub session: SessionConfig,
    pub throttle: ThrottleConfig,
    pub password_hashing: PasswordHashingConfig,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    pub authz_cache: AuthzCacheConfig,
    pub metrics: MetricsConfig,
    /// A device is online while it called the device API within this many
    /// seconds (the `online=` filter of the device list).
    pub device_heartbeat_secs: u64,
    pub device_api: DeviceApiConfig,
    /// Secret material (at least 32 characters) that device auth tokens are
    /// derived from; the same on every node. Unset: the key file.
    pub device_token_key: Option<String>,
    /// The key file used when `device_token_key` is unset, created (0600) on
    /// first start. Unset: `device-token.key` beside the SQLite database, or
    /// in `./arbor-data` with PostgreSQL.
    pub device_token_key_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://./arbor-data/arbor.db".into(),
            database_max_connections: None,
            public_url: "http://127.0.0.1:8080".into(),
            public_url_follows_bind: false,
            log_format: LogFormat::Text,
            smtp: None,
            session: SessionConfig::default(),
            throttle: ThrottleConfig::default(),
            password_hashing: PasswordHashingConfig::default(),
            trusted_proxies: Vec::new(),
            body_limit_bytes: 1024 * 1024,
            authz_cache: AuthzCacheConfig::default(),
            metrics: MetricsConfig::default(),
            device_heartbeat_secs: 60,
            device_api: DeviceApiConfig::default(),
            device_token_key: None,
            device_token_key_file: None,
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
            .field("public_url_follows_bind", &self.public_url_follows_bind)
            .field("log_format", &self.log_format)
            .field("smtp", &self.smtp)
            .field("session", &self.session)
            .field("throttle", &self.throttle)
            .field("password_hashing", &self.password_hashing)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("authz_cache", &self.authz_cache)
            .field("metrics", &self.metrics)
            .field("device_heartbeat_secs", &self.device_heartbeat_secs)
            .field("device_api", &self.device_api)
            .field(
                "device_token_key",
                &self.device_token_key.as_ref().map(|_| "***"),
            )
            .field("device_token_key_file", &self.device_token_key_file)
            .finish()
    }
}

/// The base URL of a server reached at `addr` directly. An unspecified
/// address (every interface) is reached from this machine over loopback.
fn url_for(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            format!("http://[{}]:{}", Ipv6Addr::LOCALHOST, addr.port())
        }
        _ => format!("http://{addr}"),
    }
}

/// Reads the key file at `path`, creating it (32 random bytes, hex, mode
/// 0600) when absent. A file readable by others is refused.
fn read_or_create_key_file(path: &Path) -> Result<DeviceTokenKey, String> {
    use std::io::Write as _;
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read the device token key file {shown}: {e}"))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "the device token key file {shown} is readable by others (mode {:o}); \
                         chmod 600 it",
                        mode & 0o777
                    ));
                }
            }
            let key = text.trim();
            if key.len() < 32 {
                return Err(format!(
                    "the device token key file {shown} holds fewer than 32 characters"
                ));
            }
            Ok(DeviceTokenKey::derive(key.as_bytes()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    format!("cannot create the directory of the device token key file {shown}: {e}")
                })?;
            }
            let mut file = options
                .open(path)
                .map_err(|e| format!("cannot create the device token key file {shown}: {e}"))?;
            writeln!(file, "{key}")
                .map_err(|e| format!("cannot write the device token key file {shown}: {e}"))?;
            tracing::info!(
                "created the device token key file {shown}; back it up with the database \
                 (without it, device tokens cannot be shown again), and give every node the same key"
            );
            Ok(DeviceTokenKey::derive(key.as_bytes()))
        }
        Err(e) => Err(format!(
            "cannot read the device token key file {shown}: {e}"
        )),
    }
}

/// Whether a configuration key holds a secret.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "pepper"]
        .iter()
        .any(|word| key.contains(word))
        || key == "key"
        || key.ends_with("_key")
}

fn redact_table(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        match value {
            toml::Value::Table(inner) => redact_table(inner),
            toml::Value::String(text) if is_secret_key(key) && !text.is_empty() => {
                *text = "***".into();
            }
            _ => {}
        }
    }
}

/// `ARBOR_*` environment variables that are not configuration keys
/// (`ARBOR_PASSWORD` is `arbor simulate`'s login password).
const NOT_KEYS: [&str; 4] = ["config", "log", "admin_password", "password"];

impl Config {
    /// Loads the layers. `overrides` are the command-line flags that were given
    /// (a serializable struct whose `None` fields are skipped).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Self, String> {
        // Every layer but the defaults: what the operator set.
        let mut configured = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!(
                    "configuration file {} does not exist",
                    file.display()
                ));
            }
            configured = configured.merge(Toml::file(file));
        }
        configured = configured
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
            .merge(Serialized::defaults(overrides));
        let public_url_set = configured.find_value("public_url").is_ok();
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(configured)
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        if !public_url_set {
            config.public_url = url_for(config.bind);
            config.public_url_follows_bind = true;
        }
        config.validate()?;
        Ok(config)
    }

    /// Once the listener is bound (port 0 picks a free port): a `public_url`
    /// that follows `bind` follows the address actually bound.
    pub fn follow_listener(&mut self, bound: SocketAddr) {
        if self.public_url_follows_bind {
            self.public_url = url_for(bound);
        }
    }

    /// What an operator should hear at start about `public_url` and the
    /// address the server listens on. Only setups that cannot work as meant
    /// are reported:
    ///
    /// - `public_url` unset while listening on every interface: the links
    ///   name this machine's loopback address, which nobody else can open;
    /// - a configured loopback `public_url` while listening beyond loopback;
    /// - a configured `public_url` that names this machine directly (a
    ///   loopback address, or the very address bound) on another port.
    ///
    /// A configured `public_url` with any other host is taken to be a name
    /// or proxy in front of this server and never warned about.
    pub fn address_warnings(&self, bound: SocketAddr) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.public_url_follows_bind {
            if bound.ip().is_unspecified() {
                warnings.push(format!(
                    "public_url is not set and the server listens on every interface ({bound}): \
                     links in mail point at {}, which only this machine can open; set public_url \
                     to the address users reach (e.g. https://iot.example.com)",
                    self.public_url
                ));
            }
            return warnings;
        }
        let Ok(url) = url::Url::parse(&self.public_url) else {
            return warnings;
        };
        let host_ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            _ => None,
        };
        let Some(host_ip) = host_ip else {
            return warnings;
        };
        if host_ip.is_loopback() && !bound.ip().is_loopback() {
            warnings.push(format!(
                "public_url {} is a loopback address but the server listens on {bound}: other \
                 machines get links they cannot open; set public_url to the address users reach",
                self.public_url
            ));
        }
        let names_this_listener = host_ip.is_loopback() || host_ip == bound.ip();
        let port = url.port_or_known_default();
        if names_this_listener && port != Some(bound.port()) {
            let port = port.map_or_else(|| "?".to_owned(), |p| p.to_string());
            warnings.push(format!(
                "public_url {} names this machine on port {port} but the server listens on \
                 port {}: links in mail do not reach it unless a proxy on this machine forwards \
                 port {port} to it",
                self.public_url,
                bound.port()
            ));
        }
        warnings
    }

    /// The effective configuration as TOML, for `arbor configtest`: every key,
    /// secrets shown as `***` (the SMTP password, any key named like a
    /// password, secret, token or key, and a password in `database_url`).
    pub fn to_toml_redacted(&self) -> Result<String, String> {
        let mut value = toml::Value::try_from(self).map_err(|e| e.to_string())?;
        if let toml::Value::Table(table) = &mut value {
            redact_table(table);
            if let Some(toml::Value::String(url)) = table.get_mut("database_url") {
                *url = redact_url(url);
            }
        }
        let mut text = toml::to_string_pretty(&value).map_err(|e| e.to_string())?;
        if self.public_url_follows_bind {
            text = format!("# public_url is not set: it follows bind\n{text}");
        }
        Ok(text)
    }

    fn validate(&self) -> Result<(), String> {
        if self.device_heartbeat_secs < 1 {
            return Err("invalid configuration: device_heartbeat_secs must be at least 1".into());
        }
        if self.device_api.requests_per_second < 1 {
            return Err(
                "invalid configuration: device_api.requests_per_second must be at least 1".into(),
            );
        }
        if self.device_api.string_value_bytes < 1 || self.device_api.body_limit_bytes < 1024 {
            return Err(
                "invalid configuration: device_api.string_value_bytes must be at least 1 \
                 and device_api.body_limit_bytes at least 1024"
                    .into(),
            );
        }
        let most = arbor_core::template::bounds::MAX_HISTORY_RETENTION_DAYS;
        if !(1..=most).contains(&i64::from(self.device_api.history_retention_days)) {
            return Err(format!(
                "invalid configuration: device_api.history_retention_days must be 1 to {most}"
            ));
        }
        if self.device_api.prune_interval_secs < 1 {
            return Err(
                "invalid configuration: device_api.prune_interval_secs must be at least 1".into(),
            );
        }
        if !(1..=100_000).contains(&self.device_api.prune_batch_rows) {
            return Err(
                "invalid configuration: device_api.prune_batch_rows must be 1 to 100000".into(),
            );
        }
        if self.authz_cache.keep_versions < 1 {
            return Err(
                "invalid configuration: authz_cache.keep_versions must be at least 1".into(),
            );
        }
        for entry in &self.trusted_proxies {
            crate::auth::client::parse_proxy(entry)
                .map_err(|e| format!("invalid configuration: trusted_proxies: {e}"))?;
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
        if self
            .device_token_key
            .as_ref()
            .is_some_and(|k| k.trim().len() < 32)
        {
            return Err(
                "invalid configuration: device_token_key must be at least 32 characters".into(),
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

    /// The configured device token key, if `device_token_key` is set.
    pub fn configured_device_token_key(&self) -> Option<DeviceTokenKey> {
        self.device_token_key
            .as_ref()
            .map(|k| DeviceTokenKey::derive(k.trim().as_bytes()))
    }

    /// The device token key: `device_token_key`, else the key file
    /// (`device_token_key_file`, or `device-token.key` in `data_dir`), made
    /// with 32 random bytes and mode 0600 when it does not exist yet.
    pub fn device_token_key(&self, data_dir: &Path) -> Result<DeviceTokenKey, String> {
        if let Some(key) = self.configured_device_token_key() {
            return Ok(key);
        }
        let path = match &self.device_token_key_file {
            Some(file) => std::path::PathBuf::from(file),
            None => data_dir.join("device-token.key"),
        };
        read_or_create_key_file(&path)
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

    /// [`Config::load`] inside a figment Jail: the jails are serialised, so
    /// no other test's `ARBOR_*` variables (set in a jail) are seen here.
    #[allow(clippy::result_large_err)]
    fn load(file: Option<&std::path::Path>, flags: Flags) -> Result<Config, String> {
        let mut loaded = None;
        figment::Jail::expect_with(|_| {
            loaded = Some(Config::load(file, flags));
            Ok(())
        });
        loaded.unwrap_or_else(|| Err("the jail did not run".into()))
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080() {
        let config = load(None, Flags { bind: None }).unwrap();
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
        let config = load(
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
        assert!(load(Some(&file), Flags { bind: None }).is_err());
        assert!(load(Some(&dir.path().join("missing.toml")), Flags { bind: None }).is_err());
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
        let config = load(Some(&file), Flags { bind: None }).unwrap();
        assert!(config.authz_cache.enabled && !config.authz_cache.warm);
        assert_eq!(config.authz_cache.limits().devices, 10);
        std::fs::write(&file, "[authz_cache]\nkeep_versions = 0\n").unwrap();
        let error = load(Some(&file), Flags { bind: None }).unwrap_err();
        assert!(error.contains("keep_versions"), "{error}");
    }

    fn bind(addr: &str) -> Flags {
        Flags {
            bind: Some(addr.into()),
        }
    }

    #[test]
    fn an_unset_public_url_follows_bind_and_the_bound_port() {
        let mut config = load(None, bind("127.0.0.1:9000")).unwrap();
        assert_eq!(config.public_url, "http://127.0.0.1:9000");
        assert!(config.public_url_follows_bind);
        config.follow_listener("127.0.0.1:41234".parse().unwrap());
        assert_eq!(config.public_url, "http://127.0.0.1:41234");
        let everywhere = load(None, bind("0.0.0.0:9000")).unwrap();
        assert_eq!(everywhere.public_url, "http://127.0.0.1:9000");
        let v6 = load(None, bind("[::]:9000")).unwrap();
        assert_eq!(v6.public_url, "http://[::1]:9000");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(&file, "public_url = \"https://iot.example.com\"\n").unwrap();
        let mut set = load(Some(&file), bind("127.0.0.1:9000")).unwrap();
        assert!(!set.public_url_follows_bind);
        set.follow_listener("127.0.0.1:41234".parse().unwrap());
        assert_eq!(set.public_url, "https://iot.example.com");
    }

    fn warnings(public_url: Option<&str>, bound: &str) -> Vec<String> {
        let bound: SocketAddr = bound.parse().unwrap();
        let mut config = Config {
            bind: bound,
            ..Config::default()
        };
        match public_url {
            Some(url) => config.public_url = url.into(),
            None => {
                config.public_url = url_for(bound);
                config.public_url_follows_bind = true;
            }
        }
        config.address_warnings(bound)
    }

    #[test]
    fn only_a_public_url_that_cannot_reach_the_server_is_warned_about() {
        // Fine: derived on loopback or a specific address, a name in front
        // (proxy), the same port on loopback, https default port behind a
        // name.
        assert!(warnings(None, "127.0.0.1:8080").is_empty());
        assert!(warnings(None, "192.0.2.7:8080").is_empty());
        assert!(warnings(Some("https://iot.example.com"), "0.0.0.0:8080").is_empty());
        assert!(warnings(Some("http://iot.example.com:9999"), "127.0.0.1:8080").is_empty());
        assert!(warnings(Some("http://localhost:8080/"), "127.0.0.1:8080").is_empty());
        assert!(warnings(Some("http://192.0.2.7:8080"), "0.0.0.0:8080").is_empty());
        // Derived while listening everywhere: loopback links.
        let all = warnings(None, "0.0.0.0:8080");
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].contains("public_url is not set"), "{all:?}");
        // A loopback public_url beyond loopback.
        let lo = warnings(Some("http://127.0.0.1:8080"), "0.0.0.0:8080");
        assert_eq!(lo.len(), 1, "{lo:?}");
        assert!(lo[0].contains("loopback"), "{lo:?}");
        // This machine, another port.
        let port = warnings(Some("http://127.0.0.1:8080"), "127.0.0.1:9000");
        assert_eq!(port.len(), 1, "{port:?}");
        assert!(
            port[0].contains("port 8080") && port[0].contains("9000"),
            "{port:?}"
        );
        let same_ip = warnings(Some("http://192.0.2.7"), "192.0.2.7:8080");
        assert!(same_ip[0].contains("port 80 "), "{same_ip:?}");
    }

    #[test]
    fn the_effective_configuration_prints_as_toml_with_secrets_redacted() {
        let config = Config {
            database_url: "postgres://arbor:hunter2@db:5432/arbor".into(),
            smtp: Some(SmtpConfig {
                host: "smtp".into(),
                port: 587,
                security: SmtpSecurity::Tls,
                username: Some("u".into()),
                password: Some("s3cret".into()),
                from: "a@b.c".into(),
            }),
            ..Config::default()
        };
        let text = config.to_toml_redacted().unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("password = \"***\""), "{text}");
        assert!(text.contains("postgres://***@db:5432/arbor"), "{text}");
        // It reads back as a configuration file: every key is a real one.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.toml");
        std::fs::write(&file, &text).unwrap();
        let again = load(Some(&file), Flags { bind: None }).unwrap();
        assert_eq!(again.smtp.unwrap().security, SmtpSecurity::Tls);
        assert_eq!(again.authz_cache, config.authz_cache);
        assert_eq!(again.body_limit_bytes, config.body_limit_bytes);
    }

    #[test]
    fn secret_looking_keys_are_redacted_wherever_they_are() {
        assert!(is_secret_key("password") && is_secret_key("api_token"));
        assert!(is_secret_key("signing_key") && is_secret_key("session_secret"));
        assert!(!is_secret_key("keep_versions") && !is_secret_key("host"));
        let mut table: toml::Table =
            toml::from_str("[mail]\nsigning_key = \"k\"\n[deep.er]\ntoken = \"t\"\nname = \"n\"\n")
                .unwrap();
        redact_table(&mut table);
        let text = toml::to_string(&table).unwrap();
        assert!(!text.contains("\"k\"") && !text.contains("\"t\""), "{text}");
        assert!(text.contains("\"n\""), "{text}");
    }

    fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (key, value) in table {
            let key = format!("{prefix}{key}");
            match value {
                toml::Value::Table(inner) => keys(&format!("{key}."), inner, out),
                _ => out.push(key),
            }
        }
    }

    #[test]
    fn every_configuration_key_is_in_the_operator_guide() {
        // Every key, optional ones included (set here so they serialize).
        let config = Config {
            database_max_connections: Some(8),
            smtp: Some(SmtpConfig {
                host: "h".into(),
                port: 587,
                security: SmtpSecurity::Starttls,
                username: Some("u".into()),
                password: Some("p".into()),
                from: "f".into(),
            }),
            ..Config::default()
        };
        let toml::Value::Table(table) = toml::Value::try_from(&config).unwrap() else {
            panic!("a configuration serializes as a table");
        };
        let mut all = Vec::new();
        keys("", &table, &mut all);
        assert!(all.len() > 20, "{all:?}");
        let guide =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
        let guide = std::fs::read_to_string(&guide).unwrap();
        let missing: Vec<&String> = all
            .iter()
            .filter(|key| !guide.contains(&format!("| `{key}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/operations.md has no reference row (| `key` | default | meaning |) for {missing:?}"
        );
    }

    #[test]
    fn throttle_hashing_and_proxies_are_configured_by_file_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(
            &file,
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             [throttle]\nfree_failures = 3\nmax_delay_secs = 60\n\
             [password_hashing]\nworkers = 1\nqueue = 0\n",
        )
        .unwrap();
        let config = load(Some(&file), Flags { bind: None }).unwrap();
        let policy = config.throttle.policy();
        assert_eq!((policy.free_failures, policy.max_delay_ms), (3, 60_000));
        assert_eq!(policy.client_max_delay_ms, 5_000, "defaults stay");
        let limits = config.password_hashing.limits();
        assert_eq!((limits.workers, limits.queue), (1, 0));
        assert!(Config::default().password_hashing.limits().workers >= 1);
        std::fs::write(&file, "trusted_proxies = [\"proxy.internal\"]\n").unwrap();
        let error = load(Some(&file), Flags { bind: None }).unwrap_err();
        assert!(error.contains("trusted_proxies"), "{error}");
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
            device_token_key: Some("device-key-material-0123456789abcdef".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("device-key-material"), "{text}");
        let toml = config.to_toml_redacted().unwrap();
        assert!(!toml.contains("device-key-material"), "{toml}");
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

    #[test]
    fn history_retention_defaults_to_30_days_hourly_and_is_bounded() {
        let config = Config::load(None, Flags { bind: None }).unwrap();
        assert_eq!(config.device_api.history_retention_days, 30);
        assert_eq!(config.device_api.prune_interval_secs, 3600);
        assert_eq!(config.device_api.limits().history_retention_days, 30);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("arbor.toml");
        std::fs::write(
            &file,
            "[device_api]\nhistory_retention_days = 365\nprune_interval_secs = 60\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), Flags { bind: None }).unwrap();
        assert_eq!(config.device_api.limits().history_retention_days, 365);
        assert_eq!(config.device_api.prune_interval_secs, 60);
        for bad in [
            "history_retention_days = 0",
            "history_retention_days = 3651",
            "prune_interval_secs = 0",
            "prune_batch_rows = 0",
        ] {
            std::fs::write(&file, format!("[device_api]\n{bad}\n")).unwrap();
            let error = Config::load(Some(&file), Flags { bind: None }).unwrap_err();
            let key = bad.split(' ').next().unwrap();
            assert!(error.contains(&format!("device_api.{key}")), "{error}");
        }
    }

    #[test]
    fn the_device_token_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let made = config.device_token_key(dir.path()).unwrap();
        let path = dir.path().join("device-token.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = config.device_token_key(dir.path()).unwrap();
        let device = arbor_core::DeviceId(1);
        assert_eq!(made.token(device, "00"), again.token(device, "00"));
        // A configured key wins over the file.
        let configured = Config {
            device_token_key: Some("k".repeat(40)),
            ..Config::default()
        };
        let key = configured.device_token_key(dir.path()).unwrap();
        assert_ne!(key.token(device, "00"), made.token(device, "00"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = config.device_token_key(dir.path()).unwrap_err();
            assert!(error.contains("readable by others"), "{error}");
        }
    }
}
