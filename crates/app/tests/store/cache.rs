//! The decision cache (arbor-app `cache`) never answers differently from the
//! store, whoever writes: on a generated world, random writes made through the
//! use cases by an app *without* the cache (another node) are each followed by
//! a batch of random questions, answered by two cached apps (one warmed, one
//! filling lazily) and by the uncached app. Every answer must be the same.
//! The change feed itself is checked write by write.

use crate::support::proofs;
use crate::support::*;
use arbor_app::access::{Answer, Question, Target};
use arbor_app::accounts::AccountPolicy;
use arbor_app::cache::CacheLimits;
use arbor_app::{App, Caller, hash_token, new_token};
use arbor_core::{DeviceAction, DeviceId, OrgId, Permission, PermissionSet, RoleId, UserId};
use arbor_store::generate::{GenConfig, Rng, generate, generated_roots, sample_actors};
use arbor_store::{AuditEvent, AuthzChange, ClientKind, Store};
use sqlx::{Connection, Row};

both_engines!(
    the_feed_names_what_each_write_changed,
    cached_checks_agree_with_the_store_through_random_writes,
);

const PERMISSIONS: [&str; 10] = [
    "organizations.settings",
    "organizations.switch_to_suborgs",
    "roles.view",
    "users.view",
    "users.edit",
    "org_devices.view",
    "org_devices.control",
    "own_devices.view",
    "own_devices.control",
    "own_devices.edit",
];

const ACTIONS: [DeviceAction; 4] = [
    DeviceAction::View,
    DeviceAction::Control,
    DeviceAction::Edit,
    DeviceAction::ViewTimeline,
];

/// A small generated world and the ids in it.
struct World {
    admin: UserId,
    users: Vec<UserId>,
    /// Every user but the root Admin, who asks the questions (its session
    /// must outlive the writes).
    others: Vec<UserId>,
    orgs: Vec<OrgId>,
    devices: Vec<DeviceId>,
    roles: Vec<RoleId>,
    /// (user, org) of the memberships at the start.
    memberships: Vec<(UserId, OrgId)>,
}

async fn world(db: &TestDb, seed: u64) -> World {
    let config = GenConfig {
        orgs: 30,
        levels: 3,
        users: 120,
        devices: 300,
        seed,
        ..GenConfig::default()
    };
    generate(db.store(), &config, |_, _, _| {}).await.unwrap();
    let root = *generated_roots(db.store()).await.unwrap().last().unwrap();
    let admin = sample_actors(db.store(), root).await.unwrap().root_admin;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut list = async |sql: &'static str| -> Vec<i64> {
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<i64, _>(0).unwrap())
            .collect()
    };
    let (users, orgs, devices, roles) = (
        list("SELECT id FROM users ORDER BY id").await,
        list("SELECT id FROM organizations ORDER BY id").await,
        list("SELECT id FROM devices ORDER BY id").await,
        list("SELECT id FROM roles ORDER BY id").await,
    );
    let memberships = sqlx::query("SELECT user_id, org_id FROM memberships ORDER BY user_id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (UserId(r.try_get(0).unwrap()), OrgId(r.try_get(1).unwrap())))
        .collect();
    assert_eq!(orgs.first(), Some(&root.0), "the root comes first");
    World {
        memberships,
        admin,
        others: users
            .iter()
            .copied()
            .map(UserId)
            .filter(|u| *u != admin)
            .collect(),
        users: users.into_iter().map(UserId).collect(),
        orgs: orgs.into_iter().map(OrgId).collect(),
        devices: devices.into_iter().map(DeviceId).collect(),
        roles: roles.into_iter().map(RoleId).collect(),
    }
}

/// A session for `user` (generated users have no password).
async fn session(store: &Store, user: UserId) -> String {
    let (token, _) = new_token();
    let mut tx = store.write().await.unwrap();
    let far = tx.now() + 365 * 86_400_000;
    tx.insert_session(&proofs::login(user), user, &hash_token(&token), far)
        .await
        .unwrap();
    tx.commit(AuditEvent::new(
        ClientKind::Cli,
        "test.session",
        format!("user:{user}"),
    ))
    .await
    .unwrap();
    token
}

async fn caller(app: &App, token: &str) -> Caller {
    app.authenticate(token, &AccountPolicy::default())
        .await
        .unwrap()
        .expect("the session is live")
        .caller(ClientKind::Api, None)
}

