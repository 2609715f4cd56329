//! Finding the database before opening it, so that the traps of a first run
//! end in one sentence instead of a retry loop or a silently created empty
//! database:
//!
//! - only `serve`, `migrate` and `init` may create a database; every other
//!   command needs one that exists and says which one it opened;
//! - a SQLite data directory that is a file or unwritable, and a database
//!   file the process may not write, are named with the reason;
//! - one server per SQLite file: `serve` holds an advisory lock on
//!   `<database>.lock` for its whole life (one-shot commands only check that
//!   they could create that file, and run beside a server, as WAL allows);
//! - a PostgreSQL server that does not answer is reported after a short
//!   wait, not retried for the pool's whole acquire timeout.

use anyhow::{Context, Result, anyhow, bail};
use arbor_server::config::Config;
use arbor_store::{Store, StoreConfig};
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a command may do with the database it is pointed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `serve`: may create it, and holds the one-server lock.
    Serve,
    /// `migrate`, `init`: may create it.
    Create,
    /// Everything else: it must exist and hold Arbor's schema.
    Existing,
}

/// An open database and what it is.
pub struct Opened {
    pub store: Store,
    /// "SQLite database ./arbor-data/arbor.db" or "PostgreSQL database
    /// postgres://***@db/arbor".
    pub described: String,
    /// True when it held no Arbor schema before this command.
    pub created: bool,
    /// `serve`'s lock, held until the process ends.
    _lock: Option<File>,
}

/// How long one-shot commands wait for a database server that does not
/// answer (the server itself keeps the pool's 30 s: a database may be
/// starting beside it).
const ONE_SHOT_WAIT: Duration = Duration::from_secs(5);

/// The file a `sqlite:` URL names, unless it is an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

fn describe(config: &Config) -> String {
    match sqlite_path(&config.database_url) {
        Some(path) => format!("SQLite database {}", path.display()),
        None if config.database_url.starts_with("sqlite") => {
            format!("in-memory SQLite database {}", config.database_url)
        }
        None => format!("PostgreSQL database {}", config.database_url_redacted()),
    }
}

/// The reason an I/O operation failed, in the operator's words.
fn reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => {
            "permission denied for the user running Arbor".to_owned()
        }
        io::ErrorKind::ReadOnlyFilesystem => "the file system is mounted read-only".to_owned(),
        io::ErrorKind::NotADirectory => "a part of the path is a file, not a directory".to_owned(),
        _ => error.to_string(),
    }
}

/// The directory a database file lives in.
fn data_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Whether the SQLite file exists, checked without changing anything: the
/// data directory must be a directory, the database a file the process may
/// read and write.
fn inspect_sqlite(path: &Path) -> Result<bool> {
    let dir = data_dir(path);
    if dir.exists() && !dir.is_dir() {
        bail!(
            "the data directory {} is not a directory (a file is in its place): database_url \
             must name a file inside a directory",
            dir.display()
        );
    }
    if !path.exists() {
        return Ok(false);
    }
    if !path.is_file() {
        bail!("the database path {} is not a file", path.display());
    }
    if let Err(error) = OpenOptions::new().read(true).write(true).open(path) {
        bail!(
            "the database file {} cannot be opened for writing ({}): Arbor reads and writes \
             it; check its owner and mode",
            path.display(),
            reason(&error)
        );
    }
    Ok(true)
}

/// Creates (or opens) `<database>.lock`, which proves the data directory is
/// writable: SQLite creates its `-wal` and `-shm` files there too.
fn open_lock_file(path: &Path) -> Result<(PathBuf, File)> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| {
            anyhow!(
                "the data directory {} is not writable ({}): SQLite keeps its journal files \
                 beside the database, so Arbor needs to create files there",
                data_dir(path).display(),
                reason(&error)
            )
        })?;
    Ok((lock_path, file))
}

fn no_database(target: &str, detail: &str) -> anyhow::Error {
    anyhow!(
        "no database at {target}{detail} — start the server once with `arbor serve` or run \
         `arbor migrate`"
    )
}

/// Prepares a SQLite file for `access` and returns `serve`'s lock.
fn prepare_sqlite(path: &Path, url: &str, access: Access) -> Result<Option<File>> {
    if url.contains("mode=ro") {
        bail!(
            "database_url opens {} read-only (mode=ro): Arbor writes to its database",
            path.display()
        );
    }
    let exists = inspect_sqlite(path)?;
    if !exists {
        if access == Access::Existing {
            return Err(no_database(&path.display().to_string(), ""));
        }
        let dir = data_dir(path);
        std::fs::create_dir_all(&dir).map_err(|error| {
            anyhow!(
                "cannot create the data directory {} ({})",
                dir.display(),
                reason(&error)
            )
        })?;
    }
    let (lock_path, lock) = open_lock_file(path)?;
    if access != Access::Serve {
        return Ok(None);
    }
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(TryLockError::WouldBlock) => bail!(
            "another Arbor server is using the database {} (it holds the lock {}): stop it \
             first, or give this server a database of its own",
            path.display(),
            lock_path.display()
        ),
        Err(TryLockError::Error(error)) => {
            bail!("cannot lock {} ({})", lock_path.display(), reason(&error))
        }
    }
}

