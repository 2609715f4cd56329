//! Roles (hierarchy-wide names, per-organization permission sets) and permission
//! templates.

use crate::error::DomainError;
use crate::ids::{OrgId, RoleId, UserId};
use crate::permission::{Permission, PermissionGroup, PermissionSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A hierarchy holds at most this many roles.
pub const MAX_ROLES: usize = 9;
/// Longest role name, in characters.
pub const MAX_ROLE_NAME: usize = crate::text::limits::ROLE_NAME;

/// The three roles every hierarchy starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    Admin,
    Staff,
    User,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 3] = [Self::Admin, Self::Staff, Self::User];

    pub fn default_name(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Staff => "Staff",
            Self::User => "User",
        }
    }

    /// The permission set a new root organization gives this role (SPEC.md §3).
    pub fn default_permissions(self) -> PermissionSet {
        match self {
            Self::Admin => PermissionSet::all(),
            Self::Staff => {
                use PermissionGroup as G;
                let groups = [
                    G::OwnDevices,
                    G::OrgDevices,
                    G::AuthTokens,
                    G::Transfers,
                    G::OwnLocations,
                    G::OrgLocations,
                    G::Automations,
                    G::Tags,
                ];
                let mut set: PermissionSet = Permission::all()
                    .filter(|p| groups.contains(&p.group()))
                    .collect();
                set.insert(Permission::UsersView);
                set.insert(Permission::TemplatesView);
                set.insert(Permission::OrganizationsSwitchToSuborgs);
                set
            }
            Self::User => PermissionSet::EMPTY,
        }
    }
}

/// A role of a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    /// Which default role this is, if any. Only `Admin` is protected from deletion;
    /// every role may be renamed.
    pub builtin: Option<BuiltinRole>,
}

impl Role {
    pub fn is_admin(&self) -> bool {
        self.builtin == Some(BuiltinRole::Admin)
    }
}

/// Trims and checks a role name; names are unique per hierarchy ignoring case.
pub fn check_role_name(
    roles: &[Role],
    name: &str,
    renaming: Option<RoleId>,
) -> Result<String, DomainError> {
    let name = crate::text::name("name", name, MAX_ROLE_NAME)?;
    if roles
        .iter()
        .any(|r| Some(r.id) != renaming && r.name.to_lowercase() == name.to_lowercase())
    {
        return Err(DomainError::conflict(format!(
            "a role named {name:?} already exists"
        )));
    }
    Ok(name)
}

/// Checks that a role may be added to a hierarchy that has `roles`.
pub fn check_create_role(roles: &[Role], name: &str) -> Result<String, DomainError> {
    if roles.len() >= MAX_ROLES {
        return Err(DomainError::conflict(format!(
            "a hierarchy has at most {MAX_ROLES} roles"
        )));
    }
    check_role_name(roles, name, None)
}

/// A membership as far as role deletion is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RoleHolder {
    pub user: UserId,
    pub org: OrgId,
    pub role: RoleId,
}

/// What deleting a role does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleDeletion {
    pub deleted: RoleId,
    pub replacement: RoleId,
    /// Memberships that move from the deleted role to the replacement.
    pub moved: Vec<RoleHolder>,
}

/// Plans the deletion of `role`, moving its holders to `replacement`.
pub fn plan_role_deletion(
    roles: &[Role],
    role: RoleId,
    replacement: RoleId,
    holders: &[RoleHolder],
) -> Result<RoleDeletion, DomainError> {
    let deleted = roles
        .iter()
        .find(|r| r.id == role)
        .ok_or(DomainError::NotFound { what: "role" })?;
    if deleted.is_admin() {
        return Err(DomainError::conflict("the Admin role cannot be deleted"));
    }
    if replacement == role {
        return Err(DomainError::invalid(
            "replacement",
            "the replacement must be another role",
        ));
    }
    if !roles.iter().any(|r| r.id == replacement) {
        return Err(DomainError::invalid(
            "replacement",
            "the replacement role does not exist in this hierarchy",
        ));
    }
    Ok(RoleDeletion {
        deleted: role,
        replacement,
        moved: holders.iter().copied().filter(|h| h.role == role).collect(),
    })
}

