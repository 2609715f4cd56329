//! Access insight: `check` (the policy-decision endpoint), `explain`,
//! `who-can` and effective permissions. Every answer is arbor-core's own
//! decision on facts read in one read transaction — the same decision the use
//! cases take — so insight cannot disagree with what the API allows.
//!
//! Asking is itself guarded: the caller needs `roles.view` on the target's org
//! (rule 4, so the target must lie in its scope) and must be able to see the
//! user asked about (a membership in the caller's scope, or the caller
//! itself). Anything else looks absent. Who-can lists only grants through
//! memberships in the caller's scope: a child never sees upward.

use crate::cache::AuthzCache;
use crate::run::{Stop, read_case};
use crate::{App, AppError, Caller};
use arbor_core::policy::Visibility;
use arbor_core::{
    Actor, Decision, DeviceAction, DeviceFacts, DeviceId, Grant, MemberFacts, Membership, OrgId,
    OrgPath, Permission, PermissionSet, Principal, UserId, Via, membership_acted_on,
    who_can_device, who_can_member, who_can_org,
};
use arbor_store::{AuditEvent, AuthzVersion, ReadTx, StoreError};
use std::collections::HashMap;

/// What an access question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An org-level permission on an org (rule 4).
    Org { org: OrgId, permission: Permission },
    /// An action on a device (rule 5).
    Device {
        device: DeviceId,
        action: DeviceAction,
    },
    /// A user-management permission (`users.*`) on a member (rules 4 and 6),
    /// acting on the membership the user use cases would pick: the first
    /// (home first) in the acting user's scope.
    Member {
        user: UserId,
        permission: Permission,
    },
}

/// "May `user`, acting in `context` (default: their home org), do this?"
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub user: UserId,
    pub context: Option<OrgId>,
    pub target: Target,
}

/// The answer to one question of a batch: the decision, or why the caller
/// may not ask it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Decided(Decision),
    NotAllowedToAsk(AppErrorKind),
}

/// Why a question could not be asked (the status it would have had alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppErrorKind {
    NotFound,
    Forbidden,
}

/// A user's permissions when acting in an org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub user: UserId,
    pub org: OrgId,
    /// The membership used (rule 8), if the user can act there at all.
    pub via: Option<Via>,
    pub permissions: PermissionSet,
    /// Whether the scope reaches the org's descendants.
    pub descendants: bool,
    /// Why the user cannot act in the org (rules 1, 2, 8), if so.
    pub denied: Option<Decision>,
}

/// One user who-can lists: the grant and, for callers holding
/// `users.view`, who the user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoCan {
    pub grant: Grant,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// The facts of a device a decision reads.
#[derive(Clone, Debug)]
struct DeviceTarget {
    org: OrgPath,
    owner: Option<UserId>,
}

impl DeviceTarget {
    fn facts(&self) -> DeviceFacts<'_> {
        DeviceFacts {
            org: &self.org,
            owner: self.owner,
        }
    }
}

/// The users, devices and orgs a batch of questions reads, each once.
fn batch_keys(questions: &[Question]) -> (Vec<UserId>, Vec<DeviceId>, Vec<OrgId>) {
    let mut users = Vec::new();
    let mut devices = Vec::new();
    let mut orgs = Vec::new();
    for q in questions {
        users.push(q.user);
        orgs.extend(q.context);
        match q.target {
            Target::Org { org, .. } => orgs.push(org),
            Target::Device { device, .. } => devices.push(device),
            Target::Member { user, .. } => users.push(user),
        }
    }
    users.sort_unstable();
    users.dedup();
    devices.sort_unstable();
    devices.dedup();
    orgs.sort_unstable();
    orgs.dedup();
    (users, devices, orgs)
}

/// Where the facts of a decision come from: one read transaction
/// ([`Facts`]) or the decision cache ([`CachedFacts`]).
trait FactSource {
    async fn principal(&mut self, user: UserId) -> Result<Option<Principal>, AppError>;
    async fn path(&mut self, org: OrgId) -> Result<Option<OrgPath>, AppError>;
    async fn device(&mut self, device: DeviceId) -> Result<Option<DeviceTarget>, AppError>;
}

