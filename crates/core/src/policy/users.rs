//! Decisions on members (SPEC.md section 6, rules 4 and 6).
//!
//! An action on a member acts on one of the member's memberships: the first
//! (home first, then by org id) that lies in the actor's scope
//! ([`crate::membership_acted_on`]). An action on the whole account —
//! editing the profile, mailing a reset link, force logout, suspension,
//! deletion, and the invitation of a pending member — is allowed only if it is
//! also allowed on the member's home membership: an org that shares a member
//! with another (multi-org membership) cannot suspend or delete the account
//! the other org's member relies on.

use super::{
    AddMember, ChangeMemberRole, DeleteUser, EditUser, ForceLogout, Invite, Refusal,
    ResendInvitation, ResetPassword, RevokeInvitation, SetSuspended, TransferUser, Verdict,
    verdict,
};
use crate::decision::{Actor, Decision, MemberFacts, Outcome, Rule, membership_acted_on};
use crate::ids::{OrgId, RoleId, UserId};
use crate::org::OrgPath;
use crate::permission::{Permission, PermissionSet};

/// One membership of the member acted on, as loaded for a decision.
#[derive(Clone, Copy, Debug)]
pub struct TargetMembership<'a> {
    pub org: &'a OrgPath,
    pub role: RoleId,
    /// The role's set in that org.
    pub permissions: PermissionSet,
    pub home: bool,
}

/// The member and the membership an action was allowed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetMember {
    pub user: UserId,
    pub org: OrgPath,
    pub role: RoleId,
    pub home: bool,
}

/// An action on a member: the permission it needs, and whether it acts on
/// the whole account.
pub trait MemberAct: super::Action<Target = TargetMember> {
    const PERMISSION: Permission;
    const USER_WIDE: bool;
}

macro_rules! member_acts {
    ($($action:ident => $permission:ident, $wide:literal;)*) => {
        $( impl MemberAct for $action {
            const PERMISSION: Permission = Permission::$permission;
            const USER_WIDE: bool = $wide;
        } )*
    };
}

member_acts! {
    EditUser => UsersEdit, true;
    ResetPassword => UsersChangePassword, true;
    ForceLogout => UsersForceLogout, true;
    SetSuspended => UsersSuspend, true;
    DeleteUser => UsersDelete, true;
    ResendInvitation => UsersInvite, true;
    RevokeInvitation => UsersInvite, true;
}

fn facts<'a>(user: UserId, m: &TargetMembership<'a>) -> MemberFacts<'a> {
    MemberFacts {
        user,
        org: m.org,
        permissions: m.permissions,
    }
}