/// Refuses a change that would leave an organization that has an Admin without one.
pub fn check_org_keeps_admin(admins_before: u64, admins_after: u64) -> Result<(), DomainError> {
    if admins_before > 0 && admins_after == 0 {
        Err(DomainError::conflict(
            "an organization must keep at least one active Admin",
        ))
    } else {
        Ok(())
    }
}

/// One organization's role → permission set table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionMatrix(pub BTreeMap<RoleId, PermissionSet>);

impl PermissionMatrix {
    /// The matrix of a new root organization.
    pub fn defaults(roles: &[Role]) -> Self {
        Self(
            roles
                .iter()
                .map(|r| {
                    let set = r
                        .builtin
                        .map(BuiltinRole::default_permissions)
                        .unwrap_or_default();
                    (r.id, set)
                })
                .collect(),
        )
    }

    pub fn get(&self, role: RoleId) -> PermissionSet {
        self.0.get(&role).copied().unwrap_or_default()
    }

    pub fn set(&mut self, role: RoleId, permissions: PermissionSet) {
        self.0.insert(role, permissions);
    }
}

/// A named role → permission set map, applied to one org or pushed to a subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionTemplate {
    pub name: String,
    pub sets: BTreeMap<RoleId, PermissionSet>,
}

impl PermissionTemplate {
    /// A template made from an organization's current matrix.
    pub fn from_matrix(name: impl Into<String>, matrix: &PermissionMatrix) -> Self {
        Self {
            name: name.into(),
            sets: matrix.0.clone(),
        }
    }

    /// Every set the template would write, closed over dependencies.
    pub fn closed(&self) -> Self {
        Self {
            name: self.name.clone(),
            sets: self.sets.iter().map(|(r, s)| (*r, s.closed())).collect(),
        }
    }

    /// The union of all sets: what an actor must hold to apply the template.
    pub fn all_permissions(&self) -> PermissionSet {
        self.sets
            .values()
            .fold(PermissionSet::EMPTY, |acc, s| acc.union(*s))
    }

    /// Applies the template to one matrix; roles the template does not name keep
    /// their sets. Returns whether anything changed.
    pub fn apply_to(&self, matrix: &mut PermissionMatrix) -> bool {
        let mut changed = false;
        for (role, set) in &self.sets {
            let closed = set.closed();
            if matrix.get(*role) != closed || !matrix.0.contains_key(role) {
                matrix.set(*role, closed);
                changed = true;
            }
        }
        changed
    }

    /// Applies the template to every matrix given (an org and its subtree) and
    /// reports which organizations changed.
    pub fn push<'a>(
        &self,
        matrices: impl IntoIterator<Item = (OrgId, &'a mut PermissionMatrix)>,
    ) -> TemplatePush {
        let mut push = TemplatePush::default();
        for (org, matrix) in matrices {
            push.orgs += 1;
            if self.apply_to(matrix) {
                push.changed.push(org);
            }
        }
        push
    }
}

