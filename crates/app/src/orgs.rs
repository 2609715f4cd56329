//! Hierarchies and organizations.

use crate::accounts::AccountPolicy;
use crate::run::{About, Decides, Found, Step, Stop, named, read_case, write_case};
use crate::users::{Invite, Invited, Links, invite_in};
use crate::{App, AppError, Caller};
use arbor_core::org::{MovedSubtree, OrgContents};
use arbor_core::policy::{DeleteOrgFacts, MemberMove, MovedMember, Operator};
use arbor_core::{BuiltinRole, OrgId, OrgType, Role, RoleId, UserId};
use arbor_store::{
    AuditEvent, ClientKind, DeviceTemplateId, HierarchySettings, NewDatastream, NewOrg, NewUser,
    OrgRecord, OrgSettings,
};
use std::collections::BTreeMap;

/// A new hierarchy: its root organization, settings and first Admin.
#[derive(Clone, Debug)]
pub struct NewHierarchy {
    pub root: NewOrg,
    pub settings: HierarchySettings,
    pub admin: NewUser,
    pub client: ClientKind,
}

/// What creating a hierarchy made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HierarchyCreated {
    pub root: OrgRecord,
    pub admin: UserId,
    /// Admin, Staff, User.
    pub roles: [RoleId; 3],
}

impl HierarchyCreated {
    pub fn role(&self, role: BuiltinRole) -> RoleId {
        match role {
            BuiltinRole::Admin => self.roles[0],
            BuiltinRole::Staff => self.roles[1],
            BuiltinRole::User => self.roles[2],
        }
    }
}

/// Changes to an org's settings; `None` keeps the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    pub unit_system: Option<String>,
    pub contact: Option<String>,
}

/// What deleting an org did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrgDeleted {
    pub org: OrgId,
    /// Where the contents went, if anything was inside.
    pub moved_to: Option<OrgId>,
    /// What moved: sub-orgs (with their subtrees), memberships, devices.
    pub moved: OrgContents,
    /// Each moved membership with its old role and its role in the parent
    /// (`None`: the user kept an existing membership of the parent).
    pub members: Vec<MemberMove>,
}

/// A page of orgs found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSearchPage {
    pub items: Vec<OrgRecord>,
    pub next: Option<String>,
}

/// The orgs of a subtree in path order (parents before children).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgTree {
    pub orgs: Vec<OrgRecord>,
    /// More orgs lie in the subtree than were returned.
    pub truncated: bool,
}

/// Largest tree answered in one request.
pub const MAX_TREE_ORGS: u32 = 5_000;

fn org_event(caller: &Caller, action: &'static str, org: OrgId) -> AuditEvent {
    AuditEvent::new(caller.client, action, format!("org:{org}")).target_org(org)
}

impl Step {
    /// Loads org `id`, which must be visible to the actor, then locks its
    /// row and reads it again (so the decision sees what concurrent writers
    /// committed).
    pub(crate) async fn locked_org(&mut self, id: OrgId) -> Result<OrgRecord, Stop> {
        let seen = self.tx.org(id).await.found(self, "organization")?;
        let decision = self.actor.view_org(&seen.path);
        self.require(decision, "organization")?;
        self.tx.lock_org(id).await?;
        let record = self.tx.org(id).await.found(self, "organization")?;
        self.note("org_name", &record.name);
        Ok(record)
    }
}

impl App {
    /// Creates a hierarchy: root org, roles Admin/Staff/User with the SPEC
    /// default sets, and the first Admin. An operator's action (`arbor
    /// init`, first-run setup, demo data): no actor decides it.
    pub async fn create_hierarchy(
        &self,
        input: &NewHierarchy,
    ) -> Result<HierarchyCreated, AppError> {
        self.retrying(|| self.create_hierarchy_once(input, false))
            .await
    }

    /// Creates the server's first hierarchy; refused (409) once any exists,
    /// also when several requests race (the check and the insert are one
    /// transaction, serialised by the store's first-run lock).
    pub(crate) async fn create_first_hierarchy(
        &self,
        input: &NewHierarchy,
    ) -> Result<HierarchyCreated, AppError> {
        self.retrying(|| self.create_hierarchy_once(input, true))
            .await
    }

