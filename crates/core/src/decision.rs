//! The authorization decision of SPEC.md section 4, with its explanation.
//!
//! A request is made by a [`Principal`] (a user with memberships). It becomes an
//! [`Actor`] only through [`Principal::act_in`] / [`Principal::act_at_home`],
//! which apply rules 1, 2 and 8 (active user, valid session, context org reachable
//! through the nearest membership). Every check on an actor returns a
//! [`Decision`] that says not only allow/deny but which membership, role, org,
//! permission and rule decided it — the data behind "explain access".
//!
//! Deliberate choices where SPEC.md leaves room:
//! - The permissions used are always those of the acting membership's role *as
//!   configured in the membership's (home) org*, never the target org's table.
//! - A device in another hierarchy is denied even through ownership (owners are
//!   members of the device's org, so this never removes a legitimate allow; it is
//!   defence in depth for tenant isolation).
//! - A denied object the actor cannot see at all is [`Outcome::Hidden`] (the API
//!   answers 404); a visible object with a missing permission is
//!   [`Outcome::Forbidden`] (403).
//! - The subset rule of rule 6 guards every user-management mutation (edit,
//!   delete, change password, force logout, suspend, transfer), not only the four
//!   the rule names.

use crate::ids::{OrgId, RoleId, UserId};
use crate::org::OrgPath;
use crate::permission::{Permission, PermissionSet};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Account status of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Pending,
    Active,
    Suspended,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// One membership with the facts the decision needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The membership's organization (the actor's home org `H` when used).
    pub org: OrgPath,
    pub role: RoleId,
    /// `perms(H, role)`: the role's set as configured in this membership's org.
    pub permissions: PermissionSet,
    /// The user's home membership, used when a request names no context.
    pub home: bool,
}

/// A user making a request, with every membership of the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub status: UserStatus,
    /// The session the request came with has been revoked (logout, force logout,
    /// suspension, password change).
    pub session_revoked: bool,
    pub memberships: Vec<Membership>,
}

/// The membership through which an actor acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Via {
    pub org: OrgId,
    pub role: RoleId,
}

/// The three ways a decision can end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    /// Denied, and the target is visible to the actor (HTTP 403).
    Forbidden,
    /// Denied, and the target must look absent (HTTP 404).
    Hidden,
}

/// Which rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Rule 1: the user is pending or suspended.
    UserInactive,
    /// Rule 1: the session was revoked.
    SessionRevoked,
    /// Rule 8: no membership at or above the context org.
    NoMembership,
    /// Rule 2: the context is below the home org and the role may not switch.
    ContextNeedsSwitch,
    /// Isolation: the target belongs to another hierarchy.
    OtherHierarchy,
    /// Rules 3/4/7: the target org is outside the actor's scope.
    OutsideScope,
    /// Rule 5/7: the device is neither in scope with `org_devices.view` nor owned
    /// with `own_devices.view`.
    NotVisible,
    /// Rules 4/5: the needed permission is not in the role's set.
    MissingPermission,
    /// Rule 6: the set to grant or edit holds permissions the actor lacks.
    Escalation,
    /// Rule 6: the target user holds permissions the actor lacks, in the actor's own org.
    TargetMorePrivileged,
    /// Device templates are created, edited and deleted only in the root org.
    RootOrgOnly,
    /// Rule 7: the target does not exist (answered like one outside the scope).
    NoSuchTarget,
    /// Rule 6 for user-wide actions: the member's home membership lies
    /// outside the actor's scope, or the action is refused there.
    HomeOutsideScope,
    /// Rules 3/4: the target org lies in the actor's scope (viewing it needs
    /// no permission).
    InScope,
    /// Rule 1: a credential of the user's own (password, single-use token)
    /// was checked.
    Credential,
    /// Rule 1: an active user with a live session acts on its own account.
    OwnAccount,
    /// Rule 4: target org in scope and permission held.
    OrgPermission,
    /// Rule 5, first half: device org in scope and the `org_devices` permission held.
    DeviceInScope,
    /// Rule 5, second half: the actor owns the device and holds the `own_devices` permission.
    DeviceOwned,
}

