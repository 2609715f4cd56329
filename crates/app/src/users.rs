//! User management by administrators (SPEC.md §6): invite (single and CSV),
//! resend/revoke invitations, edit, reset password by link, force logout,
//! suspend, delete, transfer, and the actions log.
//!
//! Every operation decides with arbor-core on the target's membership that lies
//! in the actor's scope (rule 4 and the subset rule 6), re-read inside the
//! transaction.

use crate::accounts::AccountPolicy;
use crate::{App, AppError, Caller, actor_or_deny, allow_or_deny, new_token, refuse};
use arbor_core::role::check_org_keeps_admin;
use arbor_core::{
    Actor, MemberFacts, OrgId, Permission, RoleId, UserId, UserStatus, membership_acted_on,
};
use arbor_store::{
    AuditEntry, AuditEvent, AuditScope, MembershipRecord, NewUser, Tx, UserRecord, Write,
};

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

/// Loads the target user and the membership acted on, with its permission set.
async fn load_target(
    tx: &mut Tx<Write>,
    actor: &Actor,
    user: UserId,
) -> Result<(UserRecord, MembershipRecord, arbor_core::PermissionSet), AppError> {
    let record = tx.user(user).await?;
    let memberships = tx.memberships(user).await?;
    let membership = membership_acted_on(actor, &memberships, |m| &m.path)
        .cloned()
        .ok_or(AppError::NotFound { what: "user" })?;
    let permissions = tx.role_permissions(membership.org, membership.role).await?;
    Ok((record, membership, permissions))
}

/// What [`decide_on_member!`] yields: the actor, the target user, the
/// membership acted on and the proof the action was allowed.
struct MemberAction {
    actor: Actor,
    record: UserRecord,
    membership: MembershipRecord,
    by: arbor_store::Allowed,
}

/// Locks the target user, resolves the caller (rules 1, 2, 8), loads the
/// membership acted on, locks its org and decides `permission` on it (rules 4
/// and 6). A denial is committed with its audit row and returned.
macro_rules! decide_on_member {
    ($tx:ident, $caller:expr, $event:expr, $user:expr, $permission:expr) => {{
        $tx.lock_user($user).await?;
        let actor = actor_or_deny!($tx, $caller, $event);
        let (record, membership, permissions) = load_target(&mut $tx, &actor, $user).await?;
        $tx.lock_org(membership.org).await?;
        let facts = MemberFacts {
            user: $user,
            org: &membership.path,
            permissions,
        };
        let by = allow_or_deny!($tx, $event, actor.decide_user($permission, &facts), "user");
        MemberAction {
            actor,
            record,
            membership,
            by,
        }
    }};
}

/// Refuses when removing `user`'s Admin standing from `org` would leave it
/// without an active Admin.
async fn keeps_admin(
    tx: &mut Tx<Write>,
    org: OrgId,
    user: UserId,
) -> Result<Result<(), AppError>, AppError> {
    let admins = tx.admins(org).await?;
    if !admins.contains(&user) {
        return Ok(Ok(()));
    }
    let before = admins.len() as u64;
    Ok(check_org_keeps_admin(before, before - 1).map_err(AppError::from))
}

