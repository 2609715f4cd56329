//! Members: adding users to orgs and changing their roles.

use crate::run::{Decides, Found, Step, Stop, write_case};
use crate::{App, AppError, Caller};
use arbor_core::policy::TargetMembership;
use arbor_core::role::check_org_keeps_admin;
use arbor_core::{OrgId, RoleId, UserId, UserStatus};
use arbor_store::{AuditEvent, NewUser};

/// A member to add: a new account, or — with multi-org membership on — an
/// existing one found by email.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub user: NewUser,
    pub role: RoleId,
}

/// `role` must be one of the hierarchy's roles.
async fn role_in_hierarchy(step: &mut Step, hierarchy: OrgId, role: RoleId) -> Result<(), Stop> {
    if step.tx.roles(hierarchy).await?.iter().any(|r| r.id == role) {
        Ok(())
    } else {
        Err(AppError::invalid("role", "no such role in this hierarchy").into())
    }
}

impl App {
    /// Adds a member to `org` with `role` (`users.invite`; the role's set in
    /// that org must not exceed the caller's — rule 6). Not reachable over
    /// HTTP: an existing account joins another org only with its consent.
    pub async fn add_member(
        &self,
        caller: &Caller,
        org: OrgId,
        member: &NewMember,
    ) -> Result<UserId, AppError> {
        let event = AuditEvent::new(caller.client, "member.add", format!("org:{org}"))
            .target_org(org)
            .detail("role", member.role.0);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            role_in_hierarchy(step, record.path.root_id(), member.role).await?;
            let role_set = step.tx.role_permissions(org, member.role).await?;
            let verdict = step.actor.add_member(&record.path, member.role, role_set);
            let by = step.allow(verdict, "organization")?;
            let settings = step.tx.hierarchy_settings(record.path.root_id()).await?;
            let user = match step.tx.user_by_email(&member.user.email).await? {
                Some(existing) if settings.multi_org_membership => {
                    step.tx
                        .insert_membership(&by, existing.id, org, member.role, false)
                        .await?;
                    existing.id
                }
                Some(_) => {
                    return Err(
                        step.fail(AppError::conflict("a user with this email already exists"))
                    );
                }
                None => {
                    let user = match step.tx.insert_user(&by, &member.user).await {
                        Ok(user) => user,
                        Err(
                            e @ (arbor_store::StoreError::Invalid { .. }
                            | arbor_store::StoreError::Conflict { .. }),
                        ) => return Err(step.fail(e.into())),
                        Err(e) => return Err(e.into()),
                    };
                    step.tx
                        .insert_membership(&by, user, org, member.role, true)
                        .await?;
                    user
                }
            };
            step.note("user", user);
            Ok(user)
        })
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
        let event = AuditEvent::new(caller.client, "member.role.change", format!("user:{user}"))
            .target_org(org)
            .detail("role", role.0);
        write_case!(self, caller, event, |step| {
            // Every membership change of an org queues on the org's row, so two
            // admins demoting each other see each other's result.
            let record = step.locked_org(org).await?;
            let (old_role, old_set) = step.tx.member_role(user, org).await.found(step, "member")?;
            role_in_hierarchy(step, record.path.root_id(), role).await?;
            let new_set = step.tx.role_permissions(org, role).await?;
            let membership = TargetMembership {
                org: &record.path,
                role: old_role,
                permissions: old_set,
                home: false,
            };
            let verdict = step
                .actor
                .change_member_role(user, &membership, role, new_set);
            let by = step.allow(verdict, "member")?;
            if old_role == role {
                step.note("unchanged", true);
                return Ok(());
            }
            let before = step.tx.admin_count(org).await?;
            let target_active = step.tx.user(user).await?.status == UserStatus::Active;
            let loses_admin = target_active
                && step.tx.is_role_admin(old_role).await?
                && !step.tx.is_role_admin(role).await?;
            let after = if loses_admin {
                before.saturating_sub(1)
            } else {
                before
            };
            if let Err(e) = check_org_keeps_admin(before, after) {
                return Err(step.fail(e.into()));
            }
            step.tx.set_member_role(&by, user, org, role).await?;
            step.note("old_role", old_role.0);
            Ok(())
        })
    }
}
