//! Property tests: random hierarchies checked against the naive reference
//! model, decision by decision, scope by scope, who-can by who-can; and, for
//! every actor of every world, each named decision of the `policy` module
//! against `policy_reference.rs` (see `policy_properties.rs`).

use crate::policy_properties::{self, Rng, Seen, role_id};
use crate::policy_reference::close;
use crate::reference::{PlainDevice, PlainUser, PlainWorld, RefOutcome};
use arbor_core::permission::CATALOG;
use arbor_core::{
    DeviceAction, DeviceFacts, MemberFacts, Membership, OrgId, OrgPath, Outcome, Permission,
    PermissionSet, Principal, UserId, UserStatus, who_can_device, who_can_member, who_can_org,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Worlds generated per `cargo test` run.
const CASES: u32 = 10_000;

static WORLDS: AtomicU64 = AtomicU64::new(0);
static COMPARISONS: AtomicU64 = AtomicU64::new(0);

/// (status pick, revoked pick, memberships as (org pick, role pick)).
type UserSeed = (u8, u8, Vec<(u16, u8)>);

/// Raw material from which a world is built deterministically; proptest
/// shrinks these vectors when a comparison fails.
#[derive(Clone, Debug)]
struct Seed {
    depth_limit: usize,
    roots: usize,
    /// Each sub-org: (parent pick, type pick).
    orgs: Vec<(u16, u8)>,
    roles: usize,
    sets: Vec<u128>,
    users: Vec<UserSeed>,
    devices: Vec<(u16, u16)>,
    contexts: Vec<u16>,
    /// Seeds the requests the policy comparisons make in this world.
    salt: u64,
}

fn seeds() -> impl Strategy<Value = Seed> {
    (
        2usize..=5,
        1usize..=3,
        prop::collection::vec((any::<u16>(), any::<u8>()), 0..47),
        // Mostly the three built-in roles and a few more; now and then the
        // most a hierarchy may have (nine).
        prop_oneof![6 => 3usize..=5, 1 => 6usize..=8, 1 => Just(9)],
        prop::collection::vec(any::<u128>(), 1..24),
        prop::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                prop::collection::vec((any::<u16>(), any::<u8>()), 1..=3),
            ),
            1..14,
        ),
        prop::collection::vec((any::<u16>(), any::<u16>()), 0..24),
        prop::collection::vec(any::<u16>(), 2),
        any::<u64>(),
    )
        .prop_map(
            |(depth_limit, roots, orgs, roles, sets, users, devices, contexts, salt)| Seed {
                depth_limit,
                roots,
                orgs,
                roles,
                sets,
                users,
                devices,
                contexts,
                salt,
            },
        )
}

fn depth(parent: &[Option<usize>], mut org: usize) -> usize {
    let mut d = 1;
    while let Some(p) = parent[org] {
        d += 1;
        org = p;
    }
    d
}

/// Sub-org types; PERSONAL comes up often so that its rule is exercised.
const SUBORG_TYPES: [&str; 8] = [
    "BUSINESS",
    "PERSONAL",
    "BRANCH",
    "PERSONAL",
    "DISTRIBUTOR",
    "CONTRACTOR",
    "INSTALLER",
    "RESELLER",
];

