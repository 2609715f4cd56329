//! The naive reference for arbor-core's `policy` module: one function per
//! named decision, written from SPEC.md (sections 2–6) and the rules the
//! policy functions' documentation states, on the plain world of
//! `reference.rs` (org indices, parent walks, permission ids as strings).
//! Nothing here calls arbor-core.

use crate::reference::{PlainWorld, RefActor, RefOutcome, Why};
use arbor_core::permission::CATALOG;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

/// Why an action did not happen, in the reference's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefRefusal {
    /// Policy said no: 404 (`Hidden`) or 403 (`Forbidden`), and why.
    Denied(RefOutcome, Why),
    /// Policy said yes, a rule of the current state said no.
    Failed,
}

pub type RefVerdict<T> = Result<T, RefRefusal>;

/// A role named by its hierarchy (the root org's index) and its position in
/// the hierarchy's role list. Positions past the list name no role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleRef {
    pub hierarchy: usize,
    pub index: usize,
}

/// What the reference expects an org deletion to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefDeletion {
    pub move_contents: bool,
    /// (user, old role, new role in the parent or `None` if the user is
    /// already a member there), in user order.
    pub moves: Vec<(usize, RoleRef, Option<RoleRef>)>,
}

/// What the reference expects a template application to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefTemplatePlan {
    pub orgs: usize,
    pub root_admin_skipped: bool,
    /// The orgs whose sets change, with every set the template writes there.
    pub writes: Vec<(usize, RoleSets)>,
}

pub type PlainSet = BTreeSet<&'static str>;

/// Sets per role, in the order of the role ids.
pub type RoleSets = Vec<(RoleRef, PlainSet)>;

static NOTHING: PlainSet = BTreeSet::new();

const ADMIN: usize = 0;
const USER: usize = 2;
const MAX_ROLES: usize = 9;
const MAX_ROLE_NAME: usize = 32;

fn deny(outcome: RefOutcome, why: Why) -> RefRefusal {
    RefRefusal::Denied(outcome, why)
}

/// Rule 4's answer as a verdict step.
fn step(outcome: RefOutcome) -> RefVerdict<()> {
    match outcome {
        RefOutcome::Allowed => Ok(()),
        RefOutcome::Forbidden => Err(deny(outcome, Why::Missing)),
        RefOutcome::Hidden => Err(deny(outcome, Why::NotVisible)),
    }
}

/// Rule 6 on a grant: everything granted must be held.
fn within(granted: &PlainSet, held: &PlainSet) -> RefVerdict<()> {
    if granted.is_subset(held) {
        Ok(())
    } else {
        Err(deny(RefOutcome::Forbidden, Why::Escalation))
    }
}

/// SPEC.md section 3's dependencies, read off the ids: a group's non-view
/// permissions need its `view` (when the group has one), the device kinds
/// their devices `view`, shipments `ota.access`, and `users.transfer`
/// `organizations.switch_to_suborgs`; closed transitively.
pub fn close(set: &PlainSet) -> PlainSet {
    // What each id needs directly, read off the rules once.
    static NEEDS: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
        let ids: Vec<&'static str> = CATALOG.iter().map(|info| info.id).collect();
        let view_of = |group: &str| {
            ids.iter()
                .copied()
                .find(|id| *id == format!("{group}.view"))
        };
        ids.iter()
            .map(|id| {
                let (group, action) = id.split_once('.').unwrap_or((id, ""));
                let mut needed = vec![];
                if action != "view" {
                    needed.extend(view_of(group));
                }
                if [
                    "control",
                    "delete_data",
                    "download_reports",
                    "view_timeline",
                ]
                .contains(&action)
                {
                    needed.extend(view_of(group));
                }
                if *id == "ota.create_shipments" || *id == "ota.manage_shipments" {
                    needed.push("ota.access");
                }
                if *id == "users.transfer" {
                    needed.push("organizations.switch_to_suborgs");
                }
                (*id, needed)
            })
            .collect()
    });
    let mut closed = set.clone();
    let mut todo: Vec<&'static str> = set.iter().copied().collect();
    while let Some(id) = todo.pop() {
        for needed in &NEEDS[id] {
            if closed.insert(needed) {
                todo.push(needed);
            }
        }
    }
    closed
}

