//! The use-case runner: one life cycle for every use case, so that each use
//! case states only what differs.
//!
//! A write use case runs in one write transaction:
//!
//! 1. resolve the caller into an [`Actor`] (rules 1, 2, 8);
//! 2. the use case loads its target within the actor's hierarchy, asks
//!    arbor-core for the decision named after its action ([`Step::allow`]),
//!    and only then locks the rows it will change (PostgreSQL; SQLite holds
//!    the write lock already), so no one takes locks on rows outside their
//!    scope;
//! 3. it writes with the proof, and the runner commits the changes together
//!    with the audit event.
//!
//! A refusal — a denial, a target that does not exist, or a rule of the
//! current state — rolls back whatever ran and commits the audit row alone,
//! exactly once. A denial about something the actor cannot see (and an
//! absent target) is recorded against the actor's *home* org, never the
//! target's: no one can write into another tenant's log. Read use cases run
//! the same way in a read transaction and write an audit row only when
//! refused. Transient contention reruns the whole transaction.

// A stop carries its decision for the audit row; use cases stop once.
#![allow(clippy::result_large_err)]

use crate::{App, AppError, Caller};
use arbor_core::policy::Action;
use arbor_core::{Actor, Allowed, Decision, OrgId, Outcome, Refusal, Verdict};
use arbor_store::{AuditEvent, AuditOutcome, ReadTx, StoreError, Tx, WriteTx};
use std::time::Duration;

/// Whole-transaction attempts on contention.
const ATTEMPTS: u32 = 12;

/// Why a use case stopped before committing.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Denied by policy; `what` names the target in a 404.
    Denied {
        decision: Decision,
        what: &'static str,
    },
    /// Allowed by policy, refused by a rule of the current state.
    Failed {
        decision: Option<Decision>,
        error: AppError,
    },
    /// The database or the server failed; rolled back, not audited (a
    /// `NotFound` is audited as an absent target).
    Error(AppError),
}

impl From<AppError> for Stop {
    fn from(e: AppError) -> Self {
        Self::Error(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Self::Error(e.into())
    }
}

/// A running write use case: its transaction, its actor and its audit event.
pub(crate) struct Step {
    pub tx: WriteTx,
    pub actor: Actor,
    pub event: AuditEvent,
    /// The decision that allowed the last proof, for the audit row.
    decision: Option<Decision>,
}

impl Step {
    /// Adds a detail to the audit event.
    pub fn note(&mut self, key: &str, value: impl serde::Serialize) {
        self.event = self.event.clone().detail(key, value);
    }
}

/// A running read use case, with the audit event of its refusal.
pub(crate) struct ReadStep {
    pub tx: ReadTx,
    pub actor: Actor,
    event: AuditEvent,
}

/// Common to both steps: turning verdicts into proofs or stops.
pub(crate) trait Decides {
    fn actor(&self) -> &Actor;
    fn allowed(&mut self, decision: &Decision);
    fn last_decision(&self) -> Option<Decision>;

    /// The proof, or the stop that audits and answers the refusal.
    fn allow<A: Action>(
        &mut self,
        verdict: Verdict<A>,
        what: &'static str,
    ) -> Result<Allowed<A>, Stop> {
        match verdict {
            Ok(allowed) => {
                if let Some(decision) = allowed.decision() {
                    self.allowed(decision);
                }
                Ok(allowed)
            }
            Err(refusal) => Err(refused(refusal, what)),
        }
    }

    /// An allowing decision passes; any other stops.
    fn require(&mut self, decision: Decision, what: &'static str) -> Result<(), Stop> {
        if decision.is_allowed() {
            self.allowed(&decision);
            Ok(())
        } else {
            Err(Stop::Denied { decision, what })
        }
    }

    /// The target does not exist (answered and audited like a hidden one).
    fn absent(&self, what: &'static str) -> Stop {
        Stop::Denied {
            decision: self.actor().absent(),
            what,
        }
    }