    async fn create_hierarchy_once(
        &self,
        input: &NewHierarchy,
        first_run: bool,
    ) -> Result<HierarchyCreated, AppError> {
        let operator = Operator::setup();
        let proof = operator.create_hierarchy();
        let by = proof;
        let mut tx = self.store.write().await?;
        if first_run {
            tx.lock_first_run().await?;
            if tx.any_hierarchy().await? {
                return Err(AppError::conflict("Arbor is already set up"));
            }
        }
        let mut root = input.root.clone();
        root.org_type = OrgType::Root;
        let org = tx.insert_org(&by, None, &root).await?;
        tx.insert_hierarchy(&by, org.id, &input.settings).await?;
        let mut roles = [RoleId(0); 3];
        for (i, builtin) in BuiltinRole::ALL.into_iter().enumerate() {
            let role = tx
                .insert_role(&by, org.id, builtin.default_name(), Some(builtin), i as i64)
                .await?;
            tx.set_role_permissions(&by, org.id, role.id, builtin.default_permissions())
                .await?;
            roles[i] = role.id;
        }
        let admin = tx.insert_user(&by, &input.admin).await?;
        tx.insert_membership(&by, admin, org.id, roles[0], true)
            .await?;
        let event = AuditEvent::new(input.client, "hierarchy.create", format!("org:{}", org.id))
            .target_org(org.id)
            .detail("admin", admin)
            .detail("name", &org.name);
        tx.commit(event).await?;
        Ok(HierarchyCreated {
            root: org,
            admin,
            roles,
        })
    }

    /// Creates a sub-organization of `parent`; its permission sets are copied
    /// from the parent's.
    pub async fn create_suborg(
        &self,
        caller: &Caller,
        parent: OrgId,
        org: &NewOrg,
    ) -> Result<OrgRecord, AppError> {
        let event = org_event(caller, "org.create", parent).detail("name", &org.name);
        write_case!(self, caller, event, |step| {
            create_suborg_in(step, parent, org).await
        })
    }