impl PlainWorld {
    pub fn depth_of(&self, mut org: usize) -> usize {
        let mut depth = 1;
        while let Some(p) = self.parent[org] {
            depth += 1;
            org = p;
        }
        depth
    }

    /// Root first, down to `org`.
    pub fn path_of(&self, org: usize) -> Vec<usize> {
        let mut path = vec![org];
        let mut current = org;
        while let Some(p) = self.parent[current] {
            path.push(p);
            current = p;
        }
        path.reverse();
        path
    }

    pub fn is_role_of(&self, role: RoleRef, hierarchy: usize) -> bool {
        role.hierarchy == hierarchy && role.index < self.role_names.len()
    }

    /// A role's set in `org`; a role of another hierarchy holds nothing there.
    pub fn set_in(&self, org: usize, role: RoleRef) -> &PlainSet {
        if self.is_role_of(role, self.root_of(org)) {
            &self.sets[org][role.index]
        } else {
            &NOTHING
        }
    }

    /// Everything `role` holds in any org of its hierarchy.
    pub fn role_everywhere(&self, role: RoleRef) -> PlainSet {
        (0..self.parent.len())
            .filter(|o| self.root_of(*o) == role.hierarchy)
            .flat_map(|o| self.set_in(o, role).iter().copied())
            .collect()
    }

    fn in_scope(actor: &RefActor<'_>, org: usize) -> bool {
        actor.scope.contains(&org)
    }

    // Orgs ---------------------------------------------------------------

    /// Seeing an org needs only that it lies in the scope.
    pub fn view_org(&self, actor: &RefActor<'_>, org: usize) -> RefOutcome {
        if Self::in_scope(actor, org) {
            RefOutcome::Allowed
        } else {
            RefOutcome::Hidden
        }
    }

    /// Rule 9: the scope, narrowed to the context org's subtree when the
    /// actor switched below its home. Never wider than the scope.
    pub fn list_scope(&self, actor: &RefActor<'_>) -> BTreeSet<usize> {
        let mut shown: BTreeSet<usize> = actor.scope.iter().copied().collect();
        if actor.context != actor.home {
            let mut subtree = self.descendants(actor.context);
            subtree.insert(actor.context);
            shown.retain(|o| subtree.contains(o));
        }
        shown
    }

    /// Rule 9 for devices: `None` when the list is refused (a narrowing org
    /// outside the list scope); else whether device `d` is listed — viewable,
    /// and inside the narrowing (`org`, with or without its sub-orgs), or by
    /// default inside the context org's subtree when the actor switched.
    pub fn device_listed(
        &self,
        actor: &RefActor<'_>,
        narrow: Option<(usize, bool)>,
        d: usize,
    ) -> Option<bool> {
        let org = self.devices[d].org;
        let within = match narrow {
            Some((o, _)) if !self.list_scope(actor).contains(&o) => return None,
            Some((o, subtree)) => org == o || (subtree && self.descendants(o).contains(&org)),
            None if actor.context != actor.home => {
                org == actor.context || self.descendants(actor.context).contains(&org)
            }
            None => true,
        };
        Some(within && self.device_action(actor, "view", d) == RefOutcome::Allowed)
    }

    /// SPEC.md section 2: create_suborgs on the parent, then the type rules
    /// and the depth limit.
    pub fn create_suborg(
        &self,
        actor: &RefActor<'_>,
        parent: usize,
        child: &str,
        limit: usize,
    ) -> RefVerdict<usize> {
        step(self.org_action(actor, "organizations.create_suborgs", parent))?;
        if child == "ROOT" {
            return Err(RefRefusal::Failed);
        }
        if self.types[parent] == "PERSONAL" && child != "PERSONAL" {
            return Err(RefRefusal::Failed);
        }
        if self.depth_of(parent) + 1 > limit {
            return Err(RefRefusal::Failed);
        }
        Ok(parent)
    }

    pub fn update_org(&self, actor: &RefActor<'_>, org: usize) -> RefVerdict<usize> {
        step(self.org_action(actor, "organizations.settings", org))?;
        Ok(org)
    }

