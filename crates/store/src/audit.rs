use arbor_core::{Decision, OrgId, Outcome, UserId};
use serde::{Deserialize, Serialize};

/// Which kind of client made a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Web,
    Api,
    Device,
    Automation,
    Cli,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Api => "api",
            Self::Device => "device",
            Self::Automation => "automation",
            Self::Cli => "cli",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Allowed,
    Forbidden,
    Hidden,
    /// Allowed by policy but refused by a rule of the current state (last
    /// Admin, depth limit, …).
    Failed,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Forbidden => "forbidden",
            Self::Hidden => "hidden",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "allowed" => Self::Allowed,
            "forbidden" => Self::Forbidden,
            "hidden" => Self::Hidden,
            _ => Self::Failed,
        }
    }
}

impl From<Outcome> for AuditOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Allowed => Self::Allowed,
            Outcome::Forbidden => Self::Forbidden,
            Outcome::Hidden => Self::Hidden,
        }
    }
}

/// One row of the audit log (SPEC.md section 1): written in the same
/// transaction as the mutation it records, or alone for a denied attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    pub actor: Option<UserId>,
    pub actor_home_org: Option<OrgId>,
    pub target_org: Option<OrgId>,
    pub client: ClientKind,
    /// A stable code such as `device.transfer`.
    pub action: &'static str,
    /// What was acted on, e.g. `device:42`.
    pub target: String,
    pub outcome: AuditOutcome,
    /// Free-form JSON with what else is worth keeping (never secrets).
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(client: ClientKind, action: &'static str, target: impl Into<String>) -> Self {
        Self {
            actor: None,
            actor_home_org: None,
            target_org: None,
            client,
            action,
            target: target.into(),
            outcome: AuditOutcome::Allowed,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Fills actor, orgs and outcome from the decision that governed the action.
    pub fn decided(mut self, decision: &Decision) -> Self {
        self.actor = Some(decision.user);
        self.actor_home_org = decision.via.map(|v| v.org);
        self.target_org = decision.target_org.or(self.target_org);
        self.outcome = decision.outcome.into();
        if !decision.is_allowed() {
            self = self.detail("reason", decision.explain());
        }
        self
    }

    pub fn target_org(mut self, org: OrgId) -> Self {
        self.target_org = Some(org);
        self
    }

    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        if let serde_json::Value::Object(map) = &mut self.details {
            map.insert(
                key.to_owned(),
                serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            );
        }
        self
    }
}