fn event(caller: &Caller, action: &'static str, user: UserId) -> AuditEvent {
    AuditEvent::new(caller.client, action, format!("user:{user}"))
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
        self.retrying(|| self.invite_once(caller, invite, links, policy))
            .await
    }

    async fn invite_once(
        &self,
        caller: &Caller,
        invite: &Invite,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<Invited, AppError> {
        let mut tx = self.store.write().await?;
        let event = AuditEvent::new(
            caller.client,
            "user.invite",
            format!("email:{}", invite.email.trim()),
        )
        .target_org(invite.org)
        .detail("role", invite.role);
        tx.lock_org(invite.org).await?;
        let actor = actor_or_deny!(tx, caller, event);
        let org = match tx.org(invite.org).await {
            Ok(org) => org,
            Err(arbor_store::StoreError::NotFound { .. }) => {
                return Err(AppError::NotFound {
                    what: "organization",
                });
            }
            Err(e) => return Err(e.into()),
        };
        let scope_check = actor.decide_org(Permission::UsersInvite, &org.path);
        if !scope_check.is_allowed() {
            return Err(crate::deny(tx, event, &scope_check, "organization").await);
        }
        let roles = tx.roles(org.path.root_id()).await?;
        if !roles.iter().any(|r| r.id == invite.role) {
            return Err(AppError::invalid("role", "no such role in this hierarchy"));
        }
        let role_permissions = tx.role_permissions(org.id, invite.role).await?;
        let by = allow_or_deny!(
            tx,
            event,
            actor.decide_assign_role(Permission::UsersInvite, &org.path, role_permissions),
            "organization"
        );
        if tx.user_by_email(&invite.email).await?.is_some() {
            return Err(refuse(
                tx,
                event.by(&by),
                AppError::conflict("a user with this email already exists"),
            )
            .await);
        }
        let mut user = NewUser::active(invite.email.trim(), invite.name.trim());
        user.status = UserStatus::Pending;
        let id = tx.insert_user(&by, &user).await?;
        tx.insert_membership(&by, id, org.id, invite.role, true)
            .await?;
        let (token, hash) = new_token();
        let expires_at = tx.now() + policy.invitation_ms;
        tx.insert_invitation(
            &by,
            &hash,
            invite.email.trim(),
            id,
            org.id,
            invite.role,
            Some(actor.user()),
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
        tx.enqueue_mail(
            &by,
            invite.email.trim(),
            &format!("Your invitation to {}", org.name),
            &body,
        )
        .await?;
        tx.commit(event.by(&by).detail("user", id)).await?;
        Ok(Invited {
            user: id,
            expires_at,
        })
    }

    /// Invites every row of a CSV (`email,name,role,org`; role by name, org by
    /// id). Each row is all-or-nothing on its own; the report says what became
    /// of each.
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
                Err(AppError::Internal { .. } | AppError::Store(_)) => {
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
        let mut tx = self.store.read().await?;
        let path = tx.org_path(org).await.map_err(|_| AppError::NotFound {
            what: "organization",
        })?;
        let roles = tx.roles(path.root_id()).await?;
        tx.finish().await?;
        let role = roles
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(role))
            .ok_or_else(|| AppError::invalid("role", format!("no role named {role:?}")))?
            .id;
        let invite = Invite {
            email: email.to_owned(),
            name: name.to_owned(),
            org,
            role,
        };
        self.invite(caller, &invite, links, policy)
            .await
            .map(|i| i.user)
    }

    /// Sends a fresh invitation link to a pending user; the old link stops working.
    pub async fn resend_invitation(
        &self,
        caller: &Caller,
        user: UserId,
        links: &Links,
        policy: &AccountPolicy,
    ) -> Result<Invited, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.resend_invitation", user);
            let MemberAction {
                actor,
                record,
                membership,
                by,
            } = decide_on_member!(tx, caller, event, user, Permission::UsersInvite);
            if record.status != UserStatus::Pending {
                return Err(refuse(
                    tx,
                    event.by(&by),
                    AppError::conflict("the user has already accepted"),
                )
                .await);
            }
            tx.withdraw_invitations(user).await?;
            let (token, hash) = new_token();
            let expires_at = tx.now() + policy.invitation_ms;
            tx.insert_invitation(
                &by,
                &hash,
                &record.email,
                user,
                membership.org,
                membership.role,
                Some(actor.user()),
                expires_at,
            )
            .await?;
            let body = format!(
                "Hello {},\n\nhere is a new link to activate your Arbor account in {} \
                 (valid for 30 days, once):\n\n{}\n",
                record.name,
                membership.org_name,
                links.invitation(&token)
            );
            tx.enqueue_mail(
                &by,
                &record.email,
                &format!("Your invitation to {}", membership.org_name),
                &body,
            )
            .await?;
            tx.commit(event.by(&by)).await?;
            Ok(Invited { user, expires_at })
        })
        .await
    }

    /// Withdraws the invitation of a pending user, who is removed.
    pub async fn revoke_invitation(&self, caller: &Caller, user: UserId) -> Result<(), AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.revoke_invitation", user);
            let MemberAction { record, by, .. } =
                decide_on_member!(tx, caller, event, user, Permission::UsersInvite);
            if record.status != UserStatus::Pending {
                return Err(refuse(
                    tx,
                    event.by(&by),
                    AppError::conflict("the user has already accepted"),
                )
                .await);
            }
            tx.delete_user(&by, user).await?;
            tx.commit(event.by(&by).detail("email", &record.email))
                .await?;
            Ok(())
        })
        .await
    }

    /// Edits a member's name, locale and role in the org acted on.
    pub async fn edit_user(
        &self,
        caller: &Caller,
        user: UserId,
        edit: &UserEdit,
    ) -> Result<(), AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.edit", user);
            let MemberAction {
                actor,
                membership,
                mut by,
                ..
            } = decide_on_member!(tx, caller, event, user, Permission::UsersEdit);
            if let Some(role) = edit.role.filter(|r| *r != membership.role) {
                let roles = tx.roles(membership.path.root_id()).await?;
                if !roles.iter().any(|r| r.id == role) {
                    return Err(AppError::invalid("role", "no such role in this hierarchy"));
                }
                let granted = tx.role_permissions(membership.org, role).await?;
                by = allow_or_deny!(
                    tx,
                    event,
                    actor.decide_assign_role(Permission::UsersEdit, &membership.path, granted),
                    "user"
                );
                if !tx.is_role_admin(role).await?
                    && let Err(e) = keeps_admin(&mut tx, membership.org, user).await?
                {
                    return Err(refuse(tx, event.by(&by), e).await);
                }
                tx.set_member_role(&by, user, membership.org, role).await?;
            }
            tx.update_profile(&by, user, edit.name.as_deref(), edit.locale.as_deref())
                .await?;
            let event = event
                .by(&by)
                .detail("name", &edit.name)
                .detail("locale", &edit.locale)
                .detail("role", edit.role);
            tx.commit(event).await?;
            Ok(())
        })
        .await
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
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.request_password_reset", user);
            let MemberAction { record, by, .. } =
                decide_on_member!(tx, caller, event, user, Permission::UsersChangePassword);
            if record.status != UserStatus::Active {
                return Err(refuse(
                    tx,
                    event.by(&by),
                    AppError::conflict("only an active account can reset its password"),
                )
                .await);
            }
            let (token, hash) = new_token();
            let expires_at = tx.now() + policy.password_reset_ms;
            tx.insert_password_reset(&by, &hash, user, expires_at)
                .await?;
            let body = format!(
                "Hello {},\n\nan administrator asked for your Arbor password to be reset.\n\
                 Choose a new password here (valid for 24 hours, once):\n\n{}\n",
                record.name,
                links.password_reset(&token)
            );
            tx.enqueue_mail(&by, &record.email, "Reset your Arbor password", &body)
                .await?;
            tx.commit(event.by(&by)).await?;
            Ok(())
        })
        .await
    }

    /// Ends every session of a user at once.
    pub async fn force_logout(&self, caller: &Caller, user: UserId) -> Result<u64, AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.force_logout", user);
            let MemberAction { by, .. } =
                decide_on_member!(tx, caller, event, user, Permission::UsersForceLogout);
            let revoked = tx.revoke_sessions(&by, user).await?;
            tx.commit(event.by(&by).detail("sessions_revoked", revoked))
                .await?;
            Ok(revoked)
        })
        .await
    }

    /// Suspends (and logs out) or reinstates a user.
    pub async fn set_suspended(
        &self,
        caller: &Caller,
        user: UserId,
        suspended: bool,
    ) -> Result<(), AppError> {
        self.retrying(|| async {
            let action = if suspended {
                "user.suspend"
            } else {
                "user.unsuspend"
            };
            let mut tx = self.store.write().await?;
            let event = event(caller, action, user);
            let MemberAction { record, by, .. } =
                decide_on_member!(tx, caller, event, user, Permission::UsersSuspend);
            let (from, to) = if suspended {
                (UserStatus::Active, UserStatus::Suspended)
            } else {
                (UserStatus::Suspended, UserStatus::Active)
            };
            if record.status != from {
                let what = format!(
                    "the user is {}, not {}",
                    record.status.as_str(),
                    from.as_str()
                );
                return Err(refuse(tx, event.by(&by), AppError::conflict(what)).await);
            }
            if suspended {
                for m in tx.memberships(user).await? {
                    // Lock every org whose Admins the check counts, so two
                    // concurrent suspensions cannot both pass it.
                    tx.lock_org(m.org).await?;
                    if let Err(e) = keeps_admin(&mut tx, m.org, user).await? {
                        return Err(refuse(tx, event.by(&by), e).await);
                    }
                }
            }
            tx.set_user_status(&by, user, to).await?;
            let revoked = if suspended {
                tx.revoke_sessions(&by, user).await?
            } else {
                0
            };
            tx.commit(event.by(&by).detail("sessions_revoked", revoked))
                .await?;
            Ok(())
        })
        .await
    }

    /// Deletes a user. Devices they own pass to `heir` (an Admin of the
    /// device's org) or, by default, to that org's earliest Admin.
    pub async fn delete_user(
        &self,
        caller: &Caller,
        user: UserId,
        heir: Option<UserId>,
    ) -> Result<(), AppError> {
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.delete", user);
            let MemberAction {
                actor, record, by, ..
            } = decide_on_member!(tx, caller, event, user, Permission::UsersDelete);
            if user == actor.user() {
                return Err(refuse(
                    tx,
                    event.by(&by),
                    AppError::conflict("you cannot delete your own account"),
                )
                .await);
            }
            for m in tx.memberships(user).await? {
                tx.lock_org(m.org).await?;
                if let Err(e) = keeps_admin(&mut tx, m.org, user).await? {
                    return Err(refuse(tx, event.by(&by), e).await);
                }
            }
            let mut handed = Vec::new();
            for (device, org) in tx.owned_devices(user).await? {
                let admins: Vec<UserId> = tx
                    .admins(org)
                    .await?
                    .into_iter()
                    .filter(|a| *a != user)
                    .collect();
                let new_owner = match heir {
                    Some(heir) if admins.contains(&heir) => heir,
                    Some(_) => {
                        return Err(refuse(
                            tx,
                            event.by(&by),
                            AppError::invalid(
                                "heir",
                                "must be an active Admin of every org where the user owns devices",
                            ),
                        )
                        .await);
                    }
                    None => match admins.first() {
                        Some(first) => *first,
                        None => {
                            let what = format!(
                                "device {device} has no Admin in its organization to take it over"
                            );
                            return Err(refuse(tx, event.by(&by), AppError::conflict(what)).await);
                        }
                    },
                };
                tx.set_device_owner(&by, device, Some(new_owner)).await?;
                handed.push((device, new_owner));
            }
            tx.revoke_sessions(&by, user).await?;
            tx.delete_user(&by, user).await?;
            tx.commit(
                event
                    .by(&by)
                    .detail("email", &record.email)
                    .detail("devices_handed_on", &handed),
            )
            .await?;
            Ok(())
        })
        .await
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
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let event = event(caller, "user.transfer", user).target_org(to).detail("role", role);
            let MemberAction { actor, membership, .. } =
                decide_on_member!(tx, caller, event, user, Permission::UsersTransfer);
            let target = match tx.org(to).await {
                Ok(org) => org,
                Err(arbor_store::StoreError::NotFound { .. }) => return Err(AppError::NotFound { what: "organization" }),
                Err(e) => return Err(e.into()),
            };
            let roles = tx.roles(target.path.root_id()).await?;
            if !roles.iter().any(|r| r.id == role) {
                return Err(AppError::invalid("role", "no such role in this hierarchy"));
            }
            let granted = tx.role_permissions(target.id, role).await?;
            let by = allow_or_deny!(
                tx,
                event,
                actor.decide_assign_role(Permission::UsersTransfer, &target.path, granted),
                "organization"
            );
            if target.id == membership.org {
                return Err(refuse(tx, event.by(&by), AppError::invalid("org", "the user is already in this organization")).await);
            }
            if tx.member_role(user, target.id).await?.is_some() {
                return Err(refuse(tx, event.by(&by), AppError::conflict("the user is already a member of that organization")).await);
            }
            if let Err(e) = keeps_admin(&mut tx, membership.org, user).await? {
                return Err(refuse(tx, event.by(&by), e).await);
            }
            // The new membership first, so moved devices always have their
            // owner as a member of their org; then the old one goes.
            tx.insert_membership(&by, user, target.id, role, false).await?;
            let devices: Vec<_> = tx
                .owned_devices(user)
                .await?
                .into_iter()
                .filter(|(_, org)| *org == membership.org)
                .collect();
            for (device, _) in &devices {
                if with_devices {
                    let record = tx.device(*device).await?;
                    if !tx.template_enabled(target.id, record.template).await? {
                        let what = format!("the template of device {device} is not enabled for the target organization");
                        return Err(refuse(tx, event.by(&by), AppError::conflict(what)).await);
                    }
                    tx.move_device(&by, *device, target.id, Some(user)).await?;
                } else {
                    let heir = tx.admins(membership.org).await?.into_iter().find(|a| *a != user);
                    let Some(heir) = heir else {
                        let what = format!(
                            "device {device} has no other Admin in its organization to take it over; \
                             move it along with with_devices"
                        );
                        return Err(refuse(tx, event.by(&by), AppError::conflict(what)).await);
                    };
                    tx.set_device_owner(&by, *device, Some(heir)).await?;
                }
            }
            if tx.remove_membership(&by, user, membership.org).await? {
                tx.set_home_membership(&by, user, target.id).await?;
            }
            let event = event
                .by(&by)
                .detail("from", membership.org)
                .detail("devices", devices.iter().map(|(d, _)| *d).collect::<Vec<_>>())
                .detail("with_devices", with_devices);
            tx.commit(event).await?;
            Ok(())
        })
        .await
    }

    /// Users the caller may view (`users.view` in its scope), narrowed by
    /// status, membership of one org (which must be in scope) and a search
    /// text over email and name; keyset-paginated by id.
    pub async fn search_users(
        &self,
        caller: &Caller,
        query: &UserQuery,
        page: &arbor_store::PageRequest,
    ) -> Result<arbor_store::Page<UserRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        if let Some(org) = query.org {
            let path = tx.org_path(org).await.map_err(|_| AppError::NotFound {
                what: "organization",
            })?;
            let decision = actor.decide_org(Permission::UsersView, &path);
            if !decision.is_allowed() {
                return Err(AppError::denied(&decision, "organization"));
            }
        }
        let filter = arbor_store::UserFilter {
            scope: actor.org_filter(Permission::UsersView),
            status: query.status,
            org: query.org,
            search: query.search.clone(),
        };
        let result = tx.list_users(&filter, page).await?;
        tx.finish().await?;
        Ok(result)
    }

    /// Every user the caller may list, for the CSV download
    /// (`users.download_list` and `users.view`).
    pub async fn export_users(&self, caller: &Caller) -> Result<Vec<UserRecord>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let home = actor.home().clone();
        let decision = actor.decide_org(Permission::UsersDownloadList, &home);
        if !decision.is_allowed() {
            return Err(AppError::denied(&decision, "organization"));
        }
        let filter = arbor_store::UserFilter {
            scope: actor.org_filter(Permission::UsersView),
            ..Default::default()
        };
        let mut users = Vec::new();
        let mut page = arbor_store::PageRequest::first(arbor_store::MAX_PAGE_SIZE);
        loop {
            let result = tx.list_users(&filter, &page).await?;
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
        tx.finish().await?;
        Ok(users)
    }

    /// The audit log the caller may read (`users.view_actions_log`): events
    /// whose target org is in its scope, optionally of one user's actions,
    /// newest first.
    pub async fn actions_log(
        &self,
        caller: &Caller,
        user: Option<UserId>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AppError> {
        let mut tx = self.store.read().await?;
        let actor = crate::resolve_actor(&mut tx, caller)
            .await?
            .map_err(|d| AppError::denied(&d, "organization"))?;
        let home = actor.home().clone();
        let decision = actor.decide_org(Permission::UsersViewActionsLog, &home);
        if !decision.is_allowed() {
            return Err(AppError::denied(&decision, "organization"));
        }
        if let Some(user) = user {
            let memberships = tx.memberships(user).await?;
            let visible = memberships.iter().any(|m| actor.scope().contains(&m.path));
            if !visible && user != actor.user() {
                return Err(AppError::NotFound { what: "user" });
            }
        }
        let scope = if actor.scope().descendants {
            AuditScope::Subtree(&home)
        } else {
            AuditScope::Org(home.id())
        };
        let entries = tx
            .audit_entries(scope, user, None, before, limit.clamp(1, 500))
            .await?;
        tx.finish().await?;
        Ok(entries)
    }
}
