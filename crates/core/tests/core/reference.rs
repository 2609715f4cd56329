//! A deliberately naive reference model of SPEC.md section 4, written from the
//! text of the rules and independently of arbor-core: parent pointers walked
//! step by step, scopes computed by breadth-first search, permissions as sets of
//! string ids. Slow and obvious on purpose.

use std::collections::{BTreeSet, HashSet, VecDeque};

#[derive(Clone, Debug)]
pub struct PlainUser {
    /// "active", "pending" or "suspended".
    pub status: &'static str,
    pub session_revoked: bool,
    /// (org index, role index); the first is the home membership.
    pub memberships: Vec<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub struct PlainDevice {
    pub org: usize,
    pub owner: Option<usize>,
}

/// A world as plain data: what both the real decision and the reference see.
#[derive(Clone, Debug)]
pub struct PlainWorld {
    pub parent: Vec<Option<usize>>,
    /// Each org's type as SPEC.md section 1 spells it ("ROOT", "PERSONAL", …).
    pub types: Vec<&'static str>,
    /// The hierarchies' depth limit (root = level 1).
    pub depth_limit: usize,
    /// Every hierarchy has these roles, in display order: "Admin", "Staff",
    /// "User" (the built-in ones, in that order), then custom ones.
    pub role_names: Vec<String>,
    /// `sets[org][role]`: the role's permission ids as configured in that org.
    pub sets: Vec<Vec<BTreeSet<&'static str>>>,
    pub users: Vec<PlainUser>,
    pub devices: Vec<PlainDevice>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefOutcome {
    Allowed,
    Forbidden,
    Hidden,
}

/// Why the reference allowed or denied, where a test pins it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Why {
    Allowed,
    /// Outside the scope, another hierarchy, or invisible (404).
    NotVisible,
    /// The needed permission is not held (403).
    Missing,
    /// Rule 6 on a grant: the set holds permissions the actor lacks.
    Escalation,
    /// Rule 6 on a member of the actor's own org who holds more.
    MorePrivileged,
    /// A user-wide action refused on the member's home membership.
    HomeRefused,
    /// The target does not exist (a role or template of no such hierarchy).
    Absent,
    /// Device templates change only in the root org.
    RootOnly,
}

pub struct RefActor<'w> {
    pub user: usize,
    pub home: usize,
    /// The org the actor acts in (`C`).
    pub context: usize,
    pub perms: &'w BTreeSet<&'static str>,
    pub scope: HashSet<usize>,
}

impl PlainWorld {
    pub fn root_of(&self, mut org: usize) -> usize {
        while let Some(p) = self.parent[org] {
            org = p;
        }
        org
    }

    /// Every org strictly below `org`, by breadth-first search over children.
    pub fn descendants(&self, org: usize) -> HashSet<usize> {
        let mut found = HashSet::new();
        let mut queue = VecDeque::from([org]);
        while let Some(current) = queue.pop_front() {
            for (child, parent) in self.parent.iter().enumerate() {
                if *parent == Some(current) && found.insert(child) {
                    queue.push_back(child);
                }
            }
        }
        found
    }

