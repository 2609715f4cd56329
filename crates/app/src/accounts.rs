//! Authentication and self-service: first-run setup, login, sessions, logout,
//! accepting an invitation, password changes and resets.

use crate::password;
use crate::run::{Decides, write_case};
use crate::{App, AppError, Caller, hash_token, new_token};
use arbor_core::policy as rules;
use arbor_core::{OrgType, UserId, UserStatus};
use arbor_store::{
    AuditEvent, AuditOutcome, ClientKind, LoginKey, MailKind, MailLink, MembershipRecord, NewOrg,
    NewUser, SessionId, UserRecord,
};

/// How long sessions, invitations and reset links live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountPolicy {
    /// A session unused this long ends.
    pub session_idle_ms: i64,
    /// A session ends this long after login.
    pub session_absolute_ms: i64,
    /// SPEC.md §6: 30 days.
    pub invitation_ms: i64,
    pub password_reset_ms: i64,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        const HOUR: i64 = 60 * 60 * 1000;
        Self {
            session_idle_ms: 12 * HOUR,
            session_absolute_ms: 14 * 24 * HOUR,
            invitation_ms: 30 * 24 * HOUR,
            password_reset_ms: 24 * HOUR,
        }
    }
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedIn {
    pub user: UserId,
    pub session: SessionId,
    /// The bearer token; shown once, only its hash is stored.
    pub token: String,
    pub expires_at: i64,
}

/// A request's authenticated session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserId,
    pub session: SessionId,
    pub token_hash: String,
    /// The authorization version the session was checked at, when checked
    /// through the decision cache.
    pub authz_version: Option<arbor_store::AuthzVersion>,
}

impl Authenticated {
    /// The caller for use cases, acting in `context` (or at home).
    pub fn caller(&self, client: ClientKind, context: Option<arbor_core::OrgId>) -> Caller {
        Caller {
            user: self.user,
            session_token_hash: Some(self.token_hash.clone()),
            context,
            client,
            authz_version: self.authz_version,
        }
    }
}

/// First-run input: the first hierarchy and its Admin.
#[derive(Clone, Debug)]
pub struct FirstRun {
    pub org_name: String,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password: String,
}

/// Whole seconds to wait, at least one, for a `Retry-After`.
fn retry_secs(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)
}

impl App {
    /// Reserves one failed attempt for `key` before its password is verified
    /// ([`crate::throttle`]), or refuses with [`AppError::Throttled`].
    async fn reserve_attempt(&self, key: &LoginKey) -> Result<(), AppError> {
        let policy = self.throttle;
        let refuse = |wait: crate::throttle::Wait| {
            metrics::counter!("arbor_throttled_requests_total", "reason" => wait.reason())
                .increment(1);
            AppError::Throttled {
                retry_after_secs: retry_secs(wait.ms()),
            }
        };
        // A client that must wait is answered from a plain read, without
        // queueing for the write lock (a flood is mostly such attempts). Only
        // the locked reservation below ever lets an attempt through.
        let (pair, client) = self.store.login_counters(key).await?;
        policy
            .wait(self.store.now_ms(), pair, client)
            .map_err(refuse)?;
        let answer = self
            .retrying(|| async {
                Ok(self
                    .store
                    .reserve_login_attempt(key, |now, pair, client| {
                        policy.reserve(now, pair, client)
                    })
                    .await?)
            })
            .await?;
        answer.map_err(refuse)
    }

    /// A correct password: the reservation of [`Self::reserve_attempt`] is
    /// given back.
    async fn release_attempt(&self, key: &LoginKey) -> Result<(), AppError> {
        self.retrying(|| async { Ok(self.store.release_login_attempt(key).await?) })
            .await
    }

    /// The stored failed-login counters of `email` from client `from`
    /// (pair, client), for tests and diagnostics.
    pub async fn login_counters(
        &self,
        email: &str,
        from: &str,
    ) -> Result<(arbor_store::LoginCounter, arbor_store::LoginCounter), AppError> {
        Ok(self
            .store
            .login_counters(&LoginKey::new(email, from))
            .await?)
    }

    /// Creates the server's first hierarchy with its Admin. Refused once any
    /// hierarchy exists (it is a first-run operation, not a sign-up).
    pub async fn first_run(
        &self,
        input: &FirstRun,
        client: ClientKind,
    ) -> Result<crate::HierarchyCreated, AppError> {
        let email = arbor_core::Email::parse(&input.admin_email)?;
        password::check_policy(&input.admin_password, email.as_str())?;
        if !self.needs_first_run().await? {
            return Err(AppError::conflict("Arbor is already set up"));
        }
        let hash = self.hashing.hash(&input.admin_password).await?;
        let mut admin = NewUser::active(email.as_str(), &input.admin_name);
        admin.password_hash = Some(hash);
        // Checked again, with the first-run lock held, where it is created:
        // concurrent setups create one hierarchy.
        self.create_first_hierarchy(&crate::NewHierarchy {
            root: NewOrg::named(&input.org_name, OrgType::Root),
            settings: Default::default(),
            admin,
            client,
        })
        .await
    }