/// Facts of one read transaction, memoised across a batch.
struct Facts<'t> {
    tx: &'t mut ReadTx,
    principals: HashMap<UserId, Option<Principal>>,
    paths: HashMap<OrgId, Option<OrgPath>>,
    devices: HashMap<DeviceId, Option<DeviceTarget>>,
}

impl Facts<'_> {
    /// Loads every fact a batch needs in three queries (users, devices,
    /// orgs) instead of two per question.
    async fn prefetch(&mut self, questions: &[Question]) -> Result<(), AppError> {
        let (users, devices, orgs) = batch_keys(questions);
        for id in &users {
            self.principals.insert(*id, None);
        }
        for p in self.tx.principals(&users).await? {
            self.principals.insert(p.user, Some(p));
        }
        for id in &devices {
            self.devices.insert(*id, None);
        }
        for d in self.tx.devices(&devices).await? {
            self.devices.insert(
                d.id,
                Some(DeviceTarget {
                    org: d.org,
                    owner: d.owner,
                }),
            );
        }
        for id in &orgs {
            self.paths.insert(*id, None);
        }
        for path in self.tx.org_paths(&orgs).await? {
            self.paths.insert(path.id(), Some(path));
        }
        Ok(())
    }
}

impl FactSource for Facts<'_> {
    async fn device(&mut self, device: DeviceId) -> Result<Option<DeviceTarget>, AppError> {
        if let Some(d) = self.devices.get(&device) {
            return Ok(d.clone());
        }
        let d = match self.tx.device(device).await {
            Ok(d) => Some(DeviceTarget {
                org: d.org,
                owner: d.owner,
            }),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        self.devices.insert(device, d.clone());
        Ok(d)
    }

    async fn principal(&mut self, user: UserId) -> Result<Option<Principal>, AppError> {
        if let Some(p) = self.principals.get(&user) {
            return Ok(p.clone());
        }
        let p = self.tx.principal(user).await?;
        self.principals.insert(user, p.clone());
        Ok(p)
    }

    async fn path(&mut self, org: OrgId) -> Result<Option<OrgPath>, AppError> {
        if let Some(p) = self.paths.get(&org) {
            return Ok(p.clone());
        }
        let p = match self.tx.org_path(org).await {
            Ok(p) => Some(p),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        self.paths.insert(org, p.clone());
        Ok(p)
    }
}

/// Facts from the decision cache. Each comes with the version it is as of;
/// a run that met two versions is `mixed` and is answered again.
struct CachedFacts<'a> {
    cache: &'a AuthzCache,
    version: Option<AuthzVersion>,
    mixed: bool,
}

impl CachedFacts<'_> {
    fn at<T>(&mut self, (version, fact): (AuthzVersion, T)) -> T {
        match self.version {
            None => self.version = Some(version),
            Some(v) if v != version => self.mixed = true,
            Some(_) => {}
        }
        fact
    }
}

impl FactSource for CachedFacts<'_> {
    async fn principal(&mut self, user: UserId) -> Result<Option<Principal>, AppError> {
        let found = self.cache.principal(user).await?;
        Ok(self.at(found))
    }

    async fn path(&mut self, org: OrgId) -> Result<Option<OrgPath>, AppError> {
        let found = self.cache.org_path(org).await?;
        Ok(self.at(found))
    }

    async fn device(&mut self, device: DeviceId) -> Result<Option<DeviceTarget>, AppError> {
        let found = self.cache.device(device).await?;
        Ok(self.at(found).map(|(access, org)| DeviceTarget {
            org,
            owner: access.owner,
        }))
    }
}

/// The caller as an actor from cached facts (its session was checked by
/// `authenticate` in the same request).
async fn cached_actor(facts: &mut CachedFacts<'_>, caller: &Caller) -> Result<Actor, AppError> {
    let principal = facts
        .principal(caller.user)
        .await?
        .ok_or(AppError::NotFound { what: "user" })?;
    act(facts, &principal, caller.context)
        .await?
        .ok_or(AppError::NotFound {
            what: "organization",
        })?
        .map_err(|d| AppError::denied(&d, "organization"))
}

