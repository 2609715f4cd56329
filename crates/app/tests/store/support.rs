use arbor_app::{App, Caller, HierarchyCreated, NewHierarchy, NewMember};
use arbor_core::{BuiltinRole, DeviceId, OrgId, OrgType, UserId};
use arbor_store::{
    ClientKind, DeviceTemplateId, HierarchySettings, ManualClock, NewDevice, NewOrg, NewUser,
    Store, StoreConfig,
};
use sqlx::Connection as _;
use std::sync::Arc;

pub const PG_ENV: &str = "ARBOR_TEST_DATABASE_URL";

/// A fresh database for one test: a temporary SQLite file, or a PostgreSQL
/// schema of its own (dropped when the test ends).
pub struct TestDb {
    pub app: App,
    pub clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub fn store(&self) -> &Store {
        self.app.store()
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("arbor.db").display());
        Self::open(url, Some(dir), None).await
    }

    /// `None` (with a notice) when no PostgreSQL is configured.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("notice: {PG_ENV} not set; skipping the PostgreSQL variant");
            return None;
        };
        sqlx::any::install_default_drivers();
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::AnyConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self::open(url, None, Some((base, schema))).await)
    }

    async fn open(
        url: String,
        dir: Option<tempfile::TempDir>,
        pg_schema: Option<(String, String)>,
    ) -> TestDb {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let store = Store::connect_with_clock(&StoreConfig::new(url), clock.clone())
            .await
            .unwrap();
        TestDb {
            app: App::new(store),
            clock,
            _dir: dir,
            pg_schema,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            // Drop runs outside async context: clean up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA {schema} CASCADE"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs the test body on SQLite and on PostgreSQL (when configured).
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::support::TestDb::sqlite().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some(db) = $crate::support::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use both_engines;

pub fn web(user: UserId) -> Caller {
    Caller::new(user, ClientKind::Web)
}

pub async fn hierarchy(app: &App, name: &str, admin_email: &str) -> HierarchyCreated {
    app.create_hierarchy(&NewHierarchy {
        root: NewOrg::named(name, OrgType::Root),
        settings: HierarchySettings::default(),
        admin: NewUser::active(admin_email, format!("Admin of {name}")),
        client: ClientKind::Cli,
    })
    .await
    .unwrap()
}

pub async fn suborg(app: &App, by: UserId, parent: OrgId, name: &str) -> OrgId {
    app.create_suborg(&web(by), parent, &NewOrg::named(name, OrgType::Business))
        .await
        .unwrap()
        .id
}

pub async fn member(
    app: &App,
    by: UserId,
    org: OrgId,
    h: &HierarchyCreated,
    role: BuiltinRole,
    email: &str,
) -> UserId {
    app.add_member(
        &web(by),
        org,
        &NewMember {
            user: NewUser::active(email, email.split('@').next().unwrap_or(email)),
            role: h.role(role),
        },
    )
    .await
    .unwrap()
}

pub async fn template(app: &App, h: &HierarchyCreated, name: &str) -> DeviceTemplateId {
    app.create_device_template(
        &web(h.admin),
        h.root.id,
        name,
        &[arbor_store::NewDatastream {
            pin: 0,
            name: "Temperature".into(),
            value_type: "double".into(),
            min: Some(-50.0),
            max: Some(150.0),
            units: "°C".into(),
        }],
    )
    .await
    .unwrap()
}

pub fn new_device(name: &str, template: DeviceTemplateId, owner: Option<UserId>) -> NewDevice {
    let (_, hash) = arbor_app::new_token();
    NewDevice {
        name: name.into(),
        template,
        owner,
        auth_token_hash: hash,
        metafields: vec![("Serial".into(), format!("SN-{name}"))],
    }
}

pub async fn device(
    app: &App,
    by: UserId,
    org: OrgId,
    template: DeviceTemplateId,
    name: &str,
    owner: Option<UserId>,
) -> DeviceId {
    app.create_device(&web(by), org, &new_device(name, template, owner))
        .await
        .unwrap()
}