    /// Creates a sub-org and, if asked, invites its first Admin — in one
    /// transaction: if the invitation is refused, nothing is created.
    pub async fn create_suborg_with_admin(
        &self,
        caller: &Caller,
        parent: OrgId,
        org: &NewOrg,
        admin: Option<(&str, &str)>,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<(OrgRecord, Option<Invited>), AppError> {
        let event = org_event(caller, "org.create", parent).detail("name", &org.name);
        write_case!(self, caller, event, |step| {
            let created = create_suborg_in(step, parent, org).await?;
            let Some((email, name)) = admin else {
                return Ok((created, None));
            };
            let roles = step.tx.roles(created.path.root_id()).await?;
            let role = roles
                .iter()
                .find(|r| r.is_admin())
                .map(|r| r.id)
                .ok_or_else(|| AppError::internal("the hierarchy has no Admin role"))?;
            let invite = Invite {
                email: email.to_owned(),
                name: name.to_owned(),
                org: created.id,
                role,
            };
            let invited = invite_in(step, &invite, links, policy).await?;
            step.note("admin_invited", invited.user);
            Ok((created, Some(invited)))
        })
    }

    /// Moves `org` with its whole subtree under `new_parent` (same hierarchy).
    /// Needs `organizations.transfer` on both the moved org and the new parent.
    pub async fn move_org(
        &self,
        caller: &Caller,
        org: OrgId,
        new_parent: OrgId,
        confirmed: bool,
    ) -> Result<OrgRecord, AppError> {
        let event = org_event(caller, "org.move", org).detail("new_parent", new_parent);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.org(org).await.found(step, "organization")?;
            let decision = step.actor.view_org(&seen.path);
            step.require(decision, "organization")?;
            // Re-parenting rewrites paths of a subtree: one at a time per hierarchy.
            step.tx.lock_hierarchy(seen.path.root_id()).await?;
            let moved = step.tx.org(org).await.found(step, "organization")?;
            let target = step.tx.org(new_parent).await.found(step, "organization")?;
            let settings = step.tx.hierarchy_settings(moved.path.root_id()).await?;
            step.tx.lock_subtree(&moved.path).await?;
            let (deepest, has_non_personal) = step.tx.subtree_shape(&moved.path).await?;
            let shape = MovedSubtree {
                root: moved.facts(),
                deepest,
                has_non_personal,
            };
            let verdict =
                step.actor
                    .move_org(&shape, &target.facts(), settings.depth_limit, confirmed);
            let by = step.allow(verdict, "organization")?;
            let (old, new) = by.target().clone();
            let rows = step.tx.move_subtree(&by, &old, &new).await?;
            step.note("org_name", &moved.name);
            step.note("from", old.ids());
            step.note("to", new.ids());
            step.note("orgs_moved", rows);
            Ok(OrgRecord {
                parent: Some(target.id),
                path: new,
                ..moved
            })
        })
    }

    /// Creates a device template in the hierarchy's root org (enabled there).
    pub async fn create_device_template(
        &self,
        caller: &Caller,
        root: OrgId,
        name: &str,
        datastreams: &[NewDatastream],
    ) -> Result<DeviceTemplateId, AppError> {
        let event = org_event(caller, "template.create", root).detail("name", name);
        write_case!(self, caller, event, |step| {
            let org = step.tx.org(root).await.found(step, "organization")?;
            let verdict = step.actor.create_device_template(&org.path);
            let by = step.allow(verdict, "organization")?;
            let id = step
                .tx
                .insert_device_template(&by, org.path.root_id(), name, datastreams)
                .await?;
            step.tx.enable_template(&by, org.id, id).await?;
            step.note("template", id.0);
            Ok(id)
        })
    }

    /// Enables a device template for an org, so devices of it may live
    /// there. Decided at the org's parent (`templates.edit`); a template of
    /// another hierarchy is absent.
    pub async fn enable_device_template(
        &self,
        caller: &Caller,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<(), AppError> {
        let event = org_event(caller, "template.enable", org).detail("template", template.0);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let hierarchy = step
                .tx
                .device_template_hierarchy(template)
                .await
                .found(step, "device template")?;
            let verdict = step.actor.enable_device_template(&record.path, hierarchy);
            let by = step.allow(verdict, "device template")?;
            step.tx.enable_template(&by, org, template).await?;
            Ok(())
        })
    }

    /// Updates an org's settings (`organizations.settings` on it).
    pub async fn update_org(
        &self,
        caller: &Caller,
        org: OrgId,
        edit: &OrgEdit,
    ) -> Result<OrgRecord, AppError> {
        let event = org_event(caller, "org.update", org);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let verdict = step.actor.update_org(&record.path);
            let by = step.allow(verdict, "organization")?;
            let pick = |new: &Option<String>, old: &str| new.clone().unwrap_or_else(|| old.into());
            let settings = OrgSettings {
                name: pick(&edit.name, &record.name),
                description: pick(&edit.description, &record.description),
                timezone: pick(&edit.timezone, &record.timezone),
                unit_system: pick(&edit.unit_system, &record.unit_system),
                contact: pick(&edit.contact, &record.contact),
            };
            match step.tx.update_org(&by, org, &settings).await {
                Ok(()) => {}
                Err(e @ arbor_store::StoreError::Invalid { .. }) => {
                    return Err(step.fail(e.into()));
                }
                Err(e) => return Err(e.into()),
            }
            step.note("name", &settings.name);
            step.note("timezone", &settings.timezone);
            step.note("unit_system", &settings.unit_system);
            Ok(OrgRecord {
                name: settings.name.trim().to_owned(),
                description: settings.description,
                timezone: settings.timezone,
                unit_system: settings.unit_system,
                contact: settings.contact,
                ..record
            })
        })
    }

    /// Deletes a sub-org (`organizations.create_suborgs` on it and on its
    /// parent). Refused (409, with counts) while it holds sub-orgs, users or
    /// devices, unless `move_contents_to_parent`: then they move to the
    /// parent first, each moved member with the role `role_map` names for
    /// its old role or else the hierarchy's least-privileged role (moving
    /// never widens a member's scope), and the answer lists every moved
    /// membership with its old and new role.
    pub async fn delete_org(
        &self,
        caller: &Caller,
        org: OrgId,
        move_contents_to_parent: bool,
        role_map: &BTreeMap<RoleId, RoleId>,
    ) -> Result<OrgDeleted, AppError> {
        let event = org_event(caller, "org.delete", org)
            .detail("move_contents_to_parent", move_contents_to_parent);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.org(org).await.found(step, "organization")?;
            let decision = step.actor.view_org(&seen.path);
            step.require(decision, "organization")?;
            step.tx.lock_hierarchy(seen.path.root_id()).await?;
            let record = step.tx.org(org).await.found(step, "organization")?;
            let path = record.path.clone();
            // New members, devices or sub-orgs of the org, and role changes in
            // the parent its members move to, queue behind the deletion.
            let parent = match path.parent_id() {
                Some(parent) => {
                    step.tx.lock_org(parent).await?;
                    Some(step.tx.org_path(parent).await?)
                }
                None => None,
            };
            step.tx.lock_subtree(&path).await?;
            let contents = step.tx.org_contents(org).await?;
            step.note("org_name", &record.name);
            step.note("contents", contents);
            let roles: Vec<Role> = step.tx.roles(path.root_id()).await?;
            let mut parent_roles = Vec::with_capacity(roles.len());
            if let Some(parent) = &parent {
                for role in roles {
                    let set = step.tx.role_permissions(parent.id(), role.id).await?;
                    parent_roles.push((role, set));
                }
            }
            let mut members = Vec::new();
            if let Some(parent) = &parent {
                for (user, role) in step.tx.org_members(org).await? {
                    let in_parent = step.tx.member_role(user, parent.id()).await?.is_some();
                    members.push(MovedMember {
                        user,
                        role,
                        in_parent,
                    });
                }
            }
            let facts = DeleteOrgFacts {
                org: &path,
                parent: parent.as_ref(),
                contents,
                parent_roles: &parent_roles,
                members: &members,
            };
            let verdict = step
                .actor
                .delete_org(&facts, move_contents_to_parent, role_map);
            let allowed = step
                .allow(verdict, "organization")
                .about(|| named("organization", &record.name, record.id));
            let by = match allowed {
                Ok(by) => by,
                Err(Stop::Failed { decision, error }) => {
                    return Err(Stop::Failed {
                        decision,
                        error: with_contents(error, contents),
                    });
                }
                Err(stop) => return Err(stop),
            };
            let plan = by.target();
            let moved = if plan.move_contents {
                step.tx
                    .delete_org(&by, &path, Some((&plan.parent, &plan.moves)))
                    .await?
            } else {
                step.tx.delete_org(&by, &path, None).await?
            };
            let moved_to = plan.move_contents.then_some(plan.parent.id());
            step.note("moved_to", moved_to);
            step.note("moved", moved);
            step.note("members", &plan.moves);
            // Decided on the parent; the row names the deleted org.
            step.event.target_org = Some(org);
            Ok(OrgDeleted {
                org,
                moved_to,
                moved,
                members: plan.moves.clone(),
            })
        })
    }

    /// Orgs in the caller's list scope (rule 9) whose name contains `name`, by id.
    pub async fn search_orgs(
        &self,
        caller: &Caller,
        name: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<OrgSearchPage, AppError> {
        let size = match limit {
            None => arbor_store::DEFAULT_PAGE_SIZE,
            Some(n) if (1..=arbor_store::MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => return Err(AppError::invalid("limit", "between 1 and 500")),
        };
        let after = match cursor {
            None => 0,
            Some(c) => c
                .strip_prefix("s")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| AppError::invalid("cursor", "not a cursor of this list"))?,
        };
        let event = AuditEvent::new(caller.client, "org.search", "org:*");
        read_case!(self, caller, event, |step| {
            let scope = step.actor.list_scope();
            let mut items = step.tx.search_orgs(&scope, name, after, size + 1).await?;
            let next = if items.len() > size as usize {
                items.truncate(size as usize);
                items.last().map(|o| format!("s{}", o.id))
            } else {
                None
            };
            Ok(OrgSearchPage { items, next })
        })
    }

    /// The subtree at `root` (default: the context org) as far as it lies
    /// in the caller's scope, parents before children.
    pub async fn org_tree(
        &self,
        caller: &Caller,
        root: Option<OrgId>,
        limit: Option<u32>,
    ) -> Result<OrgTree, AppError> {
        let limit = limit.unwrap_or(MAX_TREE_ORGS);
        if !(1..=MAX_TREE_ORGS).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("between 1 and {MAX_TREE_ORGS}"),
            ));
        }
        let target = root.map_or_else(|| "org:context".to_owned(), |o| format!("org:{o}"));
        let event = AuditEvent::new(caller.client, "org.tree", target);
        read_case!(self, caller, event, |step| {
            let path = match root {
                Some(org) => step.tx.org_path(org).await.found(step, "organization")?,
                None => step.actor.context_path().clone(),
            };
            let decision = step.actor.view_in_list(&path);
            step.require(decision, "organization")?;
            let mut orgs = if step.actor.list_scope().descendants {
                step.tx.subtree_orgs(&path, None, limit + 1).await?
            } else {
                vec![step.tx.org(path.id()).await?]
            };
            let truncated = orgs.len() > limit as usize;
            orgs.truncate(limit as usize);
            Ok(OrgTree { orgs, truncated })
        })
    }
}

/// A refused deletion of a non-empty org answers with the counts.
fn with_contents(error: AppError, contents: OrgContents) -> AppError {
    match error {
        AppError::Conflict { what } => AppError::ConflictWith {
            what,
            details: serde_json::json!({ "contents": contents }),
        },
        other => other,
    }
}

async fn create_suborg_in(step: &mut Step, parent: OrgId, org: &NewOrg) -> Result<OrgRecord, Stop> {
    let record = step.locked_org(parent).await?;
    let settings = step.tx.hierarchy_settings(record.path.root_id()).await?;
    let verdict = step
        .actor
        .create_suborg(&record.facts(), org.org_type, settings.depth_limit);
    let by = step
        .allow(verdict, "organization")
        .about(|| named("organization", &record.name, record.id))?;
    let created = match step.tx.insert_org(&by, Some(&record.path), org).await {
        Ok(created) => created,
        Err(e @ arbor_store::StoreError::Invalid { .. }) => return Err(step.fail(e.into())),
        Err(e) => return Err(e.into()),
    };
    step.tx
        .copy_role_permissions(&by, record.id, created.id)
        .await?;
    step.note("created", created.id);
    Ok(created)
}