/// May the caller ask about `org`? (`roles.view` on it.)
fn may_ask_about(caller: &Actor, org: &OrgPath) -> Result<(), AppErrorKind> {
    match caller.ask_about(org).outcome {
        arbor_core::Outcome::Allowed => Ok(()),
        arbor_core::Outcome::Forbidden => Err(AppErrorKind::Forbidden),
        arbor_core::Outcome::Hidden => Err(AppErrorKind::NotFound),
    }
}

impl AppErrorKind {
    fn into_stop(self, caller: &Actor, what: &'static str) -> Stop {
        match self {
            Self::NotFound => Stop::Denied {
                decision: caller.absent(),
                what,
            },
            Self::Forbidden => Stop::Failed {
                decision: None,
                error: AppError::Forbidden {
                    reason:
                        "asking about access here needs roles.view on the target's organization"
                            .into(),
                },
            },
        }
    }
}

fn facts(tx: &mut ReadTx) -> Facts<'_> {
    Facts {
        tx,
        principals: HashMap::new(),
        paths: HashMap::new(),
        devices: HashMap::new(),
    }
}

fn insight_event(caller: &Caller, action: &'static str, target: String) -> AuditEvent {
    AuditEvent::new(caller.client, action, target)
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Org { org, .. } => format!("org:{org}"),
        Target::Device { device, .. } => format!("device:{device}"),
        Target::Member { user, .. } => format!("user:{user}"),
    }
}

impl App {
    /// Answers a batch of questions in one read transaction (or from the
    /// decision cache). Questions the caller may not ask are answered as
    /// such, and recorded in one audit row for the batch.
    pub async fn check_access(
        &self,
        caller: &Caller,
        questions: &[Question],
    ) -> Result<Vec<Answer>, AppError> {
        let (answers, home) = self.check_answers(caller, questions).await?;
        let refused = answers
            .iter()
            .filter(|a| matches!(a, Answer::NotAllowedToAsk(_)))
            .count();
        if refused > 0 {
            let mut event = insight_event(caller, "access.check", "access:check".into())
                .outcome(arbor_store::AuditOutcome::Hidden)
                .detail("questions_refused", refused)
                .detail("questions", questions.len());
            event.actor = Some(caller.user);
            event.actor_home_org = home;
            event.target_org = home;
            let tx = self.store.write().await?;
            tx.commit(event).await?;
        }
        Ok(answers)
    }

    async fn check_answers(
        &self,
        caller: &Caller,
        questions: &[Question],
    ) -> Result<(Vec<Answer>, Option<OrgId>), AppError> {
        if let Some(cache) = &self.cache
            && caller.session_token_hash.is_some()
        {
            let mut start = caller.authz_version;
            // Facts of two versions in one run (the cache moved meanwhile):
            // answer again at the newer version; rarely more than once.
            for _ in 0..3 {
                if start.take().is_none() {
                    cache.sync().await?;
                }
                let mut facts = CachedFacts {
                    cache,
                    version: None,
                    mixed: false,
                };
                let result = check_cached(&mut facts, caller, questions).await;
                if !facts.mixed {
                    return result;
                }
            }
        }
        let event = insight_event(caller, "access.check", "access:check".into());
        read_case!(self, caller, event, |step| {
            let actor = step.actor.clone();
            let mut facts = facts(&mut step.tx);
            if questions.len() > 1 {
                facts.prefetch(questions).await?;
            }
            let mut answers = Vec::with_capacity(questions.len());
            for question in questions {
                answers.push(match answer(&actor, &mut facts, question).await? {
                    Ok(decision) => Answer::Decided(decision),
                    Err(kind) => Answer::NotAllowedToAsk(kind),
                });
            }
            Ok((answers, Some(actor.via().org)))
        })
    }

    /// One question, answered with the full decision (for explain).
    pub async fn explain_access(
        &self,
        caller: &Caller,
        question: &Question,
    ) -> Result<Decision, AppError> {
        let event = insight_event(caller, "access.explain", target_name(&question.target));
        read_case!(self, caller, event, |step| {
            let actor = step.actor.clone();
            let mut facts = facts(&mut step.tx);
            match answer(&actor, &mut facts, question).await? {
                Ok(decision) => Ok(decision),
                Err(kind) => Err(kind.into_stop(&actor, target_what(&question.target))),
            }
        })
    }