    /// A rule of the current state refuses what policy allowed.
    fn fail(&self, error: AppError) -> Stop {
        Stop::Failed {
            decision: self.last_decision(),
            error,
        }
    }
}

impl Decides for Step {
    fn actor(&self) -> &Actor {
        &self.actor
    }
    fn allowed(&mut self, decision: &Decision) {
        self.decision = Some(*decision);
    }
    fn last_decision(&self) -> Option<Decision> {
        self.decision
    }
}

impl Decides for ReadStep {
    fn actor(&self) -> &Actor {
        &self.actor
    }
    fn allowed(&mut self, _decision: &Decision) {}
    fn last_decision(&self) -> Option<Decision> {
        None
    }
}

pub(crate) fn refused(refusal: Refusal, what: &'static str) -> Stop {
    match refusal {
        Refusal::Denied(decision) => Stop::Denied { decision, what },
        Refusal::Failed { decision, error } => Stop::Failed {
            decision: Some(decision),
            error: error.into(),
        },
    }
}

/// How a refusal names the object it is about: `organization "Child" (id 5)`.
/// Only for objects the caller may see (a denial never gets here).
pub(crate) fn named(kind: &str, name: &str, id: impl std::fmt::Display) -> String {
    format!("{kind} {name:?} (id {id})")
}

/// Prefixes a refusal of the current state (a conflict after policy allowed
/// the action, so the caller sees the object) with the object's name and id.
pub(crate) trait About<T> {
    fn about(self, subject: impl FnOnce() -> String) -> Result<T, Stop>;
}

impl<T> About<T> for Result<T, Stop> {
    fn about(self, subject: impl FnOnce() -> String) -> Result<T, Stop> {
        match self {
            Err(Stop::Failed { decision, error }) => {
                let error = match error {
                    AppError::Conflict { what } => AppError::Conflict {
                        what: format!("{}: {what}", subject()),
                    },
                    AppError::ConflictWith { what, details } => AppError::ConflictWith {
                        what: format!("{}: {what}", subject()),
                        details,
                    },
                    other => other,
                };
                Err(Stop::Failed { decision, error })
            }
            other => other,
        }
    }
}

/// Maps a store `NotFound` of a target load to the audited absent stop.
pub(crate) trait Found<T> {
    fn found(self, step: &impl Decides, what: &'static str) -> Result<T, Stop>;
}

impl<T> Found<T> for Result<T, StoreError> {
    fn found(self, step: &impl Decides, what: &'static str) -> Result<T, Stop> {
        match self {
            Ok(value) => Ok(value),
            Err(StoreError::NotFound { .. }) => Err(step.absent(what)),
            Err(e) => Err(e.into()),
        }
    }
}

impl<T> Found<T> for Result<Option<T>, StoreError> {
    fn found(self, step: &impl Decides, what: &'static str) -> Result<T, Stop> {
        match self {
            Ok(Some(value)) => Ok(value),
            Ok(None) | Err(StoreError::NotFound { .. }) => Err(step.absent(what)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The caller could not act at all (rules 1, 2, 8, or a context org that
/// does not exist), with the home org to record it against.
pub(crate) struct Unresolved {
    decision: Decision,
    home: Option<OrgId>,
}

/// The caller as an [`Actor`] (rules 1, 2, 8), from facts read in `tx`.
pub(crate) async fn resolve<M>(
    tx: &mut Tx<M>,
    caller: &Caller,
) -> Result<Result<Actor, Unresolved>, AppError> {
    let principal = match &caller.session_token_hash {
        Some(hash) => match tx.session_principal(hash).await? {
            Some((_, p)) if p.user == caller.user => Some(p),
            _ => None,
        },
        None => tx.principal(caller.user).await?,
    };
    let principal = principal.ok_or(AppError::NotFound { what: "user" })?;
    let home = principal
        .memberships
        .iter()
        .find(|m| m.home)
        .or_else(|| principal.memberships.first())
        .map(|m| m.org.id());
    let acting = match caller.context {
        None => principal.act_at_home(),
        Some(context) => match tx.org_path(context).await {
            Ok(path) => principal.act_in(&path),
            // A context org that does not exist looks like one outside reach.
            Err(StoreError::NotFound { .. }) => match principal.act_at_home() {
                Ok(actor) => Err(actor.absent()),
                Err(decision) => Err(decision),
            },
            Err(e) => return Err(e.into()),
        },
    };
    Ok(acting.map_err(|decision| Unresolved { decision, home }))
}

/// The audit row of a refusal: hidden targets (and absent ones) are recorded
/// against the actor's home org.
fn refusal_event(event: AuditEvent, decision: &Decision, home: Option<OrgId>) -> AuditEvent {
    let home = decision.via.map(|v| v.org).or(home);
    let mut event = event.decided(decision);
    if decision.outcome != Outcome::Allowed {
        if event.actor_home_org.is_none() {
            event.actor_home_org = home;
        }
        if decision.outcome == Outcome::Hidden {
            event.target_org = home;
        }
    }
    event
}

fn failed_event(
    event: AuditEvent,
    decision: Option<&Decision>,
    error: &AppError,
    actor: &Actor,
) -> AuditEvent {
    let mut event = match decision {
        Some(decision) => event.decided(decision),
        None => {
            let mut event = event;
            event.actor = Some(actor.user());
            event.actor_home_org = Some(actor.via().org);
            event.target_org = event.target_org.or(Some(actor.via().org));
            event
        }
    };
    event.outcome = match error {
        AppError::Forbidden { .. } | AppError::ForbiddenWith { .. } => AuditOutcome::Forbidden,
        _ => AuditOutcome::Failed,
    };
    event.detail("reason", error.to_string())
}

/// How one attempt of a use case ended.
pub(crate) enum Attempt<T> {
    Done(Result<T, AppError>),
    /// Transient contention: run the whole transaction again.
    Retry(AppError),
}

/// One attempt after another of a use case until it is final: opens the
/// transaction with `$begin`, runs the block with `$step` bound to the step,
/// ends it with `$end`. Behind [`write_case!`] and [`read_case!`].
macro_rules! run_case {
    ($begin:ident, $end:ident, $app:expr, $caller:expr, $event:expr, |$step:ident| $body:block) => {{
        let app: &$crate::App = $app;
        let caller: &$crate::Caller = $caller;
        let event: ::arbor_store::AuditEvent = $event;
        let mut attempt = 0u32;
        loop {
            let outcome = match app.$begin(caller, &event).await {
                Ok(mut begun) => {
                    let result: Result<_, $crate::run::Stop> = {
                        let $step = &mut begun;
                        async { $body }.await
                    };
                    app.$end(begun, result).await
                }
                Err(early) => early,
            };
            if let Some(result) = $crate::run::settled(outcome, &mut attempt).await {
                break result;
            }
        }
    }};
}
pub(crate) use run_case;

/// Runs a write use case (see the module docs): `write_case!(app, caller,
/// event, |step| { … })`, where the block uses `step: &mut Step` and
/// yields `Result<T, Stop>`. A macro rather than a function taking an async
/// closure, so that the use case's future stays `Send` for the server.
macro_rules! write_case {
    ($($case:tt)*) => { $crate::run::run_case!(begin_write, end_write, $($case)*) };
}
pub(crate) use write_case;

/// Runs a read use case: like [`write_case!`] with `step: &mut ReadStep`.
macro_rules! read_case {
    ($($case:tt)*) => { $crate::run::run_case!(begin_read, end_read, $($case)*) };
}
pub(crate) use read_case;

/// The result once an attempt is final; `None` after waiting to retry.
pub(crate) async fn settled<T>(
    outcome: Attempt<T>,
    attempt: &mut u32,
) -> Option<Result<T, AppError>> {
    match outcome {
        Attempt::Done(result) => Some(result),
        Attempt::Retry(e) if *attempt + 1 >= ATTEMPTS => Some(Err(e)),
        Attempt::Retry(_) => {
            *attempt += 1;
            // Jittered, so that the losers do not collide again.
            let jitter = rand::random_range(0..(5u64 << (*attempt).min(6)));
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            None
        }
    }
}

fn early<S, T>(result: Result<S, AppError>) -> Result<S, Attempt<T>> {
    result.map_err(|e| {
        if e.is_retryable() {
            Attempt::Retry(e)
        } else {
            Attempt::Done(Err(e))
        }
    })
}

impl App {
    /// Opens the write transaction and resolves the caller; a caller that
    /// cannot act is audited and answered here.
    pub(crate) async fn begin_write<T>(
        &self,
        caller: &Caller,
        event: &AuditEvent,
    ) -> Result<Step, Attempt<T>> {
        let mut tx = early(self.store.write().await.map_err(AppError::from))?;
        match early(resolve(&mut tx, caller).await)? {
            Ok(actor) => Ok(Step {
                tx,
                actor,
                event: event.clone(),
                decision: None,
            }),
            Err(unresolved) => {
                let _ = tx.rollback().await;
                let row = refusal_event(event.clone(), &unresolved.decision, unresolved.home);
                Err(self
                    .audit(row, AppError::denied(&unresolved.decision, "organization"))
                    .await)
            }
        }
    }

    /// Commits a finished write use case with its audit event, or rolls it
    /// back and audits the refusal.
    pub(crate) async fn end_write<T>(&self, step: Step, result: Result<T, Stop>) -> Attempt<T> {
        match result {
            Ok(value) => {
                // The row names the use case's target org where it set one
                // (a deletion is decided on the parent, but targets the org).
                let target = step.event.target_org;
                let mut row = match &step.decision {
                    Some(decision) => step.event.decided(decision),
                    None => step.event,
                };
                row.target_org = target.or(row.target_org);
                settle(
                    step.tx
                        .commit(row)
                        .await
                        .map(|()| value)
                        .map_err(Into::into),
                )
            }
            Err(stop) => {
                let _ = step.tx.rollback().await;
                self.stopped(stop, step.event, &step.actor).await
            }
        }
    }

    /// Opens the read transaction and resolves the caller.
    pub(crate) async fn begin_read<T>(
        &self,
        caller: &Caller,
        event: &AuditEvent,
    ) -> Result<ReadStep, Attempt<T>> {
        let mut tx = early(self.store.read().await.map_err(AppError::from))?;
        match early(resolve(&mut tx, caller).await)? {
            Ok(actor) => Ok(ReadStep {
                tx,
                actor,
                event: event.clone(),
            }),
            Err(unresolved) => {
                let _ = tx.finish().await;
                let row = refusal_event(event.clone(), &unresolved.decision, unresolved.home);
                Err(self
                    .audit(row, AppError::denied(&unresolved.decision, "organization"))
                    .await)
            }
        }
    }

    /// Ends a read use case; a refusal is audited.
    pub(crate) async fn end_read<T>(&self, step: ReadStep, result: Result<T, Stop>) -> Attempt<T> {
        match result {
            Ok(value) => settle(step.tx.finish().await.map(|()| value).map_err(Into::into)),
            Err(stop) => {
                let _ = step.tx.finish().await;
                self.stopped(stop, step.event, &step.actor).await
            }
        }
    }

    /// Audits and answers a stop of a write or read use case.
    async fn stopped<T>(&self, stop: Stop, event: AuditEvent, actor: &Actor) -> Attempt<T> {
        match stop {
            Stop::Error(e) if e.is_retryable() => Attempt::Retry(e),
            Stop::Error(AppError::NotFound { what }) => {
                let decision = actor.absent();
                let row = refusal_event(event, &decision, None);
                self.audit(row, AppError::NotFound { what }).await
            }
            Stop::Error(e) => Attempt::Done(Err(e)),
            Stop::Denied { decision, what } => {
                let row = refusal_event(event, &decision, None);
                self.audit(row, AppError::denied(&decision, what)).await
            }
            Stop::Failed { decision, error } => {
                let row = failed_event(event, decision.as_ref(), &error, actor);
                self.audit(row, error).await
            }
        }
    }

    /// Commits the audit row of a refusal alone and answers with `error`.
    async fn audit<T>(&self, row: AuditEvent, error: AppError) -> Attempt<T> {
        let committed = async {
            let tx = self.store.write().await?;
            tx.commit(row).await
        };
        match committed.await {
            Ok(()) => Attempt::Done(Err(error)),
            Err(e) => settle(Err(e.into())),
        }
    }
}

fn settle<T>(result: Result<T, AppError>) -> Attempt<T> {
    match result {
        Err(e) if e.is_retryable() => Attempt::Retry(e),
        other => Attempt::Done(other),
    }
}
