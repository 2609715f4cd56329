//! Decisions on organizations: view, create, settings, re-parent, delete.

use super::{CreateSuborg, DeleteOrg, MoveOrg, Refusal, UpdateOrg, Verdict, check, verdict};
use crate::decision::{Actor, Decision, Outcome, Rule};
use crate::error::DomainError;
use crate::ids::{RoleId, UserId};
use crate::org::{
    DeletePlan, DepthLimit, MovedSubtree, OrgContents, OrgFacts, OrgPath, OrgType,
    check_create_suborg, check_delete_org, check_transfer_org,
};
use crate::permission::{Permission, PermissionSet};
use crate::role::{BuiltinRole, Role};
use serde::Serialize;
use std::collections::BTreeMap;

impl Actor {
    /// Seeing an org (its settings, its place in the tree): it lies in the
    /// actor's scope (rules 3 and 7); no permission is needed.
    pub fn view_org(&self, org: &OrgPath) -> Decision {
        match self.hidden_unless_in_scope(org) {
            Some(hidden) => hidden,
            None => self.decision(Outcome::Allowed, Rule::InScope, org, None),
        }
    }

    /// Listing from `org` (a tree's root): it must lie in the list scope of
    /// rule 9 — with a context org `C`, in `C`'s subtree.
    pub fn view_in_list(&self, org: &OrgPath) -> Decision {
        let list = self.list_scope();
        if self.home().same_hierarchy(org) && list.contains(org) {
            self.decision(Outcome::Allowed, Rule::InScope, org, None)
        } else {
            self.decision(Outcome::Hidden, Rule::OutsideScope, org, None)
        }
    }

    /// The decision for a target that does not exist: hidden, exactly like
    /// one outside the scope, and recorded against the actor's home org.
    pub fn absent(&self) -> Decision {
        Decision {
            target_org: Some(self.via().org),
            ..self.decision(Outcome::Hidden, Rule::NoSuchTarget, self.home(), None)
        }
    }

    /// A sub-org of `parent` (`organizations.create_suborgs` there), within
    /// the depth limit and the PERSONAL rule.
    pub fn create_suborg(
        &self,
        parent: &OrgFacts,
        child: OrgType,
        limit: DepthLimit,
    ) -> Verdict<CreateSuborg> {
        let decision = self.decide_org(Permission::OrganizationsCreateSuborgs, &parent.path);
        let allowed = verdict(decision, parent.path.clone())?;
        check(&decision, check_create_suborg(parent, child, limit))?;
        Ok(allowed)
    }

    /// An org's settings (`organizations.settings` on it).
    pub fn update_org(&self, org: &OrgPath) -> Verdict<UpdateOrg> {
        verdict(
            self.decide_org(Permission::OrganizationsSettings, org),
            org.id(),
        )
    }

    /// Re-parenting `moved` under `new_parent`: `organizations.transfer` on
    /// both, then the tree rules; the proof names the old and new path.
    pub fn move_org(
        &self,
        moved: &MovedSubtree,
        new_parent: &OrgFacts,
        limit: DepthLimit,
        confirmed: bool,
    ) -> Verdict<MoveOrg> {
        let from = self.decide_org(Permission::OrganizationsTransfer, &moved.root.path);
        if !from.is_allowed() {
            return Err(Refusal::Denied(from));
        }
        let to = self.decide_org(Permission::OrganizationsTransfer, &new_parent.path);
        if !to.is_allowed() {
            return Err(Refusal::Denied(to));
        }
        let new_path = check(
            &from,
            check_transfer_org(moved, new_parent, limit, confirmed),
        )?;
        verdict(from, (moved.root.path.clone(), new_path))
    }