fn build(seed: &Seed) -> PlainWorld {
    let mut parent: Vec<Option<usize>> = vec![None; seed.roots];
    let mut types: Vec<&'static str> = vec!["ROOT"; seed.roots];
    for (pick, kind) in &seed.orgs {
        let eligible: Vec<usize> = (0..parent.len())
            .filter(|o| depth(&parent, *o) < seed.depth_limit)
            .collect();
        let p = eligible[*pick as usize % eligible.len()];
        parent.push(Some(p));
        // A PERSONAL org only has PERSONAL children (SPEC.md section 1).
        types.push(if types[p] == "PERSONAL" {
            "PERSONAL"
        } else {
            SUBORG_TYPES[*kind as usize % SUBORG_TYPES.len()]
        });
    }
    let n = parent.len();
    // In two worlds of three, sets are raw random bit patterns: not closed
    // over dependencies, so the decision is also exercised on sets no API
    // would store. The third is as the API would store it: every set closed
    // over its dependencies, the root orgs' Admin the whole catalog.
    let realistic = seed.salt.is_multiple_of(3);
    let sets = (0..n)
        .map(|o| {
            (0..seed.roles)
                .map(|r| {
                    let bits = seed.sets[(o * seed.roles + r) % seed.sets.len()];
                    let bits = if realistic && r == 0 && parent[o].is_none() {
                        u128::MAX
                    } else {
                        bits
                    };
                    let set = CATALOG
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| bits & (1u128 << i) != 0)
                        .map(|(_, info)| info.id)
                        .collect();
                    if realistic { close(&set) } else { set }
                })
                .collect()
        })
        .collect();
    let role_names = (0..seed.roles)
        .map(|r| match r {
            0 => "Admin".to_owned(),
            1 => "Staff".to_owned(),
            2 => "User".to_owned(),
            r => format!("Role {r}"),
        })
        .collect();
    let mut world = PlainWorld {
        parent,
        types,
        depth_limit: seed.depth_limit,
        role_names,
        sets,
        users: vec![],
        devices: vec![],
    };
    for (status, revoked, memberships) in &seed.users {
        let home = memberships[0].0 as usize % n;
        let hierarchy = world.root_of(home);
        let same: Vec<usize> = (0..n).filter(|o| world.root_of(*o) == hierarchy).collect();
        let mut chosen: Vec<(usize, usize)> = vec![];
        for (i, (pick, role)) in memberships.iter().enumerate() {
            let org = if i == 0 {
                home
            } else {
                same[*pick as usize % same.len()]
            };
            if !chosen.iter().any(|(o, _)| *o == org) {
                chosen.push((org, *role as usize % seed.roles));
            }
        }
        world.users.push(PlainUser {
            status: match status % 10 {
                0 => "pending",
                1 => "suspended",
                _ => "active",
            },
            session_revoked: revoked % 12 == 0,
            memberships: chosen,
        });
    }
    for (org_pick, owner_pick) in &seed.devices {
        let org = *org_pick as usize % n;
        let members: Vec<usize> = (0..world.users.len())
            .filter(|u| world.users[*u].memberships.iter().any(|(o, _)| *o == org))
            .collect();
        let owner = (!members.is_empty() && owner_pick % 4 != 0)
            .then(|| members[*owner_pick as usize % members.len()]);
        world.devices.push(PlainDevice { org, owner });
    }
    world
}

/// The same world in arbor-core's types.
pub struct Real {
    pub paths: Vec<OrgPath>,
    pub principals: Vec<Principal>,
    pub sets: Vec<Vec<PermissionSet>>,
}

/// A set of string ids as a `PermissionSet`, through a map built once
/// (`PermissionSet::from_ids` scans the catalog per id; the worlds hold
/// many sets).
pub fn real_set(ids: &BTreeSet<&'static str>) -> PermissionSet {
    static BY_ID: LazyLock<HashMap<&'static str, Permission, BuildHasherDefault<Fnv>>> =
        LazyLock::new(|| {
            CATALOG
                .iter()
                .map(|info| (info.id, info.permission))
                .collect()
        });
    ids.iter().map(|id| BY_ID[id]).collect()
}

/// FNV-1a: plenty for short ids, and much cheaper than SipHash here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

pub fn org_id(index: usize) -> OrgId {
    OrgId(1000 + index as i64)
}

pub fn org_index(id: OrgId) -> usize {
    (id.0 - 1000) as usize
}

pub fn user_id(index: usize) -> UserId {
    UserId(5000 + index as i64)
}

pub fn user_index(id: UserId) -> usize {
    (id.0 - 5000) as usize
}