    /// Re-parenting `moved` under `to`: organizations.transfer on both, an
    /// explicit confirmation, never a root, never into its own subtree, the
    /// PERSONAL rule for every moved org, and the depth limit for the deepest
    /// one. Returns the moved org's new path.
    pub fn move_org(
        &self,
        actor: &RefActor<'_>,
        moved: usize,
        to: usize,
        limit: usize,
        confirmed: bool,
    ) -> RefVerdict<Vec<usize>> {
        step(self.org_action(actor, "organizations.transfer", moved))?;
        step(self.org_action(actor, "organizations.transfer", to))?;
        if !confirmed || self.parent[moved].is_none() {
            return Err(RefRefusal::Failed);
        }
        if self.root_of(moved) != self.root_of(to) {
            return Err(RefRefusal::Failed);
        }
        let mut subtree = self.descendants(moved);
        subtree.insert(moved);
        if subtree.contains(&to) {
            return Err(RefRefusal::Failed);
        }
        if self.types[to] == "PERSONAL" && subtree.iter().any(|o| self.types[*o] != "PERSONAL") {
            return Err(RefRefusal::Failed);
        }
        let below = subtree
            .iter()
            .map(|o| self.depth_of(*o) - self.depth_of(moved))
            .max()
            .unwrap_or(0);
        if self.depth_of(to) + 1 + below > limit {
            return Err(RefRefusal::Failed);
        }
        let mut path = self.path_of(to);
        path.push(moved);
        Ok(path)
    }

    /// The role a moved member gets by default: the fewest permissions in
    /// `org`; on a tie the built-in User, else the one listed last.
    pub fn least_privileged(&self, org: usize) -> RoleRef {
        let hierarchy = self.root_of(org);
        let sizes: Vec<usize> = (0..self.role_names.len())
            .map(|r| self.sets[org][r].len())
            .collect();
        let fewest = *sizes.iter().min().unwrap_or(&0);
        let tied: Vec<usize> = (0..sizes.len()).filter(|r| sizes[*r] == fewest).collect();
        let index = if tied.contains(&USER) {
            USER
        } else {
            *tied.last().unwrap_or(&0)
        };
        RoleRef { hierarchy, index }
    }

    /// SPEC.md section 2 and the policy's rule: create_suborgs on the org and
    /// on its parent; nothing deleted silently; moved members get the mapped
    /// role, else the least-privileged one (refused if that one may switch
    /// to sub-orgs in the parent), and the actor must hold every permission
    /// the roles so granted hold in the parent.
    pub fn delete_org(
        &self,
        actor: &RefActor<'_>,
        org: usize,
        move_contents: bool,
        role_map: &[(RoleRef, RoleRef)],
    ) -> RefVerdict<RefDeletion> {
        step(self.org_action(actor, "organizations.create_suborgs", org))?;
        let Some(parent) = self.parent[org] else {
            return Err(RefRefusal::Failed);
        };
        step(self.org_action(actor, "organizations.create_suborgs", parent))?;
        let members: Vec<usize> = (0..self.users.len())
            .filter(|u| self.users[*u].memberships.iter().any(|(o, _)| *o == org))
            .collect();
        let suborgs = self.parent.iter().filter(|p| **p == Some(org)).count();
        let devices = self.devices.iter().filter(|d| d.org == org).count();
        if members.is_empty() && suborgs == 0 && devices == 0 {
            return Ok(RefDeletion {
                move_contents: false,
                moves: vec![],
            });
        }
        if !move_contents {
            return Err(RefRefusal::Failed);
        }
        let hierarchy = self.root_of(org);
        if role_map.iter().any(|(from, to)| {
            !self.is_role_of(*from, hierarchy) || !self.is_role_of(*to, hierarchy)
        }) {
            return Err(RefRefusal::Failed);
        }
        let mut moves = vec![];
        let mut granted = PlainSet::new();
        for u in members {
            let memberships = &self.users[u].memberships;
            let old = memberships.iter().find(|(o, _)| *o == org).map(|(_, r)| *r);
            let old = RoleRef {
                hierarchy,
                index: old.unwrap_or(0),
            };
            if memberships.iter().any(|(o, _)| *o == parent) {
                moves.push((u, old, None));
                continue;
            }
            let mapped = role_map
                .iter()
                .find(|(from, _)| *from == old)
                .map(|(_, to)| *to);
            let new = match mapped {
                Some(new) => new,
                None => {
                    // The default must not open the parent's whole subtree
                    // (the deleted org's siblings) to the moved members.
                    let least = self.least_privileged(parent);
                    if self
                        .set_in(parent, least)
                        .contains("organizations.switch_to_suborgs")
                    {
                        return Err(RefRefusal::Failed);
                    }
                    least
                }
            };
            granted.extend(self.set_in(parent, new).iter().copied());
            moves.push((u, old, Some(new)));
        }
        within(&granted, actor.perms)?;
        Ok(RefDeletion {
            move_contents: true,
            moves,
        })
    }

