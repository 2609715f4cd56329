//! Every decision an Arbor use case takes, and the proof a store write needs.
//!
//! A use case never compares scopes or permissions itself: it loads facts,
//! asks one function of this module named after its action, and gets a
//! [`Verdict`]. An allowing verdict is an [`Allowed<A>`]: proof, for action
//! `A` on the target it names, that the decision allowed it. Its fields are
//! private and only this crate constructs it, so a store mutation that takes
//! `&Allowed<A>` cannot be reached without the decision. Which writes an
//! action may make is declared once, in [`writes`], by the [`Permits`]
//! table: an `Allowed<UpdateOrg>` cannot insert a membership. Locations and
//! tags declare theirs in [`places`].
//!
//! A refusal is a [`Refusal`]: denied by policy (the [`Decision`] says which
//! rule; hidden targets answer 404, visible ones 403), or allowed by policy
//! but refused by a rule of the current state (depth limit, last Admin, …),
//! which carries the allowing decision for the audit row.
//!
//! The only proofs made without an actor come from an [`Operator`]: the
//! server's operator creating a hierarchy (`arbor init`, first-run setup,
//! the demo data) or recovering one (`arbor admin recover`).

// A refusal carries its whole decision (the explanation and the audit row
// need it); verdicts are returned once per use case, never in a hot loop.
#![allow(clippy::result_large_err)]

mod accounts;
mod devices;
mod insight;
mod orgs;
pub mod places;
mod roles;
mod templates;
mod users;

#[cfg(test)]
mod testing;

pub use accounts::{
    InvitationFacts, LoginFacts, ResetFacts, accept_invitation, complete_password_reset, login,
    logout,
};
pub use devices::{AccessChange, ActionUsers, TransferTarget};
pub use insight::Visibility;
pub use orgs::{DeleteOrgFacts, DeletionPlan, MemberMove, MovedMember, least_privileged_role};
pub use roles::{RoleSetWrite, TemplatePlan, TemplateWrites};
pub use templates::{TemplateFacts, TemplateFilter};
pub use users::{MemberAct, TargetMember, TargetMembership, UserList};

use crate::decision::Decision;
use crate::error::DomainError;
use std::fmt;
use std::marker::PhantomData;

/// An action a use case performs; `Target` is what the proof names.
pub trait Action {
    type Target;
}

/// Proof that action `A` on [`Allowed::target`] was allowed. Only this crate
/// constructs one (from an allowing decision, or from an [`Operator`]).
pub struct Allowed<A: Action> {
    decision: Option<Decision>,
    target: A::Target,
    _action: PhantomData<fn() -> A>,
}

impl<A: Action> Allowed<A> {
    pub(crate) fn new(decision: Decision, target: A::Target) -> Self {
        debug_assert!(decision.is_allowed());
        Self {
            decision: Some(decision),
            target,
            _action: PhantomData,
        }
    }

    pub(crate) fn by_operator(_operator: &Operator, target: A::Target) -> Self {
        Self {
            decision: None,
            target,
            _action: PhantomData,
        }
    }

    /// The allowing decision; `None` for an operator's action.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// What the action was allowed on.
    pub fn target(&self) -> &A::Target {
        &self.target
    }
}

impl<A: Action> fmt::Debug for Allowed<A>
where
    A::Target: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowed")
            .field("action", &std::any::type_name::<A>())
            .field("target", &self.target)
            .field("decision", &self.decision)
            .finish()
    }
}

/// Why an action did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Policy denied it; the decision says which rule and whether the target
    /// must look absent.
    Denied(Decision),
    /// Policy allowed it, a rule of the current state refused it.
    Failed {
        decision: Decision,
        error: DomainError,
    },
}

impl Refusal {
    pub fn decision(&self) -> &Decision {
        match self {
            Self::Denied(decision) | Self::Failed { decision, .. } => decision,
        }
    }
}

/// The outcome of a named decision.
pub type Verdict<A> = Result<Allowed<A>, Refusal>;

/// An allowing decision into a proof, a denying one into a refusal.
pub(crate) fn verdict<A: Action>(decision: Decision, target: A::Target) -> Verdict<A> {
    if decision.is_allowed() {
        Ok(Allowed::new(decision, target))
    } else {
        Err(Refusal::Denied(decision))
    }
}

/// A state rule checked after an allowing decision.
pub(crate) fn check<T>(decision: &Decision, rule: Result<T, DomainError>) -> Result<T, Refusal> {
    rule.map_err(|error| Refusal::Failed {
        decision: *decision,
        error,
    })
}

/// The server's operator, acting without an actor. Made only by the commands
/// that run with local access to the database or before any account exists:
/// `arbor init` and first-run setup, the demo data (and the data generator),
/// `arbor admin recover`.
#[derive(Debug)]
pub struct Operator {
    _private: (),
}