fn real(world: &PlainWorld) -> Real {
    let paths = (0..world.parent.len())
        .map(|o| {
            let mut ids = vec![org_id(o)];
            let mut current = o;
            while let Some(p) = world.parent[current] {
                ids.push(org_id(p));
                current = p;
            }
            ids.reverse();
            OrgPath::from_ids(ids).unwrap()
        })
        .collect::<Vec<_>>();
    let sets: Vec<Vec<PermissionSet>> = world
        .sets
        .iter()
        .map(|roles| roles.iter().map(real_set).collect())
        .collect();
    let principals = world
        .users
        .iter()
        .enumerate()
        .map(|(u, plain)| Principal {
            user: user_id(u),
            status: match plain.status {
                "pending" => UserStatus::Pending,
                "suspended" => UserStatus::Suspended,
                _ => UserStatus::Active,
            },
            session_revoked: plain.session_revoked,
            memberships: plain
                .memberships
                .iter()
                .enumerate()
                .map(|(i, (org, role))| Membership {
                    org: paths[*org].clone(),
                    role: role_id(world.root_of(*org), *role),
                    permissions: sets[*org][*role],
                    home: i == 0,
                })
                .collect(),
        })
        .collect();
    Real {
        paths,
        principals,
        sets,
    }
}

pub fn same(outcome: Outcome, reference: RefOutcome) -> bool {
    matches!(
        (outcome, reference),
        (Outcome::Allowed, RefOutcome::Allowed)
            | (Outcome::Forbidden, RefOutcome::Forbidden)
            | (Outcome::Hidden, RefOutcome::Hidden)
    )
}

