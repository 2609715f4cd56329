//! Members: adding users to orgs and changing their roles.

use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, refuse};
use arbor_core::role::check_org_keeps_admin;
use arbor_core::{MemberFacts, OrgId, Permission, RoleId, UserId, UserStatus};
use arbor_store::{AuditEvent, NewUser, Tx, Write};

/// A member to add: a new account, or — with multi-org membership on — an
/// existing one found by email.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub user: NewUser,
    pub role: RoleId,
}

/// Checks that `role` is one of the hierarchy's roles.
async fn check_role_in_hierarchy(
    tx: &mut Tx<Write>,
    hierarchy: OrgId,
    role: RoleId,
) -> Result<(), AppError> {
    if tx.roles(hierarchy).await?.iter().any(|r| r.id == role) {
        Ok(())
    } else {
        Err(AppError::invalid("role", "no such role in this hierarchy"))
    }
}

impl App {
    /// Adds a member to `org` with `role` (`users.invite`; the role's set in
    /// that org must not exceed the caller's — rule 6).
    pub async fn add_member(
        &self,
        caller: &Caller,
        org: OrgId,
        member: &NewMember,
    ) -> Result<UserId, AppError> {
        self.retrying(|| self.add_member_once(caller, org, member))
            .await
    }

    async fn add_member_once(
        &self,
        caller: &Caller,
        org: OrgId,
        member: &NewMember,
    ) -> Result<UserId, AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(caller.client, "member.add", format!("org:{org}"))
            .target_org(org)
            .detail("role", member.role.0);
        tx.lock_org(org).await?;
        let actor = actor_or_deny!(tx, caller, event);
        let path = tx.org_path(org).await?;
        check_role_in_hierarchy(&mut tx, path.root_id(), member.role).await?;
        let role_set = tx.role_permissions(org, member.role).await?;
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_assign_role(Permission::UsersInvite, &path, role_set),
            "organization"
        );
        let settings = tx.hierarchy_settings(path.root_id()).await?;
        let user = match tx.user_by_email(&member.user.email).await? {
            Some(existing) if settings.multi_org_membership => {
                tx.insert_membership(&by, existing.id, org, member.role, false)
                    .await?;
                existing.id
            }
            Some(_) => {
                let error = AppError::conflict("a user with this email already exists");
                return Err(refuse(tx, event.by(&by), error).await);
            }
            None => {
                let user = tx.insert_user(&by, &member.user).await?;
                tx.insert_membership(&by, user, org, member.role, true)
                    .await?;
                user
            }
        };
        tx.commit(event.by(&by).detail("user", user)).await?;
        Ok(user)
    }

    /// Gives `user` the role `role` in `org` (`users.edit` on a member no more
    /// privileged than the caller, and the new role's set within the caller's).
    /// Refuses to leave an org that has an Admin without one.
    pub async fn change_member_role(
        &self,
        caller: &Caller,
        user: UserId,
        org: OrgId,
        role: RoleId,
    ) -> Result<(), AppError> {
        self.retrying(|| self.change_member_role_once(caller, user, org, role))
            .await
    }

    async fn change_member_role_once(
        &self,
        caller: &Caller,
        user: UserId,
        org: OrgId,
        role: RoleId,
    ) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(caller.client, "member.role.change", format!("user:{user}"))
            .target_org(org)
            .detail("role", role.0);
        // Every membership change of an org queues on the org's row, so two
        // admins demoting each other see each other's result.
        tx.lock_org(org).await?;
        let actor = actor_or_deny!(tx, caller, event);
        let path = tx.org_path(org).await?;
        let (old_role, old_set) = tx
            .member_role(user, org)
            .await?
            .ok_or(AppError::NotFound { what: "member" })?;
        let facts = MemberFacts {
            user,
            org: &path,
            permissions: old_set,
        };
        allow_or_deny!(
            tx,
            event,
            actor.decide_user(Permission::UsersEdit, &facts),
            "member"
        );
        check_role_in_hierarchy(&mut tx, path.root_id(), role).await?;
        let new_set = tx.role_permissions(org, role).await?;
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_assign_role(Permission::UsersEdit, &path, new_set),
            "member"
        );
        if old_role == role {
            tx.commit(event.by(&by).detail("unchanged", true)).await?;
            return Ok(());
        }
        let before = tx.admin_count(org).await?;
        let target_active = tx.user(user).await?.status == UserStatus::Active;
        let loses_admin =
            target_active && tx.is_role_admin(old_role).await? && !tx.is_role_admin(role).await?;
        let after = if loses_admin {
            before.saturating_sub(1)
        } else {
            before
        };
        if let Err(e) = check_org_keeps_admin(before, after) {
            return Err(refuse(tx, event.by(&by), e.into()).await);
        }
        tx.set_member_role(&by, user, org, role).await?;
        tx.commit(event.by(&by).detail("old_role", old_role.0))
            .await?;
        Ok(())
    }
}