    // Roles ----------------------------------------------------------------

    /// A role name: trimmed, 1 to 32 characters, unique ignoring case
    /// (`renaming` may keep its own name).
    fn role_name(&self, name: &str, renaming: Option<usize>) -> RefVerdict<String> {
        let name = name.trim();
        let taken = self
            .role_names
            .iter()
            .enumerate()
            .any(|(r, n)| Some(r) != renaming && n.to_lowercase() == name.to_lowercase());
        if name.is_empty() || name.chars().count() > MAX_ROLE_NAME || taken {
            return Err(RefRefusal::Failed);
        }
        Ok(name.to_owned())
    }

    /// roles.create in the root org `root`; at most nine roles.
    pub fn create_role(&self, actor: &RefActor<'_>, root: usize, name: &str) -> RefVerdict<String> {
        step(self.org_action(actor, "roles.create", root))?;
        if self.role_names.len() >= MAX_ROLES {
            return Err(RefRefusal::Failed);
        }
        self.role_name(name, None)
    }

    /// `permission` in the root org, a role of that hierarchy (else absent),
    /// and every permission the role holds in any org (rule 6).
    fn role_change(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        root: usize,
        role: RoleRef,
    ) -> RefVerdict<()> {
        step(self.org_action(actor, permission, root))?;
        if !self.is_role_of(role, root) {
            return Err(deny(RefOutcome::Hidden, Why::Absent));
        }
        within(&self.role_everywhere(role), actor.perms)
    }

    pub fn rename_role(
        &self,
        actor: &RefActor<'_>,
        root: usize,
        role: RoleRef,
        name: &str,
    ) -> RefVerdict<String> {
        self.role_change(actor, "roles.edit", root, role)?;
        self.role_name(name, Some(role.index))
    }

    /// Deleting a role (never Admin) whose holders move to another role of
    /// the hierarchy; with holders, rule 6 on the replacement too. Returns
    /// the moved memberships as (user, org).
    pub fn delete_role(
        &self,
        actor: &RefActor<'_>,
        root: usize,
        role: RoleRef,
        replacement: RoleRef,
    ) -> RefVerdict<Vec<(usize, usize)>> {
        self.role_change(actor, "roles.delete", root, role)?;
        if role.index == ADMIN || replacement == role || !self.is_role_of(replacement, root) {
            return Err(RefRefusal::Failed);
        }
        let mut holders = vec![];
        for (u, user) in self.users.iter().enumerate() {
            for (o, r) in &user.memberships {
                if self.root_of(*o) == root && *r == role.index {
                    holders.push((u, *o));
                }
            }
        }
        if !holders.is_empty() {
            within(&self.role_everywhere(replacement), actor.perms)?;
        }
        Ok(holders)
    }

    /// roles.edit on the org, both the old and the new (closed) set within the
    /// actor's, and the root org's Admin always the whole catalog. Returns
    /// the set written and what closing it added.
    pub fn set_role_permissions(
        &self,
        actor: &RefActor<'_>,
        org: usize,
        role: RoleRef,
        requested: &PlainSet,
    ) -> RefVerdict<(PlainSet, PlainSet)> {
        let closed = close(requested);
        step(self.org_action(actor, "roles.edit", org))?;
        let both: PlainSet = self.set_in(org, role).union(&closed).copied().collect();
        within(&both, actor.perms)?;
        let catalog: PlainSet = CATALOG.iter().map(|info| info.id).collect();
        if self.parent[org].is_none() && role.index == ADMIN && closed != catalog {
            return Err(RefRefusal::Failed);
        }
        let added = closed.difference(requested).copied().collect();
        Ok((closed, added))
    }

