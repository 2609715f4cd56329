//! The proof a mutation needs: every mutating method of a write transaction
//! takes an [`Allowed`], and only an allowing decision (or the server's own
//! bootstrap) produces one. A leaf module: the audit event and the transaction
//! both refer to it.

use arbor_core::Decision;

/// Proof that a mutation was allowed. Obtained only from an allowing
/// [`Decision`], or — for server-level bootstrap operations that have no actor
/// (`arbor init`, demo data, the data generator) — from [`Allowed::bootstrap`].
#[derive(Clone, Debug)]
pub struct Allowed {
    decision: Option<Decision>,
}

impl Allowed {
    pub fn from_decision(decision: &Decision) -> Option<Self> {
        decision.is_allowed().then_some(Self {
            decision: Some(*decision),
        })
    }

    /// For operations performed by the server itself, not on behalf of a user.
    pub fn bootstrap() -> Self {
        Self { decision: None }
    }

    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
}
