//! A data generator for benchmarks and demos: one hierarchy of configurable
//! size (default 10,000 orgs over 4 levels, 100,000 users, 1,000,000 devices),
//! written with multi-row INSERTs in large transactions, on either engine.
//!
//! Values are generated here (digits and fixed ASCII), never taken from input,
//! so they are inlined into the SQL text: bulk statements then need no bind
//! round-trips and are not kept in the prepared-statement cache.

use crate::audit::{AuditEvent, ClientKind};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::roles::format_permissions;
use crate::rows::{HierarchySettings, NewOrg};
use crate::store::Store;
use crate::tx::STAMP_CHANGES;
use arbor_core::policy::Operator;
use arbor_core::{BuiltinRole, OrgId, OrgType, Permission, PermissionSet, UserId};
use sqlx::{AnyConnection, AssertSqlSafe, Executor};
use std::time::{Duration, Instant};

/// How big a world to make.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub orgs: usize,
    pub levels: usize,
    pub users: usize,
    pub devices: usize,
    pub seed: u64,
    /// Rows per INSERT statement.
    pub batch_rows: usize,
    /// Rows per transaction.
    pub tx_rows: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            orgs: 10_000,
            levels: 4,
            users: 100_000,
            devices: 1_000_000,
            seed: 42,
            batch_rows: 1_000,
            tx_rows: 200_000,
        }
    }
}

/// What was generated, and how fast.
#[derive(Clone, Debug)]
pub struct GenReport {
    pub root: OrgId,
    pub orgs: usize,
    pub users: usize,
    pub memberships: usize,
    pub devices: usize,
    pub other_rows: usize,
    pub elapsed: Duration,
}

impl GenReport {
    pub fn rows(&self) -> usize {
        self.orgs + self.users + self.memberships + self.devices + self.other_rows
    }

    pub fn rows_per_second(&self) -> f64 {
        self.rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A tiny deterministic generator (SplitMix64), so worlds are reproducible.
/// Tests use it too, for reproducible random operations.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % (n.max(1) as u64)) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One of `items`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Accumulates VALUES tuples and flushes them as multi-row INSERTs.
struct Batch<'a> {
    head: &'a str,
    rows: Vec<String>,
    limit: usize,
}

impl<'a> Batch<'a> {
    fn new(head: &'a str, limit: usize) -> Self {
        Self {
            head,
            rows: Vec::with_capacity(limit),
            limit,
        }
    }

