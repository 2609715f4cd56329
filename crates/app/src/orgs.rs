//! Hierarchies and organizations.

use crate::accounts::AccountPolicy;
use crate::users::{Invite, Invited, Links};
use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, bootstrap, refuse};
use arbor_core::org::{
    DeletePlan, MovedSubtree, OrgContents, check_create_suborg, check_delete_org,
    check_transfer_org,
};
use arbor_core::{
    BuiltinRole, DomainError, OrgId, OrgPath, OrgType, Permission, Role, RoleId, UserId,
};
use arbor_store::{
    AuditEvent, ClientKind, DeviceTemplateId, HierarchySettings, NewDatastream, NewOrg, NewUser,
    OrgRecord, OrgSettings,
};

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

impl App {
    /// Creates a hierarchy: root org, roles Admin/Staff/User with the SPEC
    /// default sets, and the first Admin. A server-level operation (`arbor
    /// init`, sign-up, demo data): no actor decides it.
    pub async fn create_hierarchy(
        &self,
        input: &NewHierarchy,
    ) -> Result<HierarchyCreated, AppError> {
        self.retrying(|| self.create_hierarchy_once(input)).await
    }

    async fn create_hierarchy_once(
        &self,
        input: &NewHierarchy,
    ) -> Result<HierarchyCreated, AppError> {
        let by = bootstrap();
        let mut tx = self.store.write().await?;
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
        self.retrying(|| self.create_suborg_once(caller, parent, org))
            .await
    }

