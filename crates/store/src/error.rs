use arbor_core::DomainError;
use thiserror::Error;

/// What the store can fail with. SQL text and driver messages never reach a
/// user: [`StoreError::Database`] displays as "database error" and keeps the
/// driver error as its source, for the log.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness or reference rule of the schema, or a domain rule, refused
    /// the change.
    #[error("{what}")]
    Conflict { what: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A transient lock or serialization failure (SQLite busy, PostgreSQL
    /// deadlock or serialization failure). The transaction was rolled back and
    /// may be retried as a whole.
    #[error("the database is busy; try again")]
    Contention(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// True for failures after which running the whole transaction again is
    /// the right reaction.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Contention(_))
    }
}

impl From<DomainError> for StoreError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { what } => Self::NotFound { what },
            DomainError::Conflict { what } => Self::Conflict { what },
            DomainError::Invalid { field, reason } => Self::Invalid { field, reason },
        }
    }
}

/// A sentence for a violated constraint, chosen from the constraint's name or
/// the engine's message (both stay internal).
fn describe_constraint(haystack: &str, unique: bool) -> String {
    let known: [(&str, &str, &str); 10] = [
        (
            "skeleton",
            "an account with a look-alike email exists",
            "the user does not exist",
        ),
        (
            "email",
            "a user with this email already exists",
            "the user does not exist",
        ),
        (
            "auth_token",
            "this device token is already in use",
            "the device token is invalid",
        ),
        (
            "owner_id",
            "the device owner must be a member of the device's organization",
            "the device owner must be a member of the device's organization",
        ),
        (
            "template_id",
            "the device template is not enabled for this organization",
            "the device template is not enabled for this organization",
        ),
        (
            "memberships",
            "the user is already a member of this organization",
            "the organization still has members, or the member does not exist",
        ),
        (
            "roles",
            "a role with this name already exists",
            "the role does not exist or is still in use",
        ),
        (
            "tags",
            "a tag with this name already exists",
            "the tag does not exist",
        ),
        (
            "templates",
            "a template with this name already exists",
            "the template does not exist or is still in use",
        ),
        (
            "organizations",
            "an organization with this identity already exists",
            "the organization does not exist or still holds data",
        ),
    ];
    for (key, if_unique, if_reference) in known {
        if haystack.contains(key) {
            return if unique { if_unique } else { if_reference }.to_owned();
        }
    }
    if unique {
        "the request conflicts with existing data".into()
    } else {
        "the request refers to something that does not exist or is still in use".into()
    }
}

/// How a driver error that is not about a named constraint is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A transient lock or serialization failure: retry the transaction.
    Contention,
    /// The value cannot be stored as given (the reason, for the user).
    Data(&'static str),
    /// Decided by the error's kind (constraints), else a database error.
    ByKind,
}

/// The reason given for a text the database refuses to store.
const UNSTORABLE_CHARACTER: &str =
    "contains a character the database cannot store (e.g. a NUL byte)";

/// SQLite result codes: the primary code is the low byte of the extended code
/// the driver reports (SQLITE_BUSY_SNAPSHOT = 517 is a SQLITE_BUSY).
fn classify_sqlite(code: i64) -> Class {
    match code & 0xff {
        // SQLITE_BUSY, SQLITE_LOCKED
        5 | 6 => Class::Contention,
        // SQLITE_TOOBIG
        18 => Class::Data("is too large"),
        _ => Class::ByKind,
    }
}

/// PostgreSQL SQLSTATEs (five characters, not numbers: reading them as
/// SQLite's numeric codes made 22021 and 42501 look like SQLITE_BUSY).
fn classify_postgres(sqlstate: &str) -> Class {
    match sqlstate {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => Class::Contention,
        // character_not_in_repertoire (a NUL byte in text), untranslatable_character
        "22021" | "22P05" => Class::Data(UNSTORABLE_CHARACTER),
        // string_data_right_truncation
        "22001" => Class::Data("is too long"),
        // numeric_value_out_of_range
        "22003" => Class::Data("is out of range"),
        // Every other data exception (invalid_text_representation 22P02, …).
        code if code.starts_with("22") => Class::Data("is not a value the database can store"),
        // insufficient_privilege (42501) and the rest: by kind, else internal.
        _ => Class::ByKind,
    }
}

/// The class of a driver error, read per engine from the concrete error type
/// (the `Any` driver passes the engine's own error through).
fn classify(db: &dyn sqlx::error::DatabaseError) -> Class {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        classify_postgres(pg.code())
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        db.code()
            .and_then(|c| c.parse::<i64>().ok())
            .map_or(Class::ByKind, classify_sqlite)
    } else {
        Class::ByKind
    }
}

/// The one place where driver errors become store errors.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound { what: "row" },
        sqlx::Error::PoolTimedOut => StoreError::Contention(e),
        sqlx::Error::Database(db) => {
            match classify(db.as_ref()) {
                Class::Contention => return StoreError::Contention(e),
                Class::Data(reason) => return StoreError::invalid("value", reason),
                Class::ByKind => {}
            }
            let haystack =
                format!("{} {}", db.constraint().unwrap_or_default(), db.message()).to_lowercase();
            match db.kind() {
                ErrorKind::UniqueViolation => {
                    StoreError::conflict(describe_constraint(&haystack, true))
                }
                ErrorKind::ForeignKeyViolation => {
                    StoreError::conflict(describe_constraint(&haystack, false))
                }
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => StoreError::Invalid {
                    field: "value",
                    reason: "a value is out of its allowed range".into(),
                },
                _ => StoreError::Database(e),
            }
        }
        _ => StoreError::Database(e),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        map_sqlx(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(sqlx::Error::Migrate(Box::new(e)))
    }
}