    async fn push(&mut self, conn: &mut AnyConnection, row: String) -> Result<(), StoreError> {
        self.rows.push(row);
        if self.rows.len() >= self.limit {
            self.flush(conn).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let sql = format!("{} VALUES {}", self.head, self.rows.join(","));
        self.rows.clear();
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
        Ok(())
    }
}

async fn next_id(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(AssertSqlSafe(dialect.next_free_id(table)))
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Generates one hierarchy. `progress` is told each phase and its row count.
/// Meant for an otherwise idle database (ids are assigned by the generator).
pub async fn generate(
    store: &Store,
    config: &GenConfig,
    mut progress: impl FnMut(&str, usize, Duration),
) -> Result<GenReport, StoreError> {
    let started = Instant::now();
    // Generated worlds are loaded on the operator's command, like demo data.
    let by = Operator::setup().create_hierarchy();
    let mut rng = Rng(config.seed);
    let levels = config.levels.max(1);
    let orgs_wanted = config.orgs.max(1);

    // Root, hierarchy, roles and template through the ordinary transaction API.
    let mut tx = store.write().await?;
    let root = tx
        .insert_org(
            &by,
            None,
            &NewOrg::named(format!("Generated {}", config.seed), OrgType::Root),
        )
        .await?;
    let mut settings = HierarchySettings::default();
    if let Ok(limit) = arbor_core::DepthLimit::new(u8::try_from(levels).unwrap_or(u8::MAX)) {
        settings.depth_limit = limit;
    }
    tx.insert_hierarchy(&by, root.id, &settings).await?;
    let mut roles = Vec::new();
    for (i, builtin) in BuiltinRole::ALL.into_iter().enumerate() {
        roles.push(
            tx.insert_role(
                &by,
                root.id,
                builtin.default_name(),
                Some(builtin),
                i as i64,
            )
            .await?,
        );
    }
    let template = tx
        .insert_device_template(&by, root.id, "Generated sensor", &[])
        .await?;
    tx.commit(
        AuditEvent::new(
            ClientKind::Cli,
            "generate.start",
            format!("org:{}", root.id),
        )
        .target_org(root.id),
    )
    .await?;

    let dialect = store.dialect();
    let mut conn = store.pool().acquire().await?;
    let now = store.now_ms();
    let mut other_rows = 0usize;

    // Organizations, breadth first: the smallest fan-out that reaches the
    // wanted count within the depth limit.
    let phase = Instant::now();
    let mut fanout = 1usize;
    loop {
        let capacity: usize = (0..levels).map(|l| fanout.saturating_pow(l as u32)).sum();
        if capacity >= orgs_wanted || fanout > orgs_wanted {
            break;
        }
        fanout += 1;
    }
    // (id, path text, depth)
    let mut orgs: Vec<(i64, String, usize)> = vec![(root.id.0, root.path.encode(), 1)];
    sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
        .execute(&mut *conn)
        .await?;
    let mut id = next_id(&mut conn, dialect, "organizations").await?;
    let mut batch = Batch::new(
        "INSERT INTO organizations (id, parent_id, path, depth, org_type, name, name_folded, \
         created_at)",
        config.batch_rows,
    );
    let mut parent_index = 0;
    while orgs.len() < orgs_wanted && parent_index < orgs.len() {
        let (parent_id, parent_path, parent_depth) = orgs[parent_index].clone();
        parent_index += 1;
        if parent_depth >= levels {
            continue;
        }
        for _ in 0..fanout {
            if orgs.len() >= orgs_wanted {
                break;
            }
            let path = format!("{parent_path}{id}/");
            batch
                .push(
                    &mut conn,
                    format!(
                        "({id},{parent_id},'{path}',{},'BUSINESS','Org {id}','org {id}',{now})",
                        parent_depth + 1
                    ),
                )
                .await?;
            orgs.push((id, path, parent_depth + 1));
            id += 1;
        }
    }
    batch.flush(&mut conn).await?;

    // Role sets (defaults; Users may see and control the devices they own) and
    // template enablement, for every org.
    let mut user_set: PermissionSet = PermissionSet::EMPTY;
    user_set.insert(Permission::OwnDevicesView);
    user_set.insert(Permission::OwnDevicesControl);
    let sets = [
        (
            roles[0].id,
            format_permissions(BuiltinRole::Admin.default_permissions()),
        ),
        (
            roles[1].id,
            format_permissions(BuiltinRole::Staff.default_permissions()),
        ),
        (roles[2].id, format_permissions(user_set.closed())),
    ];
    let mut batch = Batch::new(
        "INSERT INTO role_permissions (org_id, role_id, permissions)",
        config.batch_rows,
    );
    for (org, _, _) in &orgs {
        for (role, set) in &sets {
            batch
                .push(&mut conn, format!("({org},{},'{set}')", role.0))
                .await?;
            other_rows += 1;
        }
    }
    batch.flush(&mut conn).await?;
    let mut batch = Batch::new(
        "INSERT INTO org_templates (org_id, template_id)",
        config.batch_rows,
    );
    for (org, _, _) in &orgs {
        batch
            .push(&mut conn, format!("({org},{})", template.0))
            .await?;
        other_rows += 1;
    }
    batch.flush(&mut conn).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    progress("organizations", orgs.len() + other_rows, phase.elapsed());

    // Users, each with a home membership: per org, the first is an Admin, the
    // second Staff, the rest Users. The root's first member is the root Admin.
    let phase = Instant::now();
    let mut members: Vec<Vec<i64>> = vec![Vec::new(); orgs.len()];
    sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
        .execute(&mut *conn)
        .await?;
    let mut user_id = next_id(&mut conn, dialect, "users").await?;
    let first_user = user_id;
    let mut users = Batch::new(
        "INSERT INTO users (id, email, email_normalized, email_skeleton, name, name_folded, status, \
         created_at)",
        config.batch_rows,
    );
    let mut memberships = Batch::new(
        "INSERT INTO memberships (user_id, org_id, role_id, home, created_at)",
        config.batch_rows,
    );
    let mut in_tx = 0;
    for n in 0..config.users {
        // Round-robin first, so that every org gets its Admin and Staff.
        let org_index = if n < orgs.len() * 2 {
            n % orgs.len()
        } else {
            rng.below(orgs.len())
        };
        let role = match members[org_index].len() {
            0 => roles[0].id,
            1 => roles[1].id,
            _ => roles[2].id,
        };
        let email = format!("user{user_id}.{}@gen.example", root.id);
        // Generated addresses are ASCII letters, digits and dots: their
        // skeleton (letters and digits only) needs no quoting.
        let skeleton = arbor_core::Email::parse(&email)?.skeleton().to_owned();
        users
            .push(
                &mut conn,
                format!(
                    "({user_id},'{email}','{email}','{skeleton}','User {user_id}','user {user_id}',\
                     'active',{now})"
                ),
            )
            .await?;
        memberships
            .push(
                &mut conn,
                format!("({user_id},{},{},1,{now})", orgs[org_index].0, role.0),
            )
            .await?;
        members[org_index].push(user_id);
        user_id += 1;
        in_tx += 2;
        if in_tx >= config.tx_rows {
            users.flush(&mut conn).await?;
            memberships.flush(&mut conn).await?;
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
                .execute(&mut *conn)
                .await?;
            in_tx = 0;
        }
    }
    users.flush(&mut conn).await?;
    memberships.flush(&mut conn).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    progress("users + memberships", config.users * 2, phase.elapsed());

    // Devices: a random org each, owned by a random member of it (or nobody).
    let phase = Instant::now();
    sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
        .execute(&mut *conn)
        .await?;
    let mut device_id = next_id(&mut conn, dialect, "devices").await?;
    let first_device = device_id;
    let mut devices = Batch::new(
        "INSERT INTO devices (id, hierarchy_id, org_id, template_id, owner_id, name, \
         name_folded, auth_token_hash, created_at)",
        config.batch_rows,
    );
    let mut in_tx = 0;
    for made in 1..=config.devices {
        let org_index = rng.below(orgs.len());
        let org_members = &members[org_index];
        let owner = if org_members.is_empty() || rng.below(10) == 0 {
            "NULL".to_string()
        } else {
            org_members[rng.below(org_members.len())].to_string()
        };
        devices
            .push(
                &mut conn,
                format!(
                    "({device_id},{},{},{},{owner},'Device {device_id}','device {device_id}','gen-{}-{device_id}',{now})",
                    root.id, orgs[org_index].0, template.0, root.id
                ),
            )
            .await?;
        device_id += 1;
        in_tx += 1;
        if in_tx >= config.tx_rows {
            devices.flush(&mut conn).await?;
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
                .execute(&mut *conn)
                .await?;
            in_tx = 0;
            progress("devices (so far)", made, phase.elapsed());
        }
    }
    devices.flush(&mut conn).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    progress("devices", config.devices, phase.elapsed());

    // What the store keeps per device and per membership (crate::scopes),
    // in one statement each for all.
    for (table, columns, definition, first) in [
        (
            "device_scopes",
            "ancestor_id, device_id",
            crate::scopes::DEVICE_SCOPES_DEFINITION,
            format!("d.id >= {first_device}"),
        ),
        (
            "member_scopes",
            "ancestor_id, user_id, org_id",
            crate::scopes::MEMBER_SCOPES_DEFINITION,
            format!("m.user_id >= {first_user}"),
        ),
    ] {
        let phase = Instant::now();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} ({columns}) {definition} AND {first} ORDER BY {columns}"
        )))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        progress(
            table,
            usize::try_from(rows).unwrap_or(usize::MAX),
            phase.elapsed(),
        );
    }

    for table in ["organizations", "users", "devices"] {
        if let Some(sql) = dialect.reset_id_sequence(table) {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await?;
        }
    }
    // The bulk rows bypassed Tx::commit, but the 0002 triggers recorded
    // their changes (memberships, role sets): stamp them all under one new
    // version, so that the caches of running nodes hear of them.
    sqlx::raw_sql(AssertSqlSafe(dialect.begin_write()))
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(STAMP_CHANGES).execute(&mut *conn).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    let phase = Instant::now();
    sqlx::raw_sql("ANALYZE").execute(&mut *conn).await?;
    progress("analyze", 0, phase.elapsed());
    drop(conn);

    let report = GenReport {
        root: root.id,
        orgs: orgs.len(),
        users: config.users,
        memberships: config.users,
        devices: config.devices,
        other_rows,
        elapsed: started.elapsed(),
    };
    let tx = store.write().await?;
    tx.commit(
        AuditEvent::new(
            ClientKind::Cli,
            "generate.finish",
            format!("org:{}", root.id),
        )
        .target_org(root.id)
        .detail("rows", report.rows()),
    )
    .await?;
    Ok(report)
}