/// The report of pushing a template to a subtree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TemplatePush {
    /// How many organizations the push covered.
    pub orgs: usize,
    /// The organizations whose matrix changed.
    pub changed: Vec<OrgId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_roles() -> Vec<Role> {
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
    fn default_sets_follow_the_spec() {
        assert_eq!(
            BuiltinRole::Admin.default_permissions(),
            PermissionSet::all()
        );
        assert!(BuiltinRole::User.default_permissions().is_empty());
        let staff = BuiltinRole::Staff.default_permissions();
        for p in [
            Permission::OrgDevicesControl,
            Permission::OwnDevicesProvision,
            Permission::OrgLocationsAssignUsers,
            Permission::AutomationsExecute,
            Permission::TagsManage,
            Permission::UsersView,
            Permission::TemplatesView,
            Permission::OrganizationsSwitchToSuborgs,
        ] {
            assert!(staff.contains(p), "{p}");
        }
        for p in [
            Permission::UsersInvite,
            Permission::RolesView,
            Permission::TemplatesEdit,
            Permission::OrganizationsCreateSuborgs,
            Permission::DeveloperApiView,
        ] {
            assert!(!staff.contains(p), "{p}");
        }
        for builtin in BuiltinRole::ALL {
            let set = builtin.default_permissions();
            assert_eq!(set.closed(), set, "{builtin:?} defaults are closed");
        }
    }

    #[test]
    fn at_most_nine_roles_with_unique_names() {
        let mut roles = default_roles();
        assert!(check_create_role(&roles, " staff ").is_err());
        assert_eq!(
            check_create_role(&roles, " Installer ").unwrap(),
            "Installer"
        );
        assert!(check_create_role(&roles, "  ").is_err());
        assert!(check_create_role(&roles, &"x".repeat(33)).is_err());
        for i in 4..=9 {
            roles.push(Role {
                id: RoleId(i),
                name: format!("R{i}"),
                builtin: None,
            });
        }
        assert!(matches!(
            check_create_role(&roles, "Tenth"),
            Err(DomainError::Conflict { .. })
        ));
        // Renaming to its own name in another case is fine; to another's name is not.
        assert_eq!(
            check_role_name(&roles, "STAFF", Some(RoleId(2))).unwrap(),
            "STAFF"
        );
        assert!(check_role_name(&roles, "admin", Some(RoleId(2))).is_err());
    }

    #[test]
    fn deleting_a_role_moves_its_holders_and_admin_is_undeletable() {
        let roles = default_roles();
        let holders = [
            RoleHolder {
                user: UserId(1),
                org: OrgId(1),
                role: RoleId(2),
            },
            RoleHolder {
                user: UserId(2),
                org: OrgId(1),
                role: RoleId(3),
            },
            RoleHolder {
                user: UserId(3),
                org: OrgId(5),
                role: RoleId(2),
            },
        ];
        let plan = plan_role_deletion(&roles, RoleId(2), RoleId(3), &holders).unwrap();
        assert_eq!(plan.moved, vec![holders[0], holders[2]]);
        assert!(plan_role_deletion(&roles, RoleId(1), RoleId(3), &holders).is_err());
        assert!(plan_role_deletion(&roles, RoleId(2), RoleId(2), &holders).is_err());
        assert!(plan_role_deletion(&roles, RoleId(2), RoleId(99), &holders).is_err());
        assert!(matches!(
            plan_role_deletion(&roles, RoleId(42), RoleId(3), &holders),
            Err(DomainError::NotFound { .. })
        ));
    }

    #[test]
    fn an_org_with_an_admin_keeps_one() {
        assert!(check_org_keeps_admin(1, 0).is_err());
        assert!(check_org_keeps_admin(2, 1).is_ok());
        assert!(check_org_keeps_admin(0, 0).is_ok());
    }

    #[test]
    fn templates_apply_closed_sets_and_report_changed_orgs() {
        let roles = default_roles();
        let mut a = PermissionMatrix::defaults(&roles);
        let mut b = PermissionMatrix::defaults(&roles);
        b.set(
            RoleId(3),
            PermissionSet::from([Permission::OwnDevicesControl]).closed(),
        );
        let template = PermissionTemplate {
            name: "owners control".into(),
            sets: BTreeMap::from([(
                RoleId(3),
                PermissionSet::from([Permission::OwnDevicesControl]),
            )]),
        };
        let push = template.push([(OrgId(1), &mut a), (OrgId(2), &mut b)]);
        assert_eq!(push.orgs, 2);
        assert_eq!(push.changed, vec![OrgId(1)]);
        assert!(a.get(RoleId(3)).contains(Permission::OwnDevicesView));
        assert_eq!(a.get(RoleId(1)), PermissionSet::all());
        let copy = PermissionTemplate::from_matrix("copy", &a);
        assert!(!copy.apply_to(&mut a));
        assert_eq!(copy.all_permissions(), PermissionSet::all());
    }
}