    /// A template of hierarchy `template_hierarchy` applied to `orgs` (one org
    /// or a subtree): refused as a whole unless every org is the actor's to
    /// change (roles.edit, rule 6 on what is replaced and written); the root
    /// org's Admin set is left alone.
    pub fn apply_template(
        &self,
        actor: &RefActor<'_>,
        template_hierarchy: usize,
        template: &[(RoleRef, PlainSet)],
        orgs: &[usize],
    ) -> RefVerdict<RefTemplatePlan> {
        let Some(first) = orgs.first() else {
            return Err(deny(RefOutcome::Hidden, Why::Absent));
        };
        if self.root_of(*first) != template_hierarchy {
            return Err(deny(RefOutcome::Hidden, Why::Absent));
        }
        let mut plan = RefTemplatePlan {
            orgs: 0,
            root_admin_skipped: false,
            writes: vec![],
        };
        // What the template writes: each set closed over its dependencies.
        let closed: Vec<(RoleRef, PlainSet)> = template
            .iter()
            .map(|(role, set)| (*role, close(set)))
            .collect();
        for org in orgs {
            let is_root = self.parent[*org].is_none();
            let mut entries: Vec<&(RoleRef, PlainSet)> = vec![];
            for entry in &closed {
                let role = entry.0;
                if is_root && role.index == ADMIN && role.hierarchy == template_hierarchy {
                    plan.root_admin_skipped = true;
                } else {
                    entries.push(entry);
                }
            }
            step(self.org_action(actor, "roles.edit", *org))?;
            let replaced_and_written = entries.iter().all(|(role, set)| {
                self.set_in(*org, *role).is_subset(actor.perms) && set.is_subset(actor.perms)
            });
            if !replaced_and_written {
                return Err(deny(RefOutcome::Forbidden, Why::Escalation));
            }
            plan.orgs += 1;
            let changed = entries.iter().any(|(role, set)| {
                !self.is_role_of(*role, self.root_of(*org)) || self.set_in(*org, *role) != set
            });
            if changed {
                plan.writes
                    .push((*org, entries.into_iter().cloned().collect()));
            }
        }
        Ok(plan)
    }

    // Devices --------------------------------------------------------------

    /// Device templates are created only in the root org (rule 4 there).
    pub fn create_device_template(&self, actor: &RefActor<'_>, org: usize) -> RefVerdict<usize> {
        step(self.org_action(actor, "templates.create", org))?;
        if self.parent[org].is_some() {
            return Err(deny(RefOutcome::Forbidden, Why::RootOnly));
        }
        Ok(org)
    }

    /// A template of `template_hierarchy` for `org`: absent from another
    /// hierarchy, the org visible, templates.edit at the org's parent (the
    /// root org itself for the root).
    pub fn enable_device_template(
        &self,
        actor: &RefActor<'_>,
        org: usize,
        template_hierarchy: usize,
    ) -> RefVerdict<usize> {
        if self.root_of(org) != template_hierarchy {
            return Err(deny(RefOutcome::Hidden, Why::Absent));
        }
        step(self.view_org(actor, org))?;
        let at = self.parent[org].unwrap_or(org);
        step(self.org_action(actor, "templates.edit", at))?;
        Ok(org)
    }

    /// Editing or deleting (`permission`) a template of `template_hierarchy`:
    /// absent from another hierarchy; visible with templates.view to
    /// root-org members, to sub-org members only when enabled for their
    /// context org; then `permission`, held by a member of the root org.
    pub fn change_device_template(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        template_hierarchy: usize,
        enabled_in_context: bool,
    ) -> RefVerdict<()> {
        if self.root_of(actor.home) != template_hierarchy {
            return Err(deny(RefOutcome::Hidden, Why::Absent));
        }
        let root_member = self.parent[actor.home].is_none();
        if !actor.perms.contains("templates.view") || (!root_member && !enabled_in_context) {
            return Err(deny(RefOutcome::Hidden, Why::NotVisible));
        }
        if !actor.perms.contains(permission) {
            return Err(deny(RefOutcome::Forbidden, Why::Missing));
        }
        if !root_member {
            return Err(deny(RefOutcome::Forbidden, Why::RootOnly));
        }
        Ok(())
    }