impl Rule {
    /// The number of the SPEC.md section 4 rule this is an instance of.
    pub fn spec_rule(self) -> u8 {
        match self {
            Self::UserInactive | Self::SessionRevoked | Self::Credential | Self::OwnAccount => 1,
            Self::ContextNeedsSwitch => 2,
            Self::OtherHierarchy | Self::OutsideScope | Self::NoSuchTarget => 7,
            Self::OrgPermission | Self::MissingPermission | Self::RootOrgOnly | Self::InScope => 4,
            Self::NotVisible | Self::DeviceInScope | Self::DeviceOwned => 5,
            Self::Escalation | Self::TargetMorePrivileged | Self::HomeOutsideScope => 6,
            Self::NoMembership => 8,
        }
    }
}

/// A decision and everything needed to explain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub rule: Rule,
    pub user: UserId,
    /// The membership used (absent when none could be chosen).
    pub via: Option<Via>,
    /// The org the actor acted in.
    pub context: Option<OrgId>,
    /// The org of the target (the org itself, the device's or the user's org).
    pub target_org: Option<OrgId>,
    /// The permission that allowed, or that was missing.
    pub permission: Option<Permission>,
    /// For rule 6: the permissions the actor would need and lacks.
    pub missing: PermissionSet,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allowed
    }

    /// A sentence a person can read.
    pub fn explain(&self) -> String {
        self.to_string()
    }

    /// The checks of section 4 in the order the decision applies them, up to
    /// the one that decided: every earlier check passed, the deciding one
    /// passed (an allow) or failed (a denial). Allows stop at the permission
    /// check; the rule 6 step appears only when rule 6 refused.
    pub fn trace(&self) -> Vec<TraceStep> {
        let device = matches!(
            self.rule,
            Rule::DeviceInScope | Rule::DeviceOwned | Rule::NotVisible
        ) || self.permission.is_some_and(|p| {
            matches!(
                p.group(),
                crate::PermissionGroup::OrgDevices | crate::PermissionGroup::OwnDevices
            )
        });
        let permission_rule = if device { 5 } else { 4 };
        let steps: [(u8, &'static str); 8] = [
            (1, "the user is active"),
            (1, "the session is valid"),
            (8, "a membership at or above the context org is chosen"),
            (
                2,
                "the context org is the membership's org, or below it with organizations.switch_to_suborgs",
            ),
            (7, "the target belongs to the actor's hierarchy"),
            (
                3,
                "the target lies in the actor's scope (a device: or is owned by the actor)",
            ),
            (permission_rule, "the role holds the needed permission"),
            (
                6,
                "no escalation: the actor holds every permission involved",
            ),
        ];
        let (last, passed) = match self.rule {
            Rule::UserInactive => (0, false),
            Rule::SessionRevoked => (1, false),
            Rule::NoMembership => (2, false),
            Rule::ContextNeedsSwitch => (3, false),
            Rule::OtherHierarchy => (4, false),
            Rule::OutsideScope | Rule::NotVisible | Rule::NoSuchTarget => (5, false),
            Rule::InScope => (5, true),
            Rule::Credential => (0, self.is_allowed()),
            Rule::OwnAccount => (1, true),
            Rule::MissingPermission | Rule::RootOrgOnly => (6, false),
            Rule::Escalation | Rule::TargetMorePrivileged | Rule::HomeOutsideScope => (7, false),
            Rule::OrgPermission | Rule::DeviceInScope | Rule::DeviceOwned => (6, true),
        };
        steps[..=last]
            .iter()
            .enumerate()
            .map(|(i, (rule, check))| TraceStep {
                rule: *rule,
                check,
                passed: i < last || passed,
            })
            .collect()
    }
}