    /// Rules 1, 2, 3 and 8.
    pub fn act(&self, user: usize, context: usize) -> Option<RefActor<'_>> {
        let u = &self.users[user];
        if u.status != "active" || u.session_revoked {
            return None;
        }
        // Rule 8: walk up from the context to the first org the user belongs to.
        let mut org = Some(context);
        let mut chosen = None;
        while let Some(o) = org {
            if let Some(m) = u.memberships.iter().find(|(mo, _)| *mo == o) {
                chosen = Some(*m);
                break;
            }
            org = self.parent[o];
        }
        let (home, role) = chosen?;
        let perms = &self.sets[home][role];
        let switch = perms.contains("organizations.switch_to_suborgs");
        if home != context && !switch {
            return None;
        }
        let mut scope = HashSet::from([home]);
        if switch {
            scope.extend(self.descendants(home));
        }
        Some(RefActor {
            user,
            home,
            context,
            perms,
            scope,
        })
    }

    /// Rule 4, with rule 7's hiding.
    pub fn org_action(&self, actor: &RefActor<'_>, permission: &str, org: usize) -> RefOutcome {
        if !actor.scope.contains(&org) {
            RefOutcome::Hidden
        } else if actor.perms.contains(permission) {
            RefOutcome::Allowed
        } else {
            RefOutcome::Forbidden
        }
    }

    /// Rule 5. `action` is one of view, control, edit, delete, delete_data,
    /// download_reports, view_timeline, service_tab, transfer, edit_auth_token.
    /// Transfers and auth tokens are "device view plus their own permission".
    pub fn device_action(&self, actor: &RefActor<'_>, action: &str, device: usize) -> RefOutcome {
        let d = &self.devices[device];
        if self.root_of(d.org) != self.root_of(actor.home) {
            return RefOutcome::Hidden;
        }
        let has = |p: &str| actor.perms.contains(p);
        let in_scope = actor.scope.contains(&d.org);
        let owned = d.owner == Some(actor.user);
        let (kind, extra) = match action {
            "transfer" => ("view", Some("transfers.devices")),
            "edit_auth_token" => ("view", Some("auth_tokens.edit")),
            other => (other, None),
        };
        let rule_5 = (in_scope && has(&format!("org_devices.{kind}")))
            || (owned && has(&format!("own_devices.{kind}")));
        if rule_5 && extra.is_none_or(&has) {
            return RefOutcome::Allowed;
        }
        let can_view = (in_scope && has("org_devices.view")) || (owned && has("own_devices.view"));
        if can_view {
            RefOutcome::Forbidden
        } else {
            RefOutcome::Hidden
        }
    }

    /// Rules 4 and 6 for acting on `target`'s membership `membership`.
    pub fn user_action(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        target: usize,
        membership: usize,
    ) -> RefOutcome {
        self.user_action_why(actor, permission, target, membership)
            .0
    }

    /// [`PlainWorld::user_action`] with the reason of a denial.
    pub fn user_action_why(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        target: usize,
        membership: usize,
    ) -> (RefOutcome, Why) {
        let (org, role) = self.users[target].memberships[membership];
        if !actor.scope.contains(&org) {
            return (RefOutcome::Hidden, Why::NotVisible);
        }
        if !actor.perms.contains("users.view") && target != actor.user {
            return (RefOutcome::Hidden, Why::NotVisible);
        }
        if !actor.perms.contains(permission) {
            return (RefOutcome::Forbidden, Why::Missing);
        }
        // Rule 6 guards every action on a member, an invitation's too.
        let guarded = [
            "users.invite",
            "users.edit",
            "users.delete",
            "users.change_password",
            "users.force_logout",
            "users.suspend",
            "users.transfer",
        ];
        let target_perms = &self.sets[org][role];
        if guarded.contains(&permission)
            && org == actor.home
            && !target_perms.is_subset(actor.perms)
        {
            return (RefOutcome::Forbidden, Why::MorePrivileged);
        }
        (RefOutcome::Allowed, Why::Allowed)
    }

    /// Users that may do `action` on `device` through some membership.
    pub fn who_can_device(&self, action: &str, device: usize) -> BTreeSet<usize> {
        (0..self.users.len())
            .filter(|u| {
                self.users[*u].memberships.iter().any(|(org, _)| {
                    self.act(*u, *org).is_some_and(|a| {
                        self.device_action(&a, action, device) == RefOutcome::Allowed
                    })
                })
            })
            .collect()
    }

    /// Users that may use `permission` on user `target`, each acting on the
    /// target's first membership inside its scope (else the first).
    pub fn who_can_member(&self, permission: &str, target: usize) -> BTreeSet<usize> {
        let theirs = &self.users[target].memberships;
        if theirs.is_empty() {
            return BTreeSet::new();
        }
        (0..self.users.len())
            .filter(|u| {
                self.users[*u].memberships.iter().any(|(home, _)| {
                    self.act(*u, *home).is_some_and(|a| {
                        let m = theirs
                            .iter()
                            .position(|(org, _)| a.scope.contains(org))
                            .unwrap_or(0);
                        self.user_action(&a, permission, target, m) == RefOutcome::Allowed
                    })
                })
            })
            .collect()
    }

    pub fn who_can_org(&self, permission: &str, org: usize) -> BTreeSet<usize> {
        (0..self.users.len())
            .filter(|u| {
                self.users[*u].memberships.iter().any(|(home, _)| {
                    self.act(*u, *home).is_some_and(|a| {
                        self.org_action(&a, permission, org) == RefOutcome::Allowed
                    })
                })
            })
            .collect()
    }
}