fn random_set(rng: &mut Rng) -> PermissionSet {
    PERMISSIONS
        .iter()
        .filter(|_| rng.below(2) == 0)
        .map(|id| id.parse::<Permission>().unwrap())
        .collect()
}

fn questions(rng: &mut Rng, w: &World, n: usize) -> Vec<Question> {
    (0..n)
        .map(|_| {
            let target = match rng.below(5) {
                0..=2 => Target::Device {
                    device: rng.pick(&w.devices),
                    action: rng.pick(&ACTIONS),
                },
                3 => Target::Org {
                    org: rng.pick(&w.orgs),
                    permission: PERMISSIONS[rng.below(PERMISSIONS.len())].parse().unwrap(),
                },
                _ => Target::Member {
                    user: rng.pick(&w.users),
                    permission: Permission::UsersEdit,
                },
            };
            Question {
                user: rng.pick(&w.users),
                context: (rng.below(6) == 0).then(|| rng.pick(&w.orgs)),
                target,
            }
        })
        .collect()
}

/// One random write through the use cases; which kind, and whether it took.
async fn random_write(rng: &mut Rng, app: &App, w: &World) -> (usize, bool) {
    let by = Caller::new(w.admin, ClientKind::Cli);
    let kind = rng.below(6);
    let done = match kind {
        // Not in the root org: the asking Admin's own set stays whole.
        0 => app
            .set_role_permissions(
                &by,
                rng.pick(&w.orgs[1..]),
                rng.pick(&w.roles),
                random_set(rng),
            )
            .await
            .is_ok(),
        1 => {
            // Memberships move with transfers, and an org's last Admin keeps
            // its role: try a few.
            let mut done = false;
            for _ in 0..8 {
                let (user, org) = rng.pick(&w.memberships);
                if user != w.admin
                    && app
                        .change_member_role(&by, user, org, rng.pick(&w.roles))
                        .await
                        .is_ok()
                {
                    done = true;
                    break;
                }
            }
            done
        }
        2 => {
            let mut done = false;
            for _ in 0..8 {
                let suspend = rng.below(2) == 0;
                if app
                    .set_suspended(&by, rng.pick(&w.others), suspend)
                    .await
                    .is_ok()
                {
                    done = true;
                    break;
                }
            }
            done
        }
        3 => {
            // Most random re-parentings break a rule (depth, cycles): try a few.
            let mut done = false;
            for _ in 0..12 {
                let (org, parent) = (rng.pick(&w.orgs), rng.pick(&w.orgs));
                if app.move_org(&by, org, parent, true).await.is_ok() {
                    done = true;
                    break;
                }
            }
            done
        }
        4 => app
            .transfer_device_to_user(&by, rng.pick(&w.devices), rng.pick(&w.others))
            .await
            .is_ok(),
        _ => app
            .transfer_user(
                &by,
                rng.pick(&w.others),
                rng.pick(&w.orgs),
                rng.pick(&w.roles),
                rng.below(2) == 0,
            )
            .await
            .is_ok(),
    };
    (kind, done)
}