/// Actors of a generated hierarchy for benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct SampleActors {
    pub root_admin: UserId,
    /// An Admin of a level-2 org.
    pub mid_admin: UserId,
    /// An Admin of a deepest-level org.
    pub leaf_admin: UserId,
    /// A User-role member of a deepest-level org who owns devices.
    pub leaf_user: UserId,
}

/// Finds [`SampleActors`] in the hierarchy rooted at `root`.
pub async fn sample_actors(store: &Store, root: OrgId) -> Result<SampleActors, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let (lo, hi) = arbor_core::OrgPath::root(root).subtree_range();
    let deepest: i64 =
        sqlx::query_scalar("SELECT MAX(depth) FROM organizations WHERE path >= $1 AND path < $2")
            .bind(lo.clone())
            .bind(hi.clone())
            .fetch_one(&mut *conn)
            .await?;
    let mut found = Vec::new();
    for depth in [1, 2.min(deepest), deepest] {
        let user: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(m.user_id) FROM memberships m \
             JOIN organizations o ON o.id = m.org_id JOIN roles r ON r.id = m.role_id \
             WHERE o.depth = $1 AND r.builtin = 'admin' AND o.path >= $2 AND o.path < $3",
        )
        .bind(depth)
        .bind(lo.clone())
        .bind(hi.clone())
        .fetch_one(&mut *conn)
        .await?;
        found.push(user.ok_or(StoreError::NotFound { what: "admin" })?);
    }
    let leaf_user: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(d.owner_id) FROM devices d \
         JOIN memberships m ON m.user_id = d.owner_id AND m.org_id = d.org_id \
         JOIN roles r ON r.id = m.role_id JOIN organizations o ON o.id = d.org_id \
         WHERE r.builtin = 'user' AND o.depth = $1 AND d.hierarchy_id = $2",
    )
    .bind(deepest)
    .bind(root.0)
    .fetch_one(&mut *conn)
    .await?;
    Ok(SampleActors {
        root_admin: UserId(found[0]),
        mid_admin: UserId(found[1]),
        leaf_admin: UserId(found[2]),
        leaf_user: UserId(leaf_user.ok_or(StoreError::NotFound { what: "leaf user" })?),
    })
}

/// The roots of generated hierarchies, newest last.
pub async fn generated_roots(store: &Store) -> Result<Vec<OrgId>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM organizations WHERE parent_id IS NULL AND name LIKE 'Generated %' ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(OrgId).collect())
}