    async fn create_suborg_once(
        &self,
        caller: &Caller,
        parent: OrgId,
        org: &NewOrg,
    ) -> Result<OrgRecord, AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(caller.client, "org.create", format!("org:{parent}"))
            .target_org(parent)
            .detail("name", &org.name);
        tx.lock_org(parent).await?;
        let actor = actor_or_deny!(tx, caller, event);
        let parent = tx.org(parent).await?;
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_org(Permission::OrganizationsCreateSuborgs, &parent.path),
            "organization"
        );
        let settings = tx.hierarchy_settings(parent.path.root_id()).await?;
        if let Err(e) = check_create_suborg(&parent.facts(), org.org_type, settings.depth_limit) {
            return Err(refuse(tx, event.by(&by), e.into()).await);
        }
        let created = tx.insert_org(&by, Some(&parent.path), org).await?;
        tx.copy_role_permissions(&by, parent.id, created.id).await?;
        let event = event.by(&by).detail("created", created.id);
        tx.commit(event).await?;
        Ok(created)
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
        self.retrying(|| self.move_org_once(caller, org, new_parent, confirmed))
            .await
    }

    async fn move_org_once(
        &self,
        caller: &Caller,
        org: OrgId,
        new_parent: OrgId,
        confirmed: bool,
    ) -> Result<OrgRecord, AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(caller.client, "org.move", format!("org:{org}"))
            .target_org(org)
            .detail("new_parent", new_parent);
        let moved = tx.org(org).await?;
        // Re-parenting rewrites paths of a subtree: one at a time per hierarchy.
        tx.lock_hierarchy(moved.path.root_id()).await?;
        let actor = actor_or_deny!(tx, caller, event);
        let moved = tx.org(org).await?;
        allow_or_deny!(
            tx,
            event,
            actor.decide_org(Permission::OrganizationsTransfer, &moved.path),
            "organization"
        );
        let target = tx.org(new_parent).await?;
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_org(Permission::OrganizationsTransfer, &target.path),
            "organization"
        );
        let settings = tx.hierarchy_settings(moved.path.root_id()).await?;
        tx.lock_subtree(&moved.path).await?;
        let (deepest, has_non_personal) = tx.subtree_shape(&moved.path).await?;
        let shape = MovedSubtree {
            root: moved.facts(),
            deepest,
            has_non_personal,
        };
        let new_path =
            match check_transfer_org(&shape, &target.facts(), settings.depth_limit, confirmed) {
                Ok(path) => path,
                Err(e) => return Err(refuse(tx, event.by(&by), e.into()).await),
            };
        let rows = tx.move_subtree(&by, &moved.path, &new_path).await?;
        let event = event
            .by(&by)
            .detail("from", moved.path.ids())
            .detail("to", new_path.ids())
            .detail("orgs_moved", rows);
        tx.commit(event).await?;
        Ok(OrgRecord {
            parent: Some(target.id),
            path: new_path,
            ..moved
        })
    }

    /// Creates a device template in the hierarchy's root org (enabled there).
    /// Datastreams: (pin, name, type, min, max, units).
    pub async fn create_device_template(
        &self,
        caller: &Caller,
        root: OrgId,
        name: &str,
        datastreams: &[NewDatastream],
    ) -> Result<DeviceTemplateId, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(caller.client, "template.create", format!("org:{root}"))
                .target_org(root)
                .detail("name", name);
            let actor = actor_or_deny!(tx, caller, event);
            let org = tx.org(root).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_device_template(Permission::TemplatesCreate, &org.path),
                "organization"
            );
            let id = tx
                .insert_device_template(&by, org.path.root_id(), name, datastreams)
                .await?;
            tx.enable_template(&by, org.id, id).await?;
            tx.commit(event.by(&by).detail("template", id.0)).await?;
            Ok(id)
        })
        .await
    }

    /// Enables a device template for an org, so devices of it may live there.
    /// Needs `templates.edit` on that org.
    pub async fn enable_device_template(
        &self,
        caller: &Caller,
        org: OrgId,
        template: DeviceTemplateId,
    ) -> Result<(), AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(caller.client, "template.enable", format!("org:{org}"))
                .target_org(org)
                .detail("template", template.0);
            let actor = actor_or_deny!(tx, caller, event);
            let path = tx.org_path(org).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_org(Permission::TemplatesEdit, &path),
                "organization"
            );
            tx.enable_template(&by, org, template).await?;
            tx.commit(event.by(&by)).await?;
            Ok(())
        })
        .await
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrgDeleted {
    pub org: OrgId,
    /// Where the contents went, if anything was inside.
    pub moved_to: Option<OrgId>,
    /// What moved: sub-orgs (with their subtrees), memberships, devices.
    pub moved: OrgContents,
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

impl App {
    /// Creates a sub-org and, if asked, invites its first Admin in the same
    /// request through the ordinary invite use case. If the invitation is
    /// refused, the new (still empty) org is removed again and the refusal
    /// returned: the request changes nothing.
    pub async fn create_suborg_with_admin(
        &self,
        caller: &Caller,
        parent: OrgId,
        org: &NewOrg,
        admin: Option<(&str, &str)>,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<(OrgRecord, Option<Invited>), AppError> {
        let Some((email, name)) = admin else {
            return Ok((self.create_suborg(caller, parent, org).await?, None));
        };
        // Found before anything is written, so that only the invitation
        // itself can fail after the org exists. A missing parent answers
        // 404, as create_suborg would (and as a hidden one does).
        let admin_role = {
            let mut tx = self.store.read().await?;
            let path = tx.org_path(parent).await?;
            let roles = tx.roles(path.root_id()).await?;
            tx.finish().await?;
            roles
                .into_iter()
                .find(Role::is_admin)
                .map(|r| r.id)
                .ok_or_else(|| AppError::internal("the hierarchy has no Admin role"))?
        };
        let created = self.create_suborg(caller, parent, org).await?;
        let invite = Invite {
            email: email.to_owned(),
            name: name.to_owned(),
            org: created.id,
            role: admin_role,
        };
        match self.invite(caller, &invite, links, policy).await {
            Ok(invited) => Ok((created, Some(invited))),
            Err(error) => {
                self.retrying(|| self.undo_create_suborg(caller, &created.path, &error))
                    .await?;
                Err(error)
            }
        }
    }

    async fn undo_create_suborg(
        &self,
        caller: &Caller,
        path: &OrgPath,
        error: &AppError,
    ) -> Result<(), AppError> {
        let by = bootstrap();
        let mut tx = self.store.write().await?;
        tx.lock_org(path.id()).await?;
        tx.delete_org(&by, path, None).await?;
        let event = AuditEvent::new(
            caller.client,
            "org.create.undo",
            format!("org:{}", path.id()),
        )
        .target_org(path.id())
        .detail("actor", caller.user)
        .detail("reason", error.to_string());
        tx.commit(event).await?;
        Ok(())
    }

    /// Updates an org's settings (`organizations.settings` on it).
    pub async fn update_org(
        &self,
        caller: &Caller,
        org: OrgId,
        edit: &OrgEdit,
    ) -> Result<OrgRecord, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event =
                AuditEvent::new(caller.client, "org.update", format!("org:{org}")).target_org(org);
            tx.lock_org(org).await?;
            let actor = actor_or_deny!(tx, caller, event);
            let record = tx.org(org).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_org(Permission::OrganizationsSettings, &record.path),
                "organization"
            );
            let pick = |new: &Option<String>, old: &str| new.clone().unwrap_or_else(|| old.into());
            let settings = OrgSettings {
                name: pick(&edit.name, &record.name),
                description: pick(&edit.description, &record.description),
                timezone: pick(&edit.timezone, &record.timezone),
                unit_system: pick(&edit.unit_system, &record.unit_system),
                contact: pick(&edit.contact, &record.contact),
            };
            if let Err(e) = tx.update_org(&by, org, &settings).await {
                return Err(match e {
                    arbor_store::StoreError::Invalid { .. } => {
                        refuse(tx, event.by(&by), e.into()).await
                    }
                    other => other.into(),
                });
            }
            let event = event
                .by(&by)
                .detail("name", &settings.name)
                .detail("timezone", &settings.timezone)
                .detail("unit_system", &settings.unit_system);
            tx.commit(event).await?;
            Ok(OrgRecord {
                name: settings.name.trim().to_owned(),
                description: settings.description,
                timezone: settings.timezone,
                unit_system: settings.unit_system,
                contact: settings.contact,
                ..record
            })
        })
        .await
    }

    /// Deletes a sub-org. Needs `organizations.create_suborgs` on its parent
    /// (so no one deletes their own home org). Refused (409, with counts)
    /// while it holds sub-orgs, users or devices, unless
    /// `move_contents_to_parent`: then they move to the parent first, and the
    /// actor must hold every permission the moved members' roles have in the
    /// parent (rule 6: moving members up grants them the parent's sets).
    pub async fn delete_org(
        &self,
        caller: &Caller,
        org: OrgId,
        move_contents_to_parent: bool,
    ) -> Result<OrgDeleted, AppError> {
        self.retrying(|| self.delete_org_once(caller, org, move_contents_to_parent))
            .await
    }

    async fn delete_org_once(
        &self,
        caller: &Caller,
        org: OrgId,
        move_contents_to_parent: bool,
    ) -> Result<OrgDeleted, AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(caller.client, "org.delete", format!("org:{org}"))
            .target_org(org)
            .detail("move_contents_to_parent", move_contents_to_parent);
        let path = tx.org_path(org).await?;
        tx.lock_hierarchy(path.root_id()).await?;
        let path = tx.org_path(org).await?;
        // New members, devices or sub-orgs of the org, and role changes in the
        // parent its members move to, queue behind the deletion.
        if let Some(parent) = path.parent_id() {
            tx.lock_org(parent).await?;
        }
        tx.lock_subtree(&path).await?;
        let actor = actor_or_deny!(tx, caller, event);
        // The org itself must be visible; then the parent decides.
        allow_or_deny!(
            tx,
            event,
            actor.decide_org(Permission::OrganizationsCreateSuborgs, &path),
            "organization"
        );
        let parent = match path.parent_id() {
            Some(parent) => tx.org_path(parent).await?,
            None => path.clone(),
        };
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_org(Permission::OrganizationsCreateSuborgs, &parent),
            "organization"
        );
        let contents = tx.org_contents(org).await?;
        let event = event.detail("contents", contents);
        let plan = match check_delete_org(&path, contents, move_contents_to_parent) {
            Ok(plan) => plan,
            Err(e) => {
                let error = match e {
                    DomainError::Conflict { what } => AppError::ConflictWith {
                        what,
                        details: serde_json::json!({ "contents": contents }),
                    },
                    other => other.into(),
                };
                return Err(refuse(tx, event.by(&by).target_org(org), error).await);
            }
        };
        let moved = match plan {
            DeletePlan::Empty => tx.delete_org(&by, &path, None).await?,
            DeletePlan::MoveContentsTo(_) => {
                let mut granted = arbor_core::PermissionSet::EMPTY;
                for role in tx.member_roles_of(org).await? {
                    granted = granted.union(tx.role_permissions(parent.id(), role).await?);
                }
                let by = allow_or_deny!(
                    tx,
                    event,
                    actor.decide_assign_role(
                        Permission::OrganizationsCreateSuborgs,
                        &parent,
                        granted
                    ),
                    "organization"
                );
                tx.delete_org(&by, &path, Some(&parent)).await?
            }
        };
        let moved_to = matches!(plan, DeletePlan::MoveContentsTo(_)).then_some(parent.id());
        // The decision that allowed it was on the parent; the row names the
        // deleted org as its target.
        let event = event
            .by(&by)
            .target_org(org)
            .detail("moved_to", moved_to)
            .detail("moved", moved);
        tx.commit(event).await?;
        Ok(OrgDeleted {
            org,
            moved_to,
            moved,
        })
    }

    /// Orgs in the caller's scope whose name contains `name`, by id.
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
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let mut items = tx.search_orgs(actor.scope(), name, after, size + 1).await?;
        tx.finish().await?;
        let next = if items.len() > size as usize {
            items.truncate(size as usize);
            items.last().map(|o| format!("s{}", o.id))
        } else {
            None
        };
        Ok(OrgSearchPage { items, next })
    }

    /// The subtree at `root` (default: the caller's home org) as far as it
    /// lies in the caller's scope, parents before children.
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
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let path = match root {
            Some(org) => tx.org_path(org).await?,
            None => actor.home().clone(),
        };
        if !(actor.home().same_hierarchy(&path) && actor.scope().contains(&path)) {
            return Err(AppError::NotFound {
                what: "organization",
            });
        }
        let mut orgs = if actor.scope().descendants {
            tx.subtree_orgs(&path, None, limit + 1).await?
        } else {
            vec![tx.org(path.id()).await?]
        };
        tx.finish().await?;
        let truncated = orgs.len() > limit as usize;
        orgs.truncate(limit as usize);
        Ok(OrgTree { orgs, truncated })
    }
}
