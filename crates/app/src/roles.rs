//! Roles (hierarchy-wide names), per-org permission sets and permission
//! templates.

use crate::run::{About, Decides, Found, Step, Stop, named, read_case, write_case};
use crate::{App, AppError, Caller};
use arbor_core::permission::Closure;
use arbor_core::role::{RoleDeletion, TemplatePush};
use arbor_core::{OrgId, OrgPath, PermissionMatrix, PermissionSet, Role, RoleId};
use arbor_store::{AuditEvent, StoreError, StoredTemplate};

/// An org's permission table, with the hierarchy's roles in display order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixView {
    pub org: OrgId,
    pub roles: Vec<Role>,
    pub matrix: PermissionMatrix,
}

/// What applying a template to one org did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TemplateApplied {
    pub org: OrgId,
    pub changed: bool,
}

impl Step {
    /// The actor's hierarchy root, locked: role-list changes are decided on
    /// it and serialised per hierarchy.
    async fn locked_root(&mut self) -> Result<(OrgPath, Vec<Role>), Stop> {
        let hierarchy = self.actor.hierarchy();
        self.tx.lock_hierarchy(hierarchy).await?;
        let root = self.tx.org_path(hierarchy).await?;
        self.event.target_org = Some(root.id());
        let roles = self.tx.roles(hierarchy).await?;
        Ok((root, roles))
    }
}