fn seed() -> u64 {
    let seed = std::env::var("ARBOR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand_seed);
    eprintln!("cache test seed {seed} (rerun with ARBOR_TEST_SEED={seed})");
    seed
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

async fn cached_checks_agree_with_the_store_through_random_writes(db: TestDb) {
    let seed = seed();
    let w = world(&db, seed).await;
    let plain = App::new(db.store().clone());
    let warmed = App::with_cache(db.store().clone(), CacheLimits::default());
    let lazy = App::with_cache(db.store().clone(), CacheLimits::default());
    let warmed_entries = warmed.cache().unwrap().warm().await.unwrap();
    assert!(
        warmed_entries >= w.devices.len() + w.users.len(),
        "warm-up kept {warmed_entries}"
    );
    let token = session(db.store(), w.admin).await;
    let mut rng = Rng(seed);
    let mut writes = [0usize; 6];
    let (mut allowed, mut denied, mut compared) = (0, 0, 0);
    for round in 0..80 {
        let (kind, done) = random_write(&mut rng, &plain, &w).await;
        writes[kind] += usize::from(done);
        let batch = questions(&mut rng, &w, 20);
        let expected = plain
            .check_access(&caller(&plain, &token).await, &batch)
            .await
            .unwrap();
        for app in [&warmed, &lazy] {
            // Single questions and the whole batch, each after a fresh authentication.
            let got = app
                .check_access(&caller(app, &token).await, &batch)
                .await
                .unwrap();
            assert_eq!(got, expected, "round {round}, seed {seed}: batch differs");
            for (q, want) in batch.iter().zip(&expected).take(5) {
                let one = app
                    .check_access(&caller(app, &token).await, &[*q])
                    .await
                    .unwrap();
                assert_eq!(&one[0], want, "round {round}, seed {seed}: {q:?}");
            }
        }
        for answer in &expected {
            compared += 1;
            match answer {
                Answer::Decided(d) if d.is_allowed() => allowed += 1,
                _ => denied += 1,
            }
        }
    }
    eprintln!(
        "writes that took, by kind: {writes:?}; answers {compared}: {allowed} allowed, {denied} not"
    );
    for (kind, n) in writes.iter().enumerate() {
        assert!(
            *n > 0,
            "no write of kind {kind} took (seed {seed}): the test would prove little"
        );
    }
    assert!(allowed > 0 && denied > 0, "answers all alike (seed {seed})");
    for app in [&warmed, &lazy] {
        let stats = app.cache().unwrap().stats();
        assert!(
            stats.hits > 0 && stats.catch_ups > 0,
            "the cache was not exercised: {stats:?}"
        );
    }
}

async fn the_feed_names_what_each_write_changed(db: TestDb) {
    let w = world(&db, 11).await;
    let store = db.store();
    let app = App::new(store.clone());
    let by = Caller::new(w.admin, ClientKind::Cli);
    let changes = async |from: i64| {
        let to = store.authz_version().await.unwrap();
        (to, store.authz_changes(from, to).await.unwrap().changes)
    };

    // A role's permission set in an org names the org.
    let v0 = store.authz_version().await.unwrap();
    let (org, role) = (w.orgs[3], w.roles[1]);
    app.set_role_permissions(&by, org, role, random_set(&mut Rng(3)))
        .await
        .unwrap();
    let (v1, feed) = changes(v0).await;
    assert_eq!(v1, v0 + 1, "one commit, one version");
    assert!(feed.contains(&AuthzChange::Org(org)), "{feed:?}");

    // Suspension names the user and the sessions it revoked.
    let mut suspended = None;
    for user in w.users.iter().rev() {
        let token = session(store, *user).await;
        if app.set_suspended(&by, *user, true).await.is_ok() {
            suspended = Some((*user, token));
            break;
        }
    }
    let (user, token) = suspended.expect("some user can be suspended");
    let (v2, feed) = changes(v1).await;
    assert!(feed.contains(&AuthzChange::User(user)), "{feed:?}");
    assert!(
        feed.iter().any(|c| matches!(c, AuthzChange::Session(_))),
        "{feed:?}"
    );
    assert!(
        app.authenticate(&token, &AccountPolicy::default())
            .await
            .unwrap()
            .is_none(),
        "the suspended user's session still works"
    );

    // A device handed to another member of its org names the device.
    let mut done = None;
    for device in &w.devices {
        for to in &w.users {
            if app.transfer_device_to_user(&by, *device, *to).await.is_ok() {
                done = Some(*device);
                break;
            }
        }
        if done.is_some() {
            break;
        }
    }
    let device = done.expect("some device can change hands");
    let (v3, feed) = changes(v2).await;
    assert!(feed.contains(&AuthzChange::Device(device)), "{feed:?}");

    // Moving an org names it and every org below it.
    let mut moved = None;
    'outer: for org in &w.orgs[1..] {
        for parent in &w.orgs {
            if app.move_org(&by, *org, *parent, true).await.is_ok() {
                moved = Some(*org);
                break 'outer;
            }
        }
    }
    let moved = moved.expect("some org can move");
    let (v4, feed) = changes(v3).await;
    assert!(feed.contains(&AuthzChange::Org(moved)), "{feed:?}");

    // A refused write commits its audit row alone: a new version, no change.
    let outsider = Caller::new(w.users[7], ClientKind::Cli);
    let refused = app.set_suspended(&outsider, w.admin, false).await;
    assert!(refused.is_err());
    let (v5, feed) = changes(v4).await;
    assert!(v5 >= v4, "versions never go back");
    assert!(feed.is_empty(), "a refused write changed facts: {feed:?}");

    // Pruning keeps the newest versions and raises the floor.
    let pruned = store.prune_authz_changes(1).await.unwrap();
    assert!(pruned > 0);
    let after = store.authz_changes(0, v5).await.unwrap();
    assert_eq!(after.floor, v5 - 1);
}