    /// org_devices.add, or own_devices.provision for a device the actor will
    /// own; a refusal answers like org_devices.add.
    pub fn create_device(
        &self,
        actor: &RefActor<'_>,
        org: usize,
        owner: Option<usize>,
    ) -> RefVerdict<usize> {
        let add = self.org_action(actor, "org_devices.add", org);
        if add == RefOutcome::Allowed {
            return Ok(org);
        }
        if owner == Some(actor.user)
            && self.org_action(actor, "own_devices.provision", org) == RefOutcome::Allowed
        {
            return Ok(org);
        }
        step(add).map(|()| org)
    }

    /// SPEC.md section 5: the transfer device action, a receiver with a
    /// membership in the actor's scope (home first, then the lowest org id),
    /// active, and not the owner already. Returns (org, new owner).
    pub fn transfer_device(
        &self,
        actor: &RefActor<'_>,
        device: usize,
        receiver: Option<usize>,
    ) -> RefVerdict<(usize, usize)> {
        match self.device_action(actor, "transfer", device) {
            RefOutcome::Allowed => {}
            RefOutcome::Forbidden => return Err(deny(RefOutcome::Forbidden, Why::Missing)),
            RefOutcome::Hidden => return Err(deny(RefOutcome::Hidden, Why::NotVisible)),
        }
        let Some(receiver) = receiver else {
            return Err(RefRefusal::Failed);
        };
        let user = &self.users[receiver];
        let home = user.memberships[0].0;
        let org = if Self::in_scope(actor, home) {
            Some(home)
        } else {
            user.memberships
                .iter()
                .map(|(o, _)| *o)
                .filter(|o| Self::in_scope(actor, *o))
                .min()
        };
        let Some(org) = org else {
            return Err(RefRefusal::Failed);
        };
        if user.status != "active" || self.devices[device].owner == Some(receiver) {
            return Err(RefRefusal::Failed);
        }
        Ok((org, receiver))
    }

    /// SPEC.md section 5, into an org: the transfer device action, the org
    /// in the actor's scope, the owner the named user (a member of the org,
    /// active) or else the first of `admins`; refused when nothing would
    /// change. Returns (org, new owner).
    pub fn transfer_device_to_org(
        &self,
        actor: &RefActor<'_>,
        device: usize,
        org: Option<usize>,
        named: Option<Option<usize>>,
        admins: &[usize],
    ) -> RefVerdict<(usize, usize)> {
        match self.device_action(actor, "transfer", device) {
            RefOutcome::Allowed => {}
            RefOutcome::Forbidden => return Err(deny(RefOutcome::Forbidden, Why::Missing)),
            RefOutcome::Hidden => return Err(deny(RefOutcome::Hidden, Why::NotVisible)),
        }
        let Some(org) = org.filter(|o| Self::in_scope(actor, *o)) else {
            return Err(RefRefusal::Failed);
        };
        let owner = match named {
            Some(user) => {
                let Some(user) =
                    user.filter(|u| self.users[*u].memberships.iter().any(|(o, _)| *o == org))
                else {
                    return Err(RefRefusal::Failed);
                };
                if self.users[user].status != "active" {
                    return Err(RefRefusal::Failed);
                }
                user
            }
            None => match admins.first() {
                Some(first) => *first,
                None => return Err(RefRefusal::Failed),
            },
        };
        let d = &self.devices[device];
        if d.org == org && d.owner == Some(owner) {
            return Err(RefRefusal::Failed);
        }
        Ok((org, owner))
    }

    // Users ----------------------------------------------------------------

    /// The membership a member action acts on: the home one if in scope,
    /// else the in-scope one of the lowest org id, else the home one.
    pub fn acted_on(&self, actor: &RefActor<'_>, target: usize) -> usize {
        let memberships = &self.users[target].memberships;
        if Self::in_scope(actor, memberships[0].0) {
            return 0;
        }
        (1..memberships.len())
            .filter(|m| Self::in_scope(actor, memberships[*m].0))
            .min_by_key(|m| memberships[*m].0)
            .unwrap_or(0)
    }

