//! User management by administrators (SPEC.md §6): invite (single and CSV),
//! resend/revoke invitations, edit, reset password by link, force logout,
//! suspend, delete, transfer, and the actions log.
//!
//! Every action on a member is one of arbor-core's named decisions on the
//! member's memberships (the one acted on lies in the actor's scope; user-wide
//! actions also need the home membership), re-read inside the transaction
//! after the member's rows are locked.

use crate::accounts::AccountPolicy;
use crate::run::{About, Decides, Found, Step, Stop, named, read_case, write_case};
use crate::{App, AppError, Caller, new_token};
use arbor_core::policy::{
    DeleteUser, EditUser, ForceLogout, MemberAct, ResendInvitation, ResetPassword,
    RevokeInvitation, SetSuspended, TargetMember, TargetMembership,
};
use arbor_core::role::check_org_keeps_admin;
use arbor_core::{Allowed, OrgId, PermissionSet, RoleId, UserId, UserStatus};
use arbor_store::{
    AuditEntry, AuditEvent, AuditScope, MailKind, MailLink, MembershipRecord, NewUser, UserRecord,
};

fn invitation_link(user: UserId) -> MailLink {
    MailLink {
        kind: MailKind::Invitation,
        user,
    }
}

fn reset_link(user: UserId) -> MailLink {
    MailLink {
        kind: MailKind::PasswordReset,
        user,
    }
}

/// An invitation to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub email: String,
    pub name: String,
    pub org: OrgId,
    pub role: RoleId,
}

/// What an invitation created. The link goes out by mail (or the outbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invited {
    pub user: UserId,
    pub expires_at: i64,
}

/// One row of a bulk invitation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BulkRow {
    /// 1-based line of the CSV (the header is line 1).
    pub line: u64,
    pub email: String,
    pub user: Option<UserId>,
    pub error: Option<String>,
}

/// How a user list is narrowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub status: Option<UserStatus>,
    pub org: Option<OrgId>,
    pub search: Option<String>,
    /// Only users having the tag of this name (ignoring case).
    pub tag: Option<String>,
}

/// Changes an administrator makes to a member; `None` keeps the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserEdit {
    pub name: Option<String>,
    pub locale: Option<String>,
    pub role: Option<RoleId>,
}

/// Where links in mail point: `{base}/invitations/accept?token=…`.
#[derive(Clone, Debug)]
pub struct Links {
    pub base_url: String,
}

impl Links {
    pub fn invitation(&self, token: &str) -> String {
        format!(
            "{}/invitations/accept?token={token}",
            self.base_url.trim_end_matches('/')
        )
    }

    pub fn password_reset(&self, token: &str) -> String {
        format!(
            "{}/password-reset?token={token}",
            self.base_url.trim_end_matches('/')
        )
    }
}

/// A member as loaded for a decision: the account and every membership
/// (home first, then by org id) with its role's set there.
pub(crate) struct Member {
    pub record: UserRecord,
    pub memberships: Vec<(MembershipRecord, PermissionSet)>,
}

impl Member {
    pub fn targets(&self) -> Vec<TargetMembership<'_>> {
        self.memberships
            .iter()
            .map(|(m, permissions)| TargetMembership {
                org: &m.path,
                role: m.role,
                permissions: *permissions,
                home: m.home,
            })
            .collect()
    }

    pub fn membership(&self, target: &TargetMember) -> Option<&MembershipRecord> {
        self.memberships
            .iter()
            .map(|(m, _)| m)
            .find(|m| m.org == target.org_id())
    }
}

async fn load_member(tx: &mut arbor_store::WriteTx, user: UserId) -> Result<Member, Stop> {
    let record = tx.user(user).await?;
    let mut memberships = Vec::new();
    for m in tx.memberships(user).await? {
        let set = tx.role_permissions(m.org, m.role).await?;
        memberships.push((m, set));
    }
    Ok(Member {
        record,
        memberships,
    })
}

