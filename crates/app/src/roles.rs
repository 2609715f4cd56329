//! Roles (hierarchy-wide names), per-org permission sets and permission
//! templates.

use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, refuse};
use arbor_core::permission::Closure;
use arbor_core::role::{
    RoleDeletion, TemplatePush, check_create_role, check_role_name, plan_role_deletion,
};
use arbor_core::{
    Actor, OrgId, OrgPath, Permission, PermissionMatrix, PermissionSet, PermissionTemplate, Role,
    RoleId,
};
use arbor_store::{Allowed, AuditEvent, StoreError, StoredTemplate, Tx, Write};

impl App {
    /// Replaces `perms(org, role)` by `requested` closed over its dependencies;
    /// returns the closure (what was added is reported back). Needs
    /// `roles.edit`, and the caller must hold every permission of the old and
    /// the new set (rule 6).
    pub async fn set_role_permissions(
        &self,
        caller: &Caller,
        org: OrgId,
        role: RoleId,
        requested: PermissionSet,
    ) -> Result<Closure, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(
                caller.client,
                "role.permissions.set",
                format!("role:{role}"),
            )
            .target_org(org);
            tx.lock_org(org).await?;
            let actor = actor_or_deny!(tx, caller, event);
            let path = tx.org_path(org).await?;
            if !tx.roles(path.root_id()).await?.iter().any(|r| r.id == role) {
                return Err(AppError::NotFound { what: "role" });
            }
            let old = tx.role_permissions(org, role).await?;
            let closure = requested.close_over_dependencies();
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_set_permissions(&path, old, closure.set),
                "organization"
            );
            tx.set_role_permissions(&by, org, role, closure.set).await?;
            let event = event
                .by(&by)
                .detail("permissions", closure.set.ids())
                .detail("added", closure.added.ids());
            tx.commit(event).await?;
            Ok(closure)
        })
        .await
    }
}

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

/// Role names are hierarchy-wide, so changing the list is decided on the
/// hierarchy's root org: only its members (with the permission) may.
async fn hierarchy_root(tx: &mut Tx<Write>, actor: &Actor) -> Result<OrgPath, AppError> {
    Ok(tx.org_path(actor.hierarchy()).await?)
}

/// Changes to the role list are decided in the hierarchy's root org: resolves
/// the caller, locks the hierarchy and decides `permission` on the root.
/// Yields the actor, the root, the event aimed at it and the proof; a denial is
/// committed with its audit row and returned.
macro_rules! decide_on_root {
    ($tx:ident, $caller:expr, $event:expr, $permission:expr) => {{
        let actor = actor_or_deny!($tx, $caller, $event);
        $tx.lock_hierarchy(actor.hierarchy()).await?;
        let root = hierarchy_root(&mut $tx, &actor).await?;
        let event = $event.target_org(root.id());
        let by = allow_or_deny!(
            $tx,
            event,
            actor.decide_org($permission, &root),
            "organization"
        );
        (actor, root, event, by)
    }};
}

/// The role, if it belongs to the actor's hierarchy (else NotFound).
fn find_role(roles: &[Role], role: RoleId) -> Result<&Role, AppError> {
    roles
        .iter()
        .find(|r| r.id == role)
        .ok_or(AppError::NotFound { what: "role" })
}