    fn user_step(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        target: usize,
        m: usize,
    ) -> RefVerdict<()> {
        match self.user_action_why(actor, permission, target, m) {
            (RefOutcome::Allowed, _) => Ok(()),
            (outcome, why) => Err(deny(outcome, why)),
        }
    }

    /// A member action: rules 4 and 6 on the membership acted on, and for an
    /// action on the whole account on the home membership too (refused
    /// there: 403, the member being visible). Returns the membership index.
    pub fn manage_member(
        &self,
        actor: &RefActor<'_>,
        permission: &str,
        user_wide: bool,
        target: usize,
    ) -> RefVerdict<usize> {
        let m = self.acted_on(actor, target);
        self.user_step(actor, permission, target, m)?;
        if user_wide
            && m != 0
            && self.user_action(actor, permission, target, 0) != RefOutcome::Allowed
        {
            return Err(deny(RefOutcome::Forbidden, Why::HomeRefused));
        }
        Ok(m)
    }

    /// users.transfer on the membership acted on, and the role's set in the
    /// target org within the actor's (users.transfer there too).
    pub fn transfer_user(
        &self,
        actor: &RefActor<'_>,
        target: usize,
        to: usize,
        role: RoleRef,
    ) -> RefVerdict<usize> {
        let m = self.acted_on(actor, target);
        self.user_step(actor, "users.transfer", target, m)?;
        step(self.org_action(actor, "users.transfer", to))?;
        within(self.set_in(to, role), actor.perms)?;
        Ok(m)
    }

    /// users.edit on that membership, and the new role's set there within
    /// the actor's.
    pub fn change_member_role(
        &self,
        actor: &RefActor<'_>,
        target: usize,
        m: usize,
        role: RoleRef,
    ) -> RefVerdict<()> {
        self.user_step(actor, "users.edit", target, m)?;
        let org = self.users[target].memberships[m].0;
        within(self.set_in(org, role), actor.perms)
    }

    /// users.invite on the org and the role's set there within the actor's.
    pub fn invite(&self, actor: &RefActor<'_>, org: usize, role: RoleRef) -> RefVerdict<()> {
        step(self.org_action(actor, "users.invite", org))?;
        within(self.set_in(org, role), actor.perms)
    }

    /// A member is seen through some membership allowing users.view; the
    /// actor always sees itself through a membership in its scope.
    pub fn view_user(&self, actor: &RefActor<'_>, target: usize) -> RefOutcome {
        let memberships = &self.users[target].memberships;
        let seen = (0..memberships.len())
            .any(|m| self.user_action(actor, "users.view", target, m) == RefOutcome::Allowed)
            || (target == actor.user && memberships.iter().any(|(o, _)| Self::in_scope(actor, *o)));
        if seen {
            RefOutcome::Allowed
        } else {
            RefOutcome::Hidden
        }
    }

    /// Rule 9: a users list shows members of the orgs the list covers
    /// (`shown`, [`PlainWorld::list_scope`]), all of them with users.view,
    /// else only the actor.
    pub fn user_listed(
        &self,
        actor: &RefActor<'_>,
        shown: &BTreeSet<usize>,
        target: usize,
    ) -> bool {
        (actor.perms.contains("users.view") || target == actor.user)
            && self.users[target]
                .memberships
                .iter()
                .any(|(o, _)| shown.contains(o))
    }

    // Insight ----------------------------------------------------------------

    /// A user is visible to ask about: itself, or with a membership in scope.
    pub fn sees_user(&self, actor: &RefActor<'_>, subject: usize) -> bool {
        subject == actor.user
            || self.users[subject]
                .memberships
                .iter()
                .any(|(o, _)| Self::in_scope(actor, *o))
    }

    /// Who-can with the granting membership: for each user, the first of its
    /// memberships (in order) through which `allowed` holds.
    pub fn who_can_via(&self, allowed: impl Fn(&RefActor<'_>) -> bool) -> Vec<(usize, usize)> {
        let mut grants = vec![];
        for (u, user) in self.users.iter().enumerate() {
            let first = user
                .memberships
                .iter()
                .find(|(org, _)| self.act(u, *org).is_some_and(|a| allowed(&a)));
            if let Some((org, _)) = first {
                grants.push((u, *org));
            }
        }
        grants
    }
}