/// One check of a decision's trace ([`Decision::trace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// The SPEC.md section 4 rule the check belongs to.
    pub rule: u8,
    pub check: &'static str,
    pub passed: bool,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.outcome {
            Outcome::Allowed => "allowed",
            Outcome::Forbidden => "denied",
            Outcome::Hidden => "denied (target hidden)",
        };
        write!(f, "{verdict} by rule {}: ", self.rule.spec_rule())?;
        let via = self
            .via
            .map(|v| format!("membership in org {} with role {}", v.org, v.role))
            .unwrap_or_else(|| "no membership".into());
        let permission = self.permission.map(Permission::id).unwrap_or("-");
        let target = self
            .target_org
            .map(|o| o.to_string())
            .unwrap_or_else(|| "-".into());
        match self.rule {
            Rule::UserInactive => write!(f, "user {} is not active", self.user),
            Rule::SessionRevoked => write!(f, "the session of user {} was revoked", self.user),
            Rule::NoMembership => write!(
                f,
                "user {} has no membership at or above org {}",
                self.user,
                self.context.map(|c| c.to_string()).unwrap_or_default()
            ),
            Rule::ContextNeedsSwitch => write!(
                f,
                "{via} lacks organizations.switch_to_suborgs, needed to act in sub-org {}",
                self.context.map(|c| c.to_string()).unwrap_or_default()
            ),
            Rule::OtherHierarchy => write!(f, "org {target} belongs to another hierarchy"),
            Rule::NoSuchTarget => write!(f, "the target does not exist"),
            Rule::HomeOutsideScope => write!(
                f,
                "a user-wide action needs {permission} on the member's home membership, which {via} may not act on"
            ),
            Rule::InScope => write!(f, "org {target} is in the scope of {via}"),
            Rule::Credential => write!(f, "user {} presented its own credential", self.user),
            Rule::OwnAccount => write!(f, "user {} acts on its own account", self.user),
            Rule::OutsideScope => write!(f, "org {target} is outside the scope of {via}"),
            Rule::NotVisible => write!(
                f,
                "{via} may neither view devices of org {target} nor owns this device with own_devices.view"
            ),
            Rule::MissingPermission => write!(f, "{via} lacks {permission} for org {target}"),
            Rule::Escalation => write!(
                f,
                "{via} would grant permissions it lacks: {:?}",
                self.missing
            ),
            Rule::TargetMorePrivileged => write!(
                f,
                "the target user in org {target} holds permissions {via} lacks: {:?}",
                self.missing
            ),
            Rule::RootOrgOnly => write!(
                f,
                "{permission} takes effect only in the hierarchy's root org, not org {target}"
            ),
            Rule::OrgPermission => {
                write!(
                    f,
                    "{via} holds {permission} and org {target} is in its scope"
                )
            }
            Rule::DeviceInScope => write!(
                f,
                "{via} holds {permission} and the device's org {target} is in its scope"
            ),
            Rule::DeviceOwned => write!(
                f,
                "user {} owns the device and {via} holds {permission}",
                self.user
            ),
        }
    }
}

/// The orgs an actor can reach: `{H}` plus, with `switch_to_suborgs`, all of
/// `H`'s descendants (rule 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub home: OrgPath,
    pub descendants: bool,
}

impl Scope {
    #[inline]
    pub fn contains(&self, org: &OrgPath) -> bool {
        if self.descendants {
            self.home.contains(org)
        } else {
            org.id() == self.home.id()
        }
    }

    /// The orgs in both `self` and `other`, as a scope; `None` when none is.
    /// Subtrees either nest or are disjoint, so the intersection of two
    /// scopes is always one of them or empty.
    pub fn intersect(&self, other: &Scope) -> Option<Scope> {
        let within = |inner: &Scope, outer: &Scope| {
            if outer.descendants {
                outer.home.contains(&inner.home)
            } else {
                !inner.descendants && inner.home.id() == outer.home.id()
            }
        };
        if within(self, other) {
            Some(self.clone())
        } else if within(other, self) {
            Some(other.clone())
        } else {
            None
        }
    }
}