    /// Deleting an org (SPEC.md section 2). The actor needs
    /// `organizations.create_suborgs` on the org and on its parent (so no one
    /// deletes their own home org). Nothing is deleted silently: an org that
    /// holds anything is refused unless its contents move to the parent.
    /// Moving members never widens their scope: each moved membership gets
    /// the role `role_map` names for its old role, else the hierarchy's
    /// least-privileged role in the parent ([`least_privileged_role`]); and
    /// the actor must hold every permission of the roles it so grants in the
    /// parent (rule 6).
    pub fn delete_org(
        &self,
        facts: &DeleteOrgFacts<'_>,
        move_contents: bool,
        role_map: &BTreeMap<RoleId, RoleId>,
    ) -> Verdict<DeleteOrg> {
        let own = self.decide_org(Permission::OrganizationsCreateSuborgs, facts.org);
        if !own.is_allowed() {
            return Err(Refusal::Denied(own));
        }
        let Some(parent) = facts.parent else {
            return Err(Refusal::Failed {
                decision: own,
                error: DomainError::conflict("a hierarchy's root organization cannot be deleted"),
            });
        };
        let decision = self.decide_org(Permission::OrganizationsCreateSuborgs, parent);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        let plan = check(
            &decision,
            check_delete_org(facts.org, facts.contents, move_contents),
        )?;
        let mut moves = Vec::new();
        if let DeletePlan::MoveContentsTo(_) = plan {
            for (old, new) in role_map {
                let known = |r: &RoleId| facts.parent_roles.iter().any(|(role, _)| role.id == *r);
                if !known(old) || !known(new) {
                    return Err(Refusal::Failed {
                        decision,
                        error: DomainError::invalid(
                            "role_map",
                            format!("role {old} or {new} is not a role of this hierarchy"),
                        ),
                    });
                }
            }
            let fallback = least_privileged_role(facts.parent_roles);
            let mut granted = PermissionSet::EMPTY;
            for member in facts.members {
                let new_role = if member.in_parent {
                    None
                } else {
                    let role = match role_map.get(&member.role) {
                        Some(role) => *role,
                        None => {
                            let Some(role) = fallback else {
                                return Err(Refusal::Failed {
                                    decision,
                                    error: DomainError::conflict("the hierarchy has no roles"),
                                });
                            };
                            // Even the least-privileged role must not open the
                            // parent's subtree (the deleted org's siblings).
                            if set_of(facts.parent_roles, role)
                                .contains(Permission::OrganizationsSwitchToSuborgs)
                            {
                                return Err(Refusal::Failed {
                                    decision,
                                    error: DomainError::conflict(format!(
                                        "the least-privileged role ({role}) may switch to sub-orgs \
                                         in the parent, which would widen the moved members' \
                                         scope; name their roles in role_map"
                                    )),
                                });
                            }
                            role
                        }
                    };
                    granted = granted.union(set_of(facts.parent_roles, role));
                    Some(role)
                };
                moves.push(MemberMove {
                    user: member.user,
                    old_role: member.role,
                    new_role,
                });
            }
            let grant =
                self.decide_assign_role(Permission::OrganizationsCreateSuborgs, parent, granted);
            if !grant.is_allowed() {
                return Err(Refusal::Denied(grant));
            }
        }
        verdict(
            decision,
            DeletionPlan {
                org: facts.org.clone(),
                parent: parent.clone(),
                move_contents: matches!(plan, DeletePlan::MoveContentsTo(_)),
                moves,
            },
        )
    }
}

fn set_of(roles: &[(Role, PermissionSet)], role: RoleId) -> PermissionSet {
    roles
        .iter()
        .find(|(r, _)| r.id == role)
        .map(|(_, set)| *set)
        .unwrap_or(PermissionSet::EMPTY)
}

/// The hierarchy's least-privileged role in an org: the one whose set there
/// holds the fewest permissions; on a tie the built-in User role, then the
/// role listed last. `roles` are the hierarchy's roles in display order, each
/// with its set in that org.
pub fn least_privileged_role(roles: &[(Role, PermissionSet)]) -> Option<RoleId> {
    roles
        .iter()
        .enumerate()
        .min_by_key(|(position, (role, set))| {
            (
                set.len(),
                role.builtin != Some(BuiltinRole::User),
                usize::MAX - position,
            )
        })
        .map(|(_, (role, _))| role.id)
}

/// What deciding an org's deletion needs.
#[derive(Clone, Copy, Debug)]
pub struct DeleteOrgFacts<'a> {
    pub org: &'a OrgPath,
    /// `None` for a root org.
    pub parent: Option<&'a OrgPath>,
    pub contents: OrgContents,
    /// The hierarchy's roles in display order, each with its set in the parent.
    pub parent_roles: &'a [(Role, PermissionSet)],
    /// The org's memberships.
    pub members: &'a [MovedMember],
}

