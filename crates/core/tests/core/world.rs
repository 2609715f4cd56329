//! A small in-memory world for readable tests: named orgs, users and devices.

use arbor_core::role::BuiltinRole;
use arbor_core::{
    DeviceFacts, Membership, OrgId, OrgPath, Permission, PermissionSet, Principal, RoleId, UserId,
    UserStatus,
};
use std::collections::HashMap;

pub const ADMIN: RoleId = RoleId(1);
pub const STAFF: RoleId = RoleId(2);
pub const USER: RoleId = RoleId(3);

pub struct World {
    next_id: i64,
    orgs: HashMap<String, OrgPath>,
    sets: HashMap<(OrgId, RoleId), PermissionSet>,
    users: HashMap<String, Principal>,
    devices: HashMap<String, (OrgPath, Option<UserId>)>,
}

impl World {
    pub fn new() -> Self {
        Self {
            next_id: 1,
            orgs: HashMap::new(),
            sets: HashMap::new(),
            users: HashMap::new(),
            devices: HashMap::new(),
        }
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// A root org with the default role sets.
    pub fn root(&mut self, name: &str) -> &mut Self {
        let path = OrgPath::root(OrgId(self.id()));
        for (role, builtin) in [
            (ADMIN, BuiltinRole::Admin),
            (STAFF, BuiltinRole::Staff),
            (USER, BuiltinRole::User),
        ] {
            self.sets
                .insert((path.id(), role), builtin.default_permissions());
        }
        self.orgs.insert(name.into(), path);
        self
    }

    /// A sub-org; its role sets are copied from the parent (SPEC.md §2).
    pub fn suborg(&mut self, parent: &str, name: &str) -> &mut Self {
        let parent_path = self.org(parent);
        let path = parent_path.child(OrgId(self.id()));
        for role in [ADMIN, STAFF, USER] {
            let set = self.sets[&(parent_path.id(), role)];
            self.sets.insert((path.id(), role), set);
        }
        self.orgs.insert(name.into(), path);
        self
    }

    pub fn set_permissions(
        &mut self,
        org: &str,
        role: RoleId,
        set: impl Into<PermissionSet>,
    ) -> &mut Self {
        let id = self.org(org).id();
        self.sets.insert((id, role), set.into().closed());
        self
    }

    pub fn member(&mut self, user: &str, org: &str, role: RoleId) -> &mut Self {
        if !self.users.contains_key(user) {
            let id = UserId(self.id());
            self.users.insert(
                user.into(),
                Principal {
                    user: id,
                    status: UserStatus::Active,
                    session_revoked: false,
                    memberships: vec![],
                },
            );
        }
        let path = self.org(org);
        let principal = self.users.get_mut(user).unwrap();
        let home = principal.memberships.is_empty();
        principal.memberships.push(Membership {
            org: path,
            role,
            permissions: PermissionSet::EMPTY,
            home,
        });
        self
    }

    pub fn device(&mut self, name: &str, org: &str, owner: Option<&str>) -> &mut Self {
        let owner = owner.map(|u| self.users[u].user);
        self.devices.insert(name.into(), (self.org(org), owner));
        self
    }

    pub fn transfer(&mut self, device: &str, to_user: &str) -> &mut Self {
        let user = &self.users[to_user];
        let org = user
            .memberships
            .iter()
            .find(|m| m.home)
            .unwrap()
            .org
            .clone();
        let id = user.user;
        self.devices.insert(device.into(), (org, Some(id)));
        self
    }

    pub fn org(&self, name: &str) -> OrgPath {
        self.orgs
            .get(name)
            .unwrap_or_else(|| panic!("no org {name}"))
            .clone()
    }

    /// The user with each membership's set read from its own org's table.
    pub fn principal(&self, user: &str) -> Principal {
        let mut principal = self
            .users
            .get(user)
            .unwrap_or_else(|| panic!("no user {user}"))
            .clone();
        for m in &mut principal.memberships {
            m.permissions = self.sets[&(m.org.id(), m.role)];
        }
        principal
    }

    pub fn principal_mut(&mut self, user: &str) -> &mut Principal {
        self.users.get_mut(user).unwrap()
    }

    pub fn device_facts(&self, name: &str) -> DeviceFacts<'_> {
        let (org, owner) = self
            .devices
            .get(name)
            .unwrap_or_else(|| panic!("no device {name}"));
        DeviceFacts { org, owner: *owner }
    }

    pub fn device_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.devices.keys().map(String::as_str).collect();
        names.sort();
        names
    }

    pub fn principals(&self) -> Vec<Principal> {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        names.into_iter().map(|n| self.principal(n)).collect()
    }

    pub fn user_id(&self, name: &str) -> UserId {
        self.users[name].user
    }

    pub fn set(&self, org: &str, role: RoleId) -> PermissionSet {
        self.sets[&(self.org(org).id(), role)]
    }
}

pub fn perms<const N: usize>(list: [Permission; N]) -> PermissionSet {
    PermissionSet::from(list).closed()
}
