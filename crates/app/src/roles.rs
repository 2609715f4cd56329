//! Per-org permission sets of roles.

use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny};
use arbor_core::permission::Closure;
use arbor_core::{OrgId, PermissionSet, RoleId};
use arbor_store::AuditEvent;

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