fn action_name(action: DeviceAction) -> String {
    serde_json::to_value(action)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

const ORG_PERMISSIONS: [Permission; 3] = [
    Permission::OrganizationsSettings,
    Permission::UsersInvite,
    Permission::OrgDevicesAdd,
];

const USER_PERMISSIONS: [Permission; 3] = [
    Permission::UsersView,
    Permission::UsersEdit,
    Permission::UsersSuspend,
];

fn check_world(world: &PlainWorld, contexts: &[u16], salt: u64) -> Result<(), TestCaseError> {
    let real = real(world);
    let n = world.parent.len();
    let mut comparisons = 0u64;
    let mut rng = Rng::new(salt);
    let facts = policy_properties::Facts::new(world, &real);
    let grants = policy_properties::check_world(world, &real, &facts, &mut rng, &mut comparisons)?;
    let actions: Vec<(DeviceAction, String)> = DeviceAction::ALL
        .iter()
        .map(|a| (*a, action_name(*a)))
        .collect();

    for (u, principal) in real.principals.iter().enumerate() {
        let mut ctxs: Vec<usize> = vec![world.users[u].memberships[0].0];
        ctxs.extend(contexts.iter().map(|c| *c as usize % n));
        for c in ctxs {
            let got = principal.act_in(&real.paths[c]);
            let expected = world.act(u, c);
            comparisons += 1;
            prop_assert_eq!(
                got.is_ok(),
                expected.is_some(),
                "act_in user {} context {}",
                u,
                c
            );
            let (Ok(actor), Some(reference)) = (got, expected) else {
                continue;
            };
            prop_assert_eq!(actor.via().org, org_id(reference.home));

            // Every named decision of the policy module, for this actor.
            policy_properties::check_actor(
                world,
                &real,
                &facts,
                &actor,
                &reference,
                &grants,
                &mut rng,
                &mut comparisons,
            )?;

            // Scope listing.
            let scope: BTreeSet<usize> = (0..n)
                .filter(|o| actor.scope().contains(&real.paths[*o]))
                .collect();
            let expected_scope: BTreeSet<usize> = reference.scope.iter().copied().collect();
            prop_assert_eq!(&scope, &expected_scope, "scope of user {} in {}", u, c);
            comparisons += 1;

            // Device lists (rule 9): by default, narrowed to one org, or to
            // its subtree; each filter agrees with the reference and never
            // shows a device the actor may not view.
            let (a, b) = (rng.below(n), rng.below(n));
            for narrow in [None, Some((a, false)), Some((b, true))] {
                let got = actor.list_devices(
                    narrow.map(|(o, _)| &real.paths[o]),
                    narrow.is_some_and(|(_, s)| s),
                );
                for d in 0..world.devices.len() {
                    let expected = world.device_listed(&reference, narrow, d);
                    let device = &world.devices[d];
                    let facts = DeviceFacts {
                        org: &real.paths[device.org],
                        owner: device.owner.map(user_id),
                    };
                    match (&got, expected) {
                        (Err(refused), None) => prop_assert_eq!(refused.outcome, Outcome::Hidden),
                        (Ok(filter), Some(listed)) => {
                            prop_assert_eq!(
                                filter.matches(&facts),
                                listed,
                                "user {} ctx {} list {:?} device {}",
                                u,
                                c,
                                narrow,
                                d
                            );
                            if listed {
                                prop_assert!(actor.view_device(&facts).is_allowed());
                            }
                        }
                        (got, expected) => prop_assert!(
                            false,
                            "user {} ctx {} list {:?}: {:?} vs {:?}",
                            u,
                            c,
                            narrow,
                            got.as_ref().map(|_| "a filter"),
                            expected
                        ),
                    }
                    comparisons += 1;
                }
            }

            // Every device × every action, and the list filter for the same.
            for (action, name) in &actions {
                let filter = actor.device_filter(*action);
                for (d, device) in world.devices.iter().enumerate() {
                    let facts = DeviceFacts {
                        org: &real.paths[device.org],
                        owner: device.owner.map(user_id),
                    };
                    let decision = actor.decide_device(*action, &facts);
                    let expected = world.device_action(&reference, name, d);
                    prop_assert!(
                        same(decision.outcome, expected),
                        "user {} ctx {} {} device {}: {:?} vs {:?} ({})",
                        u,
                        c,
                        name,
                        d,
                        decision.outcome,
                        expected,
                        decision.explain()
                    );
                    prop_assert_eq!(filter.matches(&facts), decision.is_allowed());
                    if decision.is_allowed() {
                        // Isolation: never outside the hierarchy, above or beside home
                        // — unless the actor owns the device.
                        prop_assert_eq!(facts.org.root_id(), actor.home().root_id());
                        prop_assert!(
                            actor.home().contains(facts.org) || facts.owner == Some(actor.user())
                        );
                    }
                    comparisons += 2;
                }
            }

            // Org-level actions on every org.
            for permission in ORG_PERMISSIONS {
                for o in 0..n {
                    let decision = actor.decide_org(permission, &real.paths[o]);
                    let expected = world.org_action(&reference, permission.id(), o);
                    prop_assert!(
                        same(decision.outcome, expected),
                        "org {} {}: {}",
                        o,
                        permission,
                        decision.explain()
                    );
                    if decision.is_allowed() {
                        prop_assert!(actor.home().contains(&real.paths[o]));
                    }
                    comparisons += 1;
                }
            }

            // User management on every membership of every user.
            for permission in USER_PERMISSIONS {
                for (t, target) in world.users.iter().enumerate() {
                    for (m, (org, role)) in target.memberships.iter().enumerate() {
                        let facts = MemberFacts {
                            user: user_id(t),
                            org: &real.paths[*org],
                            permissions: real.sets[*org][*role],
                        };
                        let decision = actor.decide_user(permission, &facts);
                        let expected = world.user_action(&reference, permission.id(), t, m);
                        prop_assert!(
                            same(decision.outcome, expected),
                            "user {} on {}: {}",
                            permission,
                            t,
                            decision.explain()
                        );
                        comparisons += 1;
                    }
                }
            }
        }
    }

    // Who-can, for every device and org.
    for (d, device) in world.devices.iter().enumerate() {
        let facts = DeviceFacts {
            org: &real.paths[device.org],
            owner: device.owner.map(user_id),
        };
        for action in [
            DeviceAction::View,
            DeviceAction::Control,
            DeviceAction::Transfer,
        ] {
            let grants = who_can_device(action, &facts, &real.principals);
            let users: BTreeSet<usize> = grants.iter().map(|g| user_index(g.user)).collect();
            prop_assert_eq!(
                &users,
                &world.who_can_device(&action_name(action), d),
                "who can {:?} device {}",
                action,
                d
            );
            for grant in &grants {
                let memberships = &world.users[user_index(grant.user)].memberships;
                prop_assert!(memberships.iter().any(|(o, _)| org_id(*o) == grant.via.org));
            }
            comparisons += 1;
        }
    }
    for o in 0..n {
        let grants = who_can_org(Permission::UsersInvite, &real.paths[o], &real.principals);
        let users: BTreeSet<usize> = grants.iter().map(|g| user_index(g.user)).collect();
        prop_assert_eq!(&users, &world.who_can_org("users.invite", o));
        comparisons += 1;
    }

    for (t, target) in real.principals.iter().enumerate() {
        let memberships: Vec<&Membership> = target.memberships.iter().collect();
        for permission in [Permission::UsersEdit, Permission::UsersSuspend] {
            let grants = who_can_member(permission, target.user, &memberships, &real.principals);
            let users: BTreeSet<usize> = grants.iter().map(|g| user_index(g.user)).collect();
            prop_assert_eq!(
                &users,
                &world.who_can_member(permission.id(), t),
                "who can {} user {}",
                permission,
                t
            );
            comparisons += 1;
        }
    }

    WORLDS.fetch_add(1, Ordering::Relaxed);
    COMPARISONS.fetch_add(comparisons, Ordering::Relaxed);
    Ok(())
}

#[test]
fn decisions_scopes_and_who_can_agree_with_the_naive_reference() {
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    if let Err(failure) = runner.run(&seeds(), |seed| {
        check_world(&build(&seed), &seed.contexts, seed.salt)
    }) {
        panic!("{failure}");
    }
    let worlds = WORLDS.load(Ordering::Relaxed);
    let comparisons = COMPARISONS.load(Ordering::Relaxed);
    assert!(
        worlds >= u64::from(CASES),
        "only {worlds} worlds were checked"
    );
    // Every branch of every policy decision was reached, often.
    let seen = policy_properties::seen();
    let count = |action: &str, how: Seen| {
        seen.iter()
            .find(|((a, s), _)| *a == action && *s == how)
            .map_or(0, |(_, n)| *n)
    };
    let mut missing = vec![];
    for (action, hows) in policy_properties::REQUIRED {
        for how in *hows {
            if count(action, *how) < 20 {
                missing.push(format!("{action} {how:?}: {}", count(action, *how)));
            }
        }
    }
    if std::env::var_os("ARBOR_PROPERTY_TALLY").is_some() {
        for ((action, how), n) in &seen {
            eprintln!("{n:>9}  {action} {how:?}");
        }
    }
    assert!(missing.is_empty(), "rarely or never reached: {missing:#?}");
    eprintln!(
        "property test: {worlds} generated worlds, {comparisons} comparisons with the reference \
         (section 4 decisions and every policy decision), 0 disagreements, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_generator_builds_worlds_that_respect_the_depth_limit_and_owner_rule() {
    let mut runner = TestRunner::deterministic();
    for _ in 0..200 {
        let seed = seeds().new_tree(&mut runner).unwrap().current();
        let world = build(&seed);
        for o in 0..world.parent.len() {
            assert!(depth(&world.parent, o) <= seed.depth_limit);
            match world.parent[o] {
                None => assert_eq!(world.types[o], "ROOT"),
                Some(p) => {
                    assert_ne!(world.types[o], "ROOT");
                    if world.types[p] == "PERSONAL" {
                        assert_eq!(world.types[o], "PERSONAL");
                    }
                }
            }
        }
        for device in &world.devices {
            if let Some(owner) = device.owner {
                assert!(
                    world.users[owner]
                        .memberships
                        .iter()
                        .any(|(o, _)| *o == device.org)
                );
            }
        }
        for user in &world.users {
            let roots: BTreeSet<usize> = user
                .memberships
                .iter()
                .map(|(o, _)| world.root_of(*o))
                .collect();
            assert_eq!(roots.len(), 1, "memberships stay in one hierarchy");
        }
    }
}

#[test]
fn the_fast_set_conversion_agrees_with_from_ids() {
    let all: BTreeSet<&'static str> = CATALOG.iter().map(|info| info.id).collect();
    assert_eq!(real_set(&all), PermissionSet::from_ids(&all).unwrap());
    for (i, info) in CATALOG.iter().enumerate() {
        let some: BTreeSet<&'static str> = CATALOG
            .iter()
            .skip(i % 3)
            .step_by(1 + i % 5)
            .map(|info| info.id)
            .chain([info.id])
            .collect();
        assert_eq!(real_set(&some), PermissionSet::from_ids(&some).unwrap());
    }
}
