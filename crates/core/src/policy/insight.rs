//! Decisions on asking about access: `check`, `explain`, `who-can` and
//! effective permissions. Asking is itself an action: about an org (or a
//! device or member in it) it needs `roles.view` there; about a user, that
//! the user is visible; and who-can shows only memberships in the asker's
//! scope, with names and emails only to holders of `users.view`.

use crate::decision::{Actor, Decision, Grant, Membership, Principal};
use crate::ids::{OrgId, UserId};
use crate::org::OrgPath;
use crate::permission::Permission;
use std::collections::HashMap;

/// How much of a listed user an asker may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Id, name and email (`users.view`).
    Identities,
    /// Ids only.
    IdsOnly,
}

impl Actor {
    /// Asking about access on `org` (`roles.view` on it).
    pub fn ask_about(&self, org: &OrgPath) -> Decision {
        self.decide_org(Permission::RolesView, org)
    }

    /// The asked user is visible: the actor itself, or a user with a
    /// membership in the actor's scope.
    pub fn sees_user(&self, subject: &Principal) -> bool {
        subject.user == self.user() || subject.memberships.iter().any(|m| self.sees(&m.org))
    }

    /// A context org named in a question must be visible, exactly like one
    /// that does not exist otherwise (no existence oracle).
    pub fn sees_context(&self, context: &OrgPath) -> bool {
        self.sees(context)
    }

    fn sees(&self, org: &OrgPath) -> bool {
        self.home().same_hierarchy(org) && self.scope().contains(org)
    }

    /// The membership of an asked user the actor asks about: the first (in
    /// the order given) that it can see.
    pub fn asked_membership<'a>(&self, memberships: &[&'a Membership]) -> Option<&'a Membership> {
        memberships.iter().find(|m| self.sees(&m.org)).copied()
    }

    /// Who-can answers limited to grants through memberships in the actor's
    /// scope (`principals` are those the grants were computed from).
    pub fn visible_grants(&self, grants: Vec<Grant>, principals: &[Principal]) -> Vec<Grant> {
        let paths: HashMap<(UserId, OrgId), &OrgPath> = principals
            .iter()
            .flat_map(|p| {
                p.memberships
                    .iter()
                    .map(move |m| ((p.user, m.org.id()), &m.org))
            })
            .collect();
        grants
            .into_iter()
            .filter(|g| {
                paths
                    .get(&(g.user, g.via.org))
                    .is_some_and(|path| self.sees(path))
            })
            .collect()
    }

    /// What of a listed user the actor may see.
    pub fn identity_visibility(&self) -> Visibility {
        if self.permissions().contains(Permission::UsersView) {
            Visibility::Identities
        } else {
            Visibility::IdsOnly
        }
    }
}