/// What an action on a device needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAction {
    View,
    Control,
    Edit,
    Delete,
    DeleteData,
    DownloadReports,
    ViewTimeline,
    ServiceTab,
    /// Transfer to another owner or org: device view plus `transfers.devices`.
    Transfer,
    /// See or regenerate the auth token: device view plus `auth_tokens.edit`.
    EditAuthToken,
}

impl DeviceAction {
    pub const ALL: [DeviceAction; 10] = [
        Self::View,
        Self::Control,
        Self::Edit,
        Self::Delete,
        Self::DeleteData,
        Self::DownloadReports,
        Self::ViewTimeline,
        Self::ServiceTab,
        Self::Transfer,
        Self::EditAuthToken,
    ];

    /// The `org_devices` permission that allows the action on devices in scope.
    pub fn org_permission(self) -> Permission {
        use Permission as P;
        match self {
            Self::View | Self::Transfer | Self::EditAuthToken => P::OrgDevicesView,
            Self::Control => P::OrgDevicesControl,
            Self::Edit => P::OrgDevicesEdit,
            Self::Delete => P::OrgDevicesDelete,
            Self::DeleteData => P::OrgDevicesDeleteData,
            Self::DownloadReports => P::OrgDevicesDownloadReports,
            Self::ViewTimeline => P::OrgDevicesViewTimeline,
            Self::ServiceTab => P::OrgDevicesServiceTab,
        }
    }

    /// The `own_devices` permission that allows the action on owned devices, if
    /// the action exists for owners.
    pub fn own_permission(self) -> Option<Permission> {
        use Permission as P;
        match self {
            Self::View | Self::Transfer | Self::EditAuthToken => Some(P::OwnDevicesView),
            Self::Control => Some(P::OwnDevicesControl),
            Self::Edit => Some(P::OwnDevicesEdit),
            Self::DeleteData => Some(P::OwnDevicesDeleteData),
            Self::DownloadReports => Some(P::OwnDevicesDownloadReports),
            Self::ViewTimeline => Some(P::OwnDevicesViewTimeline),
            Self::Delete | Self::ServiceTab => None,
        }
    }

    /// A permission needed on top of seeing the device.
    pub fn extra_permission(self) -> Option<Permission> {
        match self {
            Self::Transfer => Some(Permission::TransfersDevices),
            Self::EditAuthToken => Some(Permission::AuthTokensEdit),
            _ => None,
        }
    }
}

/// The facts about a device the decision needs.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    pub org: &'a OrgPath,
    pub owner: Option<UserId>,
}

/// The facts about a member that user-management decisions need: the
/// membership being acted on.
#[derive(Clone, Copy, Debug)]
pub struct MemberFacts<'a> {
    pub user: UserId,
    pub org: &'a OrgPath,
    /// The member's role set in that org.
    pub permissions: PermissionSet,
}

/// Which devices an actor may act on: `(org in scope) OR (owner = user)`, each
/// half present only if the role holds the matching permission. The store turns
/// it into a SQL predicate; [`DeviceFilter::matches`] is the same predicate in
/// memory, and agrees with [`Actor::decide_device`] by construction and by test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceFilter {
    /// Devices of other hierarchies never match.
    pub hierarchy: OrgId,
    /// Devices whose org is in this scope match.
    pub scope: Option<Scope>,
    /// Devices owned by this user match.
    pub owner: Option<UserId>,
    /// A list's narrowing (rule 9, or an org the caller asked for): only
    /// devices whose org is also in here match. Narrowing never widens.
    pub within: Option<Scope>,
}

impl DeviceFilter {
    /// Nothing can match.
    pub fn is_empty(&self) -> bool {
        self.scope.is_none() && self.owner.is_none()
    }

    #[inline]
    pub fn matches(&self, device: &DeviceFacts<'_>) -> bool {
        device.org.root_id() == self.hierarchy
            && (self.scope.as_ref().is_some_and(|s| s.contains(device.org))
                || (self.owner.is_some() && device.owner == self.owner))
            && self.within.as_ref().is_none_or(|w| w.contains(device.org))
    }
}