    /// Whether first-run setup is still open.
    pub async fn needs_first_run(&self) -> Result<bool, AppError> {
        let mut tx = self.store.read().await?;
        let exists = tx.any_hierarchy().await?;
        tx.finish().await?;
        Ok(!exists)
    }

    /// Checks a password and opens a session. `None` for a wrong email or
    /// password, or an account that is not active: the three are answered
    /// alike, and take about the same time. `from` is the client's address
    /// (the throttle's key, with the email as typed): the attempt is counted
    /// before the password is verified, and refused with
    /// [`AppError::Throttled`] while this client must wait for this account,
    /// or with [`AppError::Overloaded`] when password hashing is saturated.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: ClientKind,
        from: &str,
        policy: &AccountPolicy,
    ) -> Result<Option<LoggedIn>, AppError> {
        let admitted = self.hashing.admit()?;
        let key = LoginKey::new(email, from);
        self.reserve_attempt(&key).await?;
        let mut tx = self.store.read().await?;
        let found = tx.credentials(email).await?;
        let home = match &found {
            Some((user, _)) => tx.memberships(user.id).await?.into_iter().next(),
            None => None,
        };
        tx.finish().await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, None),
        };
        let matches = admitted.verify(password, hash).await?;
        let active = user
            .as_ref()
            .is_some_and(|u| u.status == UserStatus::Active);
        let Some(user) = user else {
            metrics::counter!("arbor_login_failures_total").increment(1);
            // Recorded like any failed login, so that an unknown email costs
            // the same write as a wrong password and the answers stay alike.
            let tx = self.store.write().await?;
            let event = AuditEvent::new(client, "auth.login", "user:unknown")
                .outcome(AuditOutcome::Forbidden)
                .detail("reason", "unknown email");
            tx.commit(event).await?;
            return Ok(None);
        };
        let mut event = AuditEvent::new(client, "auth.login", format!("user:{}", user.id));
        event.actor = Some(user.id);
        event.actor_home_org = home.as_ref().map(|m| m.org);
        event.target_org = home.as_ref().map(|m| m.org);
        let verdict = rules::login(rules::LoginFacts {
            user: user.id,
            status: user.status,
            password_matches: matches,
        });
        let Ok(proof) = verdict else {
            metrics::counter!("arbor_login_failures_total").increment(1);
            let reason = if matches && !active {
                "account not active"
            } else {
                "wrong password"
            };
            let tx = self.store.write().await?;
            tx.commit(
                event
                    .outcome(AuditOutcome::Forbidden)
                    .detail("reason", reason),
            )
            .await?;
            return Ok(None);
        };
        // Before the session's transaction: SQLite has one writer at a time.
        self.release_attempt(&key).await?;
        let mut tx = self.store.write().await?;
        let token = new_token();
        let expires_at = tx.now() + policy.session_absolute_ms;
        let session = tx
            .insert_session(&proof, user.id, &token.1, expires_at)
            .await?;
        tx.commit(event.detail("session", session)).await?;
        Ok(Some(LoggedIn {
            user: user.id,
            session,
            token: token.0,
            expires_at,
        }))
    }

    /// The session behind a bearer token, if it is live: not revoked, not past
    /// its absolute expiry, not idle too long.
    pub async fn authenticate(
        &self,
        token: &str,
        policy: &AccountPolicy,
    ) -> Result<Option<Authenticated>, AppError> {
        self.authenticate_hash(hash_token(token), policy).await
    }

    /// [`App::authenticate`] by the token's hash: how a long-lived request
    /// (a live stream) checks again that its session is still live.
    pub async fn authenticate_hash(
        &self,
        token_hash: String,
        policy: &AccountPolicy,
    ) -> Result<Option<Authenticated>, AppError> {
        let now = self.store.now_ms();
        // A session last used more than a minute ago is touched, so a cached
        // one that old is read again (another node may have touched it).
        const TOUCH_EVERY_MS: i64 = 60_000;
        let (session, authz_version) = match &self.cache {
            Some(cache) => {
                let (version, session) = cache.session(&token_hash, now, TOUCH_EVERY_MS).await?;
                (session, Some(version))
            }
            None => (self.store.session(&token_hash).await?, None),
        };
        let Some(session) = session else {
            return Ok(None);
        };
        let live = !session.revoked
            && session.expires_at > now
            && session.last_seen_at + policy.session_idle_ms > now;
        if !live {
            return Ok(None);
        }
        if now - session.last_seen_at > TOUCH_EVERY_MS {
            self.store.touch_session(session.id).await?;
            if let Some(cache) = &self.cache {
                cache.touched(&token_hash, session.id, now);
            }
        }
        Ok(Some(Authenticated {
            user: session.user,
            session: session.id,
            token_hash,
            authz_version,
        }))
    }

    /// Records a request refused before any use case ran (a cross-site
    /// write made with the session cookie) against the session's user and
    /// its home org; nothing when the session is not live (no one to
    /// attribute it to).
    pub async fn audit_refused_request(
        &self,
        token: &str,
        policy: &AccountPolicy,
        client: ClientKind,
        what: String,
        reason: &str,
    ) -> Result<(), AppError> {
        let Some(auth) = self.authenticate(token, policy).await? else {
            return Ok(());
        };
        let mut tx = self.store.write().await?;
        let home = tx.memberships(auth.user).await?.first().map(|m| m.org);
        let mut event = AuditEvent::new(client, "request.refused", what)
            .outcome(AuditOutcome::Forbidden)
            .detail("reason", format!("cross-site request ({reason})"));
        event.actor = Some(auth.user);
        event.actor_home_org = home;
        event.target_org = home;
        tx.commit(event).await?;
        Ok(())
    }

    /// Ends one session.
    pub async fn logout(&self, auth: &Authenticated, client: ClientKind) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        tx.revoke_session(&rules::logout(auth.user), auth.session)
            .await?;
        let mut event = AuditEvent::new(client, "auth.logout", format!("user:{}", auth.user));
        event.actor = Some(auth.user);
        tx.commit(event.detail("session", auth.session)).await?;
        Ok(())
    }

    /// Sets the password of an invited user and activates the account. The
    /// token is single-use and expires after 30 days.
    pub async fn accept_invitation(
        &self,
        token: &str,
        new_password: &str,
        name: Option<&str>,
        client: ClientKind,
    ) -> Result<UserId, AppError> {
        let token_hash = hash_token(token);
        let mut tx = self.store.read().await?;
        let invitation = tx.invitation_by_hash(&token_hash).await?;
        tx.finish().await?;
        let invitation = invitation.ok_or(AppError::NotFound { what: "invitation" })?;
        password::check_policy(new_password, &invitation.email)?;
        let hash = self.hashing.hash(new_password).await?;
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let invitation = tx
                .invitation_by_hash(&token_hash)
                .await?
                .ok_or(AppError::NotFound { what: "invitation" })?;
            if let Some(user) = invitation.user {
                tx.lock_user(user).await?;
            }
            let status = match invitation.user {
                Some(user) => tx.user(user).await?.status,
                None => UserStatus::Pending,
            };
            let verdict = rules::accept_invitation(rules::InvitationFacts {
                user: invitation.user,
                used: invitation.accepted_at.is_some(),
                expired: invitation.expires_at <= tx.now(),
                user_status: status,
            });
            let proof = verdict.map_err(|refusal| match refusal {
                arbor_core::Refusal::Failed { error, .. } => AppError::from(error),
                arbor_core::Refusal::Denied(d) => AppError::denied(&d, "invitation"),
            })?;
            let user = *proof.target();
            let by = proof;
            tx.accept_invitation(&by, invitation.id).await?;
            // The link is used: a copy still waiting in the outbox goes.
            tx.cancel_mail(
                &by,
                MailLink {
                    kind: MailKind::Invitation,
                    user,
                },
            )
            .await?;
            tx.set_password_hash(&by, user, &hash).await?;
            tx.set_user_status(&by, user, UserStatus::Active).await?;
            if let Some(name) = name {
                tx.update_profile(&by, user, Some(name), None).await?;
            }
            let mut event =
                AuditEvent::new(client, "user.accept_invitation", format!("user:{user}"))
                    .target_org(invitation.org);
            event.actor = Some(user);
            event.actor_home_org = Some(invitation.org);
            tx.commit(event).await?;
            Ok(user)
        })
        .await
    }

    /// Changes the caller's own password after checking the current one; every
    /// other session of the caller ends. The check of the current password
    /// is throttled like a login, per (account, client `from`).
    pub async fn change_own_password(
        &self,
        auth: &Authenticated,
        current: &str,
        new_password: &str,
        client: ClientKind,
        from: &str,
    ) -> Result<(), AppError> {
        let admitted = self.hashing.admit()?;
        let mut tx = self.store.read().await?;
        let user = tx.user(auth.user).await?;
        let stored = tx.password_hash(auth.user).await?;
        tx.finish().await?;
        let key = LoginKey::new(&user.email, from);
        self.reserve_attempt(&key).await?;
        if !admitted.verify(current, stored).await? {
            return Err(AppError::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        self.release_attempt(&key).await?;
        password::check_policy(new_password, &user.email)?;
        let hash = self.hashing.hash(new_password).await?;
        let caller = auth.caller(client, None);
        let event = AuditEvent::new(
            client,
            "user.change_password",
            format!("user:{}", auth.user),
        );
        write_case!(self, &caller, event, |step| {
            let verdict = step.actor.edit_own_account();
            let by = step.allow(verdict, "user")?;
            step.tx.set_password_hash(&by, auth.user, &hash).await?;
            let revoked = step
                .tx
                .revoke_other_sessions(&by, auth.user, auth.session)
                .await?;
            // Reset links mailed before the change stop working.
            let withdrawn = step.tx.use_password_resets_of(&by, auth.user).await?;
            let link = MailLink {
                kind: MailKind::PasswordReset,
                user: auth.user,
            };
            step.tx.cancel_mail(&by, link).await?;
            step.note("sessions_revoked", revoked);
            step.note("reset_links_withdrawn", withdrawn);
            Ok(())
        })
    }

    /// The caller's own account and memberships (with role names).
    pub async fn profile(
        &self,
        auth: &Authenticated,
    ) -> Result<(UserRecord, Vec<(MembershipRecord, String)>), AppError> {
        let mut tx = self.store.read().await?;
        let user = tx.user(auth.user).await?;
        let mut memberships = Vec::new();
        for m in tx.memberships(auth.user).await? {
            let roles = tx.roles(m.path.root_id()).await?;
            let name = roles
                .iter()
                .find(|r| r.id == m.role)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            memberships.push((m, name));
        }
        tx.finish().await?;
        Ok((user, memberships))
    }

    /// Edits the caller's own profile.
    pub async fn update_own_profile(
        &self,
        auth: &Authenticated,
        name: Option<&str>,
        locale: Option<&str>,
        client: ClientKind,
    ) -> Result<(), AppError> {
        let caller = auth.caller(client, None);
        let event = AuditEvent::new(client, "user.update_profile", format!("user:{}", auth.user));
        write_case!(self, &caller, event, |step| {
            let verdict = step.actor.edit_own_account();
            let by = step.allow(verdict, "user")?;
            match step.tx.update_profile(&by, auth.user, name, locale).await {
                Ok(()) => Ok(()),
                Err(e @ arbor_store::StoreError::Invalid { .. }) => Err(step.fail(e.into())),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Completes an admin-initiated reset: sets the password chosen by the user
    /// and ends every session of the account.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        new_password: &str,
        client: ClientKind,
    ) -> Result<UserId, AppError> {
        let token_hash = hash_token(token);
        let mut tx = self.store.read().await?;
        let reset = tx.password_reset_by_hash(&token_hash).await?;
        let reset = reset.ok_or(AppError::NotFound { what: "reset link" })?;
        let user = tx.user(reset.user).await?;
        tx.finish().await?;
        password::check_policy(new_password, &user.email)?;
        let hash = self.hashing.hash(new_password).await?;
        self.retrying(|| async {
            let mut tx = self.store.write().await?;
            let reset = tx
                .password_reset_by_hash(&token_hash)
                .await?
                .ok_or(AppError::NotFound { what: "reset link" })?;
            tx.lock_user(reset.user).await?;
            let user = tx.user(reset.user).await?;
            let verdict = rules::complete_password_reset(rules::ResetFacts {
                user: reset.user,
                used: reset.used_at.is_some(),
                expired: reset.expires_at <= tx.now(),
                user_status: user.status,
            });
            let proof = verdict.map_err(|refusal| match refusal {
                arbor_core::Refusal::Failed { error, .. } => AppError::from(error),
                arbor_core::Refusal::Denied(d) => AppError::denied(&d, "reset link"),
            })?;
            let by = proof;
            tx.use_password_reset(&by, reset.id).await?;
            tx.cancel_mail(
                &by,
                MailLink {
                    kind: MailKind::PasswordReset,
                    user: reset.user,
                },
            )
            .await?;
            tx.set_password_hash(&by, reset.user, &hash).await?;
            let revoked = tx.revoke_sessions(&by, reset.user).await?;
            // A reset unlocks: whoever was delayed at this account starts afresh.
            let cleared = tx.clear_login_failures(&by, &user.email).await?;
            let mut event = AuditEvent::new(
                client,
                "user.reset_password",
                format!("user:{}", reset.user),
            )
            .detail("sessions_revoked", revoked)
            .detail("login_counters_cleared", cleared);
            event.actor = Some(reset.user);
            tx.commit(event).await?;
            Ok(reset.user)
        })
        .await
    }
}
