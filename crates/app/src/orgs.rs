//! Hierarchies and organizations.

use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, bootstrap, refuse};
use arbor_core::org::{MovedSubtree, check_create_suborg, check_transfer_org};
use arbor_core::{BuiltinRole, OrgId, OrgType, Permission, RoleId, UserId};
use arbor_store::{
    AuditEvent, ClientKind, DeviceTemplateId, HierarchySettings, NewDatastream, NewOrg, NewUser,
    OrgRecord,
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