impl Step {
    /// Loads the member `user`, who must be visible to the actor; then locks
    /// the user's row and the orgs of its memberships (whose Admin counts a
    /// change may depend on) and loads the member again.
    pub(crate) async fn locked_member(&mut self, user: UserId) -> Result<Member, Stop> {
        let seen = match load_member(&mut self.tx, user).await {
            Err(Stop::Error(AppError::NotFound { .. })) => return Err(self.absent("user")),
            other => other?,
        };
        let decision = self.actor.view_user(user, &seen.targets());
        self.require(decision, "user")?;
        self.tx.lock_user(user).await?;
        for (m, _) in &seen.memberships {
            self.tx.lock_org(m.org).await?;
        }
        let member = load_member(&mut self.tx, user).await?;
        self.note("email", &member.record.email);
        self.note("name", &member.record.name);
        Ok(member)
    }

    /// The member `user` and the proof for the member action `A` on it.
    async fn member_action<A: MemberAct>(
        &mut self,
        user: UserId,
    ) -> Result<(Member, Allowed<A>), Stop> {
        let member = self.locked_member(user).await?;
        let verdict = self.actor.manage_member::<A>(user, &member.targets());
        let by = self.allow(verdict, "user")?;
        Ok((member, by))
    }
}

/// Refuses when removing `user`'s Admin standing from `org` would leave it
/// without an active Admin (the org's row is locked by the caller).
async fn keeps_admin(step: &mut Step, org: OrgId, user: UserId) -> Result<(), Stop> {
    let admins = step.tx.admins(org).await?;
    if !admins.contains(&user) {
        return Ok(());
    }
    let before = admins.len() as u64;
    let name = step.tx.org(org).await?.name;
    check_org_keeps_admin(before, before - 1)
        .map_err(|e| step.fail(e.into()))
        .about(|| named("organization", &name, org))
}

fn event(caller: &Caller, action: &'static str, user: UserId) -> AuditEvent {
    AuditEvent::new(caller.client, action, format!("user:{user}"))
}

/// Invites a new person within a running use case (the invitation of a new
/// org's first Admin shares the org's transaction).
pub(crate) async fn invite_in(
    step: &mut Step,
    invite: &Invite,
    links: &Links,
    policy: &AccountPolicy,
) -> Result<Invited, Stop> {
    // Malformed input is refused before any decision, like a malformed body.
    let email = arbor_core::Email::parse(&invite.email).map_err(AppError::from)?;
    let org = step.locked_org(invite.org).await?;
    let roles = step.tx.roles(org.path.root_id()).await?;
    if !roles.iter().any(|r| r.id == invite.role) {
        return Err(AppError::invalid("role", "no such role in this hierarchy").into());
    }
    let role_set = step.tx.role_permissions(org.id, invite.role).await?;
    let verdict = step.actor.invite(&org.path, invite.role, role_set);
    let by = step.allow(verdict, "organization")?;
    if step.tx.user_by_email(email.as_str()).await?.is_some() {
        return Err(step.fail(AppError::conflict("a user with this email already exists")));
    }
    let mut user = NewUser::active(email.as_str(), invite.name.trim());
    user.status = UserStatus::Pending;
    let id = match step.tx.insert_user(&by, &user).await {
        Ok(id) => id,
        // A look-alike of another account's email is refused by the
        // skeleton's unique index (generic: it names no other account).
        Err(
            e
            @ (arbor_store::StoreError::Invalid { .. } | arbor_store::StoreError::Conflict { .. }),
        ) => return Err(step.fail(e.into())),
        Err(e) => return Err(e.into()),
    };
    step.tx
        .insert_membership(&by, id, org.id, invite.role, true)
        .await?;
    let (token, hash) = new_token();
    let expires_at = step.tx.now() + policy.invitation_ms;
    let inviter = step.actor.user();
    step.tx
        .insert_invitation(
            &by,
            &hash,
            email.as_str(),
            id,
            org.id,
            invite.role,
            Some(inviter),
            expires_at,
        )
        .await?;
    let body = format!(
        "Hello {name},\n\nyou have been invited to {org} on Arbor.\n\
         Set your password and activate your account here (valid for 30 days, once):\n\n{link}\n",
        name = invite.name.trim(),
        org = org.name,
        link = links.invitation(&token),
    );
    step.tx
        .enqueue_mail(
            &by,
            email.as_str(),
            &format!("Your invitation to {}", org.name),
            &body,
            Some(invitation_link(id)),
        )
        .await?;
    step.note("user", id);
    Ok(Invited {
        user: id,
        expires_at,
    })
}

