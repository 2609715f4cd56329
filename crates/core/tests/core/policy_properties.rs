//! Every named decision of arbor-core's `policy` module compared with the
//! naive reference of `policy_reference.rs`, on each world `properties.rs`
//! generates and for each actor it makes there. Targets are sampled per
//! actor (a few orgs, pairs, roles) from the world's seed, so every world
//! exercises every decision while a run stays short; whole-world checks
//! (list scope, member actions on every user) are not sampled.
//!
//! On every allowed verdict the isolation invariant is checked on the real
//! side alone: the target lies in the actor's hierarchy and scope (a device:
//! or is owned by the actor).

use crate::policy_reference::{PlainSet, RefRefusal, RefVerdict, RoleRef, close};
use crate::properties::{Real, org_id, org_index, real_set, same, user_id, user_index};
use crate::reference::{PlainWorld, RefActor, RefOutcome, Why};
use arbor_core::org::{MovedSubtree, OrgContents};
use arbor_core::permission::CATALOG;
use arbor_core::policy::{
    self, Action, DeleteOrgFacts, DeleteUser, EditUser, ForceLogout, InvitationFacts, LoginFacts,
    MemberAct, MovedMember, ResendInvitation, ResetFacts, ResetPassword, RevokeInvitation,
    SetSuspended, TargetMembership, TemplateFacts, Visibility,
};
use arbor_core::role::RoleHolder;
use arbor_core::{
    Actor, BuiltinRole, Decision, DepthLimit, DeviceAction, DeviceFacts, DeviceId,
    DeviceTemplateId, Grant, Membership, OrgFacts, OrgPath, OrgType, Outcome, Permission,
    PermissionMatrix, PermissionSet, PermissionTemplate, Refusal, Role, RoleId, Rule, Verdict,
    who_can_device, who_can_member, who_can_org,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

/// Orgs sampled per actor for the one-org decisions (on top of the home,
/// context, parent and root orgs).
const ORG_SAMPLE: usize = 5;
/// Pairs, roles, requests … sampled per actor for the heavier decisions.
const PAIR_SAMPLE: usize = 3;

/// SplitMix64: requests are drawn from the world's salt, deterministically.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A role's id: unique per server, so a role of another hierarchy (or past
/// the role list) is unknown to a hierarchy, as in the store.
pub fn role_id(hierarchy: usize, index: usize) -> RoleId {
    RoleId(100 * (hierarchy as i64 + 1) + index as i64)
}

fn role_ref(id: RoleId) -> RoleRef {
    RoleRef {
        hierarchy: (id.0 / 100 - 1) as usize,
        index: (id.0 % 100) as usize,
    }
}

/// What a store would load for the policy's decisions, in arbor-core's
/// types, computed from the world once.
pub struct Facts<'r> {
    orgs: Vec<OrgFacts>,
    /// Each org's hierarchy (its root's index).
    hierarchy: Vec<usize>,
    roots: Vec<usize>,
    /// For a root org's index: the hierarchy's roles in display order.
    roles: Vec<Vec<Role>>,
    matrices: Vec<PermissionMatrix>,
    /// Per org: the hierarchy's roles, each with its set in that org.
    with_sets: Vec<Vec<(Role, PermissionSet)>>,
    /// Everything a role holds in any org of its hierarchy.
    unions: HashMap<RoleId, PermissionSet>,
    /// For a root org's index: every membership of the hierarchy.
    holders: Vec<Vec<RoleHolder>>,
    /// Per user: memberships home first, then by org id.
    targets: Vec<Vec<TargetMembership<'r>>>,
    /// Per user: the world's membership index of each of `targets`.
    target_index: Vec<Vec<usize>>,
    /// Per org: the org, then every org below it.
    subtrees: Vec<Vec<usize>>,
    moved: Vec<MovedSubtree>,
    contents: Vec<OrgContents>,
    members: Vec<Vec<MovedMember>>,
    names: Vec<String>,
}

