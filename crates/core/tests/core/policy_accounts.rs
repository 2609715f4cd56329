//! The account decisions of arbor-core's `policy` module as exhaustive truth
//! tables (SPEC.md section 4 rule 1 and section 6): a credential is the
//! whole question, so every combination of the facts is checked.

use arbor_core::policy::{self, InvitationFacts, LoginFacts, Operator, ResetFacts};
use arbor_core::{OrgId, Outcome, Refusal, Rule, UserId, UserStatus};

const STATUSES: [UserStatus; 3] = [
    UserStatus::Pending,
    UserStatus::Active,
    UserStatus::Suspended,
];

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Allowed,
    Forbidden,
    Failed,
}

fn outcome<A: policy::Action>(verdict: &policy::Verdict<A>) -> Expect {
    match verdict {
        Ok(allowed) => {
            let decision = allowed.decision().unwrap();
            assert!(decision.is_allowed());
            assert_eq!(decision.rule, Rule::Credential);
            Expect::Allowed
        }
        Err(Refusal::Denied(d)) => {
            assert_eq!(d.rule, Rule::Credential);
            match d.outcome {
                Outcome::Forbidden => Expect::Forbidden,
                other => panic!("a credential refusal is a 401, not {other:?}"),
            }
        }
        Err(Refusal::Failed { decision, .. }) => {
            assert!(decision.is_allowed());
            Expect::Failed
        }
    }
}

#[test]
fn a_login_needs_an_active_account_and_the_password() {
    for status in STATUSES {
        for password_matches in [false, true] {
            let verdict = policy::login(LoginFacts {
                user: UserId(7),
                status,
                password_matches,
            });
            // Wrong password and inactive account answer alike.
            let expected = if status == UserStatus::Active && password_matches {
                Expect::Allowed
            } else {
                Expect::Forbidden
            };
            assert_eq!(outcome(&verdict), expected, "{status:?} {password_matches}");
            if let Ok(allowed) = verdict {
                assert_eq!(*allowed.target(), UserId(7));
            }
        }
    }
}

#[test]
fn an_invitation_is_accepted_once_before_it_expires_by_a_pending_account() {
    for user in [None, Some(UserId(7))] {
        for used in [false, true] {
            for expired in [false, true] {
                for user_status in STATUSES {
                    let verdict = policy::accept_invitation(InvitationFacts {
                        user,
                        used,
                        expired,
                        user_status,
                    });
                    let expected = if user.is_some()
                        && !used
                        && !expired
                        && user_status == UserStatus::Pending
                    {
                        Expect::Allowed
                    } else {
                        Expect::Failed
                    };
                    assert_eq!(
                        outcome(&verdict),
                        expected,
                        "{user:?} used {used} expired {expired} {user_status:?}"
                    );
                    if let Ok(allowed) = verdict {
                        assert_eq!(Some(*allowed.target()), user);
                    }
                }
            }
        }
    }
}

#[test]
fn a_reset_link_is_used_once_before_it_expires_by_an_active_account() {
    for used in [false, true] {
        for expired in [false, true] {
            for user_status in STATUSES {
                let verdict = policy::complete_password_reset(ResetFacts {
                    user: UserId(7),
                    used,
                    expired,
                    user_status,
                });
                let expected = if !used && !expired && user_status == UserStatus::Active {
                    Expect::Allowed
                } else {
                    Expect::Failed
                };
                assert_eq!(
                    outcome(&verdict),
                    expected,
                    "used {used} expired {expired} {user_status:?}"
                );
                if let Ok(allowed) = verdict {
                    assert_eq!(*allowed.target(), UserId(7));
                }
            }
        }
    }
}

#[test]
fn logging_out_is_always_ones_own_choice_and_operators_act_without_a_decision() {
    let out = policy::logout(UserId(7));
    assert_eq!(*out.target(), UserId(7));
    assert!(out.decision().is_some_and(|d| d.is_allowed()));
    for operator in [Operator::setup(), Operator::recovery()] {
        assert!(operator.create_hierarchy().decision().is_none());
        let recover = operator.recover(OrgId(1), UserId(2));
        assert!(recover.decision().is_none());
        assert_eq!(*recover.target(), (OrgId(1), UserId(2)));
    }
}