impl App {
    /// The hierarchy's roles (`roles.view` in the context org).
    pub async fn list_roles(&self, caller: &Caller) -> Result<Vec<Role>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let context = tx.org_path(actor.context()).await?;
        let decision = actor.decide_org(Permission::RolesView, &context);
        if !decision.is_allowed() {
            return Err(AppError::denied(&decision, "organization"));
        }
        let roles = tx.roles(actor.hierarchy()).await?;
        tx.finish().await?;
        Ok(roles)
    }

    /// Adds a role (`roles.create` in the root org; at most nine). Its set is
    /// empty in every org until edited.
    pub async fn create_role(&self, caller: &Caller, name: &str) -> Result<Role, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event =
                AuditEvent::new(caller.client, "role.create", "role:new").detail("name", name);
            let (_, root, event, by) = decide_on_root!(tx, caller, event, Permission::RolesCreate);
            let roles = tx.roles(root.id()).await?;
            let name = match check_create_role(&roles, name) {
                Ok(name) => name,
                Err(e) => return Err(refuse(tx, event.by(&by), e.into()).await),
            };
            let position = tx.next_role_position(root.id()).await?;
            let role = tx
                .insert_role(&by, root.id(), &name, None, position)
                .await?;
            tx.commit(event.by(&by).detail("role", role.id)).await?;
            Ok(role)
        })
        .await
    }

    /// Renames a role (`roles.edit` in the root org).
    pub async fn rename_role(
        &self,
        caller: &Caller,
        role: RoleId,
        name: &str,
    ) -> Result<Role, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(caller.client, "role.rename", format!("role:{role}"))
                .detail("name", name);
            let (_, root, event, by) = decide_on_root!(tx, caller, event, Permission::RolesEdit);
            let roles = tx.roles(root.id()).await?;
            let old = find_role(&roles, role)?.clone();
            let name = match check_role_name(&roles, name, Some(role)) {
                Ok(name) => name,
                Err(e) => return Err(refuse(tx, event.by(&by), e.into()).await),
            };
            tx.rename_role(&by, role, &name).await?;
            tx.commit(event.by(&by).detail("old_name", &old.name))
                .await?;
            Ok(Role { name, ..old })
        })
        .await
    }

    /// Deletes a role (`roles.delete` in the root org); its memberships move
    /// to `replacement`, which must grant nothing the actor lacks in any org
    /// (rule 6). Admin cannot be deleted.
    pub async fn delete_role(
        &self,
        caller: &Caller,
        role: RoleId,
        replacement: RoleId,
    ) -> Result<RoleDeletion, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(caller.client, "role.delete", format!("role:{role}"))
                .detail("replacement", replacement);
            let (actor, root, event, by) =
                decide_on_root!(tx, caller, event, Permission::RolesDelete);
            let roles = tx.roles(root.id()).await?;
            find_role(&roles, role)?;
            let holders = tx.role_holders(role).await?;
            let plan = match plan_role_deletion(&roles, role, replacement, &holders) {
                Ok(plan) => plan,
                Err(e) => return Err(refuse(tx, event.by(&by), e.into()).await),
            };
            let by = if plan.moved.is_empty() {
                by
            } else {
                let granted = tx.role_permissions_everywhere(replacement).await?;
                allow_or_deny!(
                    tx,
                    event,
                    actor.decide_assign_role(Permission::RolesDelete, &root, granted),
                    "organization"
                )
            };
            tx.delete_role(&by, role, replacement).await?;
            let event = event.by(&by).detail("moved", plan.moved.len());
            tx.commit(event).await?;
            Ok(plan)
        })
        .await
    }

    /// An org's permission table (`roles.view` on the org).
    pub async fn permission_matrix(
        &self,
        caller: &Caller,
        org: OrgId,
    ) -> Result<MatrixView, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let path = tx.org_path(org).await?;
        let decision = actor.decide_org(Permission::RolesView, &path);
        if !decision.is_allowed() {
            return Err(AppError::denied(&decision, "organization"));
        }
        let roles = tx.roles(path.root_id()).await?;
        let matrix = tx.permission_matrix(org).await?;
        tx.finish().await?;
        Ok(MatrixView { org, roles, matrix })
    }

    /// Saves an org's current table as a named template (`roles.edit` on the org).
    pub async fn create_permission_template(
        &self,
        caller: &Caller,
        from_org: OrgId,
        name: &str,
    ) -> Result<StoredTemplate, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event =
                AuditEvent::new(caller.client, "permission_template.create", "template:new")
                    .target_org(from_org)
                    .detail("name", name);
            let actor = actor_or_deny!(tx, caller, event);
            let path = tx.org_path(from_org).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_org(Permission::RolesEdit, &path),
                "organization"
            );
            let matrix = tx.permission_matrix(from_org).await?;
            let template = PermissionTemplate::from_matrix(name.trim(), &matrix);
            // Checked before the insert: on PostgreSQL a violated constraint
            // aborts the transaction, and the refusal must still be audited.
            let taken = tx
                .permission_templates(path.root_id())
                .await?
                .iter()
                .any(|t| t.template.name == template.name);
            if taken {
                let error = AppError::conflict(format!(
                    "a permission template named {:?} already exists",
                    template.name
                ));
                return Err(refuse(tx, event.by(&by), error).await);
            }
            let id = match tx
                .insert_permission_template(&by, path.root_id(), &template)
                .await
            {
                Ok(id) => id,
                Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
                    return Err(refuse(tx, event.by(&by), e.into()).await);
                }
                Err(e) => return Err(e.into()),
            };
            let now = tx.now();
            tx.commit(event.by(&by).detail("template", id)).await?;
            Ok(StoredTemplate {
                id,
                hierarchy: path.root_id(),
                template,
                created_at: now,
            })
        })
        .await
    }

    /// The hierarchy's permission templates (`roles.view` in the context org).
    pub async fn list_permission_templates(
        &self,
        caller: &Caller,
    ) -> Result<Vec<StoredTemplate>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let context = tx.org_path(actor.context()).await?;
        let decision = actor.decide_org(Permission::RolesView, &context);
        if !decision.is_allowed() {
            return Err(AppError::denied(&decision, "organization"));
        }
        let templates = tx.permission_templates(actor.hierarchy()).await?;
        tx.finish().await?;
        Ok(templates)
    }

    /// Applies a template to one org: every role it names gets the template's
    /// set (closed over dependencies). Needs `roles.edit` on the org and every
    /// permission of the sets replaced and written (rule 6).
    pub async fn apply_permission_template(
        &self,
        caller: &Caller,
        template: i64,
        org: OrgId,
    ) -> Result<TemplateApplied, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(
                caller.client,
                "permission_template.apply",
                format!("template:{template}"),
            )
            .target_org(org);
            tx.lock_org(org).await?;
            let actor = actor_or_deny!(tx, caller, event);
            let path = tx.org_path(org).await?;
            let stored = tx.permission_template(template).await?;
            if stored.hierarchy != path.root_id() {
                return Err(AppError::NotFound {
                    what: "permission template",
                });
            }
            let mut matrix = tx.permission_matrix(org).await?;
            let by = allow_or_deny!(
                tx,
                event,
                decide_template(&actor, &path, &stored.template, &matrix),
                "organization"
            );
            let changed = stored.template.apply_to(&mut matrix);
            if changed {
                write_template_sets(&mut tx, &by, org, &stored.template, &matrix).await?;
            }
            tx.commit(event.by(&by).detail("changed", changed)).await?;
            Ok(TemplateApplied { org, changed })
        })
        .await
    }

    /// Pushes a template to every org of the subtree at `org`, in one
    /// transaction: refused as a whole if any org of it is not the actor's to
    /// change. Reports how many orgs it covered and which changed.
    pub async fn push_permission_template(
        &self,
        caller: &Caller,
        template: i64,
        org: OrgId,
    ) -> Result<TemplatePush, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = AuditEvent::new(
                caller.client,
                "permission_template.push",
                format!("template:{template}"),
            )
            .target_org(org);
            let path = tx.org_path(org).await?;
            // Serialised with re-parenting, which rewrites subtrees, and with
            // every writer of one org of the subtree (a sub-org created
            // meanwhile copies either the old sets and is pushed, or the new).
            tx.lock_hierarchy(path.root_id()).await?;
            let path = tx.org_path(org).await?;
            tx.lock_subtree(&path).await?;
            let actor = actor_or_deny!(tx, caller, event);
            let stored = tx.permission_template(template).await?;
            if stored.hierarchy != path.root_id() {
                return Err(AppError::NotFound {
                    what: "permission template",
                });
            }
            let mut subtree = tx.subtree_matrices(&path).await?;
            let mut proof = None;
            for (org_path, matrix) in &subtree {
                let by = allow_or_deny!(
                    tx,
                    event,
                    decide_template(&actor, org_path, &stored.template, matrix),
                    "organization"
                );
                if org_path.id() == path.id() {
                    proof = Some(by);
                }
            }
            let by = proof.ok_or(AppError::NotFound {
                what: "organization",
            })?;
            let push = stored
                .template
                .push(subtree.iter_mut().map(|(p, m)| (p.id(), m)));
            for (org_path, matrix) in &subtree {
                if push.changed.contains(&org_path.id()) {
                    write_template_sets(&mut tx, &by, org_path.id(), &stored.template, matrix)
                        .await?;
                }
            }
            let event = event
                .by(&by)
                .detail("orgs", push.orgs)
                .detail("changed", push.changed.len());
            tx.commit(event).await?;
            Ok(push)
        })
        .await
    }
}

/// Rule 6 for a template on one org: the actor needs `roles.edit` there and
/// every permission of the sets the template replaces and writes.
fn decide_template(
    actor: &Actor,
    org: &OrgPath,
    template: &PermissionTemplate,
    matrix: &PermissionMatrix,
) -> arbor_core::Decision {
    let old = template
        .sets
        .keys()
        .fold(PermissionSet::EMPTY, |acc, role| {
            acc.union(matrix.get(*role))
        });
    actor.decide_set_permissions(org, old, template.closed().all_permissions())
}

async fn write_template_sets(
    tx: &mut Tx<Write>,
    by: &Allowed,
    org: OrgId,
    template: &PermissionTemplate,
    matrix: &PermissionMatrix,
) -> Result<(), AppError> {
    for role in template.sets.keys() {
        tx.set_role_permissions(by, org, *role, matrix.get(*role))
            .await?;
    }
    Ok(())
}
