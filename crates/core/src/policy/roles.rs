//! Decisions on roles, permission sets and permission templates.
//!
//! Role names are hierarchy-wide, so the role list is changed only through
//! the hierarchy's root org: the app passes the root's path, and an actor
//! that is not a member of the root org finds it outside its scope (404).
//! Rule 6 applies to the role list too: renaming or deleting a role needs
//! every permission the role holds in any org, and deleting one with holders
//! every permission the replacement holds in any org.

use super::{
    ApplyPermissionTemplate, CreatePermissionTemplate, CreateRole, DeleteRole, Refusal, RenameRole,
    SetRolePermissions, Verdict, check, verdict,
};
use crate::decision::{Actor, Decision};
use crate::error::DomainError;
use crate::ids::{OrgId, RoleId};
use crate::org::OrgPath;
use crate::permission::{Closure, Permission, PermissionSet};
use crate::role::{
    PermissionMatrix, PermissionTemplate, Role, RoleHolder, check_create_role, check_role_name,
    plan_role_deletion,
};

/// One role's new set in one org.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleSetWrite {
    pub org: OrgId,
    pub role: RoleId,
    /// The set asked for, closed over its dependencies (what was added is
    /// reported back).
    pub closure: Closure,
}

/// The sets a template writes into one org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateWrites {
    pub org: OrgId,
    pub sets: Vec<(RoleId, PermissionSet)>,
}

/// What applying (one org) or pushing (a subtree) a template does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplatePlan {
    /// How many orgs the template covered.
    pub orgs: usize,
    /// The orgs whose matrix changes, with what is written there.
    pub writes: Vec<TemplateWrites>,
    /// The root org's Admin set was left out: it always holds the whole
    /// catalog.
    pub root_admin_skipped: bool,
}

impl TemplatePlan {
    pub fn changed(&self) -> Vec<OrgId> {
        self.writes.iter().map(|w| w.org).collect()
    }
}

const ROOT_ADMIN: &str = "the root organization's Admin role always holds the whole catalog";

impl Actor {
    /// The hierarchy's roles (`roles.view` in the context org).
    pub fn list_roles(&self) -> Decision {
        self.decide_org(Permission::RolesView, self.context_path())
    }

    /// An org's roles × permissions matrix (`roles.view` on it).
    pub fn view_matrix(&self, org: &OrgPath) -> Decision {
        self.decide_org(Permission::RolesView, org)
    }

    /// The hierarchy's permission templates (`roles.view` in the context org).
    pub fn list_permission_templates(&self) -> Decision {
        self.decide_org(Permission::RolesView, self.context_path())
    }

    /// A new role named `name` (`roles.create` in the root org `root`; at most
    /// nine, names unique ignoring case).
    pub fn create_role(&self, root: &OrgPath, roles: &[Role], name: &str) -> Verdict<CreateRole> {
        let decision = self.decide_org(Permission::RolesCreate, root);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        let name = check(&decision, check_create_role(roles, name))?;
        verdict(decision, (root.id(), name))
    }

    /// Renaming `role`, whose sets in every org together are `role_sets`.
    pub fn rename_role(
        &self,
        root: &OrgPath,
        roles: &[Role],
        role: RoleId,
        role_sets: PermissionSet,
        name: &str,
    ) -> Verdict<RenameRole> {
        let decision =
            self.decide_role_change(Permission::RolesEdit, root, roles, role, role_sets)?;
        let name = check(&decision, check_role_name(roles, name, Some(role)))?;
        verdict(decision, (role, name))
    }

    /// Deleting `role` (sets together `role_sets`), its `holders` moving to
    /// `replacement` (sets together `replacement_sets`). Admin stays.
    #[allow(clippy::too_many_arguments)]
    pub fn delete_role(
        &self,
        root: &OrgPath,
        roles: &[Role],
        role: RoleId,
        role_sets: PermissionSet,
        replacement: RoleId,
        replacement_sets: PermissionSet,
        holders: &[RoleHolder],
    ) -> Verdict<DeleteRole> {
        let decision =
            self.decide_role_change(Permission::RolesDelete, root, roles, role, role_sets)?;
        let plan = check(
            &decision,
            plan_role_deletion(roles, role, replacement, holders),
        )?;
        if !plan.moved.is_empty() {
            let grant = self.decide_grant(Permission::RolesDelete, root, replacement_sets);
            if !grant.is_allowed() {
                return Err(Refusal::Denied(grant));
            }
        }
        verdict(decision, plan)
    }