/// Connects without migrating, with a short wait for one-shot commands.
async fn connect(config: &Config, access: Access) -> Result<Store> {
    let mut store_config = StoreConfig::new(&config.database_url)
        .migrate_on_connect(false)
        .create_if_missing(access != Access::Existing);
    if access != Access::Serve {
        store_config = store_config.acquire_timeout(ONE_SHOT_WAIT);
    }
    if let Some(n) = config.database_max_connections {
        store_config = store_config.max_connections(n);
    }
    let wait = store_config.acquire_timeout.as_secs();
    Store::connect(&store_config).await.map_err(|error| {
        let chain = format!("{:#}", anyhow::Error::from(error));
        if chain.contains("pool timed out") {
            anyhow!(
                "cannot reach the database {} within {wait} s: is the database server running \
                 and listening there?",
                config.database_url_redacted()
            )
        } else {
            anyhow!(
                "cannot open the database {}: {chain}",
                config.database_url_redacted()
            )
        }
    })
}

/// Opens the database for `access`, migrating it when `migrate` is set.
pub async fn open(config: &Config, access: Access, migrate: bool) -> Result<Opened> {
    let described = describe(config);
    let lock = match sqlite_path(&config.database_url) {
        Some(path) => prepare_sqlite(&path, &config.database_url, access)?,
        None => None,
    };
    let store = connect(config, access).await?;
    let version = store
        .schema_version()
        .await
        .with_context(|| format!("cannot read the schema of the {described}"))?;
    if version.is_none() && access == Access::Existing {
        store.close().await;
        let (target, detail) = match sqlite_path(&config.database_url) {
            Some(path) => (
                path.display().to_string(),
                " (the file holds no Arbor schema)",
            ),
            None => (
                config.database_url_redacted(),
                " (its schema holds no Arbor tables)",
            ),
        };
        return Err(no_database(&target, detail));
    }
    if migrate {
        store.migrate().await.context("migration failed")?;
    }
    Ok(Opened {
        store,
        described,
        created: version.is_none(),
        _lock: lock,
    })
}

/// `arbor configtest`'s check: whether the database is reachable, without
/// creating anything. A SQLite file that does not exist yet is fine when its
/// directory could be created and written; an empty PostgreSQL schema is
/// fine too (the server's first start migrates both).
pub async fn check(config: &Config) -> Result<String> {
    let described = describe(config);
    if let Some(path) = sqlite_path(&config.database_url) {
        if config.database_url.contains("mode=ro") {
            bail!(
                "database_url opens {} read-only (mode=ro): Arbor writes to its database",
                path.display()
            );
        }
        if !inspect_sqlite(&path)? {
            let writable = probe_writable(&data_dir(&path))?;
            return Ok(format!(
                "no {described} yet: `arbor serve` or `arbor migrate` creates it ({writable})"
            ));
        }
        open_lock_file(&path)?;
    }
    let store = connect(config, Access::Existing).await?;
    let version = store.schema_version().await;
    let latest = store.latest_schema_version();
    store.close().await;
    let version = version.with_context(|| format!("cannot read the schema of the {described}"))?;
    Ok(match version {
        None => format!(
            "{described} is reachable and holds no Arbor schema yet: `arbor serve` or \
             `arbor migrate` creates it"
        ),
        Some(v) if v < latest => format!(
            "{described} is reachable, schema at migration {v} of {latest}: `arbor migrate` \
             (or the next `arbor serve`) applies the rest"
        ),
        Some(v) => format!("{described} is reachable, schema at migration {v} (up to date)"),
    })
}

/// Whether the directory, or the nearest ancestor that exists, accepts a new
/// file (tried with a probe file, removed at once: permission bits alone do
/// not tell, e.g. on a read-only mount).
fn probe_writable(dir: &Path) -> Result<String> {
    let mut existing = dir.to_owned();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_owned(),
            _ => existing = PathBuf::from("."),
        }
    }
    if !existing.is_dir() {
        bail!(
            "the data directory {} cannot be created: {} is a file",
            dir.display(),
            existing.display()
        );
    }
    let probe = existing.join(format!(".arbor-probe-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(if existing == dir {
                format!("{} is writable", dir.display())
            } else {
                format!("{} can be created in {}", dir.display(), existing.display())
            })
        }
        Err(error) => bail!(
            "the data directory {} is not writable ({})",
            existing.display(),
            reason(&error)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://./arbor-data/arbor.db"),
            Some(PathBuf::from("./arbor-data/arbor.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/arbor/a.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/arbor/a.db"))
        );
        assert_eq!(sqlite_path("sqlite:a.db"), Some(PathBuf::from("a.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x@h/db"), None);
        assert_eq!(data_dir(Path::new("a.db")), PathBuf::from("."));
    }
}
