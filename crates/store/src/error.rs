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
    let known: [(&str, &str, &str); 9] = [
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

/// The one place where driver errors become store errors.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound { what: "row" },
        sqlx::Error::PoolTimedOut => StoreError::Contention(e),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED and their extended codes
            // (low byte). PostgreSQL: 40001 serialization failure, 40P01 deadlock.
            let sqlite_busy = code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            if sqlite_busy || code == "40001" || code == "40P01" {
                return StoreError::Contention(e);
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