impl Actor {
    /// `permission` on the member `user` through the membership acted on,
    /// and for user-wide actions through the home membership too. The
    /// memberships come home first, then by org id.
    pub fn decide_member(
        &self,
        permission: Permission,
        user_wide: bool,
        user: UserId,
        memberships: &[TargetMembership<'_>],
    ) -> Result<(Decision, usize), Decision> {
        let Some(index) = membership_acted_on(self, memberships, |m| m.org)
            .and_then(|m| memberships.iter().position(|o| std::ptr::eq(o, m)))
        else {
            return Err(self.absent());
        };
        let acted = &memberships[index];
        let decision = self.decide_user(permission, &facts(user, acted));
        if !decision.is_allowed() {
            return Err(decision);
        }
        if user_wide
            && let Some(home) = memberships.iter().find(|m| m.home)
            && !std::ptr::eq(home, acted)
        {
            let at_home = self.decide_user(permission, &facts(user, home));
            if !at_home.is_allowed() {
                // The member is visible through `acted`: a 403, not a 404.
                return Err(Decision {
                    outcome: Outcome::Forbidden,
                    rule: Rule::HomeOutsideScope,
                    target_org: decision.target_org,
                    missing: at_home.missing,
                    ..at_home
                });
            }
        }
        Ok((decision, index))
    }

    /// A member action `A` on `user`.
    pub fn manage_member<A: MemberAct>(
        &self,
        user: UserId,
        memberships: &[TargetMembership<'_>],
    ) -> Verdict<A> {
        let (decision, index) = self
            .decide_member(A::PERMISSION, A::USER_WIDE, user, memberships)
            .map_err(Refusal::Denied)?;
        let m = &memberships[index];
        verdict(
            decision,
            TargetMember {
                user,
                org: m.org.clone(),
                role: m.role,
                home: m.home,
            },
        )
    }

    /// Seeing a member: some membership of theirs is visible with
    /// `users.view`; the actor always sees itself (where its membership lies
    /// in its scope), with or without `users.view`.
    pub fn view_user(&self, user: UserId, memberships: &[TargetMembership<'_>]) -> Decision {
        if user == self.user()
            && let Some(own) = memberships
                .iter()
                .find(|m| self.view_org(m.org).is_allowed())
        {
            return self.decision(Outcome::Allowed, Rule::OwnAccount, own.org, None);
        }
        let mut first = None;
        for m in memberships {
            let decision = self.decide_user(Permission::UsersView, &facts(user, m));
            if decision.is_allowed() {
                return decision;
            }
            first.get_or_insert(decision);
        }
        match first {
            // Visible memberships without users.view would be 403; a member
            // is only ever seen or not seen.
            Some(decision) => Decision {
                outcome: Outcome::Hidden,
                ..decision
            },
            None => self.absent(),
        }
    }

    /// Inviting a new person into `org` with a role whose set there is
    /// `role_set`: `users.invite` on the org, and the set within the actor's
    /// (rule 6).
    pub fn invite(&self, org: &OrgPath, role: RoleId, role_set: PermissionSet) -> Verdict<Invite> {
        let decision = self.decide_org(Permission::UsersInvite, org);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        verdict(
            self.decide_assign_role(Permission::UsersInvite, org, role_set),
            (org.id(), role),
        )
    }

    /// Adding a member directly (not reachable over HTTP: an existing
    /// account joins another org only by accepting a membership invitation).
    pub fn add_member(
        &self,
        org: &OrgPath,
        role: RoleId,
        role_set: PermissionSet,
    ) -> Verdict<AddMember> {
        verdict(
            self.decide_assign_role(Permission::UsersInvite, org, role_set),
            (org.id(), role),
        )
    }

    /// Giving `user` the role `role` (set `new_set`) in the membership
    /// `membership`: `users.edit` on it (rule 6 on the member) and the new
    /// set within the actor's (rule 6 on the grant).
    pub fn change_member_role(
        &self,
        user: UserId,
        membership: &TargetMembership<'_>,
        role: RoleId,
        new_set: PermissionSet,
    ) -> Verdict<ChangeMemberRole> {
        let decision = self.decide_user(Permission::UsersEdit, &facts(user, membership));
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        verdict(
            self.decide_assign_role(Permission::UsersEdit, membership.org, new_set),
            (user, membership.org.id(), role),
        )
    }

    /// Moving `user`'s membership acted on to `to` with `role` (set
    /// `role_set` there): `users.transfer` on the member, and the role within
    /// the actor's in the target org.
    pub fn transfer_user(
        &self,
        user: UserId,
        memberships: &[TargetMembership<'_>],
        to: &OrgPath,
        role: RoleId,
        role_set: PermissionSet,
    ) -> Verdict<TransferUser> {
        let (_, index) = self
            .decide_member(Permission::UsersTransfer, false, user, memberships)
            .map_err(Refusal::Denied)?;
        let m = &memberships[index];
        let grant = self.decide_assign_role(Permission::UsersTransfer, to, role_set);
        let target = TargetMember {
            user,
            org: m.org.clone(),
            role: m.role,
            home: m.home,
        };
        verdict(grant, (target, to.id(), role))
    }

    /// The CSV download of the users list (`users.download_list` at home).
    pub fn export_users(&self) -> Decision {
        self.decide_org(Permission::UsersDownloadList, self.home())
    }

    /// Reading the actions log (`users.view_actions_log` at home).
    pub fn read_actions_log(&self) -> Decision {
        self.decide_org(Permission::UsersViewActionsLog, self.home())
    }

    /// Which users a list shows (rule 9): members of orgs in
    /// [`Actor::list_scope`], all of them with `users.view`, else only the
    /// actor itself — the same users [`Actor::view_user`] lets it see.
    pub fn user_list(&self) -> UserList {
        UserList {
            scope: self.list_scope(),
            everyone: self.permissions().contains(Permission::UsersView),
            me: self.user(),
        }
    }

    /// Narrowing a user list to the members of `org`: it must be visible.
    pub fn list_members_of(&self, org: &OrgPath) -> Decision {
        self.decide_org(Permission::UsersView, org)
    }
}

/// A user list's predicate, which the store turns into SQL: users with a
/// membership in `scope`, and of those everyone or only `me`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserList {
    pub scope: crate::Scope,
    pub everyone: bool,
    pub me: UserId,
}

impl UserList {
    /// The same predicate in memory.
    pub fn matches(&self, user: UserId, orgs: &[&OrgPath]) -> bool {
        (self.everyone || user == self.me)
            && orgs
                .iter()
                .any(|o| self.scope.home.same_hierarchy(o) && self.scope.contains(o))
    }
}

/// The org id of a target member's membership.
impl TargetMember {
    pub fn org_id(&self) -> OrgId {
        self.org.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{actor, path};

    #[test]
    fn user_wide_actions_need_the_home_membership() {
        let child = path(&[1, 2]);
        let sibling = path(&[1, 3]);
        let admin = actor(&child, PermissionSet::all());
        // Home in the sibling org, a second membership in the admin's org.
        let memberships = [
            TargetMembership {
                org: &sibling,
                role: RoleId(3),
                permissions: PermissionSet::EMPTY,
                home: true,
            },
            TargetMembership {
                org: &child,
                role: RoleId(3),
                permissions: PermissionSet::EMPTY,
                home: false,
            },
        ];
        let suspend = admin.manage_member::<SetSuspended>(UserId(9), &memberships);
        assert!(matches!(
            suspend,
            Err(Refusal::Denied(d)) if d.rule == Rule::HomeOutsideScope && d.outcome == Outcome::Forbidden
        ));
        // Per-membership actions act on the visible membership.
        assert!(
            admin
                .transfer_user(
                    UserId(9),
                    &memberships,
                    &child,
                    RoleId(3),
                    PermissionSet::EMPTY
                )
                .is_ok()
        );
        // With the home membership in scope, user-wide actions pass.
        let root_admin = actor(&path(&[1]), PermissionSet::all());
        assert!(
            root_admin
                .manage_member::<SetSuspended>(UserId(9), &memberships)
                .is_ok()
        );
        // Nothing visible: absent.
        let other = actor(&path(&[5]), PermissionSet::all());
        assert!(matches!(
            other.manage_member::<DeleteUser>(UserId(9), &memberships),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden
        ));
    }

    #[test]
    fn revoking_an_invitation_follows_the_subset_rule() {
        let org = path(&[1, 2]);
        let staff = actor(
            &org,
            PermissionSet::from([Permission::UsersInvite, Permission::UsersView]),
        );
        let pending_admin = [TargetMembership {
            org: &org,
            role: RoleId(1),
            permissions: PermissionSet::all(),
            home: true,
        }];
        assert!(matches!(
            staff.manage_member::<RevokeInvitation>(UserId(9), &pending_admin),
            Err(Refusal::Denied(d)) if d.rule == Rule::TargetMorePrivileged
        ));
    }
}