    /// Who may do `target`, each with the membership that grants it; names
    /// and emails only for callers holding `users.view`.
    pub async fn who_can(&self, caller: &Caller, target: Target) -> Result<Vec<WhoCan>, AppError> {
        let event = insight_event(caller, "access.who_can", target_name(&target));
        read_case!(self, caller, event, |step| {
            let actor = step.actor.clone();
            let mut facts = facts(&mut step.tx);
            let what = target_what(&target);
            let stop = |kind: AppErrorKind| kind.into_stop(&actor, what);
            let (grants, principals) = match target {
                Target::Org { org, permission } => {
                    let Some(path) = facts.path(org).await? else {
                        return Err(stop(AppErrorKind::NotFound));
                    };
                    may_ask_about(&actor, &path).map_err(stop)?;
                    let principals = facts.tx.principals_above(&path, None).await?;
                    (who_can_org(permission, &path, &principals), principals)
                }
                Target::Device { device, action } => {
                    let record = match facts.tx.device(device).await {
                        Ok(record) => record,
                        Err(StoreError::NotFound { .. }) => {
                            return Err(stop(AppErrorKind::NotFound));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    may_ask_about(&actor, &record.org).map_err(stop)?;
                    let principals = facts.tx.principals_above(&record.org, record.owner).await?;
                    (
                        who_can_device(action, &record.facts(), &principals),
                        principals,
                    )
                }
                Target::Member { user, permission } => {
                    let Some(target) = facts.principal(user).await? else {
                        return Err(stop(AppErrorKind::NotFound));
                    };
                    let memberships = ordered(&target.memberships);
                    let Some(guard) = actor.asked_membership(&memberships) else {
                        return Err(stop(AppErrorKind::NotFound));
                    };
                    may_ask_about(&actor, &guard.org).map_err(stop)?;
                    let mut principals: Vec<Principal> = Vec::new();
                    for m in &memberships {
                        for p in facts.tx.principals_above(&m.org, None).await? {
                            if !principals.iter().any(|q| q.user == p.user) {
                                principals.push(p);
                            }
                        }
                    }
                    (
                        who_can_member(permission, user, &memberships, &principals),
                        principals,
                    )
                }
            };
            let visible = actor.visible_grants(grants, &principals);
            let identities = actor.identity_visibility() == Visibility::Identities;
            let ids: Vec<UserId> = visible.iter().map(|g| g.user).collect();
            let users: HashMap<UserId, arbor_store::UserRecord> = if identities {
                facts
                    .tx
                    .users(&ids)
                    .await?
                    .into_iter()
                    .map(|u| (u.id, u))
                    .collect()
            } else {
                HashMap::new()
            };
            Ok(visible
                .into_iter()
                .map(|grant| {
                    let user = users.get(&grant.user);
                    WhoCan {
                        grant,
                        email: user.map(|u| u.email.clone()),
                        name: user.map(|u| u.name.clone()),
                    }
                })
                .collect())
        })
    }

    /// The permissions `user` acts with in `org` (rules 1, 2, 8 applied).
    pub async fn effective_permissions(
        &self,
        caller: &Caller,
        user: UserId,
        org: OrgId,
    ) -> Result<Effective, AppError> {
        let event = insight_event(
            caller,
            "access.effective_permissions",
            format!("user:{user}"),
        )
        .detail("org", org);
        read_case!(self, caller, event, |step| {
            let actor = step.actor.clone();
            let mut facts = facts(&mut step.tx);
            let what = "organization";
            let Some(path) = facts.path(org).await? else {
                return Err(AppErrorKind::NotFound.into_stop(&actor, what));
            };
            may_ask_about(&actor, &path).map_err(|k| k.into_stop(&actor, what))?;
            let subject = facts
                .principal(user)
                .await?
                .filter(|p| actor.sees_user(p))
                .ok_or_else(|| AppErrorKind::NotFound.into_stop(&actor, "user"))?;
            Ok(match subject.act_in(&path) {
                Ok(acting) => Effective {
                    user,
                    org,
                    via: Some(acting.via()),
                    permissions: acting.permissions(),
                    descendants: acting.scope().descendants,
                    denied: None,
                },
                Err(decision) => Effective {
                    user,
                    org,
                    via: decision.via,
                    permissions: PermissionSet::EMPTY,
                    descendants: false,
                    denied: Some(decision),
                },
            })
        })
    }
}

fn target_what(target: &Target) -> &'static str {
    match target {
        Target::Org { .. } => "organization",
        Target::Device { .. } => "device",
        Target::Member { .. } => "user",
    }
}

/// A batch answered from the decision cache.
/// Whether the caller itself may view each of `devices` (rule 5 with
/// `view`), from the cache's facts: no `roles.view` needed, as this is
/// about the caller, not an insight question about others.
async fn own_views_cached(
    facts: &mut CachedFacts<'_>,
    caller: &Caller,
    devices: &[DeviceId],
) -> Result<Vec<bool>, AppError> {
    if devices.len() > 1 {
        facts.cache.prefetch(&[], devices, &[]).await?;
    }
    let actor = cached_actor(facts, caller).await?;
    own_views(&actor, facts, devices).await
}

async fn own_views(
    actor: &Actor,
    facts: &mut impl FactSource,
    devices: &[DeviceId],
) -> Result<Vec<bool>, AppError> {
    let mut views = Vec::with_capacity(devices.len());
    for device in devices {
        views.push(match facts.device(*device).await? {
            Some(record) => actor.view_device(&record.facts()).is_allowed(),
            None => false,
        });
    }
    Ok(views)
}

impl App {
    /// Which of `devices` the caller may view, decided at the current
    /// authorization version (read afresh: a change committed on any node
    /// counts), through the decision cache when there is one. Not audited:
    /// it filters what the caller is shown, like a list.
    pub(crate) async fn own_device_views(
        &self,
        caller: &Caller,
        devices: &[DeviceId],
    ) -> Result<Vec<bool>, AppError> {
        if let Some(cache) = &self.cache
            && caller.session_token_hash.is_some()
        {
            for _ in 0..3 {
                cache.sync().await?;
                let mut facts = CachedFacts {
                    cache,
                    version: None,
                    mixed: false,
                };
                let result = own_views_cached(&mut facts, caller, devices).await;
                if !facts.mixed {
                    return result;
                }
            }
        }
        self.retrying(|| async {
            let mut tx = self.store.read().await?;
            let views = match crate::run::resolve(&mut tx, caller).await? {
                Ok(actor) => {
                    let mut facts = facts(&mut tx);
                    own_views(&actor, &mut facts, devices).await?
                }
                Err(_) => {
                    tx.finish().await?;
                    return Err(AppError::NotFound {
                        what: "organization",
                    });
                }
            };
            tx.finish().await?;
            Ok(views)
        })
        .await
    }
}

async fn check_cached(
    facts: &mut CachedFacts<'_>,
    caller: &Caller,
    questions: &[Question],
) -> Result<(Vec<Answer>, Option<OrgId>), AppError> {
    if questions.len() > 1 {
        let (users, devices, orgs) = batch_keys(questions);
        facts.cache.prefetch(&users, &devices, &orgs).await?;
    }
    let actor = cached_actor(facts, caller).await?;
    let mut answers = Vec::with_capacity(questions.len());
    for question in questions {
        answers.push(match answer(&actor, facts, question).await? {
            Ok(decision) => Answer::Decided(decision),
            Err(kind) => Answer::NotAllowedToAsk(kind),
        });
    }
    Ok((answers, Some(actor.via().org)))
}

/// The decision for one question, or why the caller may not ask it.
async fn answer(
    caller: &Actor,
    facts: &mut impl FactSource,
    question: &Question,
) -> Result<Result<Decision, AppErrorKind>, AppError> {
    if let Target::Member { user, permission } = question.target {
        return answer_member(caller, facts, question, user, permission).await;
    }
    // The target first: its org decides whether the caller may ask at all.
    let (target_org, device) = match question.target {
        Target::Org { org, .. } => match facts.path(org).await? {
            Some(path) => (path, None),
            None => return Ok(Err(AppErrorKind::NotFound)),
        },
        Target::Device { device, .. } => match facts.device(device).await? {
            Some(record) => (record.org.clone(), Some(record)),
            None => return Ok(Err(AppErrorKind::NotFound)),
        },
        Target::Member { .. } => return Ok(Err(AppErrorKind::NotFound)),
    };
    if let Err(kind) = may_ask_about(caller, &target_org) {
        return Ok(Err(kind));
    }
    let acting = match acting_subject(caller, facts, question).await? {
        Ok(acting) => acting,
        Err(answer) => return Ok(answer),
    };
    Ok(Ok(match (question.target, device) {
        (Target::Org { permission, .. }, _) => acting.decide_org(permission, &target_org),
        (Target::Device { action, .. }, Some(record)) => {
            acting.decide_device(action, &record.facts())
        }
        (Target::Device { .. }, None) | (Target::Member { .. }, _) => {
            return Ok(Err(AppErrorKind::NotFound));
        }
    }))
}

/// `principal` acting in `context` (default: home), rules 1, 2, 8; `None`
/// if the context org does not exist.
async fn act(
    facts: &mut impl FactSource,
    principal: &Principal,
    context: Option<OrgId>,
) -> Result<Option<Result<Actor, Decision>>, AppError> {
    Ok(match context {
        None => Some(principal.act_at_home()),
        Some(context) => facts
            .path(context)
            .await?
            .map(|path| principal.act_in(&path)),
    })
}

/// The asked user acting in the question's context, or already the answer:
/// the denial of rules 1, 2 or 8, or why the caller may not ask (the user is
/// out of its sight, or the context org is absent or out of its sight —
/// alike, so the answer reveals nothing about orgs outside its scope).
async fn acting_subject(
    caller: &Actor,
    facts: &mut impl FactSource,
    question: &Question,
) -> Result<Result<Actor, Result<Decision, AppErrorKind>>, AppError> {
    let Some(subject) = facts.principal(question.user).await? else {
        return Ok(Err(Err(AppErrorKind::NotFound)));
    };
    if !caller.sees_user(&subject) {
        return Ok(Err(Err(AppErrorKind::NotFound)));
    }
    if let Some(context) = question.context {
        match facts.path(context).await? {
            Some(path) if caller.sees_context(&path) => {}
            _ => return Ok(Err(Err(AppErrorKind::NotFound))),
        }
    }
    Ok(match act(facts, &subject, question.context).await? {
        Some(acting) => acting.map_err(Ok),
        None => Err(Err(AppErrorKind::NotFound)),
    })
}

/// Memberships home first, then by org id: the order the user use cases
/// pick the membership they act on from.
fn ordered(memberships: &[Membership]) -> Vec<&Membership> {
    let mut ordered: Vec<&Membership> = memberships.iter().collect();
    ordered.sort_by_key(|m| (!m.home, m.org.id()));
    ordered
}

async fn answer_member(
    caller: &Actor,
    facts: &mut impl FactSource,
    question: &Question,
    target_user: UserId,
    permission: Permission,
) -> Result<Result<Decision, AppErrorKind>, AppError> {
    let Some(target) = facts.principal(target_user).await? else {
        return Ok(Err(AppErrorKind::NotFound));
    };
    let memberships = ordered(&target.memberships);
    let Some(guard) = caller.asked_membership(&memberships) else {
        return Ok(Err(AppErrorKind::NotFound));
    };
    if let Err(kind) = may_ask_about(caller, &guard.org) {
        return Ok(Err(kind));
    }
    let acting = match acting_subject(caller, facts, question).await? {
        Ok(acting) => acting,
        Err(answer) => return Ok(answer),
    };
    // The same membership who-can decides on (non-empty: it holds `guard`).
    let Some(membership) = membership_acted_on(&acting, &memberships, |m| &m.org) else {
        return Ok(Err(AppErrorKind::NotFound));
    };
    let facts = MemberFacts {
        user: target_user,
        org: &membership.org,
        permissions: membership.permissions,
    };
    Ok(Ok(acting.decide_user(permission, &facts)))
}