impl App {
    /// Replaces `perms(org, role)` by `requested` closed over its dependencies;
    /// returns the closure (what was added is reported back). Needs
    /// `roles.edit`, and the caller must hold every permission of the old and
    /// the new set (rule 6). The root org's Admin set stays the whole catalog.
    pub async fn set_role_permissions(
        &self,
        caller: &Caller,
        org: OrgId,
        role: RoleId,
        requested: PermissionSet,
    ) -> Result<Closure, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "role.permissions.set",
            format!("role:{role}"),
        )
        .target_org(org);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let roles = step.tx.roles(record.path.root_id()).await?;
            let Some(found) = roles.iter().find(|r| r.id == role) else {
                return Err(step.absent("role"));
            };
            step.note("role_name", &found.name);
            let old = step.tx.role_permissions(org, role).await?;
            let verdict = step
                .actor
                .set_role_permissions(&record.path, found, old, requested);
            let by = step.allow(verdict, "organization")?;
            let closure = by.target().closure;
            step.tx
                .set_role_permissions(&by, org, role, closure.set)
                .await?;
            step.note("permissions", closure.set.ids());
            step.note("added", closure.added.ids());
            Ok(closure)
        })
    }

    /// The hierarchy's roles (`roles.view` in the context org).
    pub async fn list_roles(&self, caller: &Caller) -> Result<Vec<Role>, AppError> {
        let event = AuditEvent::new(caller.client, "role.list", "role:*");
        read_case!(self, caller, event, |step| {
            let decision = step.actor.list_roles();
            step.require(decision, "organization")?;
            Ok(step.tx.roles(step.actor.hierarchy()).await?)
        })
    }

    /// Adds a role (`roles.create` in the root org; at most nine). Its set is
    /// empty in every org until edited.
    pub async fn create_role(&self, caller: &Caller, name: &str) -> Result<Role, AppError> {
        let event = AuditEvent::new(caller.client, "role.create", "role:new").detail("name", name);
        write_case!(self, caller, event, |step| {
            let (root, roles) = step.locked_root().await?;
            let verdict = step.actor.create_role(&root, &roles, name);
            let by = step.allow(verdict, "organization")?;
            let (hierarchy, name) = by.target().clone();
            let position = step.tx.next_role_position(hierarchy).await?;
            let role = step
                .tx
                .insert_role(&by, hierarchy, &name, None, position)
                .await?;
            step.note("role", role.id);
            Ok(role)
        })
    }

    /// Renames a role (`roles.edit` in the root org, and every permission
    /// the role holds in any org).
    pub async fn rename_role(
        &self,
        caller: &Caller,
        role: RoleId,
        name: &str,
    ) -> Result<Role, AppError> {
        let event = AuditEvent::new(caller.client, "role.rename", format!("role:{role}"))
            .detail("name", name);
        write_case!(self, caller, event, |step| {
            let (root, roles) = step.locked_root().await?;
            let role_sets = match roles.iter().find(|r| r.id == role) {
                Some(_) => step.tx.role_permissions_everywhere(role).await?,
                None => PermissionSet::EMPTY,
            };
            let verdict = step.actor.rename_role(&root, &roles, role, role_sets, name);
            let subject = roles
                .iter()
                .find(|r| r.id == role)
                .map(|r| named("role", &r.name, r.id));
            let by = step
                .allow(verdict, "role")
                .about(|| subject.unwrap_or_default())?;
            let (_, name) = by.target().clone();
            let old = roles
                .iter()
                .find(|r| r.id == role)
                .cloned()
                .ok_or_else(|| AppError::internal("the renamed role vanished"))?;
            step.tx.rename_role(&by, role, &name).await?;
            step.note("old_name", &old.name);
            Ok(Role { name, ..old })
        })
    }

    /// Deletes a role (`roles.delete` in the root org, and every permission
    /// the role holds anywhere); its memberships move to `replacement`,
    /// which must grant nothing the actor lacks in any org (rule 6). Admin
    /// cannot be deleted.
    pub async fn delete_role(
        &self,
        caller: &Caller,
        role: RoleId,
        replacement: RoleId,
    ) -> Result<RoleDeletion, AppError> {
        let event = AuditEvent::new(caller.client, "role.delete", format!("role:{role}"))
            .detail("replacement", replacement);
        write_case!(self, caller, event, |step| {
            let (root, roles) = step.locked_root().await?;
            let known = |r: RoleId| roles.iter().any(|x| x.id == r);
            let role_sets = if known(role) {
                step.tx.role_permissions_everywhere(role).await?
            } else {
                PermissionSet::EMPTY
            };
            let replacement_sets = if known(replacement) {
                step.tx.role_permissions_everywhere(replacement).await?
            } else {
                PermissionSet::EMPTY
            };
            let holders = if known(role) {
                step.tx.role_holders(role).await?
            } else {
                Vec::new()
            };
            if let Some(r) = roles.iter().find(|r| r.id == role) {
                step.note("role_name", &r.name);
            }
            let verdict = step.actor.delete_role(
                &root,
                &roles,
                role,
                role_sets,
                replacement,
                replacement_sets,
                &holders,
            );
            let subject = roles.iter().find(|r| r.id == role).map(|r| {
                let held = holders.iter().filter(|h| h.role == role).count();
                format!(
                    "{}, held by {held} memberships",
                    named("role", &r.name, r.id)
                )
            });
            let by = step
                .allow(verdict, "role")
                .about(|| subject.unwrap_or_default())?;
            step.tx.delete_role(&by, role, replacement).await?;
            let plan = by.target().clone();
            step.note("moved", plan.moved.len());
            Ok(plan)
        })
    }

    /// An org's permission table (`roles.view` on the org).
    pub async fn permission_matrix(
        &self,
        caller: &Caller,
        org: OrgId,
    ) -> Result<MatrixView, AppError> {
        let event = AuditEvent::new(caller.client, "role.matrix.view", format!("org:{org}"));
        read_case!(self, caller, event, |step| {
            let path = step.tx.org_path(org).await.found(step, "organization")?;
            let decision = step.actor.view_matrix(&path);
            step.require(decision, "organization")?;
            let roles = step.tx.roles(path.root_id()).await?;
            let matrix = step.tx.permission_matrix(org).await?;
            Ok(MatrixView { org, roles, matrix })
        })
    }

    /// Saves an org's current table as a named template (`roles.edit` on the org).
    pub async fn create_permission_template(
        &self,
        caller: &Caller,
        from_org: OrgId,
        name: &str,
    ) -> Result<StoredTemplate, AppError> {
        let event = AuditEvent::new(caller.client, "permission_template.create", "template:new")
            .target_org(from_org)
            .detail("name", name);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(from_org).await?;
            let verdict = step.actor.create_permission_template(&record.path);
            let by = step.allow(verdict, "organization")?;
            let matrix = step.tx.permission_matrix(from_org).await?;
            let template = arbor_core::PermissionTemplate::from_matrix(name.trim(), &matrix);
            let hierarchy = record.path.root_id();
            // Checked before the insert: on PostgreSQL a violated constraint
            // aborts the transaction.
            let taken = step
                .tx
                .permission_templates(hierarchy)
                .await?
                .iter()
                .any(|t| t.template.name == template.name);
            if taken {
                return Err(step.fail(AppError::conflict(format!(
                    "a permission template named {:?} already exists",
                    template.name
                ))));
            }
            let id = match step
                .tx
                .insert_permission_template(&by, hierarchy, &template)
                .await
            {
                Ok(id) => id,
                Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
                    return Err(step.fail(e.into()));
                }
                Err(e) => return Err(e.into()),
            };
            step.note("template", id);
            Ok(StoredTemplate {
                id,
                hierarchy,
                template,
                created_at: step.tx.now(),
            })
        })
    }

    /// The hierarchy's permission templates (`roles.view` in the context org).
    pub async fn list_permission_templates(
        &self,
        caller: &Caller,
    ) -> Result<Vec<StoredTemplate>, AppError> {
        let event = AuditEvent::new(caller.client, "permission_template.list", "template:*");
        read_case!(self, caller, event, |step| {
            let decision = step.actor.list_permission_templates();
            step.require(decision, "organization")?;
            Ok(step.tx.permission_templates(step.actor.hierarchy()).await?)
        })
    }

    /// Applies a template to one org: every role it names gets the template's
    /// set (closed over dependencies), except the root org's Admin. Needs
    /// `roles.edit` on the org and every permission of the sets replaced and
    /// written (rule 6).
    pub async fn apply_permission_template(
        &self,
        caller: &Caller,
        template: i64,
        org: OrgId,
    ) -> Result<TemplateApplied, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "permission_template.apply",
            format!("template:{template}"),
        )
        .target_org(org);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let matrix = step.tx.permission_matrix(org).await?;
            let orgs = [(record.path.clone(), matrix)];
            let plan = apply_template(step, template, &orgs).await?;
            Ok(TemplateApplied {
                org,
                changed: !plan.orgs_changed.is_empty(),
            })
        })
    }

    /// Pushes a template to every org of the subtree at `org`, in one
    /// transaction: refused as a whole if any org of it is not the actor's to
    /// change; the root org's Admin set is skipped. Reports how many orgs it
    /// covered and which changed.
    pub async fn push_permission_template(
        &self,
        caller: &Caller,
        template: i64,
        org: OrgId,
    ) -> Result<TemplatePush, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "permission_template.push",
            format!("template:{template}"),
        )
        .target_org(org);
        write_case!(self, caller, event, |step| {
            let seen = step.tx.org_path(org).await.found(step, "organization")?;
            let decision = step.actor.view_org(&seen);
            step.require(decision, "organization")?;
            // Serialised with re-parenting, which rewrites subtrees, and with
            // every writer of one org of the subtree (a sub-org created
            // meanwhile copies either the old sets and is pushed, or the new).
            step.tx.lock_hierarchy(seen.root_id()).await?;
            let path = step.tx.org_path(org).await.found(step, "organization")?;
            step.tx.lock_subtree(&path).await?;
            let orgs = step.tx.subtree_matrices(&path).await?;
            let plan = apply_template(step, template, &orgs).await?;
            Ok(TemplatePush {
                orgs: plan.orgs,
                changed: plan.orgs_changed,
            })
        })
    }
}