impl Operator {
    /// Creating hierarchies on the operator's command: first-run setup
    /// (`arbor init`, `POST /api/v1/setup` with the setup token, refused once
    /// a hierarchy exists), the demo data, and the data generator.
    pub fn setup() -> Self {
        Self { _private: () }
    }

    /// `arbor admin recover`, run with local access to the database.
    pub fn recovery() -> Self {
        Self { _private: () }
    }

    /// Creates a hierarchy (first run, demo data, tests' worlds).
    pub fn create_hierarchy(&self) -> Allowed<CreateHierarchy> {
        Allowed::by_operator(self, ())
    }

    /// Restores a hierarchy's root Admin set and re-activates one of its
    /// Admins (the documented way out of a lockout).
    pub fn recover(&self, hierarchy: crate::OrgId, admin: crate::UserId) -> Allowed<Recover> {
        Allowed::by_operator(self, (hierarchy, admin))
    }
}

macro_rules! actions {
    ($($(#[$doc:meta])* $name:ident => $target:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Action for $name {
                type Target = $target;
            }
        )*
    };
}

use crate::ids::{DeviceId, DeviceTemplateId, OrgId, RoleId, UserId};
use crate::org::OrgPath;

actions! {
    /// A new hierarchy: root org, roles, first Admin (operator only).
    CreateHierarchy => ();
    /// Restoring a hierarchy's root Admin set and one Admin (operator only).
    Recover => (OrgId, UserId);
    /// A sub-org under the target (the parent).
    CreateSuborg => OrgPath;
    /// An org's settings.
    UpdateOrg => OrgId;
    /// Re-parenting: the moved org's old and new path.
    MoveOrg => (OrgPath, OrgPath);
    /// Deleting an org, with what happens to its contents.
    DeleteOrg => DeletionPlan;
    /// Adding a role to the hierarchy (the root org) under a checked name.
    CreateRole => (OrgId, String);
    /// Renaming a role to a checked name.
    RenameRole => (RoleId, String);
    /// Deleting a role, its holders moving to the replacement.
    DeleteRole => crate::role::RoleDeletion;
    /// Replacing one role's set in one org.
    SetRolePermissions => RoleSetWrite;
    /// Saving an org's matrix as a permission template.
    CreatePermissionTemplate => OrgId;
    /// Applying a template to one org, or pushing it to a subtree.
    ApplyPermissionTemplate => TemplatePlan;
    /// A device template in the hierarchy (the root org).
    CreateDeviceTemplate => OrgId;
    /// Enabling a device template for an org.
    EnableDeviceTemplate => OrgId;
    /// Replacing a device template's name, description and parts.
    EditDeviceTemplate => DeviceTemplateId;
    /// Deleting a device template no device uses.
    DeleteDeviceTemplate => DeviceTemplateId;
    /// Disabling a device template for an org no device of it lives in.
    DisableDeviceTemplate => (OrgId, DeviceTemplateId);
    /// A device in the org, with its owner.
    CreateDevice => (OrgPath, Option<UserId>);
    /// A device's new org and owner.
    TransferDevice => (DeviceId, TransferTarget);
    /// A device's name and metafields.
    EditDevice => DeviceId;
    /// Deleting a device (its data goes with it).
    DeleteDevice => DeviceId;
    /// A new auth token for a device (the old one stops working).
    RegenerateDeviceToken => DeviceId;
    /// Writing a datastream value to a device (control).
    ControlDevice => DeviceId;
    /// Deleting a device's data: values, history and events.
    DeleteDeviceData => DeviceId;
    /// A pending user with a membership and an invitation.
    Invite => (OrgId, RoleId);
    /// A member added to an org with a role (no invitation; not over HTTP).
    AddMember => (OrgId, RoleId);
    /// A member's name and locale (user-wide).
    EditUser => TargetMember;
    /// A password-reset link mailed to a member (user-wide).
    ResetPassword => TargetMember;
    /// Ending every session of a member (user-wide).
    ForceLogout => TargetMember;
    /// Suspending or reinstating a member (user-wide).
    SetSuspended => TargetMember;
    /// Deleting a member's account (user-wide).
    DeleteUser => TargetMember;
    /// A fresh invitation link for a pending member.
    ResendInvitation => TargetMember;
    /// Withdrawing a pending member's invitation (the account goes).
    RevokeInvitation => TargetMember;
    /// A member's role in one org.
    ChangeMemberRole => (UserId, OrgId, RoleId);
    /// A member moved to another org with a role.
    TransferUser => (TargetMember, OrgId, RoleId);
    /// A session for the user whose password matched.
    Login => UserId;
    /// Ending one's own session.
    Logout => UserId;
    /// An invited user's password and activation.
    AcceptInvitation => UserId;
    /// A new password from a reset link.
    CompletePasswordReset => UserId;
    /// The caller's own password or profile.
    EditOwnAccount => UserId;
}

