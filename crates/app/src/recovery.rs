//! The documented way out of a lockout: `arbor admin recover`, run by the
//! operator with local access to the database. It restores the root org's
//! Admin set to the whole catalog and re-activates one Admin of the root org.

use crate::{App, AppError};
use arbor_core::policy::Operator;
use arbor_core::{BuiltinRole, OrgId, PermissionSet, UserId, UserStatus};
use arbor_store::{AuditEvent, ClientKind};

/// What a recovery did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recovered {
    pub hierarchy: OrgId,
    pub root_name: String,
    pub admin: UserId,
    /// The root Admin set lacked permissions, now restored.
    pub admin_set_restored: bool,
    /// The user was suspended and is active again.
    pub reactivated: bool,
    /// The user's root membership had another role and is Admin again.
    pub promoted: bool,
}

impl App {
    /// Restores the hierarchy's root Admin set and makes `email` an active
    /// Admin of its root org. The user must be a member of the root org of
    /// a hierarchy (the one named, if `hierarchy` is given).
    pub async fn recover(
        &self,
        email: &str,
        hierarchy: Option<OrgId>,
    ) -> Result<Recovered, AppError> {
        self.retrying(|| self.recover_once(email, hierarchy)).await
    }

    async fn recover_once(
        &self,
        email: &str,
        hierarchy: Option<OrgId>,
    ) -> Result<Recovered, AppError> {
        let mut tx = self.store.write().await?;
        let user = tx
            .user_by_email(email)
            .await?
            .ok_or(AppError::NotFound { what: "user" })?;
        let root = tx
            .memberships(user.id)
            .await?
            .into_iter()
            .find(|m| m.path.depth() == 1 && hierarchy.is_none_or(|h| h == m.org))
            .ok_or_else(|| {
                AppError::invalid(
                    "admin",
                    "the user is not a member of the root organization of that hierarchy",
                )
            })?;
        if user.status == UserStatus::Pending {
            return Err(AppError::invalid(
                "admin",
                "the user never accepted the invitation and has no password; name another",
            ));
        }
        let root_org = tx.org(root.org).await?;
        tx.lock_hierarchy(root.org).await?;
        let roles = tx.roles(root.org).await?;
        let admin_role = roles
            .iter()
            .find(|r| r.builtin == Some(BuiltinRole::Admin))
            .ok_or_else(|| AppError::internal("the hierarchy has no Admin role"))?
            .id;
        let proof = Operator::recovery().recover(root.org, user.id);
        let by = proof;
        let old_set = tx.role_permissions(root.org, admin_role).await?;
        let admin_set_restored = old_set != PermissionSet::all();
        if admin_set_restored {
            tx.set_role_permissions(&by, root.org, admin_role, PermissionSet::all())
                .await?;
        }
        let promoted = root.role != admin_role;
        if promoted {
            tx.set_member_role(&by, user.id, root.org, admin_role)
                .await?;
        }
        let reactivated = user.status != UserStatus::Active;
        if reactivated {
            tx.set_user_status(&by, user.id, UserStatus::Active).await?;
        }
        let mut event = AuditEvent::new(
            ClientKind::Cli,
            "hierarchy.recover",
            format!("user:{}", user.id),
        )
        .target_org(root.org)
        .detail("email", &user.email)
        .detail("admin_set_restored", admin_set_restored)
        .detail(
            "restored_permissions",
            PermissionSet::all().difference(old_set).ids(),
        )
        .detail("reactivated", reactivated)
        .detail("previous_status", user.status.as_str())
        .detail("promoted", promoted);
        event.actor_home_org = Some(root.org);
        tx.commit(event).await?;
        Ok(Recovered {
            hierarchy: root.org,
            root_name: root_org.name,
            admin: user.id,
            admin_set_restored,
            reactivated,
            promoted,
        })
    }
}