/// A membership of an org about to be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovedMember {
    pub user: UserId,
    pub role: RoleId,
    /// The user already is a member of the parent: that membership stays and
    /// this one goes.
    pub in_parent: bool,
}

/// What becomes of one membership when its org's contents move to the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MemberMove {
    pub user: UserId,
    pub old_role: RoleId,
    /// The role in the parent; `None` when the user keeps an existing
    /// membership of the parent instead.
    pub new_role: Option<RoleId>,
}

/// What an allowed deletion does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionPlan {
    pub org: OrgPath,
    pub parent: OrgPath,
    /// Sub-orgs, members and devices move to the parent first.
    pub move_contents: bool,
    pub moves: Vec<MemberMove>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{actor, path};

    fn role(id: i64, builtin: Option<BuiltinRole>) -> Role {
        Role {
            id: RoleId(id),
            name: format!("r{id}"),
            builtin,
        }
    }

    fn admin_at(org: &OrgPath) -> Actor {
        actor(org, PermissionSet::all())
    }

    #[test]
    fn the_least_privileged_role_has_the_smallest_set_and_prefers_user() {
        let roles = [
            (role(1, Some(BuiltinRole::Admin)), PermissionSet::all()),
            (
                role(2, Some(BuiltinRole::Staff)),
                BuiltinRole::Staff.default_permissions(),
            ),
            (role(3, Some(BuiltinRole::User)), PermissionSet::EMPTY),
            (role(4, None), PermissionSet::EMPTY),
        ];
        assert_eq!(least_privileged_role(&roles), Some(RoleId(3)));
        let roles = [
            (role(1, Some(BuiltinRole::Admin)), PermissionSet::all()),
            (
                role(3, Some(BuiltinRole::User)),
                PermissionSet::from([Permission::UsersView]),
            ),
            (role(4, None), PermissionSet::EMPTY),
        ];
        assert_eq!(least_privileged_role(&roles), Some(RoleId(4)));
        assert_eq!(least_privileged_role(&[]), None);
    }

    #[test]
    fn moved_members_get_the_least_privileged_role_unless_mapped() {
        let root = path(&[1]);
        let org = path(&[1, 2]);
        let roles = [
            (role(1, Some(BuiltinRole::Admin)), PermissionSet::all()),
            (role(3, Some(BuiltinRole::User)), PermissionSet::EMPTY),
        ];
        let members = [
            MovedMember {
                user: UserId(7),
                role: RoleId(1),
                in_parent: false,
            },
            MovedMember {
                user: UserId(8),
                role: RoleId(1),
                in_parent: true,
            },
        ];
        let facts = DeleteOrgFacts {
            org: &org,
            parent: Some(&root),
            contents: OrgContents {
                suborgs: 0,
                users: 2,
                devices: 0,
            },
            parent_roles: &roles,
            members: &members,
        };
        let actor = admin_at(&root);
        let allowed = actor.delete_org(&facts, true, &BTreeMap::new()).unwrap();
        assert_eq!(
            allowed.target().moves,
            vec![
                MemberMove {
                    user: UserId(7),
                    old_role: RoleId(1),
                    new_role: Some(RoleId(3)),
                },
                MemberMove {
                    user: UserId(8),
                    old_role: RoleId(1),
                    new_role: None,
                },
            ]
        );
        let mapped = BTreeMap::from([(RoleId(1), RoleId(1))]);
        let allowed = actor.delete_org(&facts, true, &mapped).unwrap();
        assert_eq!(allowed.target().moves[0].new_role, Some(RoleId(1)));
        let bad = BTreeMap::from([(RoleId(1), RoleId(99))]);
        assert!(matches!(
            actor.delete_org(&facts, true, &bad),
            Err(Refusal::Failed { .. })
        ));
        // Not moving: refused with the counts.
        assert!(matches!(
            actor.delete_org(&facts, false, &BTreeMap::new()),
            Err(Refusal::Failed { .. })
        ));
        // Nobody deletes their own home org.
        let home_admin = admin_at(&org);
        assert!(matches!(
            home_admin.delete_org(&facts, true, &BTreeMap::new()),
            Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden
        ));
    }
}