struct Applied {
    orgs: usize,
    orgs_changed: Vec<OrgId>,
}

/// Decides and writes a template over `orgs` (the target first).
async fn apply_template(
    step: &mut Step,
    template: i64,
    orgs: &[(OrgPath, PermissionMatrix)],
) -> Result<Applied, Stop> {
    let stored = step
        .tx
        .permission_template(template)
        .await
        .found(step, "permission template")?;
    let hierarchy = orgs
        .first()
        .map(|(p, _)| p.root_id())
        .unwrap_or(stored.hierarchy);
    let roles = step.tx.roles(hierarchy).await?;
    let admin = roles
        .iter()
        .find(|r| r.is_admin())
        .map(|r| r.id)
        .unwrap_or(RoleId(0));
    let verdict =
        step.actor
            .apply_permission_template(stored.hierarchy, &stored.template, admin, orgs);
    let by = step.allow(verdict, "permission template")?;
    let plan = by.target().clone();
    for write in &plan.writes {
        for (role, set) in &write.sets {
            step.tx
                .set_role_permissions(&by, write.org, *role, *set)
                .await?;
        }
    }
    let changed = plan.changed();
    step.note("orgs", plan.orgs);
    step.note("changed", changed.len());
    step.note("root_admin_skipped", plan.root_admin_skipped);
    Ok(Applied {
        orgs: plan.orgs,
        orgs_changed: changed,
    })
}