/// A principal acting through one membership in one context org. Only obtained
/// from a principal through rules 1, 2 and 8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    user: UserId,
    via: Via,
    context: OrgPath,
    permissions: PermissionSet,
    scope: Scope,
}

fn denied(principal: &Principal, rule: Rule, context: Option<OrgId>, via: Option<Via>) -> Decision {
    Decision {
        outcome: Outcome::Hidden,
        rule,
        user: principal.user,
        via,
        context,
        target_org: context,
        permission: None,
        missing: PermissionSet::EMPTY,
    }
}

impl Principal {
    fn check_active(&self, context: Option<OrgId>) -> Result<(), Decision> {
        if self.status != UserStatus::Active {
            return Err(denied(self, Rule::UserInactive, context, None));
        }
        if self.session_revoked {
            return Err(denied(self, Rule::SessionRevoked, context, None));
        }
        Ok(())
    }

    /// Acts in the home membership's org (the default context).
    pub fn act_at_home(&self) -> Result<Actor, Decision> {
        let home = self
            .memberships
            .iter()
            .find(|m| m.home)
            .or_else(|| self.memberships.first());
        match home {
            Some(m) => self.act_in(&m.org),
            None => {
                self.check_active(None)?;
                Err(denied(self, Rule::NoMembership, None, None))
            }
        }
    }

    /// Acts in `context`: chooses the membership at or nearest above it (rule 8)
    /// and checks that the context is reachable from it (rule 2).
    pub fn act_in(&self, context: &OrgPath) -> Result<Actor, Decision> {
        self.check_active(Some(context.id()))?;
        let membership = self
            .memberships
            .iter()
            .filter(|m| m.org.contains(context))
            .max_by_key(|m| m.org.depth())
            .ok_or_else(|| denied(self, Rule::NoMembership, Some(context.id()), None))?;
        let via = Via {
            org: membership.org.id(),
            role: membership.role,
        };
        let switch = membership
            .permissions
            .contains(Permission::OrganizationsSwitchToSuborgs);
        if membership.org.id() != context.id() && !switch {
            return Err(denied(
                self,
                Rule::ContextNeedsSwitch,
                Some(context.id()),
                Some(via),
            ));
        }
        Ok(Actor {
            user: self.user,
            via,
            context: context.clone(),
            permissions: membership.permissions,
            scope: Scope {
                home: membership.org.clone(),
                descendants: switch,
            },
        })
    }

    /// Acts through the membership at `org` in that org. Used by who-can, which
    /// asks whether *any* context lets the user act.
    fn act_through(&self, membership: &Membership) -> Result<Actor, Decision> {
        self.act_in(&membership.org)
    }
}

impl Actor {
    pub fn user(&self) -> UserId {
        self.user
    }

    pub fn via(&self) -> Via {
        self.via
    }

    /// The acting membership's org, `H`.
    pub fn home(&self) -> &OrgPath {
        &self.scope.home
    }

    pub fn context(&self) -> OrgId {
        self.context.id()
    }

    /// The context org `C` with its path.
    pub fn context_path(&self) -> &OrgPath {
        &self.context
    }

    /// Rule 9: what lists show — the scope, narrowed to `C` and its
    /// descendants when the actor switched to a sub-org `C ≠ H`. Narrowing
    /// never widens: below `H`, `C` is only reachable with
    /// `switch_to_suborgs`, which already puts `C`'s subtree in the scope.
    pub fn list_scope(&self) -> Scope {
        if self.context.id() == self.scope.home.id() {
            self.scope.clone()
        } else {
            Scope {
                home: self.context.clone(),
                descendants: self.scope.descendants,
            }
        }
    }

