use thiserror::Error;

/// What the domain rules can refuse. The server maps each variant to one HTTP
/// status; the store has its own enum and converts into this one where needed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The object does not exist, or exists outside the caller's scope.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request is well formed but breaks a rule of the current state
    /// (depth limit, last Admin, duplicate name …).
    #[error("{what}")]
    Conflict { what: String },
    /// A field of the request is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError {
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