impl App {
    /// Invites a new person into `org` with `role`: a pending user, a
    /// single-use link valid 30 days, and the mail carrying it — in one
    /// transaction.
    pub async fn invite(
        &self,
        caller: &Caller,
        invite: &Invite,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<Invited, AppError> {
        let event = AuditEvent::new(
            caller.client,
            "user.invite",
            format!("email:{}", invite.email.trim()),
        )
        .target_org(invite.org)
        .detail("role", invite.role);
        write_case!(self, caller, event, |step| {
            invite_in(step, invite, links, policy).await
        })
    }

    /// Invites every row of a CSV (`email,name,role,org`; role by name, org by
    /// id). Each row is all-or-nothing on its own; the report says what became
    /// of each. A row about an org outside the caller's scope fails exactly
    /// like one about an org that does not exist, whatever its role.
    pub async fn invite_csv(
        &self,
        caller: &Caller,
        csv_text: &str,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<Vec<BulkRow>, AppError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(csv_text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| AppError::invalid("csv", format!("unreadable header: {e}")))?
            .iter()
            .map(str::to_lowercase)
            .collect::<Vec<_>>();
        if headers != ["email", "name", "role", "org"] {
            return Err(AppError::invalid(
                "csv",
                "the header must be: email,name,role,org",
            ));
        }
        let mut report = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    report.push(BulkRow {
                        line,
                        email: String::new(),
                        user: None,
                        error: Some(format!("unreadable row: {e}")),
                    });
                    continue;
                }
            };
            let field = |n: usize| record.get(n).unwrap_or("").to_owned();
            let email = field(0);
            let outcome = self
                .invite_row(
                    caller,
                    &email,
                    &field(1),
                    &field(2),
                    &field(3),
                    links,
                    policy,
                )
                .await;
            report.push(match outcome {
                Ok(user) => BulkRow {
                    line,
                    email,
                    user: Some(user),
                    error: None,
                },
                Err(AppError::Internal { .. } | AppError::Database(_) | AppError::Busy(_)) => {
                    return Err(AppError::internal(format!(
                        "bulk invitation stopped at line {line}"
                    )));
                }
                Err(e) => BulkRow {
                    line,
                    email,
                    user: None,
                    error: Some(e.to_string()),
                },
            });
        }
        Ok(report)
    }

    /// One CSV row: the org is decided on first, the role looked up second.
    #[allow(clippy::too_many_arguments)]
    async fn invite_row(
        &self,
        caller: &Caller,
        email: &str,
        name: &str,
        role: &str,
        org: &str,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<UserId, AppError> {
        let org = org
            .parse::<i64>()
            .map(OrgId)
            .map_err(|_| AppError::invalid("org", "an organization id"))?;
        let event = AuditEvent::new(
            caller.client,
            "user.invite",
            format!("email:{}", email.trim()),
        )
        .target_org(org)
        .detail("role_name", role);
        write_case!(self, caller, event, |step| {
            let path = step.tx.org_path(org).await.found(step, "organization")?;
            let decision = step.actor.view_org(&path);
            step.require(decision, "organization")?;
            let roles = step.tx.roles(path.root_id()).await?;
            let role = roles
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(role.trim()))
                .ok_or_else(|| AppError::invalid("role", format!("no role named {role:?}")))?
                .id;
            let invite = Invite {
                email: email.to_owned(),
                name: name.to_owned(),
                org,
                role,
            };
            invite_in(step, &invite, links, policy)
                .await
                .map(|i| i.user)
        })
    }

    /// Sends a fresh invitation link to a pending user; the old link stops working.
    pub async fn resend_invitation(
        &self,
        caller: &Caller,
        user: UserId,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<Invited, AppError> {
        write_case!(
            self,
            caller,
            event(caller, "user.resend_invitation", user),
            |step| {
                let (member, by) = step.member_action::<ResendInvitation>(user).await?;
                if member.record.status != UserStatus::Pending {
                    return Err(step.fail(AppError::conflict("the user has already accepted")));
                }
                let membership = member
                    .membership(by.target())
                    .cloned()
                    .ok_or_else(|| AppError::internal("the membership acted on vanished"))?;
                step.tx.withdraw_invitations(&by, user).await?;
                // The old link is dead: its mail, if still unsent, goes too.
                let superseded = step.tx.cancel_mail(&by, invitation_link(user)).await?;
                step.note("unsent_mail_superseded", superseded);
                let (token, hash) = new_token();
                let expires_at = step.tx.now() + policy.invitation_ms;
                let inviter = step.actor.user();
                step.tx
                    .insert_invitation(
                        &by,
                        &hash,
                        &member.record.email,
                        user,
                        membership.org,
                        membership.role,
                        Some(inviter),
                        expires_at,
                    )
                    .await?;
                let body = format!(
                    "Hello {},\n\nhere is a new link to activate your Arbor account in {} \
                 (valid for 30 days, once):\n\n{}\n",
                    member.record.name,
                    membership.org_name,
                    links.invitation(&token)
                );
                step.tx
                    .enqueue_mail(
                        &by,
                        &member.record.email,
                        &format!("Your invitation to {}", membership.org_name),
                        &body,
                        Some(invitation_link(user)),
                    )
                    .await?;
                Ok(Invited { user, expires_at })
            }
        )
    }

    /// Withdraws the invitation of a pending user, who is removed.
    pub async fn revoke_invitation(&self, caller: &Caller, user: UserId) -> Result<(), AppError> {
        write_case!(
            self,
            caller,
            event(caller, "user.revoke_invitation", user),
            |step| {
                let (member, by) = step.member_action::<RevokeInvitation>(user).await?;
                if member.record.status != UserStatus::Pending {
                    return Err(step.fail(AppError::conflict("the user has already accepted")));
                }
                let cancelled = step.tx.cancel_mail(&by, invitation_link(user)).await?;
                step.tx.delete_user(&by, user).await?;
                step.note("unsent_mail_cancelled", cancelled);
                Ok(())
            }
        )
    }

    /// Edits a member's name and locale (user-wide) and role (in the org
    /// acted on).
    pub async fn edit_user(
        &self,
        caller: &Caller,
        user: UserId,
        edit: &UserEdit,
    ) -> Result<(), AppError> {
        write_case!(self, caller, event(caller, "user.edit", user), |step| {
            let member = step.locked_member(user).await?;
            let targets = member.targets();
            if let Some(role) = edit.role {
                let (_, index) = step
                    .actor
                    .decide_member(arbor_core::Permission::UsersEdit, false, user, &targets)
                    .map_err(|decision| Stop::Denied {
                        decision,
                        what: "user",
                    })?;
                let membership = &member.memberships[index].0;
                if role != membership.role {
                    let roles = step.tx.roles(membership.path.root_id()).await?;
                    if !roles.iter().any(|r| r.id == role) {
                        return Err(
                            AppError::invalid("role", "no such role in this hierarchy").into()
                        );
                    }
                    let granted = step.tx.role_permissions(membership.org, role).await?;
                    let verdict =
                        step.actor
                            .change_member_role(user, &targets[index], role, granted);
                    let by = step.allow(verdict, "user")?;
                    if !step.tx.is_role_admin(role).await? {
                        keeps_admin(step, membership.org, user).await?;
                    }
                    step.tx
                        .set_member_role(&by, user, membership.org, role)
                        .await?;
                    step.note("old_role", membership.role);
                }
            }
            if edit.name.is_some() || edit.locale.is_some() {
                let verdict = step.actor.manage_member::<EditUser>(user, &targets);
                let by = step.allow(verdict, "user")?;
                match step
                    .tx
                    .update_profile(&by, user, edit.name.as_deref(), edit.locale.as_deref())
                    .await
                {
                    Ok(()) => {}
                    Err(e @ arbor_store::StoreError::Invalid { .. }) => {
                        return Err(step.fail(e.into()));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if edit.role.is_none() && edit.name.is_none() && edit.locale.is_none() {
                let verdict = step.actor.manage_member::<EditUser>(user, &targets);
                step.allow(verdict, "user")?;
            }
            step.note("new_name", &edit.name);
            step.note("locale", &edit.locale);
            step.note("role", edit.role);
            Ok(())
        })
    }

    /// Mails the user a one-time link to choose a new password; the
    /// administrator never sees or sets it.
    pub async fn request_password_reset(
        &self,
        caller: &Caller,
        user: UserId,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<(), AppError> {
        let event = event(caller, "user.request_password_reset", user);
        write_case!(self, caller, event, |step| {
            let (member, by) = step.member_action::<ResetPassword>(user).await?;
            if member.record.status != UserStatus::Active {
                return Err(step.fail(AppError::conflict(
                    "only an active account can reset its password",
                )));
            }
            let (token, hash) = new_token();
            let expires_at = step.tx.now() + policy.password_reset_ms;
            step.tx
                .insert_password_reset(&by, &hash, user, expires_at)
                .await?;
            // The new link replaces the open ones, and their unsent mail.
            let superseded = step.tx.cancel_mail(&by, reset_link(user)).await?;
            step.note("unsent_mail_superseded", superseded);
            let body = format!(
                "Hello {},\n\nan administrator asked for your Arbor password to be reset.\n\
                 Choose a new password here (valid for 24 hours, once):\n\n{}\n",
                member.record.name,
                links.password_reset(&token)
            );
            step.tx
                .enqueue_mail(
                    &by,
                    &member.record.email,
                    "Reset your Arbor password",
                    &body,
                    Some(reset_link(user)),
                )
                .await?;
            Ok(())
        })
    }

    /// Ends every session of a user at once.
    pub async fn force_logout(&self, caller: &Caller, user: UserId) -> Result<u64, AppError> {
        write_case!(
            self,
            caller,
            event(caller, "user.force_logout", user),
            |step| {
                let (_, by) = step.member_action::<ForceLogout>(user).await?;
                let revoked = step.tx.revoke_sessions(&by, user).await?;
                step.note("sessions_revoked", revoked);
                Ok(revoked)
            }
        )
    }

    /// Suspends (and logs out) or reinstates a user.
    pub async fn set_suspended(
        &self,
        caller: &Caller,
        user: UserId,
        suspended: bool,
    ) -> Result<(), AppError> {
        let action = if suspended {
            "user.suspend"
        } else {
            "user.unsuspend"
        };
        write_case!(self, caller, event(caller, action, user), |step| {
            let (member, by) = step.member_action::<SetSuspended>(user).await?;
            let (from, to) = if suspended {
                (UserStatus::Active, UserStatus::Suspended)
            } else {
                (UserStatus::Suspended, UserStatus::Active)
            };
            if member.record.status != from {
                let what = format!(
                    "{} is {}, not {}",
                    named("user", &member.record.name, user),
                    member.record.status.as_str(),
                    from.as_str()
                );
                return Err(step.fail(AppError::conflict(what)));
            }
            if suspended {
                for (m, _) in &member.memberships {
                    keeps_admin(step, m.org, user).await?;
                }
            }
            step.tx.set_user_status(&by, user, to).await?;
            let revoked = if suspended {
                step.tx.revoke_sessions(&by, user).await?
            } else {
                0
            };
            step.note("sessions_revoked", revoked);
            Ok(())
        })
    }

    /// Deletes a user. Devices they own pass to `heir` (an Admin of the
    /// device's org) or, by default, to that org's earliest Admin.
    pub async fn delete_user(
        &self,
        caller: &Caller,
        user: UserId,
        heir: Option<UserId>,
    ) -> Result<(), AppError> {
        write_case!(self, caller, event(caller, "user.delete", user), |step| {
            let (member, by) = step.member_action::<DeleteUser>(user).await?;
            if user == step.actor.user() {
                return Err(step.fail(AppError::conflict("you cannot delete your own account")));
            }
            for (m, _) in &member.memberships {
                keeps_admin(step, m.org, user).await?;
            }
            let mut handed = Vec::new();
            for (device, org) in step.tx.owned_devices(user).await? {
                let admins: Vec<UserId> = step
                    .tx
                    .admins(org)
                    .await?
                    .into_iter()
                    .filter(|a| *a != user)
                    .collect();
                let new_owner = match heir {
                    Some(heir) if admins.contains(&heir) => heir,
                    Some(_) => {
                        return Err(step.fail(AppError::invalid(
                            "heir",
                            "must be an active Admin of every org where the user owns devices",
                        )));
                    }
                    None => match admins.first() {
                        Some(first) => *first,
                        None => {
                            let name = step.tx.device(device).await?.name;
                            let what = format!(
                                "{} has no Admin in its organization to take it over",
                                named("device", &name, device)
                            );
                            return Err(step.fail(AppError::conflict(what)));
                        }
                    },
                };
                step.tx
                    .set_device_owner(&by, device, Some(new_owner))
                    .await?;
                handed.push((device, new_owner));
            }
            step.tx.revoke_sessions(&by, user).await?;
            for link in [invitation_link(user), reset_link(user)] {
                step.tx.cancel_mail(&by, link).await?;
            }
            step.tx.delete_user(&by, user).await?;
            step.note("devices_handed_on", &handed);
            Ok(())
        })
    }

    /// Moves a user to another org of the hierarchy with a role. Owned devices
    /// go along (`with_devices`, their template must be enabled there) or pass to
    /// the earliest Admin of the org they are in.
    pub async fn transfer_user(
        &self,
        caller: &Caller,
        user: UserId,
        to: OrgId,
        role: RoleId,
        with_devices: bool,
    ) -> Result<(), AppError> {
        let event = event(caller, "user.transfer", user)
            .target_org(to)
            .detail("role", role);
        write_case!(self, caller, event, |step| {
            let member = step.locked_member(user).await?;
            let target = step.tx.org(to).await.found(step, "organization")?;
            let decision = step.actor.view_org(&target.path);
            step.require(decision, "organization")?;
            step.tx.lock_org(to).await?;
            let roles = step.tx.roles(target.path.root_id()).await?;
            if !roles.iter().any(|r| r.id == role) {
                return Err(AppError::invalid("role", "no such role in this hierarchy").into());
            }
            let granted = step.tx.role_permissions(target.id, role).await?;
            let verdict =
                step.actor
                    .transfer_user(user, &member.targets(), &target.path, role, granted);
            let by = step.allow(verdict, "user")?;
            let from = by.target().0.org_id();
            if target.id == from {
                return Err(step.fail(AppError::invalid(
                    "org",
                    "the user is already in this organization",
                )));
            }
            if step.tx.member_role(user, target.id).await?.is_some() {
                return Err(step.fail(AppError::conflict(format!(
                    "{} is already a member of {}",
                    named("user", &member.record.name, user),
                    named("organization", &target.name, target.id)
                ))));
            }
            keeps_admin(step, from, user).await?;
            // The new membership first, so moved devices always have their
            // owner as a member of their org; then the old one goes.
            step.tx
                .insert_membership(&by, user, target.id, role, false)
                .await?;
            let devices: Vec<_> = step
                .tx
                .owned_devices(user)
                .await?
                .into_iter()
                .filter(|(_, org)| *org == from)
                .collect();
            for (device, _) in &devices {
                if with_devices {
                    let record = step.tx.device(*device).await?;
                    if !step.tx.template_enabled(target.id, record.template).await? {
                        let what = format!(
                            "the template of {} is not enabled for {}",
                            named("device", &record.name, device),
                            named("organization", &target.name, target.id)
                        );
                        return Err(step.fail(AppError::conflict(what)));
                    }
                    step.tx
                        .move_device(&by, *device, target.id, Some(user))
                        .await?;
                } else {
                    let heir = step.tx.admins(from).await?.into_iter().find(|a| *a != user);
                    let Some(heir) = heir else {
                        let name = step.tx.device(*device).await?.name;
                        let what = format!(
                            "{} has no other Admin in its organization to take it over; \
                             move it along with with_devices",
                            named("device", &name, device)
                        );
                        return Err(step.fail(AppError::conflict(what)));
                    };
                    step.tx.set_device_owner(&by, *device, Some(heir)).await?;
                }
            }
            if step.tx.remove_membership(&by, user, from).await? {
                step.tx.set_home_membership(&by, user, target.id).await?;
            }
            step.note("from", from);
            step.note(
                "devices",
                devices.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            );
            step.note("with_devices", with_devices);
            Ok(())
        })
    }

    /// Users the caller may view (rule 9's list scope; everyone with
    /// `users.view`, else only itself), narrowed by status, membership of
    /// one visible org and a search text over email and name;
    /// keyset-paginated by id.
    pub async fn search_users(
        &self,
        caller: &Caller,
        query: &UserQuery,
        page: &arbor_store::PageRequest,
    ) -> Result<arbor_store::Page<UserRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "user.list", "user:*");
        read_case!(self, caller, event, |step| {
            if let Some(org) = query.org {
                let path = step.tx.org_path(org).await.found(step, "organization")?;
                let decision = step.actor.list_members_of(&path);
                step.require(decision, "organization")?;
            }
            let filter = arbor_store::UserFilter {
                list: step.actor.user_list(),
                status: query.status,
                org: query.org,
                search: query.search.clone(),
                tag: match &query.tag {
                    Some(tag) => Some(crate::places::tag_filter(tag)?),
                    None => None,
                },
            };
            Ok(step.tx.list_users(&filter, page).await?)
        })
    }

    /// Every user the caller may list, for the CSV download
    /// (`users.download_list`).
    pub async fn export_users(&self, caller: &Caller) -> Result<Vec<UserRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "user.export", "user:*");
        read_case!(self, caller, event, |step| {
            let decision = step.actor.export_users();
            step.require(decision, "organization")?;
            let filter = arbor_store::UserFilter::new(step.actor.user_list());
            let mut users = Vec::new();
            let mut page = arbor_store::PageRequest::first(arbor_store::MAX_PAGE_SIZE);
            loop {
                let result = step.tx.list_users(&filter, &page).await?;
                users.extend(result.items);
                match result.next {
                    Some(next) => {
                        page = arbor_store::PageRequest::after(
                            Some(next),
                            Some(arbor_store::MAX_PAGE_SIZE),
                        )
                    }
                    None => break,
                }
            }
            Ok(users)
        })
    }

    /// The audit log the caller may read (`users.view_actions_log`): events
    /// whose target org is in its scope, optionally of one visible user's
    /// actions, newest first.
    pub async fn actions_log(
        &self,
        caller: &Caller,
        user: Option<UserId>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AppError> {
        let target = user.map_or_else(|| "user:*".to_owned(), |u| format!("user:{u}"));
        let event = AuditEvent::new(caller.client, "user.actions_log", target);
        read_case!(self, caller, event, |step| {
            let decision = step.actor.read_actions_log();
            step.require(decision, "organization")?;
            if let Some(user) = user {
                let principal = step.tx.principal(user).await.found(step, "user")?;
                if !step.actor.sees_user(&principal) {
                    return Err(step.absent("user"));
                }
            }
            let scope = step.actor.list_scope();
            let scope = if scope.descendants {
                AuditScope::Subtree(&scope.home)
            } else {
                AuditScope::Org(scope.home.id())
            };
            Ok(step
                .tx
                .audit_entries(scope, user, None, before, limit.clamp(1, 500))
                .await?)
        })
    }
}