    /// `P = perms(H, role)`.
    pub fn permissions(&self) -> PermissionSet {
        self.permissions
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn hierarchy(&self) -> OrgId {
        self.scope.home.root_id()
    }

    pub(crate) fn decision(
        &self,
        outcome: Outcome,
        rule: Rule,
        target: &OrgPath,
        permission: Option<Permission>,
    ) -> Decision {
        Decision {
            outcome,
            rule,
            user: self.user,
            via: Some(self.via),
            context: Some(self.context.id()),
            target_org: Some(target.id()),
            permission,
            missing: PermissionSet::EMPTY,
        }
    }

    pub(crate) fn hidden_unless_in_scope(&self, target: &OrgPath) -> Option<Decision> {
        if !self.scope.home.same_hierarchy(target) {
            Some(self.decision(Outcome::Hidden, Rule::OtherHierarchy, target, None))
        } else if !self.scope.contains(target) {
            Some(self.decision(Outcome::Hidden, Rule::OutsideScope, target, None))
        } else {
            None
        }
    }

    /// Rule 4: an org-level action needing `permission` on org `target`.
    pub fn decide_org(&self, permission: Permission, target: &OrgPath) -> Decision {
        if let Some(hidden) = self.hidden_unless_in_scope(target) {
            return Decision {
                permission: Some(permission),
                ..hidden
            };
        }
        if self.permissions.contains(permission) {
            self.decision(
                Outcome::Allowed,
                Rule::OrgPermission,
                target,
                Some(permission),
            )
        } else {
            self.decision(
                Outcome::Forbidden,
                Rule::MissingPermission,
                target,
                Some(permission),
            )
        }
    }

    /// Device templates: viewing follows rule 4; creating, editing and deleting
    /// also require the target to be the hierarchy's root org.
    pub fn decide_device_template(&self, permission: Permission, target: &OrgPath) -> Decision {
        let decision = self.decide_org(permission, target);
        let mutating = matches!(
            permission,
            Permission::TemplatesCreate | Permission::TemplatesEdit | Permission::TemplatesDelete
        );
        if decision.is_allowed() && mutating && target.depth() != 1 {
            return self.decision(
                Outcome::Forbidden,
                Rule::RootOrgOnly,
                target,
                Some(permission),
            );
        }
        decision
    }

    /// Rule 5: an action on a device. Allowed iff
    /// `(O_d ∈ S ∧ org_devices.k ∈ P) ∨ (owner(d) = user ∧ own_devices.k ∈ P)`,
    /// plus the action's extra permission for transfers and auth tokens. A denial
    /// is [`Outcome::Hidden`] unless the actor may at least view the device.
    #[inline]
    pub fn decide_device(&self, action: DeviceAction, device: &DeviceFacts<'_>) -> Decision {
        let org = device.org;
        if !self.scope.home.same_hierarchy(org) {
            return self.decision(Outcome::Hidden, Rule::OtherHierarchy, org, None);
        }
        let p = self.permissions;
        let in_scope = self.scope.contains(org);
        let owned = device.owner == Some(self.user);
        let org_permission = action.org_permission();
        let own_permission = action.own_permission();
        let extra = action.extra_permission();
        let extra_ok = extra.is_none_or(|e| p.contains(e));
        if extra_ok {
            if in_scope && p.contains(org_permission) {
                let shown = extra.unwrap_or(org_permission);
                return self.decision(Outcome::Allowed, Rule::DeviceInScope, org, Some(shown));
            }
            if let Some(own) = own_permission
                && owned
                && p.contains(own)
            {
                let shown = extra.unwrap_or(own);
                return self.decision(Outcome::Allowed, Rule::DeviceOwned, org, Some(shown));
            }
        }
        let org_view = in_scope && p.contains(Permission::OrgDevicesView);
        let own_view = owned && p.contains(Permission::OwnDevicesView);
        if !org_view && !own_view {
            let rule = if in_scope || owned {
                Rule::NotVisible
            } else {
                Rule::OutsideScope
            };
            return self.decision(Outcome::Hidden, rule, org, Some(org_permission));
        }
        let missing = match extra {
            Some(extra) if !extra_ok => extra,
            _ if org_view => org_permission,
            _ => own_permission.unwrap_or(org_permission),
        };
        self.decision(
            Outcome::Forbidden,
            Rule::MissingPermission,
            org,
            Some(missing),
        )
    }

    /// The devices this actor may act on with `action`, as a filter: exactly the
    /// devices [`Actor::decide_device`] allows.
    pub fn device_filter(&self, action: DeviceAction) -> DeviceFilter {
        let p = self.permissions;
        let extra_ok = action.extra_permission().is_none_or(|e| p.contains(e));
        let org_ok = extra_ok && p.contains(action.org_permission());
        let own_ok = extra_ok && action.own_permission().is_some_and(|own| p.contains(own));
        DeviceFilter {
            hierarchy: self.hierarchy(),
            scope: org_ok.then(|| self.scope.clone()),
            owner: own_ok.then_some(self.user),
            within: None,
        }
    }

    /// The orgs where this actor may use `permission`: its scope, or nothing.
    pub fn org_filter(&self, permission: Permission) -> Option<Scope> {
        self.permissions
            .contains(permission)
            .then(|| self.scope.clone())
    }

    /// User management (rules 4 and 6): `permission` is a `users.*` permission,
    /// `target` the membership acted on. Members are visible with `users.view`.
    pub fn decide_user(&self, permission: Permission, target: &MemberFacts<'_>) -> Decision {
        let org = target.org;
        if let Some(hidden) = self.hidden_unless_in_scope(org) {
            return Decision {
                permission: Some(permission),
                ..hidden
            };
        }
        if !self.permissions.contains(Permission::UsersView) && target.user != self.user {
            return self.decision(
                Outcome::Hidden,
                Rule::NotVisible,
                org,
                Some(Permission::UsersView),
            );
        }
        if !self.permissions.contains(permission) {
            return self.decision(
                Outcome::Forbidden,
                Rule::MissingPermission,
                org,
                Some(permission),
            );
        }
        // Rule 6 guards every action on a member; resending and revoking an
        // invitation act on a (pending) member too.
        let guarded = matches!(
            permission,
            Permission::UsersInvite
                | Permission::UsersEdit
                | Permission::UsersDelete
                | Permission::UsersChangePassword
                | Permission::UsersForceLogout
                | Permission::UsersSuspend
                | Permission::UsersTransfer
        );
        // Rule 6: only an actor of a strict ancestor org may act on a member
        // more privileged than itself.
        let same_org = org.id() == self.scope.home.id();
        let missing = target.permissions.difference(self.permissions);
        if guarded && same_org && !missing.is_empty() {
            return Decision {
                missing,
                ..self.decision(
                    Outcome::Forbidden,
                    Rule::TargetMorePrivileged,
                    org,
                    Some(permission),
                )
            };
        }
        self.decision(Outcome::Allowed, Rule::OrgPermission, org, Some(permission))
    }

    /// Rule 6 for grants: `permission` on `target` (rule 4), and every permission
    /// of `granted` must be held by the actor.
    pub(crate) fn decide_grant(
        &self,
        permission: Permission,
        target: &OrgPath,
        granted: PermissionSet,
    ) -> Decision {
        let decision = self.decide_org(permission, target);
        if !decision.is_allowed() {
            return decision;
        }
        let missing = granted.difference(self.permissions);
        if missing.is_empty() {
            decision
        } else {
            Decision {
                outcome: Outcome::Forbidden,
                rule: Rule::Escalation,
                missing,
                ..decision
            }
        }
    }

    /// Replacing a role's set `old` by `new` in org `target`: needs `roles.edit`,
    /// and the actor must hold every permission of both sets.
    pub fn decide_set_permissions(
        &self,
        target: &OrgPath,
        old: PermissionSet,
        new: PermissionSet,
    ) -> Decision {
        self.decide_grant(Permission::RolesEdit, target, old.union(new))
    }

    /// Giving someone a role whose set in `target` is `role_permissions`, through
    /// `permission` (`users.invite`, `users.edit` or `users.transfer`).
    pub fn decide_assign_role(
        &self,
        permission: Permission,
        target: &OrgPath,
        role_permissions: PermissionSet,
    ) -> Decision {
        self.decide_grant(permission, target, role_permissions)
    }
}

/// One answer of who-can: a user and the membership that grants the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub user: UserId,
    pub via: Via,
    pub rule: Rule,
    pub permission: Option<Permission>,
}