    /// `permission` on the root, the role must be the hierarchy's, and the
    /// actor must hold every permission the role holds anywhere (rule 6).
    fn decide_role_change(
        &self,
        permission: Permission,
        root: &OrgPath,
        roles: &[Role],
        role: RoleId,
        role_sets: PermissionSet,
    ) -> Result<Decision, Refusal> {
        let decision = self.decide_org(permission, root);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        if !roles.iter().any(|r| r.id == role) {
            return Err(Refusal::Denied(self.absent()));
        }
        let rule_6 = self.decide_grant(permission, root, role_sets);
        if !rule_6.is_allowed() {
            return Err(Refusal::Denied(rule_6));
        }
        Ok(decision)
    }

    /// Replacing `role`'s set `old` in `org` by `requested` closed over its
    /// dependencies: `roles.edit` there and every permission of both sets
    /// (rule 6). The root org's Admin set cannot be edited down.
    pub fn set_role_permissions(
        &self,
        org: &OrgPath,
        role: &Role,
        old: PermissionSet,
        requested: PermissionSet,
    ) -> Verdict<SetRolePermissions> {
        let closure = requested.close_over_dependencies();
        let decision = self.decide_set_permissions(org, old, closure.set);
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision));
        }
        if org.depth() == 1 && role.is_admin() && closure.set != PermissionSet::all() {
            return Err(Refusal::Failed {
                decision,
                error: DomainError::conflict(ROOT_ADMIN),
            });
        }
        verdict(
            decision,
            RoleSetWrite {
                org: org.id(),
                role: role.id,
                closure,
            },
        )
    }

    /// Saving `org`'s matrix as a template (`roles.edit` on it).
    pub fn create_permission_template(&self, org: &OrgPath) -> Verdict<CreatePermissionTemplate> {
        verdict(self.decide_org(Permission::RolesEdit, org), org.id())
    }

    /// Applying `template` (of hierarchy `template_hierarchy`) to every org
    /// of `orgs` (one org, or a subtree with its root first), refused as a
    /// whole unless the actor may change each (`roles.edit` and every
    /// permission of the sets replaced and written, rule 6). The root org's
    /// Admin set is skipped. `admin` is the hierarchy's Admin role.
    pub fn apply_permission_template(
        &self,
        template_hierarchy: OrgId,
        template: &PermissionTemplate,
        admin: RoleId,
        orgs: &[(OrgPath, PermissionMatrix)],
    ) -> Verdict<ApplyPermissionTemplate> {
        let Some((first, _)) = orgs.first() else {
            return Err(Refusal::Denied(self.absent()));
        };
        if template_hierarchy != first.root_id() {
            return Err(Refusal::Denied(self.absent()));
        }
        let mut plan = TemplatePlan {
            orgs: 0,
            writes: Vec::new(),
            root_admin_skipped: false,
        };
        let mut proof = None;
        for (path, matrix) in orgs {
            let mut applied = template.clone();
            if path.depth() == 1 && applied.sets.remove(&admin).is_some() {
                plan.root_admin_skipped = true;
            }
            let old = applied.sets.keys().fold(PermissionSet::EMPTY, |acc, role| {
                acc.union(matrix.get(*role))
            });
            let decision =
                self.decide_set_permissions(path, old, applied.closed().all_permissions());
            if !decision.is_allowed() {
                return Err(Refusal::Denied(decision));
            }
            proof.get_or_insert(decision);
            plan.orgs += 1;
            let mut after = matrix.clone();
            if applied.apply_to(&mut after) {
                plan.writes.push(TemplateWrites {
                    org: path.id(),
                    sets: applied.sets.keys().map(|r| (*r, after.get(*r))).collect(),
                });
            }
        }
        match proof {
            Some(decision) => verdict(decision, plan),
            None => Err(Refusal::Denied(self.absent())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Outcome, Rule};
    use crate::ids::UserId;
    use crate::policy::testing::{actor, path};
    use crate::role::BuiltinRole;
    use std::collections::BTreeMap;

    fn roles() -> Vec<Role> {
        BuiltinRole::ALL
            .iter()
            .enumerate()
            .map(|(i, b)| Role {
                id: RoleId(i as i64 + 1),
                name: b.default_name().into(),
                builtin: Some(*b),
            })
            .collect()
    }

    #[test]
    fn the_root_admin_set_cannot_be_edited_down() {
        let root = path(&[1]);
        let admin = actor(&root, PermissionSet::all());
        let roles = roles();
        let refused = admin.set_role_permissions(
            &root,
            &roles[0],
            PermissionSet::all(),
            PermissionSet::from([Permission::RolesView]),
        );
        assert!(matches!(refused, Err(Refusal::Failed { .. })));
        assert!(
            admin
                .set_role_permissions(&root, &roles[0], PermissionSet::all(), PermissionSet::all())
                .is_ok()
        );
        // Below the root, and other roles at the root, may be edited.
        let child = path(&[1, 2]);
        assert!(
            admin
                .set_role_permissions(
                    &child,
                    &roles[0],
                    PermissionSet::all(),
                    PermissionSet::EMPTY
                )
                .is_ok()
        );
        assert!(
            admin
                .set_role_permissions(&root, &roles[1], PermissionSet::all(), PermissionSet::EMPTY)
                .is_ok()
        );
    }

    #[test]
    fn renaming_or_deleting_a_role_needs_its_permissions() {
        let root = path(&[1]);
        let limited = PermissionSet::from([
            Permission::RolesView,
            Permission::RolesEdit,
            Permission::RolesDelete,
        ]);
        let actor = actor(&root, limited);
        let roles = roles();
        let refused = actor.rename_role(&root, &roles, RoleId(1), PermissionSet::all(), "Boss");
        assert!(matches!(
            refused,
            Err(Refusal::Denied(d)) if d.rule == Rule::Escalation && d.outcome == Outcome::Forbidden
        ));
        assert!(
            actor
                .rename_role(&root, &roles, RoleId(3), PermissionSet::EMPTY, "Guest")
                .is_ok()
        );
        let holders = [RoleHolder {
            user: UserId(9),
            org: OrgId(1),
            role: RoleId(3),
        }];
        let refused = actor.delete_role(
            &root,
            &roles,
            RoleId(2),
            BuiltinRole::Staff.default_permissions(),
            RoleId(3),
            PermissionSet::EMPTY,
            &[],
        );
        assert!(matches!(refused, Err(Refusal::Denied(d)) if d.rule == Rule::Escalation));
        // A role the actor could hold, whose holders move to one it could not.
        let refused = actor.delete_role(
            &root,
            &roles,
            RoleId(3),
            PermissionSet::EMPTY,
            RoleId(2),
            BuiltinRole::Staff.default_permissions(),
            &holders,
        );
        assert!(matches!(refused, Err(Refusal::Denied(d)) if d.rule == Rule::Escalation));
        // A role of another hierarchy is absent.
        let refused = actor.rename_role(&root, &roles, RoleId(42), PermissionSet::EMPTY, "X");
        assert!(matches!(refused, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
    }

    #[test]
    fn templates_skip_the_root_admin_set() {
        let root = path(&[1]);
        let child = path(&[1, 2]);
        let admin = actor(&root, PermissionSet::all());
        let roles = roles();
        let empty = PermissionTemplate {
            name: "lockout".into(),
            sets: BTreeMap::from([(RoleId(1), PermissionSet::EMPTY)]),
        };
        let full = PermissionMatrix::defaults(&roles);
        let plan = admin
            .apply_permission_template(
                OrgId(1),
                &empty,
                RoleId(1),
                &[(root.clone(), full.clone()), (child.clone(), full.clone())],
            )
            .unwrap();
        let plan = plan.target();
        assert!(plan.root_admin_skipped);
        assert_eq!(plan.orgs, 2);
        assert_eq!(plan.changed(), vec![OrgId(2)]);
        // A template of another hierarchy is absent.
        assert!(
            admin
                .apply_permission_template(OrgId(9), &empty, RoleId(1), &[(root, full)])
                .is_err()
        );
    }
}
