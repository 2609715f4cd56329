use arbor_core::{Decision, DomainError, Outcome};
use arbor_store::StoreError;
use thiserror::Error;

/// The cause of a database failure, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What a use case can fail with. The server maps each variant to one status
/// (404, 403, 409, 400, 503, 500).
#[derive(Debug, Error)]
pub enum AppError {
    /// Absent, or outside the caller's scope (existence does not leak).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// Visible but not allowed; `reason` is the decision's explanation.
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// Not allowed, with machine-readable details (the permissions an
    /// escalation lacks).
    #[error("forbidden: {reason}")]
    ForbiddenWith {
        reason: String,
        details: serde_json::Value,
    },
    #[error("{what}")]
    Conflict { what: String },
    /// A conflict with machine-readable details (e.g. the counts that block
    /// an org's deletion).
    #[error("{what}")]
    ConflictWith {
        what: String,
        details: serde_json::Value,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Too many failed password checks from this client: try again after
    /// `retry_after_secs` (see [`crate::throttle`]).
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// Every password-hashing worker is busy and the queue is full (see
    /// [`crate::hashing`]): try again after `retry_after_secs`.
    #[error("too many password checks at once; try again")]
    Overloaded { retry_after_secs: u64 },
    /// A failure of the server itself (not the database); logged, never shown.
    #[error("internal error: {reason}")]
    Internal { reason: String },
    /// Contention (SQLite busy, a PostgreSQL deadlock) that outlasted the
    /// retries: the server is busy, try again. The cause is for the log.
    #[error("the database is busy; try again")]
    Busy(#[source] Cause),
    /// A database failure; logged, never shown.
    #[error("database error: {0}")]
    Database(#[source] Cause),
}

impl AppError {
    /// A denial as the API answers it: hidden targets are absent (404); any
    /// visible denial is forbidden (403), and one of rule 6 (granting or
    /// acting beyond one's own permissions) lists the missing permission ids.
    pub fn denied(decision: &Decision, what: &'static str) -> Self {
        match decision.outcome {
            Outcome::Forbidden if !decision.missing.is_empty() => Self::ForbiddenWith {
                reason: decision.explain(),
                details: serde_json::json!({ "missing_permissions": decision.missing.ids() }),
            },
            Outcome::Forbidden => Self::Forbidden {
                reason: decision.explain(),
            },
            _ => Self::NotFound { what },
        }
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn internal(reason: impl Into<String>) -> Self {
        Self::Internal {
            reason: reason.into(),
        }
    }

    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, Self::Busy(_))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => Self::NotFound { what },
            StoreError::Conflict { what } => Self::Conflict { what },
            StoreError::Invalid { field, reason } => Self::Invalid { field, reason },
            other if other.is_retryable() => Self::Busy(Box::new(other)),
            other => Self::Database(Box::new(other)),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { what } => Self::NotFound { what },
            DomainError::Conflict { what } => Self::Conflict { what },
            DomainError::Invalid { field, reason } => Self::Invalid { field, reason },
        }
    }
}