fn who_can(principals: &[Principal], mut decide: impl FnMut(&Actor) -> Decision) -> Vec<Grant> {
    let mut grants = Vec::new();
    for principal in principals {
        let granted = principal.memberships.iter().find_map(|m| {
            let actor = principal.act_through(m).ok()?;
            let decision = decide(&actor);
            decision.is_allowed().then_some(Grant {
                user: principal.user,
                via: actor.via,
                rule: decision.rule,
                permission: decision.permission,
            })
        });
        grants.extend(granted);
    }
    grants
}

/// Which of `principals` may do `action` on the device, each with the
/// membership that grants it. Pass the members of the device's org and of its
/// ancestors, and the owner: nobody else can be allowed.
pub fn who_can_device(
    action: DeviceAction,
    device: &DeviceFacts<'_>,
    principals: &[Principal],
) -> Vec<Grant> {
    who_can(principals, |actor| actor.decide_device(action, device))
}

/// The membership of a user that `actor` acts on when it manages that user:
/// the first of `memberships` (in the order given: home first, then by org
/// id) inside the actor's scope, else the first, which the decision then
/// hides. `org` gives a membership's org. `None` only for a user without
/// memberships. The user use cases, `check` and who-can all pick with this.
pub fn membership_acted_on<'m, M>(
    actor: &Actor,
    memberships: &'m [M],
    org: impl Fn(&M) -> &OrgPath,
) -> Option<&'m M> {
    memberships
        .iter()
        .find(|m| actor.scope().contains(org(m)))
        .or_else(|| memberships.first())
}