/// What a proof for action `Self` lets the store write: `impl Permits<W>`
/// for each write `W` of [`writes`]. The whole table is in this file.
pub trait Permits<W>: Action {}

/// Markers for the store's mutations, named after them.
pub mod writes {
    macro_rules! markers {
        ($($name:ident),* $(,)?) => { $( #[derive(Debug)] pub struct $name; )* };
    }
    markers!(
        InsertOrg,
        InsertHierarchy,
        UpdateOrg,
        MoveSubtree,
        DeleteOrg,
        InsertRole,
        RenameRole,
        DeleteRole,
        SetRolePermissions,
        CopyRolePermissions,
        InsertPermissionTemplate,
        DeletePermissionTemplate,
        InsertUser,
        SetUserStatus,
        UpdateProfile,
        SetPasswordHash,
        DeleteUser,
        InsertMembership,
        SetMemberRole,
        RemoveMembership,
        SetHomeMembership,
        InsertSession,
        RevokeSessions,
        InsertInvitation,
        WithdrawInvitations,
        AcceptInvitation,
        InsertPasswordReset,
        UsePasswordResets,
        ClearLoginFailures,
        EnqueueMail,
        CancelMail,
        InsertDeviceTemplate,
        EnableTemplate,
        UpdateDeviceTemplate,
        DeleteDeviceTemplate,
        DisableTemplate,
        InsertDevice,
        MoveDevice,
        SetDeviceOwner,
        SetDeviceToken,
        UpdateDevice,
        DeleteDevice,
        WriteDeviceValue,
        DeleteDeviceData,
    );
}

macro_rules! permits {
    ($($action:ident => [$($write:ident),* $(,)?];)*) => {
        $( $( impl Permits<writes::$write> for $action {} )* )*
    };
}

permits! {
    CreateHierarchy => [InsertOrg, InsertHierarchy, InsertRole, SetRolePermissions, InsertUser,
        InsertMembership, InsertDeviceTemplate, EnableTemplate];
    Recover => [SetRolePermissions, SetUserStatus, SetMemberRole];
    CreateSuborg => [InsertOrg, CopyRolePermissions];
    UpdateOrg => [UpdateOrg];
    MoveOrg => [MoveSubtree];
    DeleteOrg => [DeleteOrg, MoveSubtree];
    CreateRole => [InsertRole];
    RenameRole => [RenameRole];
    DeleteRole => [DeleteRole];
    SetRolePermissions => [SetRolePermissions];
    CreatePermissionTemplate => [InsertPermissionTemplate];
    ApplyPermissionTemplate => [SetRolePermissions];
    CreateDeviceTemplate => [InsertDeviceTemplate, EnableTemplate];
    EnableDeviceTemplate => [EnableTemplate];
    EditDeviceTemplate => [UpdateDeviceTemplate];
    DeleteDeviceTemplate => [DeleteDeviceTemplate];
    DisableDeviceTemplate => [DisableTemplate];
    CreateDevice => [InsertDevice, SetDeviceToken];
    TransferDevice => [MoveDevice];
    EditDevice => [UpdateDevice];
    DeleteDevice => [DeleteDevice];
    RegenerateDeviceToken => [SetDeviceToken];
    ControlDevice => [WriteDeviceValue];
    DeleteDeviceData => [DeleteDeviceData];
    Invite => [InsertUser, InsertMembership, InsertInvitation, EnqueueMail];
    AddMember => [InsertUser, InsertMembership];
    EditUser => [UpdateProfile];
    ResetPassword => [InsertPasswordReset, EnqueueMail, CancelMail];
    ForceLogout => [RevokeSessions];
    SetSuspended => [SetUserStatus, RevokeSessions];
    DeleteUser => [SetDeviceOwner, RevokeSessions, DeleteUser, CancelMail];
    ResendInvitation => [WithdrawInvitations, InsertInvitation, EnqueueMail, CancelMail];
    RevokeInvitation => [DeleteUser, CancelMail];
    ChangeMemberRole => [SetMemberRole];
    TransferUser => [InsertMembership, RemoveMembership, SetHomeMembership, MoveDevice,
        SetDeviceOwner];
    Login => [InsertSession];
    Logout => [RevokeSessions];
    AcceptInvitation => [AcceptInvitation, SetPasswordHash, SetUserStatus, UpdateProfile,
        CancelMail];
    CompletePasswordReset => [UsePasswordResets, SetPasswordHash, RevokeSessions,
        ClearLoginFailures, CancelMail];
    EditOwnAccount => [SetPasswordHash, UpdateProfile, RevokeSessions, UsePasswordResets,
        CancelMail];
}
