//! The decision function on a generated hierarchy: 10,000 orgs over 4 levels,
//! 100,000 users and 1,000,000 devices in memory.
//!
//! Run: `cargo bench -p arbor-core --bench decide`
//! Each measured iteration checks a batch of 1,024 devices picked at random, so
//! the per-check time is the reported time / 1,024 and criterion's `thrpt` line
//! is checks per second.

use arbor_core::{
    Actor, BuiltinRole, DeviceAction, DeviceFacts, Membership, OrgId, OrgPath, Permission,
    PermissionSet, Principal, RoleId, UserId, UserStatus, who_can_device,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const BATCH: usize = 1024;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct World {
    paths: Vec<OrgPath>,
    /// Index into `paths` of each level's orgs.
    levels: [Vec<usize>; 4],
    /// Each device: (org index, owner).
    devices: Vec<(usize, Option<UserId>)>,
}

/// 1 root, 20 orgs at level 2, 400 at level 3, the rest (9,579) at level 4;
/// 100,000 users, 1,000,000 devices spread evenly over the orgs.
fn world() -> World {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut paths = vec![OrgPath::root(OrgId(1))];
    let mut levels: [Vec<usize>; 4] = [vec![0], vec![], vec![], vec![]];
    let add = |paths: &mut Vec<OrgPath>, parent: usize| {
        let id = OrgId(paths.len() as i64 + 1);
        let path = paths[parent].child(id);
        paths.push(path);
        paths.len() - 1
    };
    for _ in 0..20 {
        let o = add(&mut paths, 0);
        levels[1].push(o);
    }
    for i in 0..400 {
        let o = add(&mut paths, levels[1][i % 20]);
        levels[2].push(o);
    }
    while paths.len() < 10_000 {
        let parent = levels[2][rng.below(400)];
        let o = add(&mut paths, parent);
        levels[3].push(o);
    }
    let devices = (0..1_000_000)
        .map(|_| {
            let org = rng.below(paths.len());
            let owner = UserId(rng.below(100_000) as i64 + 1);
            (org, Some(owner))
        })
        .collect();
    World {
        paths,
        levels,
        devices,
    }
}

fn actor(path: &OrgPath, user: i64, permissions: PermissionSet) -> Actor {
    Principal {
        user: UserId(user),
        status: UserStatus::Active,
        session_revoked: false,
        memberships: vec![Membership {
            org: path.clone(),
            role: RoleId(1),
            permissions,
            home: true,
        }],
    }
    .act_at_home()
    .unwrap_or_else(|_| panic!("an active member can act at home"))
}

fn batches(world: &World, rng: &mut Rng) -> Vec<usize> {
    (0..BATCH).map(|_| rng.below(world.devices.len())).collect()
}

fn bench(c: &mut Criterion) {
    let world = world();
    let admin = BuiltinRole::Admin.default_permissions();
    let owner_only =
        PermissionSet::from([Permission::OwnDevicesView, Permission::OwnDevicesControl]);
    // The leaf user owns a device that exists, so some checks take the owner route.
    let (leaf_org, leaf_owner) = world.devices[7];
    let actors = [
        ("root admin", actor(&world.paths[0], 1, admin)),
        (
            "level-2 admin",
            actor(&world.paths[world.levels[1][3]], 2, admin),
        ),
        (
            "leaf user (own devices only)",
            actor(
                &world.paths[leaf_org],
                leaf_owner.map_or(3, |u| u.0),
                owner_only,
            ),
        ),
    ];

    let mut group = c.benchmark_group("decide_device");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut rng = Rng(42);
    for (name, actor) in &actors {
        group.bench_function(*name, |b| {
            b.iter_batched(
                || batches(&world, &mut rng),
                |picks| {
                    let mut allowed = 0u32;
                    for i in picks {
                        let (org, owner) = world.devices[i];
                        let facts = DeviceFacts {
                            org: &world.paths[org],
                            owner,
                        };
                        allowed += u32::from(
                            black_box(actor)
                                .decide_device(DeviceAction::Control, &facts)
                                .is_allowed(),
                        );
                    }
                    allowed
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scope_contains");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, actor) in &actors {
        group.bench_function(*name, |b| {
            b.iter_batched(
                || batches(&world, &mut rng),
                |picks| {
                    let mut inside = 0u32;
                    for i in picks {
                        inside += u32::from(
                            black_box(actor)
                                .scope()
                                .contains(&world.paths[world.devices[i].0]),
                        );
                    }
                    inside
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("device_filter_full_scan_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(world.devices.len() as u64));
    for (name, actor) in &actors {
        let filter = actor.device_filter(DeviceAction::View);
        group.bench_function(*name, |b| {
            b.iter(|| {
                world
                    .devices
                    .iter()
                    .filter(|(org, owner)| {
                        filter.matches(&DeviceFacts {
                            org: &world.paths[*org],
                            owner: *owner,
                        })
                    })
                    .count()
            })
        });
    }
    group.finish();

    // who-can on one device: members of its org and its 3 ancestors (5 each).
    let (org, owner) = world.devices[11];
    let device_path = &world.paths[org];
    let principals: Vec<Principal> = device_path
        .ids()
        .iter()
        .enumerate()
        .flat_map(|(level, id)| {
            let path = world.paths[(id.0 - 1) as usize].clone();
            (0..5).map(move |i| Principal {
                user: UserId(1_000 + level as i64 * 10 + i),
                status: UserStatus::Active,
                session_revoked: false,
                memberships: vec![Membership {
                    org: path.clone(),
                    role: RoleId(1),
                    permissions: if i == 0 {
                        admin
                    } else {
                        BuiltinRole::Staff.default_permissions()
                    },
                    home: true,
                }],
            })
        })
        .collect();
    c.bench_function("who_can_device/20 candidates", |b| {
        b.iter(|| {
            who_can_device(
                DeviceAction::Control,
                &DeviceFacts {
                    org: black_box(device_path),
                    owner,
                },
                &principals,
            )
            .len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