/// Which of `principals` may use `permission` (a `users.*` permission) on the
/// member `target`, each acting on the membership the user use cases pick:
/// the first of `memberships` (in the order given) inside the actor's scope,
/// else the first. Pass the members of the orgs of those memberships and of
/// their ancestors: nobody else can be allowed.
pub fn who_can_member(
    permission: Permission,
    target: UserId,
    memberships: &[&Membership],
    principals: &[Principal],
) -> Vec<Grant> {
    let Some(first) = memberships.first() else {
        return Vec::new();
    };
    who_can(principals, |actor| {
        let membership = membership_acted_on(actor, memberships, |m| &m.org).unwrap_or(first);
        actor.decide_user(
            permission,
            &MemberFacts {
                user: target,
                org: &membership.org,
                permissions: membership.permissions,
            },
        )
    })
}

/// Which of `principals` may use `permission` on org `target`. Pass the members
/// of the org and of its ancestors.
pub fn who_can_org(
    permission: Permission,
    target: &OrgPath,
    principals: &[Principal],
) -> Vec<Grant> {
    who_can(principals, |actor| actor.decide_org(permission, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrgId;

    #[test]
    fn intersect_holds_exactly_the_orgs_of_both_scopes() {
        // A small tree: 1 > {2 > {4, 5}, 3 > {6}}, with 5 a leaf.
        let ids: &[&[i64]] = &[&[1], &[1, 2], &[1, 3], &[1, 2, 4], &[1, 2, 5], &[1, 3, 6]];
        let paths: Vec<OrgPath> = ids
            .iter()
            .map(|p| OrgPath::from_ids(p.iter().map(|&i| OrgId(i)).collect()).unwrap())
            .collect();
        let scopes: Vec<Scope> = paths
            .iter()
            .flat_map(|home| {
                [false, true].map(|descendants| Scope {
                    home: home.clone(),
                    descendants,
                })
            })
            .collect();
        for a in &scopes {
            for b in &scopes {
                let both = a.intersect(b);
                for org in &paths {
                    let expected = a.contains(org) && b.contains(org);
                    let got = both.as_ref().is_some_and(|s| s.contains(org));
                    assert_eq!(got, expected, "{a:?} and {b:?} at {org:?}");
                }
                if let Some(s) = &both {
                    assert!(s == a || s == b, "one of the two");
                }
            }
        }
    }
}