impl<'r> Facts<'r> {
    pub fn new(world: &PlainWorld, real: &'r Real) -> Self {
        let n = world.parent.len();
        let paths = &real.paths;
        let hierarchy: Vec<usize> = paths.iter().map(|p| org_index(p.root_id())).collect();
        let roots: Vec<usize> = (0..n).filter(|o| paths[*o].depth() == 1).collect();
        let orgs: Vec<OrgFacts> = (0..n)
            .map(|o| OrgFacts {
                path: paths[o].clone(),
                org_type: OrgType::parse(world.types[o]).unwrap(),
            })
            .collect();
        let builtins = [BuiltinRole::Admin, BuiltinRole::Staff, BuiltinRole::User];
        let roles: Vec<Vec<Role>> = (0..n)
            .map(|o| {
                if paths[o].depth() != 1 {
                    return vec![];
                }
                world
                    .role_names
                    .iter()
                    .enumerate()
                    .map(|(r, name)| Role {
                        id: role_id(o, r),
                        name: name.clone(),
                        builtin: builtins.get(r).copied(),
                    })
                    .collect()
            })
            .collect();
        let with_sets: Vec<Vec<(Role, PermissionSet)>> = (0..n)
            .map(|o| {
                roles[hierarchy[o]]
                    .iter()
                    .enumerate()
                    .map(|(r, role)| (role.clone(), real.sets[o][r]))
                    .collect()
            })
            .collect();
        let matrices = with_sets
            .iter()
            .map(|sets| PermissionMatrix(sets.iter().map(|(r, s)| (r.id, *s)).collect()))
            .collect();
        let mut unions: HashMap<RoleId, PermissionSet> = HashMap::new();
        for sets in &with_sets {
            for (role, set) in sets {
                let union = unions.entry(role.id).or_default();
                *union = union.union(*set);
            }
        }
        let mut holders = vec![vec![]; n];
        for (u, user) in world.users.iter().enumerate() {
            for (o, r) in &user.memberships {
                holders[hierarchy[*o]].push(RoleHolder {
                    user: user_id(u),
                    org: org_id(*o),
                    role: role_id(hierarchy[*o], *r),
                });
            }
        }
        let mut targets = vec![];
        let mut target_index = vec![];
        for (u, user) in world.users.iter().enumerate() {
            let mut order: Vec<usize> = (0..user.memberships.len()).collect();
            order.sort_by_key(|m| (*m != 0, org_id(user.memberships[*m].0)));
            targets.push(
                order
                    .iter()
                    .map(|m| {
                        let (o, r) = user.memberships[*m];
                        TargetMembership {
                            org: &paths[o],
                            role: role_id(hierarchy[o], r),
                            permissions: real.sets[o][r],
                            home: real.principals[u].memberships[*m].home,
                        }
                    })
                    .collect(),
            );
            target_index.push(order);
        }
        let subtrees: Vec<Vec<usize>> = (0..n)
            .map(|o| {
                let mut below: Vec<usize> = (0..n)
                    .filter(|x| *x != o && paths[o].contains(&paths[*x]))
                    .collect();
                below.insert(0, o);
                below
            })
            .collect();
        let moved = (0..n)
            .map(|o| MovedSubtree {
                root: orgs[o].clone(),
                deepest: subtrees[o].iter().map(|x| paths[*x].depth()).max().unwrap(),
                has_non_personal: subtrees[o]
                    .iter()
                    .any(|x| orgs[*x].org_type != OrgType::Personal),
            })
            .collect();
        let member_of =
            |u: usize, o: usize| world.users[u].memberships.iter().any(|(m, _)| *m == o);
        let members: Vec<Vec<MovedMember>> = (0..n)
            .map(|o| {
                (0..world.users.len())
                    .filter_map(|u| {
                        let (_, r) = world.users[u].memberships.iter().find(|(m, _)| *m == o)?;
                        Some(MovedMember {
                            user: user_id(u),
                            role: role_id(hierarchy[o], *r),
                            in_parent: paths[o]
                                .parent_id()
                                .is_some_and(|p| member_of(u, org_index(p))),
                        })
                    })
                    .collect()
            })
            .collect();
        let contents = (0..n)
            .map(|o| OrgContents {
                suborgs: paths
                    .iter()
                    .filter(|p| p.parent_id() == Some(org_id(o)))
                    .count() as u64,
                users: members[o].len() as u64,
                devices: world.devices.iter().filter(|d| d.org == o).count() as u64,
            })
            .collect();
        let mut names: Vec<String> = [
            "Admin",
            " staff ",
            "USER",
            "Role 3",
            "role 5",
            "ROLE 8",
            "Installer",
            "  Service crew ",
            "",
            "   ",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        names.push("x".repeat(32));
        names.push("x".repeat(33));
        // Characters, not bytes: 32 two-byte letters fit, 33 do not.
        names.push("é".repeat(32));
        names.push(format!(" {} ", "É".repeat(33)));
        Self {
            orgs,
            hierarchy,
            roots,
            roles,
            matrices,
            with_sets,
            unions,
            holders,
            targets,
            target_index,
            subtrees,
            moved,
            contents,
            members,
            names,
        }
    }

    fn union(&self, role: RoleId) -> PermissionSet {
        self.unions.get(&role).copied().unwrap_or_default()
    }
}

/// How a compared verdict ended (both sides agreeing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seen {
    Allowed,
    Failed,
    Denied(Why),
    /// A sub-case worth reaching, named by the test.
    Note(&'static str),
}

thread_local! {
    /// How often each action ended each way, over the run (the property
    /// test runs its cases on its own thread).
    static TALLY: RefCell<HashMap<(&'static str, Seen), u64>> = RefCell::new(HashMap::new());
}

fn tally(action: &'static str, seen: Seen) {
    TALLY.with(|t| *t.borrow_mut().entry((action, seen)).or_default() += 1);
}

fn note<A: Action>(what: &'static str) {
    tally(short_name::<A>(), Seen::Note(what));
}

fn short_name<A>() -> &'static str {
    let name = std::any::type_name::<A>();
    name.rsplit("::").next().unwrap_or(name)
}

/// The tally so far, sorted.
pub fn seen() -> Vec<((&'static str, Seen), u64)> {
    let mut all: Vec<_> = TALLY.with(|t| t.borrow().iter().map(|(k, v)| (*k, *v)).collect());
    all.sort();
    all
}

fn why_of(rule: Rule) -> Option<Why> {
    Some(match rule {
        Rule::OtherHierarchy | Rule::OutsideScope | Rule::NotVisible => Why::NotVisible,
        Rule::MissingPermission => Why::Missing,
        Rule::Escalation => Why::Escalation,
        Rule::TargetMorePrivileged => Why::MorePrivileged,
        Rule::HomeOutsideScope => Why::HomeRefused,
        Rule::NoSuchTarget => Why::Absent,
        Rule::RootOrgOnly => Why::RootOnly,
        _ => return None,
    })
}

/// Compares a verdict with the reference's: allowed both (returning both
/// targets), denied both with the same outcome and reason, or failed both
/// (a failure carries an allowing decision).
fn agree<'v, A, T>(
    actor: &Actor,
    got: &'v Verdict<A>,
    expected: &'v RefVerdict<T>,
    what: impl Fn() -> String,
) -> Result<Option<(&'v A::Target, &'v T)>, TestCaseError>
where
    A: Action,
    A::Target: Debug,
    T: Debug,
{
    let ours = |d: &Decision| d.user == actor.user() && d.via == Some(actor.via());
    let ok = match (got, expected) {
        (Ok(allowed), Ok(_)) => allowed
            .decision()
            .is_some_and(|d| d.is_allowed() && ours(d)),
        (Err(Refusal::Denied(d)), Err(RefRefusal::Denied(outcome, why))) => {
            !d.is_allowed() && same(d.outcome, *outcome) && why_of(d.rule) == Some(*why) && ours(d)
        }
        (Err(Refusal::Failed { decision, .. }), Err(RefRefusal::Failed)) => {
            decision.is_allowed() && ours(decision)
        }
        _ => false,
    };
    if !ok {
        return Err(TestCaseError::fail(format!(
            "{}:\n  policy:    {got:?}\n  reference: {expected:?}",
            what()
        )));
    }
    tally(
        short_name::<A>(),
        match expected {
            Ok(_) => Seen::Allowed,
            Err(RefRefusal::Failed) => Seen::Failed,
            Err(RefRefusal::Denied(_, why)) => Seen::Denied(*why),
        },
    );
    Ok(match (got, expected) {
        (Ok(allowed), Ok(reference)) => Some((allowed.target(), reference)),
        _ => None,
    })
}

/// A plain decision against the reference's outcome.
/// The decision behind a verdict, allowed or not.
fn verdict_decision<A: Action>(verdict: &Verdict<A>) -> Decision {
    match verdict {
        Ok(allowed) => *allowed.decision().unwrap(),
        Err(refusal) => *refusal.decision(),
    }
}

fn decided(
    d: &Decision,
    expected: RefOutcome,
    what: impl Fn() -> String,
) -> Result<(), TestCaseError> {
    if !same(d.outcome, expected) {
        return Err(TestCaseError::fail(format!(
            "{}: policy {} ({:?}), reference {expected:?}",
            what(),
            d.explain(),
            d.outcome
        )));
    }
    Ok(())
}

/// The isolation invariant on the real side alone.
fn inside(actor: &Actor, org: &OrgPath) -> bool {
    actor.home().same_hierarchy(org) && actor.scope().contains(org)
}

fn plain_set(set: PermissionSet) -> PlainSet {
    set.ids().into_iter().collect()
}

/// A permission set to ask for: the catalog, the actor's own, part of the
/// actor's, part of what the actor may grant (its closure stays within the
/// actor's set), random bits, or a set of the world.
fn requested(rng: &mut Rng, world: &PlainWorld, actor: &RefActor<'_>) -> PlainSet {
    match rng.below(6) {
        5 => {
            let grantable: Vec<&'static str> = actor
                .perms
                .iter()
                .copied()
                .filter(|p| close(&PlainSet::from([*p])).is_subset(actor.perms))
                .collect();
            grantable.into_iter().filter(|_| !rng.one_in(3)).collect()
        }
        0 => CATALOG.iter().map(|info| info.id).collect(),
        1 => actor.perms.clone(),
        2 => actor
            .perms
            .iter()
            .copied()
            .filter(|_| !rng.one_in(3))
            .collect(),
        3 => CATALOG
            .iter()
            .filter(|_| rng.one_in(4))
            .map(|info| info.id)
            .collect(),
        _ => {
            let o = rng.below(world.parent.len());
            world.sets[o][rng.below(world.role_names.len())].clone()
        }
    }
}

/// An org: half the time one of the actor's scope, else any.
fn pick_org(rng: &mut Rng, scope: &[usize], n: usize) -> usize {
    if rng.one_in(2) {
        rng.pick(scope)
    } else {
        rng.below(n)
    }
}

/// A role of `hierarchy`, now and then one it does not have.
fn pick_role(rng: &mut Rng, world: &PlainWorld, facts: &Facts<'_>, hierarchy: usize) -> RoleRef {
    match rng.below(12) {
        0 => RoleRef {
            hierarchy,
            index: 42,
        },
        1 => RoleRef {
            hierarchy: rng.pick(&facts.roots),
            index: rng.below(world.role_names.len()),
        },
        _ => RoleRef {
            hierarchy,
            index: rng.below(world.role_names.len()),
        },
    }
}

fn rid(role: RoleRef) -> RoleId {
    role_id(role.hierarchy, role.index)
}

/// A who-can answer, with the reference's (user, granting org) pairs.
pub type GrantList = (Vec<Grant>, Vec<(usize, usize)>);

/// Whole-world checks; returns who-can grant lists (with the reference's
/// (user, granting org) pairs) for the actors' `visible_grants`.
pub fn check_world(
    world: &PlainWorld,
    real: &Real,
    facts: &Facts<'_>,
    rng: &mut Rng,
    comparisons: &mut u64,
) -> Result<Vec<GrantList>, TestCaseError> {
    let n = world.parent.len();
    // The least-privileged role of every org.
    for o in 0..n {
        let got = policy::least_privileged_role(&facts.with_sets[o]);
        prop_assert_eq!(
            got,
            Some(rid(world.least_privileged(o))),
            "least privileged in {}",
            o
        );
        *comparisons += 1;
    }
    // Credentials of every user (the full truth tables are in policy_accounts).
    for (u, user) in real.principals.iter().enumerate() {
        let password_matches = rng.one_in(2);
        let login = policy::login(LoginFacts {
            user: user.user,
            status: user.status,
            password_matches,
        });
        let active = world.users[u].status == "active";
        prop_assert_eq!(login.is_ok(), active && password_matches);
        if let Err(refusal) = &login {
            prop_assert!(matches!(refusal, Refusal::Denied(d) if d.outcome == Outcome::Forbidden));
        }
        let (used, expired) = (rng.one_in(3), rng.one_in(3));
        let reset = policy::complete_password_reset(ResetFacts {
            user: user.user,
            used,
            expired,
            user_status: user.status,
        });
        prop_assert_eq!(reset.is_ok(), !used && !expired && active);
        let accept = policy::accept_invitation(InvitationFacts {
            user: Some(user.user),
            used,
            expired,
            user_status: user.status,
        });
        let pending = world.users[u].status == "pending";
        prop_assert_eq!(accept.is_ok(), !used && !expired && pending);
        if let Ok(accepted) = &accept {
            prop_assert_eq!(*accepted.target(), user.user);
        }
        *comparisons += 3;
    }

    // Who-can with the granting membership, for a few targets.
    let mut lists = vec![];
    let mut compare = |grants: Vec<Grant>,
                       expected: Vec<(usize, usize)>,
                       what: &str|
     -> Result<(), TestCaseError> {
        let got: Vec<(usize, usize)> = grants
            .iter()
            .map(|g| (user_index(g.user), org_index(g.via.org)))
            .collect();
        prop_assert_eq!(&got, &expected, "who can {}", what);
        *comparisons += 1;
        lists.push((grants, expected));
        Ok(())
    };
    if !world.devices.is_empty() {
        let d = rng.below(world.devices.len());
        let device = &world.devices[d];
        let device_facts = DeviceFacts {
            org: &real.paths[device.org],
            owner: device.owner.map(user_id),
        };
        for (action, name) in [
            (DeviceAction::View, "view"),
            (DeviceAction::Transfer, "transfer"),
        ] {
            let grants = who_can_device(action, &device_facts, &real.principals);
            let expected =
                world.who_can_via(|a| world.device_action(a, name, d) == RefOutcome::Allowed);
            compare(grants, expected, name)?;
        }
    }
    {
        let o = rng.below(n);
        let grants = who_can_org(Permission::RolesView, &real.paths[o], &real.principals);
        let expected =
            world.who_can_via(|a| world.org_action(a, "roles.view", o) == RefOutcome::Allowed);
        compare(grants, expected, "roles.view")?;
    }
    {
        let t = rng.below(world.users.len());
        let memberships: Vec<&Membership> = real.principals[t].memberships.iter().collect();
        let grants = who_can_member(
            Permission::UsersEdit,
            user_id(t),
            &memberships,
            &real.principals,
        );
        let theirs = &world.users[t].memberships;
        let expected = world.who_can_via(|a| {
            let m = theirs
                .iter()
                .position(|(o, _)| a.scope.contains(o))
                .unwrap_or(0);
            world.user_action(a, "users.edit", t, m) == RefOutcome::Allowed
        });
        compare(grants, expected, "users.edit")?;
    }
    Ok(lists)
}

/// What the per-actor checks share.
struct Ctx<'a, 'r> {
    world: &'a PlainWorld,
    real: &'a Real,
    facts: &'a Facts<'r>,
    actor: &'a Actor,
    r: &'a RefActor<'a>,
    /// The orgs the one-org decisions are asked about.
    orgs: Vec<usize>,
    /// The reference scope, sorted.
    scope: Vec<usize>,
}

impl Ctx<'_, '_> {
    fn who(&self) -> String {
        format!(
            "user {} home {} context {}",
            self.r.user, self.r.home, self.r.context
        )
    }
}

/// Every named decision for one actor.
#[allow(clippy::too_many_arguments)]
pub fn check_actor(
    world: &PlainWorld,
    real: &Real,
    facts: &Facts<'_>,
    actor: &Actor,
    r: &RefActor<'_>,
    grants: &[GrantList],
    rng: &mut Rng,
    comparisons: &mut u64,
) -> Result<(), TestCaseError> {
    let n = world.parent.len();
    let paths = &real.paths;
    let hierarchy = world.root_of(r.home);
    let mut scope: Vec<usize> = r.scope.iter().copied().collect();
    scope.sort_unstable();
    let mut orgs = vec![r.home, r.context, hierarchy];
    orgs.extend(world.parent[r.home]);
    for _ in 0..ORG_SAMPLE {
        orgs.push(pick_org(rng, &scope, n));
    }
    orgs.sort_unstable();
    orgs.dedup();

    let c = Ctx {
        world,
        real,
        facts,
        actor,
        r,
        orgs,
        scope,
    };
    check_orgs(&c, rng, comparisons)?;
    check_roles(&c, rng, comparisons)?;
    check_devices(&c, rng, comparisons)?;
    check_users(&c, rng, comparisons)?;
    let who = || c.who();

    // Insight.
    for o in &c.orgs {
        let o = *o;
        decided(
            &actor.ask_about(&paths[o]),
            world.org_action(r, "roles.view", o),
            || format!("{} ask about org {o}", who()),
        )?;
        prop_assert_eq!(actor.sees_context(&paths[o]), r.scope.contains(&o));
        *comparisons += 2;
    }
    for (t, subject) in real.principals.iter().enumerate() {
        prop_assert_eq!(
            actor.sees_user(subject),
            world.sees_user(r, t),
            "{} sees user {}",
            who(),
            t
        );
        let memberships: Vec<&Membership> = subject.memberships.iter().collect();
        let asked = actor
            .asked_membership(&memberships)
            .map(|m| org_index(m.org.id()));
        let expected = world.users[t]
            .memberships
            .iter()
            .map(|(o, _)| *o)
            .find(|o| r.scope.contains(o));
        prop_assert_eq!(asked, expected, "{} asks about user {}", who(), t);
        *comparisons += 2;
    }
    for (list, expected) in grants {
        let got: Vec<(usize, usize)> = actor
            .visible_grants(list.clone(), &real.principals)
            .iter()
            .map(|g| (user_index(g.user), org_index(g.via.org)))
            .collect();
        let expected: Vec<(usize, usize)> = expected
            .iter()
            .copied()
            .filter(|(_, o)| r.scope.contains(o))
            .collect();
        prop_assert_eq!(got, expected, "{} visible grants", who());
        *comparisons += 1;
    }
    let identities = r.perms.contains("users.view");
    prop_assert_eq!(
        actor.identity_visibility(),
        if identities {
            Visibility::Identities
        } else {
            Visibility::IdsOnly
        }
    );

    // One's own account: any actor (rule 1 made it one).
    let own = actor.edit_own_account();
    let expected: RefVerdict<usize> = Ok(r.user);
    let allowed = agree(actor, &own, &expected, || format!("{} edits own", who()))?;
    if let Some((target, _)) = allowed {
        prop_assert_eq!(*target, actor.user());
    }
    *comparisons += 2;
    Ok(())
}

fn check_orgs(c: &Ctx<'_, '_>, rng: &mut Rng, comparisons: &mut u64) -> Result<(), TestCaseError> {
    let Ctx {
        world,
        facts,
        actor,
        r,
        orgs,
        scope,
        ..
    } = c;
    let who = || c.who();
    let n = world.parent.len();
    let paths: Vec<&OrgPath> = facts.orgs.iter().map(|o| &o.path).collect();

    // absent() and the list scope (rule 9) over every org.
    let absent = actor.absent();
    prop_assert!(absent.outcome == Outcome::Hidden && absent.rule == Rule::NoSuchTarget);
    let list = actor.list_scope();
    let expected = world.list_scope(r);
    for (o, path) in paths.iter().enumerate() {
        prop_assert_eq!(
            list.contains(path),
            expected.contains(&o),
            "{} list scope at org {}",
            who(),
            o
        );
        if list.contains(path) {
            prop_assert!(inside(actor, path), "the list scope is never wider");
        }
    }
    *comparisons += 1 + n as u64;

    let limit = world.depth_limit;
    for o in orgs {
        let o = *o;
        decided(&actor.view_org(paths[o]), world.view_org(r, o), || {
            format!("{} view org {o}", who())
        })?;

        let child = rng.pick(&OrgType::ALL);
        let got = actor.create_suborg(&facts.orgs[o], child, DepthLimit::new(limit as u8).unwrap());
        let expected = world.create_suborg(r, o, child.as_str(), limit);
        if let Some((target, parent)) = agree(actor, &got, &expected, || {
            format!("{} create {child:?} under org {o}", who())
        })? {
            prop_assert_eq!(target, paths[*parent]);
            prop_assert!(inside(actor, target));
        }

        let got = actor.update_org(paths[o]);
        let expected = world.update_org(r, o);
        if let Some((target, org)) = agree(actor, &got, &expected, || {
            format!("{} update org {o}", who())
        })? {
            prop_assert_eq!(*target, org_id(*org));
            prop_assert!(inside(actor, paths[o]));
        }
        *comparisons += 3;
    }

    // Re-parenting: pairs, mostly confirmed.
    for _ in 0..PAIR_SAMPLE {
        let moved = pick_org(rng, scope, n);
        let to = pick_org(rng, scope, n);
        let confirmed = !rng.one_in(8);
        let limit = if rng.one_in(4) {
            1 + rng.below(6)
        } else {
            limit
        };
        let got = actor.move_org(
            &facts.moved[moved],
            &facts.orgs[to],
            DepthLimit::new(limit as u8).unwrap(),
            confirmed,
        );
        let expected = world.move_org(r, moved, to, limit, confirmed);
        if let Some(((old, new), path)) = agree(actor, &got, &expected, || {
            format!(
                "{} move org {moved} under {to} (limit {limit}, confirmed {confirmed})",
                who()
            )
        })? {
            prop_assert_eq!(old, paths[moved]);
            if old.parent_id() != Some(org_id(to)) {
                note::<policy::MoveOrg>("moved under another parent");
            }
            let ids: Vec<usize> = new.ids().iter().map(|id| org_index(*id)).collect();
            prop_assert_eq!(&ids, path);
            prop_assert!(inside(actor, old) && inside(actor, paths[to]));
        }
        *comparisons += 1;
    }

    // Deletion, with the members' moves.
    for _ in 0..PAIR_SAMPLE {
        let o = pick_org(rng, scope, n);
        let h = facts.hierarchy[o];
        let move_contents = !rng.one_in(4);
        let mut role_map = BTreeMap::new();
        for _ in 0..rng.below(3) {
            let from = if rng.one_in(6) {
                pick_role(rng, world, facts, h)
            } else {
                RoleRef {
                    hierarchy: h,
                    index: rng.below(world.role_names.len()),
                }
            };
            let to = if rng.one_in(6) {
                pick_role(rng, world, facts, h)
            } else {
                RoleRef {
                    hierarchy: h,
                    index: rng.below(world.role_names.len()),
                }
            };
            role_map.insert(rid(from), rid(to));
        }
        let plain_map: Vec<(RoleRef, RoleRef)> = role_map
            .iter()
            .map(|(a, b)| (role_ref(*a), role_ref(*b)))
            .collect();
        let parent = paths[o].parent_id().map(org_index);
        let delete = DeleteOrgFacts {
            org: paths[o],
            parent: parent.map(|p| paths[p]),
            contents: facts.contents[o],
            parent_roles: parent.map_or(&[][..], |p| &facts.with_sets[p][..]),
            members: &facts.members[o],
        };
        let got = actor.delete_org(&delete, move_contents, &role_map);
        let expected = world.delete_org(r, o, move_contents, &plain_map);
        if let Some((plan, reference)) = agree(actor, &got, &expected, || {
            format!(
                "{} delete org {o} (move {move_contents}, map {plain_map:?})",
                who()
            )
        })? {
            let parent = parent.unwrap();
            prop_assert_eq!(&plan.org, paths[o]);
            prop_assert_eq!(&plan.parent, paths[parent]);
            prop_assert_eq!(plan.move_contents, reference.move_contents);
            let moves: Vec<(usize, RoleRef, Option<RoleRef>)> = plan
                .moves
                .iter()
                .map(|m| {
                    (
                        user_index(m.user),
                        role_ref(m.old_role),
                        m.new_role.map(role_ref),
                    )
                })
                .collect();
            prop_assert_eq!(&moves, &reference.moves, "{} moves", who());
            prop_assert!(inside(actor, paths[o]) && inside(actor, paths[parent]));
            for (_, old, new) in &reference.moves {
                note::<policy::DeleteOrg>(match new {
                    None => "a member kept its parent membership",
                    Some(_) if plain_map.iter().any(|(from, _)| from == old) => {
                        "a member got its mapped role"
                    }
                    Some(_) => "a member got the least-privileged role",
                });
            }
            // Nobody's scope widens past the actor's: rule 6 on every grant.
            for m in &plan.moves {
                if let Some(role) = m.new_role {
                    let set = facts.matrices[parent].get(role);
                    prop_assert!(set.is_subset(actor.permissions()));
                }
            }
        }
        *comparisons += 1;
    }
    Ok(())
}

fn check_roles(c: &Ctx<'_, '_>, rng: &mut Rng, comparisons: &mut u64) -> Result<(), TestCaseError> {
    let Ctx {
        world,
        facts,
        actor,
        r,
        orgs,
        scope,
        ..
    } = c;
    let who = || c.who();
    let n = world.parent.len();
    let paths: Vec<&OrgPath> = facts.orgs.iter().map(|o| &o.path).collect();
    let context = r.context;
    decided(
        &actor.list_roles(),
        world.org_action(r, "roles.view", context),
        || format!("{} list roles", who()),
    )?;
    decided(
        &actor.list_permission_templates(),
        world.org_action(r, "roles.view", context),
        || format!("{} list templates", who()),
    )?;
    for o in orgs {
        let o = *o;
        decided(
            &actor.view_matrix(paths[o]),
            world.org_action(r, "roles.view", o),
            || format!("{} view matrix {o}", who()),
        )?;
        let got = actor.create_permission_template(paths[o]);
        let expected = world.org_action(r, "roles.edit", o);
        let expected = match expected {
            RefOutcome::Allowed => Ok(o),
            RefOutcome::Forbidden => Err(RefRefusal::Denied(expected, Why::Missing)),
            RefOutcome::Hidden => Err(RefRefusal::Denied(expected, Why::NotVisible)),
        };
        if let Some((target, _)) = agree(actor, &got, &expected, || {
            format!("{} save template of {o}", who())
        })? {
            prop_assert_eq!(*target, org_id(o));
            prop_assert!(inside(actor, paths[o]));
        }
        *comparisons += 2;
    }
    *comparisons += 2;

    // The role list lives in the hierarchy's root org; now and then the
    // root of another hierarchy is asked.
    let root = |rng: &mut Rng| {
        if rng.one_in(5) {
            rng.pick(&facts.roots)
        } else {
            world.root_of(r.home)
        }
    };
    for _ in 0..PAIR_SAMPLE {
        let at = root(rng);
        let roles = &facts.roles[at];
        let name = facts.names[rng.below(facts.names.len())].clone();
        let got = actor.create_role(paths[at], roles, &name);
        let expected = world.create_role(r, at, &name);
        if let Some(((org, name), expected)) = agree(actor, &got, &expected, || {
            format!("{} create role {name:?} at {at}", who())
        })? {
            prop_assert_eq!(*org, org_id(at));
            prop_assert_eq!(name, expected);
            prop_assert!(inside(actor, paths[at]));
        }

        let at = root(rng);
        let roles = &facts.roles[at];
        let role = pick_role(rng, world, facts, at);
        let name = facts.names[rng.below(facts.names.len())].clone();
        let got = actor.rename_role(paths[at], roles, rid(role), facts.union(rid(role)), &name);
        let expected = world.rename_role(r, at, role, &name);
        if let Some(((id, name), expected)) = agree(actor, &got, &expected, || {
            format!("{} rename role {role:?} at {at} to {name:?}", who())
        })? {
            prop_assert_eq!(*id, rid(role));
            prop_assert_eq!(name, expected);
            prop_assert!(inside(actor, paths[at]));
        }

        let at = root(rng);
        let roles = &facts.roles[at];
        let role = pick_role(rng, world, facts, at);
        let replacement = if rng.one_in(8) {
            role
        } else {
            pick_role(rng, world, facts, at)
        };
        let got = actor.delete_role(
            paths[at],
            roles,
            rid(role),
            facts.union(rid(role)),
            rid(replacement),
            facts.union(rid(replacement)),
            &facts.holders[at],
        );
        let expected = world.delete_role(r, at, role, replacement);
        if let Some((plan, holders)) = agree(actor, &got, &expected, || {
            format!("{} delete role {role:?} at {at} for {replacement:?}", who())
        })? {
            prop_assert_eq!(plan.deleted, rid(role));
            prop_assert_eq!(plan.replacement, rid(replacement));
            let mut moved: Vec<(usize, usize)> = plan
                .moved
                .iter()
                .map(|h| (user_index(h.user), org_index(h.org)))
                .collect();
            moved.sort_unstable();
            let mut holders = holders.clone();
            holders.sort_unstable();
            if !moved.is_empty() {
                note::<policy::DeleteRole>("holders moved to the replacement");
            }
            prop_assert_eq!(moved, holders);
            prop_assert!(inside(actor, paths[at]));
        }
        *comparisons += 3;
    }

    // One role's set in one org; a third of the time the actor's own role
    // at home, whose old set the actor holds.
    let own_role = world.users[r.user]
        .memberships
        .iter()
        .find(|(o, _)| *o == r.home)
        .map(|(_, role)| *role)
        .unwrap();
    for _ in 0..PAIR_SAMPLE {
        let own = rng.one_in(3);
        let o = if own { r.home } else { pick_org(rng, scope, n) };
        let h = facts.hierarchy[o];
        let index = if own {
            own_role
        } else if rng.one_in(3) {
            0
        } else {
            rng.below(world.role_names.len())
        };
        let role = &facts.roles[h][index];
        let asked = requested(rng, world, r);
        let got = actor.set_role_permissions(
            paths[o],
            role,
            facts.matrices[o].get(role.id),
            real_set(&asked),
        );
        let expected = world.set_role_permissions(
            r,
            o,
            RoleRef {
                hierarchy: h,
                index,
            },
            &asked,
        );
        if let Some((write, (set, added))) = agree(actor, &got, &expected, || {
            format!("{} set role {index} in {o} to {asked:?}", who())
        })? {
            prop_assert_eq!(write.org, org_id(o));
            prop_assert_eq!(write.role, role.id);
            prop_assert_eq!(plain_set(write.closure.set), set.clone());
            prop_assert_eq!(plain_set(write.closure.added), added.clone());
            prop_assert!(inside(actor, paths[o]));
        }
        *comparisons += 1;
    }

    // Templates: one org, or a whole subtree.
    for subtree in [false, true] {
        let o = pick_org(rng, scope, n);
        let h = if rng.one_in(6) {
            rng.pick(&facts.roots)
        } else {
            facts.hierarchy[o]
        };
        let mut plain: BTreeMap<RoleId, PlainSet> = BTreeMap::new();
        if rng.one_in(4) {
            // A template saved from an org of that hierarchy.
            let from = facts.subtrees[h][rng.below(facts.subtrees[h].len())];
            for (role, set) in &facts.with_sets[from] {
                plain.insert(role.id, plain_set(*set));
            }
        } else {
            for _ in 0..=rng.below(3) {
                let index = if rng.one_in(3) {
                    0
                } else {
                    rng.below(world.role_names.len())
                };
                plain.insert(role_id(h, index), requested(rng, world, r));
            }
        }
        let template = PermissionTemplate {
            name: "t".into(),
            sets: plain
                .iter()
                .map(|(role, set)| (*role, real_set(set)))
                .collect(),
        };
        let plain: Vec<(RoleRef, PlainSet)> = plain
            .into_iter()
            .map(|(role, set)| (role_ref(role), set))
            .collect();
        let targets: Vec<usize> = if subtree {
            facts.subtrees[o].clone()
        } else {
            vec![o]
        };
        let matrices: Vec<(OrgPath, PermissionMatrix)> = targets
            .iter()
            .map(|t| (paths[*t].clone(), facts.matrices[*t].clone()))
            .collect();
        let got = actor.apply_permission_template(org_id(h), &template, role_id(h, 0), &matrices);
        let expected = world.apply_template(r, h, &plain, &targets);
        if let Some((plan, reference)) = agree(actor, &got, &expected, || {
            format!("{} apply template of {h} to {targets:?}: {plain:?}", who())
        })? {
            prop_assert_eq!(plan.orgs, reference.orgs);
            if plan.root_admin_skipped {
                note::<policy::ApplyPermissionTemplate>("root Admin skipped");
            }
            if plan.orgs > 1 && !plan.writes.is_empty() {
                note::<policy::ApplyPermissionTemplate>("pushed, changing some orgs");
            }
            if plan.writes.len() < plan.orgs {
                note::<policy::ApplyPermissionTemplate>("some org unchanged");
            }
            prop_assert_eq!(plan.root_admin_skipped, reference.root_admin_skipped);
            let writes: Vec<(usize, Vec<(RoleRef, PlainSet)>)> = plan
                .writes
                .iter()
                .map(|w| {
                    (
                        org_index(w.org),
                        w.sets
                            .iter()
                            .map(|(r, s)| (role_ref(*r), plain_set(*s)))
                            .collect(),
                    )
                })
                .collect();
            prop_assert_eq!(&writes, &reference.writes, "{} template writes", who());
            let changed: Vec<usize> = plan.changed().into_iter().map(org_index).collect();
            let expected: Vec<usize> = reference.writes.iter().map(|(o, _)| *o).collect();
            prop_assert_eq!(changed, expected);
            for t in &targets {
                prop_assert!(inside(actor, paths[*t]));
            }
            // The root Admin set is never written.
            for w in &plan.writes {
                let root_org = paths[org_index(w.org)].depth() == 1;
                prop_assert!(!(root_org && w.sets.iter().any(|(r, _)| *r == role_id(h, 0))));
            }
        }
        *comparisons += 1;
    }
    Ok(())
}

fn check_devices(
    c: &Ctx<'_, '_>,
    rng: &mut Rng,
    comparisons: &mut u64,
) -> Result<(), TestCaseError> {
    let Ctx {
        world,
        real,
        facts,
        actor,
        r,
        orgs,
        ..
    } = c;
    let who = || c.who();
    let paths = &real.paths;
    for o in orgs {
        let o = *o;
        let got = actor.create_device_template(&paths[o]);
        let expected = world.create_device_template(r, o);
        if let Some((target, _)) = agree(actor, &got, &expected, || {
            format!("{} device template at {o}", who())
        })? {
            prop_assert_eq!(*target, org_id(o));
            prop_assert!(inside(actor, &paths[o]));
        }

        let template = if rng.one_in(5) {
            rng.pick(&facts.roots)
        } else {
            facts.hierarchy[o]
        };
        let got = actor.enable_device_template(&paths[o], org_id(template));
        let expected = world.enable_device_template(r, o, template);
        if let Some((target, _)) = agree(actor, &got, &expected, || {
            format!("{} enable template of {template} for {o}", who())
        })? {
            prop_assert_eq!(*target, org_id(o));
            prop_assert!(inside(actor, &paths[o]));
        }

        let enabled_in_context = rng.one_in(2);
        let template_facts = TemplateFacts {
            id: DeviceTemplateId(1),
            hierarchy: org_id(template),
            enabled_in_context,
        };
        for permission in ["templates.edit", "templates.delete"] {
            let expected =
                world.change_device_template(r, permission, template, enabled_in_context);
            let what = || {
                format!(
                    "{} {permission} template of {template} (enabled in context: {enabled_in_context})",
                    who()
                )
            };
            let target = if permission == "templates.edit" {
                let got = actor.edit_device_template(&template_facts);
                agree(actor, &got, &expected, what)?.map(|(t, _)| *t)
            } else {
                let got = actor.delete_device_template(&template_facts);
                agree(actor, &got, &expected, what)?.map(|(t, _)| *t)
            };
            if let Some(target) = target {
                prop_assert_eq!(target, DeviceTemplateId(1));
            }
        }

        let owner = match rng.below(3) {
            0 => None,
            1 => Some(r.user),
            _ => Some(rng.below(world.users.len())),
        };
        let got = actor.create_device(&paths[o], owner.map(user_id));
        let expected = world.create_device(r, o, owner);
        if let Some(((org, owner_id), _)) = agree(actor, &got, &expected, || {
            format!("{} create device in {o} owned by {owner:?}", who())
        })? {
            prop_assert_eq!(org, &paths[o]);
            prop_assert_eq!(*owner_id, owner.map(user_id));
            prop_assert!(inside(actor, org));
        }
        *comparisons += 3;
    }

    if world.devices.is_empty() {
        return Ok(());
    }
    for _ in 0..PAIR_SAMPLE {
        let d = rng.below(world.devices.len());
        let device = &world.devices[d];
        let device_facts = DeviceFacts {
            org: &paths[device.org],
            owner: device.owner.map(user_id),
        };
        let seen = actor.view_device(&device_facts);
        decided(&seen, world.device_action(r, "view", d), || {
            format!("{} view device {d}", who())
        })?;
        // Edit, delete and the auth token: the named decisions agree with
        // the reference's rule 5 for their action.
        let id = arbor_core::DeviceId(i64::try_from(d).unwrap_or(0));
        let outcomes = [
            (
                "edit",
                verdict_decision(&actor.edit_device(id, &device_facts)),
            ),
            (
                "delete",
                verdict_decision(&actor.delete_device(id, &device_facts)),
            ),
            ("edit_auth_token", actor.view_device_token(&device_facts)),
            (
                "edit_auth_token",
                verdict_decision(&actor.regenerate_device_token(id, &device_facts)),
            ),
        ];
        for (action, decision) in outcomes {
            decided(&decision, world.device_action(r, action, d), || {
                format!("{} {action} device {d}", who())
            })?;
        }
        *comparisons += 4;
        let receiver = if rng.one_in(10) {
            None
        } else if rng.one_in(3) && device.owner.is_some() {
            device.owner
        } else {
            Some(rng.below(world.users.len()))
        };
        let got = actor.transfer_device(
            DeviceId(d as i64),
            &device_facts,
            receiver.map(|u| &real.principals[u]),
        );
        let expected = world.transfer_device(r, d, receiver);
        if let Some(((id, target), (org, owner))) = agree(actor, &got, &expected, || {
            format!("{} transfer device {d} to {receiver:?}", who())
        })? {
            prop_assert_eq!(*id, DeviceId(d as i64));
            prop_assert_eq!(&target.org, &paths[*org]);
            prop_assert_eq!(target.owner, user_id(*owner));
            if *org != world.users[*owner].memberships[0].0 {
                note::<policy::TransferDevice>("to a receiver's non-home membership");
            }
            prop_assert!(
                inside(actor, device_facts.org) || device_facts.owner == Some(actor.user())
            );
            prop_assert!(inside(actor, &target.org));
        }
        *comparisons += 2;

        // Into an org: a random org (or none), a named member or none, and
        // a random list of the org's "Admins".
        let org = (!rng.one_in(10)).then(|| rng.below(paths.len()));
        let named = match rng.below(3) {
            0 => None,
            1 => Some(None),
            _ => Some(Some(rng.below(world.users.len()))),
        };
        let admins: Vec<usize> = (0..rng.below(3))
            .map(|_| rng.below(world.users.len()))
            .collect();
        let admin_ids: Vec<_> = admins.iter().map(|u| user_id(*u)).collect();
        let got = actor.transfer_device_to_org(
            DeviceId(d as i64),
            &device_facts,
            org.map(|o| &paths[o]),
            named.map(|n| n.map(|u| &real.principals[u])),
            &admin_ids,
        );
        let expected = world.transfer_device_to_org(r, d, org, named, &admins);
        if let Some(((id, target), (org, owner))) = agree(actor, &got, &expected, || {
            format!(
                "{} transfer device {d} into {org:?} named {named:?} admins {admins:?}",
                who()
            )
        })? {
            prop_assert_eq!(*id, DeviceId(d as i64));
            prop_assert_eq!(&target.org, &paths[*org]);
            prop_assert_eq!(target.owner, user_id(*owner));
            prop_assert!(inside(actor, &target.org));
        }
        *comparisons += 1;
    }
    Ok(())
}

/// One member action `A` on every user of the world.
fn member_act<A: MemberAct>(c: &Ctx<'_, '_>, comparisons: &mut u64) -> Result<(), TestCaseError> {
    let Ctx {
        world,
        facts,
        actor,
        r,
        ..
    } = c;
    let who = || c.who();
    for t in 0..world.users.len() {
        let got = actor.manage_member::<A>(user_id(t), &facts.targets[t]);
        let expected = world.manage_member(r, A::PERMISSION.id(), A::USER_WIDE, t);
        if let Some((target, m)) = agree(actor, &got, &expected, || {
            format!("{} {} on user {t}", who(), std::any::type_name::<A>())
        })? {
            let (org, role) = world.users[t].memberships[*m];
            prop_assert_eq!(target.user, user_id(t));
            prop_assert_eq!(target.org.id(), org_id(org));
            prop_assert_eq!(target.role, role_id(facts.hierarchy[org], role));
            prop_assert_eq!(target.home, *m == 0);
            prop_assert!(inside(actor, &target.org));
            // A user-wide action is allowed on the home membership too; the
            // home coming first, it is then the one acted on.
            if A::USER_WIDE {
                let home = &facts.targets[t][0];
                prop_assert!(inside(actor, home.org) && target.home);
            }
        }
        *comparisons += 1;
    }
    Ok(())
}

fn check_users(c: &Ctx<'_, '_>, rng: &mut Rng, comparisons: &mut u64) -> Result<(), TestCaseError> {
    let Ctx {
        world,
        facts,
        actor,
        r,
        orgs,
        scope,
        ..
    } = c;
    let who = || c.who();
    let n = world.parent.len();
    let paths: Vec<&OrgPath> = facts.orgs.iter().map(|o| &o.path).collect();
    member_act::<EditUser>(c, comparisons)?;
    member_act::<ResetPassword>(c, comparisons)?;
    member_act::<ForceLogout>(c, comparisons)?;
    member_act::<SetSuspended>(c, comparisons)?;
    member_act::<DeleteUser>(c, comparisons)?;
    member_act::<ResendInvitation>(c, comparisons)?;
    member_act::<RevokeInvitation>(c, comparisons)?;
    // A user without memberships is absent.
    let none = actor.manage_member::<DeleteUser>(user_id(999), &[]);
    prop_assert!(
        matches!(&none, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden && d.rule == Rule::NoSuchTarget)
    );

    // Seeing members, and the users list that must show the same users.
    let list = actor.user_list();
    let shown = world.list_scope(r);
    for t in 0..world.users.len() {
        let seen = actor.view_user(user_id(t), &facts.targets[t]);
        let expected = world.view_user(r, t);
        decided(&seen, expected, || format!("{} view user {t}", who()))?;
        let memberships: Vec<&OrgPath> = facts.targets[t].iter().map(|m| m.org).collect();
        let listed = list.matches(user_id(t), &memberships);
        prop_assert_eq!(
            listed,
            world.user_listed(r, &shown, t),
            "{} lists user {} ({:?})",
            who(),
            t,
            list
        );
        if r.context == r.home {
            prop_assert_eq!(
                listed,
                seen.is_allowed(),
                "{} list vs view user {}",
                who(),
                t
            );
        } else if listed {
            prop_assert!(
                seen.is_allowed(),
                "a narrowed list shows only visible users"
            );
        }
        *comparisons += 2;
    }
    decided(
        &actor.view_user(user_id(999), &[]),
        RefOutcome::Hidden,
        || format!("{} view nobody", who()),
    )?;
    decided(
        &actor.export_users(),
        world.org_action(r, "users.download_list", r.home),
        || format!("{} export users", who()),
    )?;
    decided(
        &actor.read_actions_log(),
        world.org_action(r, "users.view_actions_log", r.home),
        || format!("{} actions log", who()),
    )?;
    *comparisons += 3;

    // Invitations and direct adds, into the sampled orgs.
    for o in orgs {
        let o = *o;
        let role = pick_role(rng, world, facts, facts.hierarchy[o]);
        let set = facts.matrices[o].get(rid(role));
        let expected = world.invite(r, o, role).map(|()| o);
        let got = actor.invite(paths[o], rid(role), set);
        if let Some(((org, id), _)) = agree(actor, &got, &expected, || {
            format!("{} invite into {o} as {role:?}", who())
        })? {
            prop_assert_eq!((*org, *id), (org_id(o), rid(role)));
            prop_assert!(inside(actor, paths[o]));
            prop_assert!(set.is_subset(actor.permissions()));
        }
        let got = actor.add_member(paths[o], rid(role), set);
        if let Some(((org, id), _)) = agree(actor, &got, &expected, || {
            format!("{} add into {o} as {role:?}", who())
        })? {
            prop_assert_eq!((*org, *id), (org_id(o), rid(role)));
            prop_assert!(inside(actor, paths[o]));
        }
        decided(
            &actor.list_members_of(paths[o]),
            world.org_action(r, "users.view", o),
            || format!("{} members of {o}", who()),
        )?;
        *comparisons += 3;
    }

    // Transfers and role changes of sampled members.
    for _ in 0..PAIR_SAMPLE {
        let t = rng.below(world.users.len());
        let to = pick_org(rng, scope, n);
        let role = pick_role(rng, world, facts, facts.hierarchy[to]);
        let set = facts.matrices[to].get(rid(role));
        let got = actor.transfer_user(user_id(t), &facts.targets[t], paths[to], rid(role), set);
        let expected = world.transfer_user(r, t, to, role);
        if let Some(((target, org, id), m)) = agree(actor, &got, &expected, || {
            format!("{} transfer user {t} to {to} as {role:?}", who())
        })? {
            let (from, from_role) = world.users[t].memberships[*m];
            if *m != 0 {
                note::<policy::TransferUser>("acted on a non-home membership");
            }
            prop_assert_eq!(target.org.id(), org_id(from));
            prop_assert_eq!(target.role, role_id(facts.hierarchy[from], from_role));
            prop_assert_eq!((*org, *id), (org_id(to), rid(role)));
            prop_assert!(inside(actor, &target.org) && inside(actor, paths[to]));
            prop_assert!(set.is_subset(actor.permissions()));
        }

        let t = rng.below(world.users.len());
        let k = rng.below(facts.targets[t].len());
        let m = facts.target_index[t][k];
        let membership = &facts.targets[t][k];
        let org = world.users[t].memberships[m].0;
        let role = RoleRef {
            hierarchy: facts.hierarchy[org],
            index: rng.below(world.role_names.len()),
        };
        let set = facts.matrices[org].get(rid(role));
        let got = actor.change_member_role(user_id(t), membership, rid(role), set);
        let expected = world.change_member_role(r, t, m, role);
        if let Some(((user, at, id), ())) = agree(actor, &got, &expected, || {
            format!("{} change role of user {t} in {org} to {role:?}", who())
        })? {
            prop_assert_eq!((*user, *at, *id), (user_id(t), org_id(org), rid(role)));
            prop_assert!(inside(actor, membership.org));
        }
        *comparisons += 2;
    }
    Ok(())
}

/// The reference's closure is SPEC.md section 3's text; the catalog's must
/// agree with it on every single permission and on random sets.
#[test]
fn closing_a_set_follows_the_spec_dependencies() {
    for info in CATALOG {
        let one = PlainSet::from([info.id]);
        assert_eq!(
            plain_set(PermissionSet::from([info.permission]).closed()),
            close(&one),
            "{}",
            info.id
        );
    }
    let mut rng = Rng::new(7);
    for _ in 0..2_000 {
        let set: PlainSet = CATALOG
            .iter()
            .filter(|_| rng.one_in(5))
            .map(|info| info.id)
            .collect();
        assert_eq!(plain_set(real_set(&set).closed()), close(&set));
    }
}

/// The ways each action must have ended, at least a few times, in a run.
pub const REQUIRED: &[(&str, &[Seen])] = {
    use Seen::{Allowed as A, Denied as D, Failed as F, Note as N};
    use Why::{Absent, Escalation, HomeRefused, Missing, MorePrivileged, NotVisible, RootOnly};
    // Every member action is user-wide: allowed only on the home
    // membership (the first in scope when it is in scope, and required
    // otherwise), so none is ever allowed through another membership.
    const MEMBER: &[Seen] = &[
        A,
        D(NotVisible),
        D(Missing),
        D(MorePrivileged),
        D(HomeRefused),
    ];
    &[
        ("CreateSuborg", &[A, F, D(NotVisible), D(Missing)]),
        ("UpdateOrg", &[A, D(NotVisible), D(Missing)]),
        (
            "MoveOrg",
            &[
                A,
                F,
                D(NotVisible),
                D(Missing),
                N("moved under another parent"),
            ],
        ),
        (
            "DeleteOrg",
            &[
                A,
                F,
                D(NotVisible),
                D(Missing),
                D(Escalation),
                N("a member kept its parent membership"),
                N("a member got its mapped role"),
                N("a member got the least-privileged role"),
            ],
        ),
        ("CreateRole", &[A, F, D(NotVisible), D(Missing)]),
        (
            "RenameRole",
            &[A, F, D(NotVisible), D(Missing), D(Escalation), D(Absent)],
        ),
        (
            "DeleteRole",
            &[
                A,
                F,
                D(NotVisible),
                D(Missing),
                D(Escalation),
                D(Absent),
                N("holders moved to the replacement"),
            ],
        ),
        (
            "SetRolePermissions",
            &[A, F, D(NotVisible), D(Missing), D(Escalation)],
        ),
        ("CreatePermissionTemplate", &[A, D(NotVisible), D(Missing)]),
        (
            "ApplyPermissionTemplate",
            &[
                A,
                D(NotVisible),
                D(Missing),
                D(Escalation),
                D(Absent),
                N("root Admin skipped"),
                N("pushed, changing some orgs"),
                N("some org unchanged"),
            ],
        ),
        (
            "CreateDeviceTemplate",
            &[A, D(NotVisible), D(Missing), D(RootOnly)],
        ),
        (
            "EnableDeviceTemplate",
            &[A, D(NotVisible), D(Missing), D(Absent)],
        ),
        (
            "EditDeviceTemplate",
            &[A, D(NotVisible), D(Missing), D(RootOnly), D(Absent)],
        ),
        (
            "DeleteDeviceTemplate",
            &[A, D(NotVisible), D(Missing), D(RootOnly), D(Absent)],
        ),
        ("CreateDevice", &[A, D(NotVisible), D(Missing)]),
        (
            "TransferDevice",
            &[
                A,
                F,
                D(NotVisible),
                D(Missing),
                N("to a receiver's non-home membership"),
            ],
        ),
        ("EditUser", MEMBER),
        ("ResetPassword", MEMBER),
        ("ForceLogout", MEMBER),
        ("SetSuspended", MEMBER),
        ("DeleteUser", MEMBER),
        ("ResendInvitation", MEMBER),
        ("RevokeInvitation", MEMBER),
        (
            "TransferUser",
            &[
                A,
                D(NotVisible),
                D(Missing),
                D(MorePrivileged),
                D(Escalation),
                N("acted on a non-home membership"),
            ],
        ),
        (
            "ChangeMemberRole",
            &[
                A,
                D(NotVisible),
                D(Missing),
                D(MorePrivileged),
                D(Escalation),
            ],
        ),
        ("Invite", &[A, D(NotVisible), D(Missing), D(Escalation)]),
        ("AddMember", &[A, D(NotVisible), D(Missing), D(Escalation)]),
        ("EditOwnAccount", &[A]),
    ]
};
