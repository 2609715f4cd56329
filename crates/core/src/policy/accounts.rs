//! Decisions on one's own account: logging in, accepting an invitation,
//! completing a password reset, editing one's password or profile, logging
//! out. These are not decided on a target org: a credential (a password, a
//! single-use token, a live session) is the whole question.

use super::{
    AcceptInvitation, CompletePasswordReset, EditOwnAccount, Login, Logout, Refusal, Verdict,
    verdict,
};
use crate::decision::{Actor, Decision, Outcome, Rule, UserStatus};
use crate::error::DomainError;
use crate::ids::UserId;
use crate::permission::PermissionSet;

fn credential(outcome: Outcome, user: UserId) -> Decision {
    Decision {
        outcome,
        rule: Rule::Credential,
        user,
        via: None,
        context: None,
        target_org: None,
        permission: None,
        missing: PermissionSet::EMPTY,
    }
}

/// What logging in is decided on.
#[derive(Clone, Copy, Debug)]
pub struct LoginFacts {
    pub user: UserId,
    pub status: UserStatus,
    pub password_matches: bool,
}

/// A session for an active user whose password matched. Wrong password and
/// inactive account are refused alike (the API answers both with one 401).
pub fn login(facts: LoginFacts) -> Verdict<Login> {
    let ok = facts.password_matches && facts.status == UserStatus::Active;
    let outcome = if ok {
        Outcome::Allowed
    } else {
        Outcome::Forbidden
    };
    verdict(credential(outcome, facts.user), facts.user)
}

/// Ending a live session: always the session owner's own choice.
pub fn logout(user: UserId) -> super::Allowed<Logout> {
    super::Allowed::new(credential(Outcome::Allowed, user), user)
}

/// What accepting an invitation is decided on.
#[derive(Clone, Copy, Debug)]
pub struct InvitationFacts {
    /// The pending user the invitation created; `None` once it is gone.
    pub user: Option<UserId>,
    pub used: bool,
    pub expired: bool,
    pub user_status: UserStatus,
}

/// Accepting an invitation: the token is the credential; single use, not
/// expired, and the account still pending.
pub fn accept_invitation(facts: InvitationFacts) -> Verdict<AcceptInvitation> {
    let Some(user) = facts.user else {
        return Err(Refusal::Failed {
            decision: credential(Outcome::Allowed, UserId(0)),
            error: DomainError::NotFound { what: "invitation" },
        });
    };
    let decision = credential(Outcome::Allowed, user);
    let refuse = |what: &str| {
        Err(Refusal::Failed {
            decision,
            error: DomainError::conflict(what),
        })
    };
    if facts.used {
        return refuse("this invitation was already used");
    }
    if facts.expired {
        return refuse("this invitation has expired; ask for a new one");
    }
    if facts.user_status != UserStatus::Pending {
        return refuse("this account is already active");
    }
    verdict(decision, user)
}

/// What completing a password reset is decided on.
#[derive(Clone, Copy, Debug)]
pub struct ResetFacts {
    pub user: UserId,
    pub used: bool,
    pub expired: bool,
    pub user_status: UserStatus,
}

/// Completing a reset: the link is single use, not expired, and only an
/// active account resets its password this way.
pub fn complete_password_reset(facts: ResetFacts) -> Verdict<CompletePasswordReset> {
    let decision = credential(Outcome::Allowed, facts.user);
    let refuse = |what: &str| {
        Err(Refusal::Failed {
            decision,
            error: DomainError::conflict(what),
        })
    };
    if facts.used {
        return refuse("this reset link was already used");
    }
    if facts.expired {
        return refuse("this reset link has expired; ask for a new one");
    }
    if facts.user_status != UserStatus::Active {
        return refuse("only an active account can reset its password");
    }
    verdict(decision, facts.user)
}

impl Actor {
    /// One's own password or profile: any active user with a live session
    /// (rule 1, already applied in making the actor).
    pub fn edit_own_account(&self) -> Verdict<EditOwnAccount> {
        let decision = Decision {
            rule: Rule::OwnAccount,
            target_org: Some(self.via().org),
            ..self.decision(Outcome::Allowed, Rule::OwnAccount, self.home(), None)
        };
        verdict(decision, self.user())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_need_an_active_account_and_the_password() {
        let facts = |status, password_matches| LoginFacts {
            user: UserId(1),
            status,
            password_matches,
        };
        assert!(login(facts(UserStatus::Active, true)).is_ok());
        assert!(login(facts(UserStatus::Active, false)).is_err());
        assert!(login(facts(UserStatus::Suspended, true)).is_err());
        assert!(login(facts(UserStatus::Pending, true)).is_err());
    }

    #[test]
    fn tokens_are_single_use_and_expire() {
        let invitation = |used, expired, status| InvitationFacts {
            user: Some(UserId(1)),
            used,
            expired,
            user_status: status,
        };
        assert!(accept_invitation(invitation(false, false, UserStatus::Pending)).is_ok());
        assert!(accept_invitation(invitation(true, false, UserStatus::Pending)).is_err());
        assert!(accept_invitation(invitation(false, true, UserStatus::Pending)).is_err());
        assert!(accept_invitation(invitation(false, false, UserStatus::Active)).is_err());
        let reset = |used, expired, status| ResetFacts {
            user: UserId(1),
            used,
            expired,
            user_status: status,
        };
        assert!(complete_password_reset(reset(false, false, UserStatus::Active)).is_ok());
        assert!(complete_password_reset(reset(true, false, UserStatus::Active)).is_err());
        assert!(complete_password_reset(reset(false, true, UserStatus::Active)).is_err());
        assert!(complete_password_reset(reset(false, false, UserStatus::Suspended)).is_err());
    }
}