/// `NotFound { what }` when a statement that targets one row by id changed none.
pub(crate) fn found(
    done: &sqlx::any::AnyQueryResult,
    what: &'static str,
) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        Err(StoreError::NotFound { what })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection, Executor};

    #[test]
    fn sqlite_codes_are_read_as_numbers_with_the_primary_code_in_the_low_byte() {
        for busy in [5, 6, 261, 517, 262] {
            assert_eq!(classify_sqlite(busy), Class::Contention, "{busy}");
        }
        assert_eq!(classify_sqlite(18), Class::Data("is too large"));
        // SQLITE_CONSTRAINT_UNIQUE / _FOREIGNKEY / _CHECK: decided by kind.
        for code in [2067, 787, 275, 1] {
            assert_eq!(classify_sqlite(code), Class::ByKind, "{code}");
        }
    }

    #[test]
    fn postgres_sqlstates_are_read_as_text() {
        for busy in ["40001", "40P01", "55P03"] {
            assert_eq!(classify_postgres(busy), Class::Contention, "{busy}");
        }
        assert_eq!(
            classify_postgres("22021"),
            Class::Data(UNSTORABLE_CHARACTER)
        );
        assert_eq!(classify_postgres("22001"), Class::Data("is too long"));
        assert!(matches!(classify_postgres("22P02"), Class::Data(_)));
        // 22021 and 42501 end in 0x05 when read as SQLite numbers: not busy here.
        for code in ["42501", "23505", "23503", "23514", "XX000"] {
            assert_eq!(classify_postgres(code), Class::ByKind, "{code}");
        }
    }

    async fn error_of(conn: &mut AnyConnection, sql: &str) -> StoreError {
        let e = conn
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
            .await
            .expect_err(sql);
        map_sqlx(e)
    }

    #[tokio::test]
    async fn a_busy_sqlite_file_is_contention() {
        sqlx::any::install_default_drivers();
        let path =
            std::env::temp_dir().join(format!("arbor-busy-{:016x}.db", rand::random::<u64>()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut holder = AnyConnection::connect(&url).await.unwrap();
        holder.execute("BEGIN IMMEDIATE").await.unwrap();
        let mut other = AnyConnection::connect(&url).await.unwrap();
        other.execute("PRAGMA busy_timeout = 0").await.unwrap();
        let e = error_of(&mut other, "BEGIN IMMEDIATE").await;
        assert!(matches!(e, StoreError::Contention(_)), "{e:?}");
        let e = error_of(&mut other, "SELECT * FROM no_such_table").await;
        assert!(matches!(e, StoreError::Database(_)), "{e:?}");
        drop((holder, other));
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// Real PostgreSQL errors through the `Any` driver (skipped without
    /// `ARBOR_TEST_DATABASE_URL`), in a schema of their own.
    #[tokio::test]
    async fn postgres_errors_map_by_sqlstate() {
        let Ok(url) = std::env::var("ARBOR_TEST_DATABASE_URL") else {
            eprintln!("notice: ARBOR_TEST_DATABASE_URL is not set; skipping");
            return;
        };
        sqlx::any::install_default_drivers();
        let schema = format!("err_{:016x}", rand::random::<u64>());
        let mut a = AnyConnection::connect(&url).await.unwrap();
        let mut b = AnyConnection::connect(&url).await.unwrap();
        let setup = format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id BIGINT PRIMARY KEY, \
             short VARCHAR(2)); INSERT INTO {schema}.t VALUES (1, 'a')"
        );
        a.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(setup)))
            .await
            .unwrap();

        // A NUL byte in a bound text: 22021, not "busy".
        let e = sqlx::query("SELECT CAST($1 AS TEXT)")
            .bind("a\0b")
            .execute(&mut a)
            .await
            .map_err(map_sqlx)
            .unwrap_err();
        match e {
            StoreError::Invalid { field, reason } => {
                assert_eq!(field, "value");
                assert_eq!(reason, UNSTORABLE_CHARACTER);
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let e = error_of(&mut a, "SELECT CAST('x' AS BIGINT)").await;
        assert!(matches!(e, StoreError::Invalid { .. }), "22P02: {e:?}");
        let e = error_of(&mut a, &format!("UPDATE {schema}.t SET short = 'abc'")).await;
        assert!(matches!(e, StoreError::Invalid { .. }), "22001: {e:?}");
        // Insufficient privilege (42501) is an internal error, not contention.
        let e = error_of(
            &mut a,
            "BEGIN; SET LOCAL ROLE pg_read_all_data; SELECT pg_read_file('PG_VERSION')",
        )
        .await;
        a.execute("ROLLBACK").await.unwrap();
        assert!(matches!(e, StoreError::Database(_)), "42501: {e:?}");

        // lock_not_available (55P03) and serialization_failure (40001) are.
        let lock = format!("BEGIN; SELECT id FROM {schema}.t WHERE id = 1 FOR UPDATE");
        a.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(lock)))
            .await
            .unwrap();
        let e = error_of(
            &mut b,
            &format!("SELECT id FROM {schema}.t WHERE id = 1 FOR UPDATE NOWAIT"),
        )
        .await;
        assert!(matches!(e, StoreError::Contention(_)), "55P03: {e:?}");
        a.execute("ROLLBACK").await.unwrap();
        let snapshot = format!("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM {schema}.t");
        b.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(snapshot)))
            .await
            .unwrap();
        a.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "UPDATE {schema}.t SET short = 'b'"
        ))))
        .await
        .unwrap();
        let e = error_of(&mut b, &format!("UPDATE {schema}.t SET short = 'c'")).await;
        assert!(matches!(e, StoreError::Contention(_)), "40001: {e:?}");
        b.execute("ROLLBACK").await.unwrap();

        a.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {schema} CASCADE"
        ))))
        .await
        .unwrap();
    }
}
